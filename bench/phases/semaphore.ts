// Hot semaphore: 16 lockers on 2 processes share a semaphore of N permits,
// each taking a permit, keeping it for the hold time and giving it back, in a
// loop, for a fixed time. Ours on two daemons against the API server, Curator's
// InterProcessSemaphoreV2 on ZooKeeper; for both, the handoffs come from the
// holds each process stamps (bench/lib/holds.ts).
import { fileURLToPath } from "node:url";
import type { BenchContext } from "../lib/context.js";
import { analyzeHolds } from "../lib/holds.js";
import type { SemaphoreRow } from "../lib/results.js";
import { cdfSketch } from "../lib/stats.js";
import { holdAppsOnTwoDaemons } from "./hold-apps.js";
import { curatorLoop } from "./hot.js";

const PERMIT_LOOP = fileURLToPath(new URL("../apps/permit-loop.js", import.meta.url));

/** Points kept of each run's handoff samples for the report's CDF: enough for the plot, a few KiB of results.json. */
const CDF_POINTS = 400;

export type SemaphoreMeasure = Omit<SemaphoreRow, "system">;

/**
 * Ours: two daemons, each with an app process of `hotClientsPerDaemon` clients looping AcquirePermit, a hold
 * of `holdMs`, and ReleasePermit on one semaphore of `semaphorePermits` permits (bench/phases/hold-apps.ts).
 */
export async function semaphoreOurs(ctx: BenchContext, holdMs: number): Promise<SemaphoreMeasure> {
  const { semaphorePermits } = ctx.params;
  const run = await holdAppsOnTwoDaemons(ctx, "semaphore", PERMIT_LOOP, semaphorePermits, holdMs);
  const { summaries, seconds } = run;
  const tokens = summaries.flatMap((s) => s.tokens as number[]);
  const holds = analyzeHolds(
    summaries.map((s) => s.holds as number[]),
    semaphorePermits,
    summaries.map((s) => s.asked as number[]),
  ); // the report flags maxConcurrent above permits
  return {
    sessions: run.sessions,
    processes: run.processes,
    durationS: seconds,
    acquired: tokens.length,
    perSecond: tokens.length / seconds,
    permits: semaphorePermits,
    holdMs,
    tokensUnique: new Set(tokens).size === tokens.length,
    daemonCpuPercent: run.daemonCpuPercent,
    handoff: holds.handoff,
    crossHandoff: holds.crossHandoff,
    crossHandoffCdf: cdfSketch(holds.crossHandoffMs, CDF_POINTS),
    waitedShare: holds.waitedShare,
    release: holds.release,
    maxConcurrent: holds.maxConcurrent,
    crossProcessHandoffs: holds.crossProcess,
    leaseRequests: run.leaseRequests,
  };
}

/** Curator: the InterProcessSemaphoreV2 run of the hot phase (two processes, a ZooKeeper session per locker). */
export async function semaphoreCurator(ctx: BenchContext, holdMs: number): Promise<SemaphoreMeasure> {
  const { row, holds } = await curatorLoop(ctx, "semaphore", holdMs);
  return { ...row, crossHandoffCdf: cdfSketch(holds.crossHandoffMs, CDF_POINTS) };
}
