// What the engine reports as it works, for metrics. Every hook is optional
// and must not throw.
import type { LossReason } from "./claim.js";
import { LEASE_KINDS, type LeaseKind, type StoreErrorReason } from "../store/lease-store.js";

export interface EngineObserver {
  /**
   * A claim was granted the lease. `handoffMs` is the time from this daemon
   * observing the lease free (released, or expired) while the claim waited, or
   * from the claim's arrival if the lease was free already, to its acquiring
   * write succeeding; undefined when the lease was never held.
   */
  acquired?(kind: LeaseKind, handoffMs: number | undefined): void;
  /** A renewal succeeded after `latencyMs`. */
  renewed?(kind: LeaseKind, latencyMs: number): void;
  /** A renewal failed and will be retried until the renew deadline. */
  renewFailed?(kind: LeaseKind, reason: StoreErrorReason | "error"): void;
  /** A holder was told to stop acting. */
  lost?(kind: LeaseKind, reason: LossReason): void;
}

export interface EngineStats {
  readonly held: Record<LeaseKind, number>;
  readonly waiting: Record<LeaseKind, number>;
}

/** Stats of an engine that holds and waits for nothing: 0 for every kind. */
export function noStats(): EngineStats {
  const none = () => Object.fromEntries(LEASE_KINDS.map((kind) => [kind, 0])) as Record<LeaseKind, number>;
  return { held: none(), waiting: none() };
}
