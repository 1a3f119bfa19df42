// What the holds of a read-write lock loop tell, across processes (each hold
// stamped as holds.ts describes, with when it was asked for and whether it was
// exclusive): how fast a waiting writer gets in once the last holder before it
// lets go, how fast the waiters behind a writer get in once it lets go, and
// whether an exclusive hold ever overlapped another hold.
import { type Hold, mergeHolds } from "./holds.js";
import { type Summary, summarize } from "./stats.js";

export interface RWHoldsAnalysis {
  shared: number;
  exclusive: number;
  /**
   * Into an exclusive hold, ms: the last release that began before a writer's acquisition returned → that
   * acquisition, for the writers that had already asked when that release began (the others did not wait).
   */
  toExclusive: Summary;
  /** Out of an exclusive hold, ms: its release began → the first acquisition, by anyone who had asked by then. */
  fromExclusive: Summary;
  /** Times an exclusive hold overlapped another hold, shared or exclusive: 0 if the recipe is safe. */
  overlaps: number;
  /** The most shared holds open at once. */
  maxShared: number;
  /** Time inside the release call, ms, both modes. */
  release: Summary;
}

interface ModedHold extends Hold {
  exclusive: boolean;
}

/** `holds`, `asked` as analyzeHolds takes them; `modes[p]` has one entry per hold of process p, 1 for exclusive. */
export function analyzeRWHolds(
  holds: ReadonlyArray<readonly number[]>,
  asked: ReadonlyArray<readonly number[]>,
  modes: ReadonlyArray<readonly number[]>,
): RWHoldsAnalysis {
  const flatModes = modes.flat();
  const all: ModedHold[] = mergeHolds(holds, asked).map((h, i) => ({ ...h, exclusive: flatModes[i] === 1 }));
  if (flatModes.length !== all.length) throw new Error(`${flatModes.length} modes for ${all.length} holds`);
  const writers = all.filter((h) => h.exclusive);
  const releases = all.map((h) => h.releasing).sort((a, b) => a - b);
  const byAcquired = [...all].sort((a, b) => a.acquired - b.acquired);

  const toExclusive: number[] = [];
  for (const w of writers) {
    const before = releases[countAtOrBelow(releases.length, (i) => releases[i]!, w.acquired) - 1];
    if (before !== undefined && w.asked < before) toExclusive.push((w.acquired - before) / 1000);
  }
  const fromExclusive: number[] = [];
  for (const w of writers) {
    const after = countAtOrBelow(byAcquired.length, (i) => byAcquired[i]!.acquired, w.releasing);
    for (let i = after; i < byAcquired.length; i++) {
      const next = byAcquired[i]!;
      if (next.asked >= w.releasing) continue;
      fromExclusive.push((next.acquired - w.releasing) / 1000);
      break;
    }
  }

  // Sweep over the hold boundaries; at equal times a release counts first (the stamps are µs apart at best).
  const edges = all.flatMap((h) => [
    [h.acquired, 1, h.exclusive],
    [h.releasing, -1, h.exclusive],
  ]) as Array<[number, number, boolean]>;
  edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let shared = 0;
  let exclusive = 0;
  let overlaps = 0;
  let maxShared = 0;
  for (const [, delta, isExclusive] of edges) {
    if (isExclusive) exclusive += delta;
    else shared += delta;
    if (delta > 0 && exclusive > 0 && (shared > 0 || exclusive > 1)) overlaps++;
    maxShared = Math.max(maxShared, shared);
  }
  return {
    shared: all.length - writers.length,
    exclusive: writers.length,
    toExclusive: summarize(toExclusive),
    fromExclusive: summarize(fromExclusive),
    overlaps,
    maxShared,
    release: summarize(all.map((h) => (h.released - h.releasing) / 1000)),
  };
}

/** How many of the first `length` values, ascending (value i is `at(i)`), are at most `t`. */
function countAtOrBelow(length: number, at: (i: number) => number, t: number): number {
  let lo = 0;
  let hi = length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (at(mid) <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
