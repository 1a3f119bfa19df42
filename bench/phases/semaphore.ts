// Hot semaphore: 16 lockers on 2 processes share a semaphore of N permits,
// each taking a permit, keeping it for the hold time and giving it back, in a
// loop, for a fixed time. Ours on two daemons against the API server, Curator's
// InterProcessSemaphoreV2 on ZooKeeper; for both, the handoffs come from the
// holds each process stamps (bench/lib/holds.ts).
import { fileURLToPath } from "node:url";
import { type BenchContext, diffCounts } from "../lib/context.js";
import { analyzeHolds } from "../lib/holds.js";
import { PeerProcess } from "../lib/peer.js";
import { CpuMeter } from "../lib/proc.js";
import type { SemaphoreRow } from "../lib/results.js";
import { cdfSketch } from "../lib/stats.js";
import { curatorLoop, race } from "./hot.js";

const PERMIT_LOOP = fileURLToPath(new URL("../apps/permit-loop.js", import.meta.url));

/** Points kept of each run's handoff samples for the report's CDF: enough for the plot, a few KiB of results.json. */
const CDF_POINTS = 400;

export type SemaphoreMeasure = Omit<SemaphoreRow, "system">;

/**
 * Ours: two daemons, each with an app process of `hotClientsPerDaemon` clients looping AcquirePermit, a hold
 * of `holdMs`, and ReleasePermit on one semaphore of `semaphorePermits` permits. The API server's Lease
 * requests are read just before "go" and after both summaries: the grants' cost, by verb.
 */
export async function semaphoreOurs(ctx: BenchContext, holdMs: number): Promise<SemaphoreMeasure> {
  const { hotDurationMs, hotClientsPerDaemon, semaphorePermits } = ctx.params;
  const namespace = await ctx.newNamespace("semaphore");
  const daemons = [await ctx.startDaemon(namespace, "semaphore-a"), await ctx.startDaemon(namespace, "semaphore-b")];
  const apps = daemons.map((d, i) =>
    PeerProcess.spawn(`permit-loop ${i}`, process.execPath, [
      PERMIT_LOOP,
      d.address,
      String(hotClientsPerDaemon),
      "hot",
      String(semaphorePermits),
      String(holdMs),
      String(hotDurationMs),
      `app${i}`,
    ]),
  );
  try {
    let before = await ctx.leaseRequests();
    let meters: CpuMeter[] = [];
    const summaries = await race(apps, hotDurationMs, "ready", async () => {
      before = await ctx.leaseRequests();
      meters = daemons.map((d) => new CpuMeter(d.pid));
    });
    const cpu = meters.reduce((sum, m) => sum + m.percent(), 0);
    const byVerb = diffCounts(before, await ctx.leaseRequests());
    const failures = summaries.reduce((sum, s) => sum + Number(s.failures), 0);
    if (failures > 0) throw new Error(`${failures} semaphore calls failed`);
    const lost = summaries.reduce((sum, s) => sum + Number(s.lost), 0);
    if (lost > 0) throw new Error(`${lost} permits were lost while held`);
    const tokens = summaries.flatMap((s) => s.tokens as number[]);
    if (tokens.length === 0) throw new Error("no permit was granted");
    const holds = analyzeHolds(
      summaries.map((s) => s.holds as number[]),
      semaphorePermits,
      summaries.map((s) => s.asked as number[]),
    ); // the report flags maxConcurrent above permits
    const seconds = Math.max(...summaries.map((s) => Number(s.elapsedMs))) / 1000;
    return {
      sessions: daemons.length * hotClientsPerDaemon,
      processes: daemons.length,
      durationS: seconds,
      acquired: tokens.length,
      perSecond: tokens.length / seconds,
      permits: semaphorePermits,
      holdMs,
      tokensUnique: new Set(tokens).size === tokens.length,
      daemonCpuPercent: cpu,
      handoff: holds.handoff,
      crossHandoff: holds.crossHandoff,
      crossHandoffCdf: cdfSketch(holds.crossHandoffMs, CDF_POINTS),
      waitedShare: holds.waitedShare,
      release: holds.release,
      maxConcurrent: holds.maxConcurrent,
      crossProcessHandoffs: holds.crossProcess,
      leaseRequests: byVerb,
    };
  } finally {
    await Promise.all(apps.map((a) => a.stop(5_000, "SIGKILL")));
    await Promise.all(daemons.map((d) => d.stop()));
  }
}

/** Curator: the InterProcessSemaphoreV2 run of the hot phase (two processes, a ZooKeeper session per locker). */
export async function semaphoreCurator(ctx: BenchContext, holdMs: number): Promise<SemaphoreMeasure> {
  const { row, holds } = await curatorLoop(ctx, "semaphore", holdMs);
  return { ...row, crossHandoffCdf: cdfSketch(holds.crossHandoffMs, CDF_POINTS) };
}
