// What the engine does when a store call fails. One table, consulted by every
// store call the engine makes, so that the same failure is never handled two
// ways (see docs/design.md, "Store failures").
import { type StoreErrorReason, isStoreError } from "../store/lease-store.js";

export type StoreFailureAction =
  /**
   * The lease is not what this daemon last saw (someone wrote it, created it
   * or deleted it meanwhile): read it again, then decide again. Nothing to
   * wait for; repeated conflicts on queue writes back off (see contender.ts).
   */
  | "refresh"
  /**
   * Waiting cannot fix it: the Lease is not ours, RBAC refuses, or the API
   * server rejects the object. Every waiting claim fails with the reason; a
   * holder keeps trying until its renew deadline, like any other failure.
   */
  | "fail-waiters"
  /**
   * The store did not answer in time or could not be reached. Try again
   * later, backing off; a write may have taken effect although no reply came.
   */
  | "back-off"
  /**
   * The call was never sent (it waited for a connection past its deadline):
   * nothing happened, so there is nothing to settle. Try again later, backing
   * off; the store is busy with more urgent calls.
   */
  | "shed";

export const STORE_FAILURE_POLICY: Readonly<Record<StoreErrorReason, StoreFailureAction>> = {
  conflict: "refresh",
  exists: "refresh",
  "not-found": "refresh",
  foreign: "fail-waiters",
  forbidden: "fail-waiters",
  invalid: "fail-waiters",
  unavailable: "back-off",
  shed: "shed",
};

/** The action for a failed store call. Anything thrown that is not a StoreError is a bug and is rethrown. */
export function failureAction(err: unknown): StoreFailureAction {
  if (!isStoreError(err)) throw err;
  return STORE_FAILURE_POLICY[err.reason];
}
