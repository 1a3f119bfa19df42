// Soak: two daemons under a steady mix of lock and election operations for a
// long window (30 min; quick 20 s), read every few seconds: do resident
// memory, heap, descriptors and handles stay flat, and does everything held
// or waiting go back to zero once the load stops and its clients leave?
import { sleep } from "../lib/clock.js";
import type { BenchContext } from "../lib/context.js";
import type { OurDaemon } from "../lib/daemon.js";
import { countersBy, diffBy, metricValue, scrapeMetrics } from "../lib/daemon-metrics.js";
import { fdCount, freePort, rssBytes } from "../lib/proc.js";
import type { SoakDaemon, SoakRow, SoakSample } from "../lib/results.js";
import { SoakLoad } from "../lib/soak-load.js";
import { trend } from "../lib/trend.js";
import { countKinds } from "./scale.js";

const LOCK_NAMES = 40;
const ELECTION_NAMES = 10;
const MAX_IN_FLIGHT = 32;
const CHANNELS_PER_DAEMON = 4;
/**
 * Slopes leave out the start of the window, where heaps and JIT code grow to
 * their working size (about a minute at the default rate): a fifth of the
 * window, at least a minute, at most half of it.
 */
function warmupS(durationS: number): number {
  return Math.min(Math.max(0.2 * durationS, 60), 0.5 * durationS);
}
/** Idle time after start-up before the first reading. */
const IDLE_MS = 2_000;
/** Shortest soak worth running when the run's budget cuts it short. */
const MIN_DURATION_MS = 10_000;
/** Time kept back from the budget for draining the load and stopping the daemons. */
const RESERVE_MS = 60_000;

interface Target {
  readonly daemon: OurDaemon;
  /** host:port of its /metrics. */
  readonly metrics: string;
}

export async function soakOurs(ctx: BenchContext): Promise<SoakRow> {
  const { soakDurationMs, soakSampleMs, soakSettleMs, soakOpsPerSecond } = ctx.params;
  const durationMs = Math.min(soakDurationMs, ctx.remainingMs() - soakSettleMs - RESERVE_MS);
  if (durationMs < MIN_DURATION_MS)
    throw new Error(`no time left in the run's budget for the soak (${Math.round(ctx.remainingMs() / 1000)} s)`);
  if (durationMs < soakDurationMs) ctx.log(`soak: cut to ${Math.round(durationMs / 1000)} s by the run's budget`);
  const namespace = await ctx.newNamespace("soak");
  const targets: Target[] = [];
  let load: SoakLoad | undefined;
  let loadDone: Promise<void> | undefined;
  try {
    for (const identity of ["soak-a", "soak-b"]) {
      const metrics = `127.0.0.1:${await freePort()}`;
      targets.push({ daemon: await ctx.startDaemon(namespace, identity, [`--metrics-listen=${metrics}`]), metrics });
    }
    await sleep(IDLE_MS);
    const beforeAt = performance.now();
    const before = await Promise.all(targets.map((t) => read(t, beforeAt)));
    const warningsBefore = targets.map((t) => t.daemon.warnings.length);
    const countersBefore = await Promise.all(targets.map(counters));

    load = new SoakLoad({
      addresses: targets.map((t) => t.daemon.address),
      opsPerSecond: soakOpsPerSecond,
      maxInFlight: MAX_IN_FLIGHT,
      lockNames: LOCK_NAMES,
      electionNames: ELECTION_NAMES,
      channelsPerDaemon: CHANNELS_PER_DAEMON,
      seed: 20_261_128,
    });
    const loadStart = performance.now();
    for (const b of before) b.tS = (beforeAt - loadStart) / 1000;
    loadDone = load.run(durationMs);
    const samples = targets.map((): SoakSample[] => []);
    const times: number[] = [];
    for (let t = 0; t < durationMs; t += soakSampleMs) times.push(t);
    times.push(durationMs);
    let lastLogged = 0;
    for (const t of times) {
      await sleep(Math.max(0, loadStart + t - performance.now()));
      for (const { daemon } of targets)
        if (!daemon.alive) throw new Error(`daemon ${daemon.identity} exited during the soak:\n${daemon.stderr()}`);
      const reading = await Promise.all(targets.map((target) => read(target, loadStart)));
      reading.forEach((s, i) => samples[i]!.push(s));
      if (t - lastLogged >= 60_000) {
        lastLogged = t;
        ctx.log(
          `soak: ${Math.round(t / 1000)} s, ${opsDone(load)} operations, ${load.inFlight} running; RSS ` +
            reading.map((s) => `${(s.rssBytes / 2 ** 20).toFixed(1)}`).join(" / ") +
            " MiB",
        );
      }
    }
    const endedAt = performance.now();
    await loadDone;
    loadDone = undefined;
    const countersAfter = await Promise.all(targets.map(counters));
    load.close();
    await sleep(soakSettleMs);
    const settled = await Promise.all(targets.map((t) => read(t, loadStart)));

    const daemons: SoakDaemon[] = targets.map((t, i) => ({
      identity: t.daemon.identity,
      before: before[i]!,
      samples: samples[i]!,
      settled: settled[i]!,
      apiRequests: diffBy(countersBefore[i]!.apiRequests, countersAfter[i]!.apiRequests),
      watchRestarts: diffBy(countersBefore[i]!.watchRestarts, countersAfter[i]!.watchRestarts),
      watchEvents: diffBy(countersBefore[i]!.watchEvents, countersAfter[i]!.watchEvents),
    }));
    const actualS = (endedAt - loadStart) / 1000;
    const row: SoakRow = {
      plannedS: soakDurationMs / 1000,
      durationS: actualS,
      sampleEveryS: soakSampleMs / 1000,
      warmupS: warmupS(actualS),
      settleS: soakSettleMs / 1000,
      opsPerSecondTarget: soakOpsPerSecond,
      maxInFlight: MAX_IN_FLIGHT,
      lockNames: LOCK_NAMES,
      electionNames: ELECTION_NAMES,
      ops: load.ops,
      skipped: load.skipped,
      errorKinds: load.errorKinds(),
      daemons,
      daemonWarnings: targets.reduce((n, t, i) => n + t.daemon.warnings.length - warningsBefore[i]!, 0),
      warningKinds: countKinds(targets.flatMap((t, i) => t.daemon.warnings.slice(warningsBefore[i]))),
    };
    for (const d of daemons) {
      const rss = trend(
        d.samples.map((s) => s.tS),
        d.samples.map((s) => s.rssBytes / 2 ** 20),
        row.warmupS,
        1,
      );
      ctx.log(
        `soak: ${d.identity}: RSS ${rss.first.toFixed(1)} → ${rss.last.toFixed(1)} MiB, slope ${rss.perHour.toFixed(1)} MiB/h; ` +
          `fds ${d.before.fds} before, ${d.settled.fds} settled; held/led/waiting after settle ` +
          `${d.settled.locksHeld}/${d.settled.electionsLed}/${d.settled.waiters}`,
      );
    }
    return row;
  } finally {
    load?.stop();
    await loadDone;
    load?.close();
    await Promise.all(targets.map((t) => t.daemon.stop(20_000)));
  }
}

function opsDone(load: SoakLoad): number {
  return Object.values(load.ops).reduce((n, o) => n + o.ok + o.errors + Object.values(o.other).reduce((a, b) => a + b, 0), 0);
}

/** The daemon's Lease traffic counters so far: API requests by verb, watch restarts by reason, watch events by type. */
async function counters(target: Target): Promise<Pick<SoakDaemon, "apiRequests" | "watchRestarts" | "watchEvents">> {
  const text = await scrapeMetrics(target.metrics);
  return {
    apiRequests: countersBy(text, "msync_api_requests_total", "verb"),
    watchRestarts: countersBy(text, "msync_watch_restarts_total", "reason"),
    watchEvents: countersBy(text, "msync_watch_events_total", "type"),
  };
}

/** One reading of a daemon: /proc first, so the scrape's own connection is not among the descriptors counted. */
async function read(target: Target, t0: number): Promise<SoakSample> {
  const pid = target.daemon.pid;
  const tS = (performance.now() - t0) / 1000;
  const rss = rssBytes(pid);
  const fds = fdCount(pid);
  const text = await scrapeMetrics(target.metrics);
  return {
    tS,
    rssBytes: rss,
    heapUsedBytes: metricValue(text, "nodejs_heap_size_used_bytes"),
    heapTotalBytes: metricValue(text, "nodejs_heap_size_total_bytes"),
    externalBytes: metricValue(text, "nodejs_external_memory_bytes"),
    fds,
    activeHandles: metricValue(text, "nodejs_active_handles_total"),
    locksHeld: metricValue(text, "msync_locks_held"),
    electionsLed: metricValue(text, "msync_elections_led"),
    waiters: metricValue(text, "msync_waiters"),
  };
}
