// Read-heavy read-write lock: 16 lockers on 2 processes share one read-write
// lock; each client's every 10th acquisition is exclusive and the others
// shared, each kept for a short hold and given back, in a loop, for a fixed
// time. Ours on two daemons against the API server (the semaphore phase's
// setup, bench/phases/hold-apps.ts), Curator's InterProcessReadWriteLock on
// ZooKeeper; for both, the writers' handoffs and the safety check come from
// the holds each process stamps (bench/lib/rw-holds.ts).
import { fileURLToPath } from "node:url";
import { type BenchContext, totalCount } from "../lib/context.js";
import type { RWLockRow } from "../lib/results.js";
import { analyzeRWHolds } from "../lib/rw-holds.js";
import { holdAppsOnTwoDaemons } from "./hold-apps.js";
import { curatorRace } from "./hot.js";

const RWLOCK_LOOP = fileURLToPath(new URL("../apps/rwlock-loop.js", import.meta.url));

export type RWLockMeasure = Omit<RWLockRow, "system">;

/** What both systems' rows share: the load, the rates and what the holds tell. */
function fromHolds(
  ctx: BenchContext,
  summaries: ReadonlyArray<Record<string, unknown>>,
  shape: { sessions: number; processes: number; seconds: number },
): RWLockMeasure {
  const { rwlockHoldMs, rwlockExclusiveEvery } = ctx.params;
  const holds = analyzeRWHolds(
    summaries.map((s) => s.holds as number[]),
    summaries.map((s) => s.asked as number[]),
    summaries.map((s) => s.modes as number[]),
  ); // the report flags overlaps above 0
  if (holds.shared + holds.exclusive === 0) throw new Error("no read-write lock hold was granted");
  const { seconds } = shape;
  return {
    sessions: shape.sessions,
    processes: shape.processes,
    durationS: seconds,
    holdMs: rwlockHoldMs,
    exclusiveEvery: rwlockExclusiveEvery,
    shared: holds.shared,
    exclusive: holds.exclusive,
    sharedPerSecond: holds.shared / seconds,
    exclusivePerSecond: holds.exclusive / seconds,
    toExclusive: holds.toExclusive,
    fromExclusive: holds.fromExclusive,
    overlaps: holds.overlaps,
    maxShared: holds.maxShared,
    release: holds.release,
  };
}

/** Ours: two daemons, each with an app process of `hotClientsPerDaemon` clients looping AcquireRWLock, the hold, ReleaseRWLock. */
export async function rwlockOurs(ctx: BenchContext): Promise<RWLockMeasure> {
  const { rwlockHoldMs, rwlockExclusiveEvery } = ctx.params;
  const run = await holdAppsOnTwoDaemons(ctx, "rwlock", RWLOCK_LOOP, rwlockExclusiveEvery, rwlockHoldMs);
  const row = fromHolds(ctx, run.summaries, run);
  const modes = run.summaries.flatMap((s) => s.modes as number[]);
  const writerTokens = run.summaries.flatMap((s) => s.tokens as number[]).filter((_, i) => modes[i] === 1);
  return {
    ...row,
    exclusiveTokensUnique: new Set(writerTokens).size === writerTokens.length,
    leaseRequests: run.leaseRequests,
    daemonCpuPercent: run.daemonCpuPercent,
  };
}

/** Curator: two curator-peer processes, each with `hotClientsPerDaemon` sessions on one InterProcessReadWriteLock. */
export async function rwlockCurator(ctx: BenchContext): Promise<RWLockMeasure> {
  const { rwlockHoldMs, rwlockExclusiveEvery } = ctx.params;
  const run = await curatorRace(ctx, "rwlock", [`--exclusive-every=${rwlockExclusiveEvery}`, `--hold=${rwlockHoldMs}ms`]);
  const row = fromHolds(ctx, run.summaries, run);
  const holds = row.shared + row.exclusive;
  return {
    ...row,
    zkReadsPerHold: run.zk.reads / holds,
    zkWritesPerHold: run.zk.writes / holds,
    zkPacketsReceivedPerHold: run.zk.packetsReceived / holds,
    zkPacketsSentPerHold: run.zk.packetsSent / holds,
    serverCpuPercent: run.serverCpuPercent,
  };
}

/** One line for the log: the rates, the writers' handoffs and the cost per hold. */
export function describeRWLock(row: RWLockMeasure): string {
  const holds = row.shared + row.exclusive;
  const ms = (v: number) => (Number.isFinite(v) ? `${v.toFixed(1)} ms` : "n/a");
  const cost = row.leaseRequests
    ? `${(totalCount(row.leaseRequests) / holds).toFixed(2)} API-server Lease requests per hold`
    : `${((row.zkReadsPerHold ?? NaN) + (row.zkWritesPerHold ?? NaN)).toFixed(1)} ZooKeeper requests per hold`;
  return (
    `${row.shared} shared (${row.sharedPerSecond.toFixed(1)}/s), ${row.exclusive} exclusive (${row.exclusivePerSecond.toFixed(1)}/s) ` +
    `in ${row.durationS.toFixed(1)} s; into exclusive median ${ms(row.toExclusive.median)}, p99 ${ms(row.toExclusive.p99)} ` +
    `(n=${row.toExclusive.n}); out of exclusive median ${ms(row.fromExclusive.median)}; overlaps ${row.overlaps}; ${cost}`
  );
}
