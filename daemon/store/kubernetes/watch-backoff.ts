// How long the Lease watch waits before trying again after a failure, or
// after a watch the API server closed at once.

/** The first wait, and the wait again after a watch that delivered events or lasted. */
export const MIN_RETRY_MS = 200;
/** The longest wait; doubling stops here. */
export const MAX_RETRY_MS = 5_000;

/** The wait after `ms`, when the next attempt fails too. */
export function nextRetryMs(ms: number): number {
  return Math.min(ms * 2, MAX_RETRY_MS);
}

/**
 * How long to pause for a backoff step of `ms`: between half of it and all of
 * it, at random. An API server restart ends every sidecar's watch at the same
 * moment; without jitter they would all relist at the same moments after it.
 */
export function retryPauseMs(ms: number, random: () => number = Math.random): number {
  return ms / 2 + (random() * ms) / 2;
}
