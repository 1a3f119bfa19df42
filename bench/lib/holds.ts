// What the holds of a lock or semaphore loop tell, across processes: every
// hold is stamped (CLOCK_MONOTONIC, µs) when acquire returned, when release
// began and when it returned, in the process that held it; a loop may also
// stamp when each acquisition was asked for.
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
  /** The handoffs whose release and acquisition were in different processes: a release on one until the acquisition on the other. */
  crossHandoff: Summary;
  /** The samples of `crossHandoff`, ms, in time order of the releases. */
  crossHandoffMs: number[];
  /** The most holds (acquire returned, release not yet begun) at any one time: at most `permits` if the recipe is safe. */
  maxConcurrent: number;
  /** Handoffs whose release and acquisition were in different processes. */
  crossProcess: number;
  /**
   * Of the handoffs, the share whose next holder had already asked when the release began, so that the
   * release did hand over to a waiter (0 to 1); undefined when the loops did not stamp their asks, or
   * there was no handoff.
   */
  waitedShare: number | undefined;
  /** Time inside the release call, ms. */
  release: Summary;
}

/** One hold as its process stamped it, µs of CLOCK_MONOTONIC. */
export interface Hold {
  process: number;
  /** When the acquisition was asked for; NaN when not stamped. */
  asked: number;
  acquired: number;
  releasing: number;
  released: number;
}

/**
 * `holds[p]` is process p's flat list [acquired, releasing, released, acquired, ...] in µs. `asked[p]`, if
 * given, has one stamp per hold of process p, in the same order: when that acquisition was asked for.
 */
export function analyzeHolds(
  holds: ReadonlyArray<readonly number[]>,
  permits: number,
  asked?: ReadonlyArray<readonly number[]>,
): HoldsAnalysis {
  const all = mergeHolds(holds, asked);
  const byAcquired = [...all].sort((a, b) => a.acquired - b.acquired);
  const byRelease = [...all].sort((a, b) => a.releasing - b.releasing);
  const handoffMs: number[] = [];
  const crossHandoffMs: number[] = [];
  let waited = 0;
  for (let k = 0; k < byRelease.length && permits + k < byAcquired.length; k++) {
    const next = byAcquired[permits + k]!;
    const released = byRelease[k]!;
    const ms = (next.acquired - released.releasing) / 1000;
    handoffMs.push(ms);
    if (next.process !== released.process) crossHandoffMs.push(ms);
    if (next.asked < released.releasing) waited++;
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
    crossHandoff: summarize(crossHandoffMs),
    crossHandoffMs,
    maxConcurrent,
    crossProcess: crossHandoffMs.length,
    waitedShare: asked && handoffMs.length > 0 ? waited / handoffMs.length : undefined,
    release: summarize(all.map((h) => (h.released - h.releasing) / 1000)),
  };
}

/** Every process's holds in one list (see analyzeHolds for the arguments); throws when a list is malformed. */
export function mergeHolds(holds: ReadonlyArray<readonly number[]>, asked?: ReadonlyArray<readonly number[]>): Hold[] {
  const all: Hold[] = [];
  holds.forEach((flat, process) => {
    if (flat.length % 3 !== 0) throw new Error(`holds of process ${process}: ${flat.length} values, not triples`);
    const asks = asked?.[process];
    if (asked && asks?.length !== flat.length / 3)
      throw new Error(`holds of process ${process}: ${asks?.length ?? 0} asks for ${flat.length / 3} holds`);
    for (let i = 0; i < flat.length; i += 3)
      all.push({ process, asked: asks?.[i / 3] ?? NaN, acquired: flat[i]!, releasing: flat[i + 1]!, released: flat[i + 2]! });
  });
  return all;
}

/**
 * Whether the handoffs paired in a semaphore run of `holdMs` are handoffs to a waiter. With a hold every
 * permit is taken and lockers wait. With none a recipe may never have all its permits taken (Curator's
 * semaphore passes its acquisitions through an internal lock): then only a run whose loops stamped their asks
 * can tell, and its `waitedShare` says how many were.
 */
export function handoffsTimed(holdMs: number, waitedShare: number | undefined): boolean {
  return holdMs > 0 || waitedShare !== undefined;
}
