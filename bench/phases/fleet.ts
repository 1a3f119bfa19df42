// Fleet: what a sidecar pays for Leases it never uses. Many daemons share one
// namespace; daemon 0's clients hold many locks, every other daemon's clients
// use one or two names of their own. Over a fixed window each daemon's own
// counters (watch events received, API requests), its CPU and RSS, and the API
// server's watch events for Leases, all read before and after the window.
import { type Campaign, SyncClient } from "metaparticle-sync-client";
import { sumCounter } from "../../test/controlplane/controlplane.js";
import { sleep, within } from "../lib/clock.js";
import { type BenchContext, LEASE_VERBS, type VerbCounts, diffCounts } from "../lib/context.js";
import type { OurDaemon } from "../lib/daemon.js";
import { countersBy, diffBy, scrapeMetrics } from "../lib/daemon-metrics.js";
import { readFleetBefore } from "../lib/fleet-before.js";
import { LockStream } from "../lib/lock-stream.js";
import { cpuMs, freePort, rssBytes } from "../lib/proc.js";
import type { FleetDaemonRow, FleetRole, Results } from "../lib/results.js";

/** Client channels daemon 0's lock holders are spread over. */
const CHANNELS = 10;
/** Daemons started at once (start-up is not measured here). */
const START_BATCH = 4;
/** Starts of one daemon: a port found free can be taken by another process before the daemon binds it. */
const START_ATTEMPTS = 3;
const LEASES = { group: "coordination.k8s.io", resource: "leases" };

interface Member {
  readonly daemon: OurDaemon;
  readonly metricsAddress: string;
  readonly role: FleetRole;
  readonly uses: string;
}

const lockName = (i: number) => `fleet-lock-${i}`;
const electionName = (i: number) => `fleet-election-${i}`;

/**
 * The small daemons (1, 2, ...) take three roles in turn. A holder's client
 * holds its own lock; a leader's client leads its own election; a waiter's
 * clients wait on the lock of the holder two before it and follow the election
 * of the leader just before it. So every name is used by one or two daemons.
 */
function roleOf(i: number): Exclude<FleetRole, "many-locks"> {
  return (["holder", "leader", "waiter"] as const)[(i - 1) % 3]!;
}

function usesOf(i: number, locks: number): string {
  switch (i === 0 ? "many-locks" : roleOf(i)) {
    case "many-locks":
      return `holds ${locks} locks (fleet-many-0 … fleet-many-${locks - 1}), one Acquire stream each`;
    case "holder":
      return `holds lock ${lockName(i)}`;
    case "leader":
      return `leads election ${electionName(i)}`;
    default:
      return `waits on lock ${lockName(i - 2)} and follows election ${electionName(i - 1)}`;
  }
}

/** One reading of everything the window is the difference of. */
interface Reading {
  readonly daemons: ReadonlyArray<Record<"watchEvents" | "watchRestarts" | "apiRequests", Record<string, number>>>;
  readonly apiServerText: string;
}

/** apiserver_request_total{resource="leases"} by verb, from a scrape already taken. */
function leaseRequests(apiServerText: string): VerbCounts {
  return Object.fromEntries(
    LEASE_VERBS.map((verb) => [verb, sumCounter(apiServerText, "apiserver_request_total", { resource: "leases", verb })]),
  ) as VerbCounts;
}

async function read(ctx: BenchContext, members: readonly Member[]): Promise<Reading> {
  const texts = await within(Promise.all(members.map((m) => scrapeMetrics(m.metricsAddress))), 15_000, "scraping every daemon's /metrics");
  return {
    daemons: texts.map((text) => ({
      watchEvents: countersBy(text, "msync_watch_events_total", "type"),
      watchRestarts: countersBy(text, "msync_watch_restarts_total", "reason"),
      apiRequests: countersBy(text, "msync_api_requests_total", "verb"),
    })),
    apiServerText: await ctx.cp.metrics(),
  };
}

export async function fleetOurs(ctx: BenchContext): Promise<Pick<Results, "fleet" | "fleetBefore">> {
  const { fleetDaemons, fleetLocks, fleetSettleMs, fleetWindowMs } = ctx.params;
  if (fleetDaemons < 4) throw new Error("the fleet needs daemon 0 and at least one holder, leader and waiter");
  const namespace = await ctx.newNamespace("fleet");
  const members: Member[] = [];
  const channels: SyncClient[] = [];
  const streams: LockStream[] = [];
  const waiting: LockStream[] = [];
  const campaigns: Campaign[] = [];
  const following: Campaign[] = [];
  /** Leaders deposed (or followers elected, which means the same). */
  let deposed = 0;
  try {
    // Start the fleet a few at a time; keep every daemon that started, so the finally stops it.
    for (let first = 0; first < fleetDaemons; first += START_BATCH) {
      const batch = Array.from({ length: Math.min(START_BATCH, fleetDaemons - first) }, (_, j) => first + j);
      const started = await Promise.allSettled(
        batch.map(async (i): Promise<Member> => {
          for (let attempt = 1; ; attempt++) {
            const metricsAddress = `127.0.0.1:${await freePort()}`;
            try {
              const daemon = await ctx.startDaemon(namespace, `fleet-${i}`, [`--metrics-listen=${metricsAddress}`]);
              return { daemon, metricsAddress, role: i === 0 ? "many-locks" : roleOf(i), uses: usesOf(i, fleetLocks) };
            } catch (err) {
              if (attempt >= START_ATTEMPTS || !String(err).includes("EADDRINUSE")) throw err;
              ctx.log(`fleet: daemon ${i} found its port taken; starting it again`);
            }
          }
        }),
      );
      for (const s of started) if (s.status === "fulfilled") members.push(s.value);
      const failed = started.find((s) => s.status === "rejected");
      if (failed) throw failed.reason;
    }
    ctx.log(`fleet: ${fleetDaemons} daemons serving`);

    // Daemon 0's clients take their locks, at most 50 acquisitions in flight.
    const many = members[0]!.daemon;
    channels.push(...Array.from({ length: CHANNELS }, () => new SyncClient({ address: many.address })));
    for (let i = 0; i < fleetLocks; i += 50) {
      const batch = Array.from({ length: Math.min(50, fleetLocks - i) }, (_, j) => {
        const stream = new LockStream(channels[(i + j) % CHANNELS]!, `fleet-many-${i + j}`, `many-${i + j}`);
        streams.push(stream);
        return stream.acquired;
      });
      await within(Promise.all(batch), 120_000, `daemon 0 acquiring locks ${i}..${i + batch.length - 1}`);
    }

    // Holders and leaders first, so each waiter finds its lock held and its election led.
    const ready: Array<Promise<unknown>> = [];
    for (let i = 1; i < fleetDaemons; i++) {
      const { daemon, role } = members[i]!;
      if (role === "holder") {
        const stream = new LockStream(daemon.client, lockName(i), `app-${i}`);
        streams.push(stream);
        ready.push(stream.acquired);
      } else if (role === "leader") {
        let elected!: () => void;
        ready.push(new Promise<void>((resolve) => (elected = resolve)));
        const campaign = daemon.client.campaign(electionName(i), {
          candidate: `app-${i}`,
          onElected: () => elected(),
          onDeposed: () => (deposed += 1),
        });
        campaign.done.catch(() => {});
        campaigns.push(campaign);
      }
    }
    await within(Promise.all(ready), 60_000, "the small holders and leaders taking their names");
    const heard: Array<Promise<void>> = [];
    for (let i = 1; i < fleetDaemons; i++) {
      const { daemon, role } = members[i]!;
      if (role !== "waiter") continue;
      waiting.push(new LockStream(daemon.client, lockName(i - 2), `app-${i}`));
      let heardLeader!: () => void;
      heard.push(new Promise<void>((resolve) => (heardLeader = resolve)));
      const campaign = daemon.client.campaign(electionName(i - 1), {
        candidate: `app-${i}`,
        onLeaderChanged: (leader) => (leader.leader === `app-${i - 1}` ? heardLeader() : undefined),
        onElected: () => (deposed += 1), // a follower elected means its leader lost the term
      });
      campaign.done.catch(() => {});
      following.push(campaign);
    }
    await within(Promise.all(heard), 60_000, "the waiters' candidates hearing their leaders");
    ctx.log(`fleet: ${fleetLocks} locks on daemon 0, ${fleetDaemons - 1} small daemons busy; settling ${fleetSettleMs} ms`);
    await sleep(fleetSettleMs);

    // The window: the same readings, daemons first, before and after it; CPU is read just inside, so the scrapes are not counted.
    const lostBefore = streams.reduce((n, s) => n + s.losses.length, 0) + deposed;
    const apiServerPid = ctx.cp.pids().apiServer;
    const before = await read(ctx, members);
    const cpuBefore = members.map((m) => cpuMs(m.daemon.pid));
    const apiServerCpuBefore = apiServerPid === undefined ? NaN : cpuMs(apiServerPid);
    const t0 = performance.now();
    await sleep(fleetWindowMs);
    const cpuAfter = members.map((m) => cpuMs(m.daemon.pid));
    const apiServerCpuAfter = apiServerPid === undefined ? NaN : cpuMs(apiServerPid);
    const wallMs = performance.now() - t0;
    const rss = members.map((m) => rssBytes(m.daemon.pid));
    const after = await read(ctx, members);
    const watchesOpen = await ctx.leaseWatchesOpen();
    const lostInWindow = streams.reduce((n, s) => n + s.losses.length, 0) + deposed - lostBefore;

    const acquiredByWaiter = waiting.find((w) => w.acquiredAt !== undefined);
    if (acquiredByWaiter) throw new Error("a waiter acquired its lock while the holder held it");
    const dead = members.find((m) => !m.daemon.alive);
    if (dead) throw new Error(`daemon ${dead.daemon.identity} exited during the window:\n${dead.daemon.stderr()}`);

    const fleet: FleetDaemonRow[] = members.map((m, i) => ({
      role: m.role,
      uses: m.uses,
      watchEvents: diffBy(before.daemons[i]!.watchEvents, after.daemons[i]!.watchEvents),
      watchRestarts: diffBy(before.daemons[i]!.watchRestarts, after.daemons[i]!.watchRestarts),
      apiRequests: diffBy(before.daemons[i]!.apiRequests, after.daemons[i]!.apiRequests),
      cpuPercent: (100 * (cpuAfter[i]! - cpuBefore[i]!)) / wallMs,
      rssBytes: rss[i]!,
    }));
    const apiServerCounter = (metric: string, labels: Record<string, string> = LEASES) =>
      sumCounter(after.apiServerText, metric, labels) - sumCounter(before.apiServerText, metric, labels);
    const small = fleetDaemons - 1;
    return {
      fleet: {
        daemons: fleetDaemons,
        locks: fleetLocks,
        settleS: fleetSettleMs / 1000,
        windowS: wallMs / 1000,
        fleet,
        apiServer: {
          watchEvents: apiServerCounter("apiserver_watch_events_total"),
          watchEventBytes: apiServerCounter("apiserver_watch_events_sizes_sum"),
          terminatedWatchers: apiServerCounter("apiserver_terminated_watchers_total", { resource: "leases" }),
          watchesOpen,
          byVerb: diffCounts(leaseRequests(before.apiServerText), leaseRequests(after.apiServerText)),
          cpuPercent: (100 * (apiServerCpuAfter - apiServerCpuBefore)) / wallMs,
        },
        lostInWindow,
        how:
          `${fleetDaemons} daemons in one namespace, default 15 s lease. Daemon 0: ${fleetLocks} locks held by its clients. ` +
          `The other ${small}, in turn: a holder (its client holds one lock), a leader (its client leads one election), ` +
          "a waiter (one client waits on the lock of the holder two before it, one follows the election of the leader before it)",
      },
      fleetBefore: readFleetBefore()[ctx.quick ? "quick" : "full"],
    };
  } finally {
    for (const w of waiting) w.cancel();
    for (const c of following) c.close();
    for (const c of campaigns) c.close();
    for (const s of streams) s.cancel();
    for (const c of channels) c.close();
    await Promise.all(members.map((m) => m.daemon.stop(20_000)));
  }
}
