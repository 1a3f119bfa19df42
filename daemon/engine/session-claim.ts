// A claim held by a stream (Acquire, AcquirePermit): it waits at most its wait
// timeout, reports to the stream's sink, and ends when the stream closes.
import { Claim, type ClaimOptions } from "./claim.js";
import type { Clock } from "./clock.js";
import type { SyncError } from "./errors.js";
import type { AcquireSink } from "./locks.js";

/**
 * Makes the claim of a stream and queues it on `contender`: with
 * `waitTimeoutMs` above 0 the wait ends with `timedOut`'s error, and 0 does
 * not wait at all; `signal` aborting (the stream closed) ends the claim,
 * waiting or held.
 */
export function addSessionClaim(
  contender: { add(claim: Claim): void; end(claim: Claim): Promise<void> },
  options: Omit<ClaimOptions, "mode" | "noWait">,
  waitTimeoutMs: number | undefined,
  sink: AcquireSink,
  signal: AbortSignal,
  clock: Clock,
  timedOut: (waitMs: number) => SyncError,
): Claim {
  let timer: { cancel(): void } | undefined;
  const claim = new Claim(
    { ...options, mode: "session", noWait: waitTimeoutMs === 0 },
    {
      granted: (grant) => {
        timer?.cancel();
        sink.acquired(grant);
      },
      renewed: (validForMs) => sink.renewed(validForMs),
      lost: (reason, message) => sink.lost(reason, message),
      failed: (error) => {
        timer?.cancel();
        sink.failed(error);
      },
    },
  );
  if (waitTimeoutMs !== undefined && waitTimeoutMs > 0) {
    timer = clock.setTimer(waitTimeoutMs, () => {
      if (claim.state !== "waiting") return;
      void contender.end(claim);
      sink.failed(timedOut(waitTimeoutMs));
    });
  }
  signal.addEventListener(
    "abort",
    () => {
      timer?.cancel();
      void contender.end(claim);
    },
    { once: true },
  );
  contender.add(claim);
  return claim;
}
