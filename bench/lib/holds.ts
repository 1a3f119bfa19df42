// What the holds of a lock or semaphore loop tell, across processes: every
// hold is stamped (CLOCK_MONOTONIC, µs) when acquire returned, when release
// began and when it returned, in the process that held it.
import { type Summary, summarize } from "./stats.js";

export interface HoldsAnalysis {
  acquisitions: number;
  /**
   * A release → the acquisition it made room for, in ms: with `permits` permits
   * and holders always waiting, the (permits + k)-th acquisition in time waits
   * for the k-th release (both counted from 0 in time order). Never negative
   * unless more than `permits` were held at once.
   */
  handoff: Summary;
  /** The most holds (acquire returned, release not yet begun) at any one time: at most `permits` if the recipe is safe. */
  maxConcurrent: number;
  /** Handoffs whose release and acquisition were in different processes. */
  crossProcess: number;
  /** Time inside the release call, ms. */
  release: Summary;
}

interface Hold {
  process: number;
  acquired: number;
  releasing: number;
  released: number;
}

/** `holds[p]` is process p's flat list [acquired, releasing, released, acquired, ...] in µs. */
export function analyzeHolds(holds: ReadonlyArray<readonly number[]>, permits: number): HoldsAnalysis {
  const all: Hold[] = [];
  holds.forEach((flat, process) => {
    if (flat.length % 3 !== 0) throw new Error(`holds of process ${process}: ${flat.length} values, not triples`);
    for (let i = 0; i < flat.length; i += 3) all.push({ process, acquired: flat[i]!, releasing: flat[i + 1]!, released: flat[i + 2]! });
  });
  const byAcquired = [...all].sort((a, b) => a.acquired - b.acquired);
  const byRelease = [...all].sort((a, b) => a.releasing - b.releasing);
  const handoffMs: number[] = [];
  let crossProcess = 0;
  for (let k = 0; k < byRelease.length && permits + k < byAcquired.length; k++) {
    const next = byAcquired[permits + k]!;
    handoffMs.push((next.acquired - byRelease[k]!.releasing) / 1000);
    if (next.process !== byRelease[k]!.process) crossProcess++;
  }
  // Sweep over the hold boundaries; at equal times a release counts first (the stamps are µs apart at best).
  const edges = all.flatMap((h) => [
    [h.acquired, 1],
    [h.releasing, -1],
  ]) as Array<[number, number]>;
  edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let open = 0;
  let maxConcurrent = 0;
  for (const [, delta] of edges) {
    open += delta;
    maxConcurrent = Math.max(maxConcurrent, open);
  }
  return {
    acquisitions: all.length,
    handoff: summarize(handoffMs),
    maxConcurrent,
    crossProcess,
    release: summarize(all.map((h) => (h.released - h.releasing) / 1000)),
  };
}
