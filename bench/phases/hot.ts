// Hot lock throughput: 16 lockers on 2 processes contend for one lock (or a
// semaphore's permits) and release it at once, for a fixed time; handoffs per
// second.
import { fileURLToPath } from "node:url";
import { within } from "../lib/clock.js";
import type { BenchContext } from "../lib/context.js";
import { PeerProcess } from "../lib/peer.js";
import { CpuMeter } from "../lib/proc.js";
import { type HoldsAnalysis, analyzeHolds } from "../lib/holds.js";
import { type ZooKeeperCounts, assertSameClock } from "../lib/zookeeper.js";
import type { HotRow } from "../lib/results.js";
import { WriteMeter } from "./handoff.js";

const LOCK_LOOP = fileURLToPath(new URL("../apps/lock-loop.js", import.meta.url));

/**
 * Waits until every peer is ready, runs `beforeGo` (to read counters with nothing but the loop ahead), sends
 * "go" to all and resolves with their summaries, each within a minute past the loop's duration.
 */
export async function race(
  peers: PeerProcess[],
  durationMs: number,
  readyEvent = "started",
  beforeGo: () => Promise<void> = async () => {},
): Promise<Array<Record<string, unknown>>> {
  await Promise.all(peers.map((p) => p.waitForEvent(readyEvent, 60_000)));
  await beforeGo();
  for (const p of peers) p.send("go");
  return Promise.all(peers.map((p) => within(p.waitForEvent("summary", durationMs + 60_000), durationMs + 61_000, `${p.label} summary`)));
}

/** Ours: two daemons, each with an app process of `hotClientsPerDaemon` clients, asking fair or non-fair. */
export async function hotOurs(ctx: BenchContext, fair = true): Promise<HotRow> {
  const { hotDurationMs, hotClientsPerDaemon } = ctx.params;
  const namespace = await ctx.newNamespace(fair ? "hot" : "hot-non-fair");
  const daemons = [await ctx.startDaemon(namespace, "hot-a"), await ctx.startDaemon(namespace, "hot-b")];
  const apps = daemons.map((d, i) =>
    PeerProcess.spawn(`lock-loop ${i}`, process.execPath, [
      LOCK_LOOP,
      d.address,
      String(hotClientsPerDaemon),
      "hot",
      String(hotDurationMs),
      `app${i}`,
      ...(fair ? [] : ["non-fair"]),
    ]),
  );
  try {
    const meters = daemons.map((d) => new CpuMeter(d.pid));
    const writes = new WriteMeter(ctx);
    await writes.start();
    const summaries = await race(apps, hotDurationMs, "ready");
    const cpu = meters.reduce((sum, m) => sum + m.percent(), 0);
    const cpuMs = meters.reduce((sum, m) => sum + m.ms(), 0);
    const failures = summaries.reduce((sum, s) => sum + Number(s.failures), 0);
    if (failures > 0) throw new Error(`${failures} lock calls failed`);
    const tokens = summaries.flatMap((s) => s.tokens as number[]);
    const seconds = Math.max(...summaries.map((s) => Number(s.elapsedMs))) / 1000;
    const { writesPerRound } = await writes.stop(tokens.length);
    // In token order, an acquisition by the other app's daemon than the one before is a handoff between daemons.
    const app = new Map(summaries.flatMap((s, i) => (s.tokens as number[]).map((token) => [token, i] as const)));
    const order = [...app.keys()].sort((x, y) => x - y);
    const crossDaemon = order.filter((token, i) => i > 0 && app.get(token) !== app.get(order[i - 1]!)).length;
    return {
      sessions: daemons.length * hotClientsPerDaemon,
      processes: 2,
      durationS: seconds,
      acquired: tokens.length,
      perSecond: tokens.length / seconds,
      tokensUnique: new Set(tokens).size === tokens.length,
      daemonCpuPercent: cpu,
      daemonCpuMsPerAcquisition: cpuMs / tokens.length / daemons.length,
      writesPerAcquisition: writesPerRound,
      crossDaemonHandoffs: crossDaemon,
    };
  } finally {
    await Promise.all(apps.map((a) => a.stop(5_000, "SIGKILL")));
    await Promise.all(daemons.map((d) => d.stop()));
  }
}

/** etcd: two processes, each with `hotClientsPerDaemon` sessions and concurrency.Mutex on one prefix. */
export async function hotEtcd(ctx: BenchContext): Promise<HotRow> {
  const { hotDurationMs, hotClientsPerDaemon } = ctx.params;
  const name = `hot-${Date.now()}`;
  const peers = [0, 1].map((i) =>
    ctx.etcd(name, `mutex-${i}`, ["--mode=mutex", `--sessions=${hotClientsPerDaemon}`, `--duration=${hotDurationMs}ms`, "--ttl=15"]),
  );
  try {
    const summaries = await race(peers, hotDurationMs);
    const failures = summaries.reduce((sum, s) => sum + Number(s.failures), 0);
    if (failures > 0) throw new Error(`${failures} mutex calls failed`);
    const acquired = summaries.reduce((sum, s) => sum + Number(s.acquired), 0);
    const seconds = Math.max(...summaries.map((s) => Number(s.elapsed_ms))) / 1000;
    return { sessions: 2 * hotClientsPerDaemon, processes: 2, durationS: seconds, acquired, perSecond: acquired / seconds };
  } finally {
    await Promise.all(peers.map((p) => p.stop(5_000)));
  }
}

/**
 * Curator on ZooKeeper: two curator-peer processes, each with `hotClientsPerDaemon` sessions (one ZooKeeper
 * session each) looping an InterProcessMutex, or an InterProcessSemaphoreV2 of `semaphorePermits` leases, each
 * kept `holdMs`.
 * The peers stamp every hold; from them come the handoff latency and the check that no more than the permits
 * were ever held at once. The server's request counters are read before "go" and after both summaries, while
 * every session is still open.
 */
export async function hotCurator(ctx: BenchContext, mode: "mutex" | "semaphore", holdMs = 0): Promise<HotRow> {
  return (await curatorLoop(ctx, mode, holdMs)).row;
}

/** hotCurator's run, with the analysis of the holds it came from (the semaphore phase plots its handoffs). */
export async function curatorLoop(
  ctx: BenchContext,
  mode: "mutex" | "semaphore",
  holdMs: number,
): Promise<{ row: HotRow; holds: HoldsAnalysis }> {
  const permits = mode === "mutex" ? 1 : ctx.params.semaphorePermits;
  const run = await curatorRace(ctx, mode, [`--permits=${permits}`, `--hold=${holdMs}ms`]);
  const { summaries, seconds, acquired, zk } = run;
  const holds = analyzeHolds(
    summaries.map((s) => s.holds as number[]),
    permits,
  ); // the report flags maxConcurrent above permits
  const row: HotRow = {
    sessions: run.sessions,
    processes: run.processes,
    durationS: seconds,
    acquired,
    perSecond: acquired / seconds,
    permits,
    holdMs,
    handoff: holds.handoff,
    crossHandoff: holds.crossHandoff,
    release: holds.release,
    maxConcurrent: holds.maxConcurrent,
    crossProcessHandoffs: holds.crossProcess,
    zkReadsPerAcquisition: zk.reads / acquired,
    zkWritesPerAcquisition: zk.writes / acquired,
    zkPacketsReceivedPerAcquisition: zk.packetsReceived / acquired,
    zkPacketsSentPerAcquisition: zk.packetsSent / acquired,
    serverCpuPercent: run.serverCpuPercent,
  };
  return { row, holds };
}

export interface CuratorRun {
  /** Each peer's summary (bench/peers/curator LockLoop), peer 0's first. */
  summaries: Array<Record<string, unknown>>;
  sessions: number;
  processes: number;
  /** The longer peer's loop, s. */
  seconds: number;
  /** Acquisitions over both peers. */
  acquired: number;
  /** The ZooKeeper server's counters from just before "go" to after both summaries. */
  zk: ZooKeeperCounts;
  serverCpuPercent: number;
}

/**
 * Two curator-peer processes in loop mode `mode` (with `flags` besides the sessions and duration) on a
 * ZooKeeper server of their own, started together; throws if any call failed. The server's counters are read
 * before "go" and after both summaries, while every session is still open.
 */
export async function curatorRace(
  ctx: BenchContext,
  mode: "mutex" | "semaphore" | "rwlock",
  flags: readonly string[],
): Promise<CuratorRun> {
  const { hotDurationMs, hotClientsPerDaemon } = ctx.params;
  return ctx.withZooKeeper(async (zookeeper) => {
    const name = `hot-${Date.now()}`;
    const all = [`--mode=${mode}`, `--sessions=${hotClientsPerDaemon}`, `--duration=${hotDurationMs}ms`, ...flags];
    const peers = [0, 1].map((i) => ctx.curator(name, `${mode}-${i}`, all));
    try {
      for (const started of await Promise.all(peers.map((p) => p.waitForEvent("started", 90_000)))) assertSameClock(started);
      const before = await zookeeper.counts();
      const meter = new CpuMeter(zookeeper.pid);
      const summaries = await race(peers, hotDurationMs);
      const after = await zookeeper.counts();
      const serverCpuPercent = meter.percent();
      for (const p of peers) p.send("exit");
      const failures = summaries.reduce((sum, s) => sum + Number(s.failures), 0);
      if (failures > 0) throw new Error(`${failures} ${mode} calls failed (see the peers' stderr)`);
      return {
        summaries,
        sessions: peers.length * hotClientsPerDaemon,
        processes: peers.length,
        seconds: Math.max(...summaries.map((s) => Number(s.elapsed_ms))) / 1000,
        acquired: summaries.reduce((sum, s) => sum + Number(s.acquired), 0),
        zk: {
          reads: after.reads - before.reads,
          writes: after.writes - before.writes,
          packetsReceived: after.packetsReceived - before.packetsReceived,
          packetsSent: after.packetsSent - before.packetsSent,
        },
        serverCpuPercent,
      };
    } finally {
      await Promise.all(peers.map((p) => p.stop(5_000)));
    }
  });
}
