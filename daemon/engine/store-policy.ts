// What the engine does when a store call fails, in two tables consulted by
// every store call the engine makes (see docs/design.md, "Store failures"):
// what a failure says about the call (STORE_FAILURE_POLICY), then, by what the
// call was for, the one response to it (FAILURE_RESPONSES). Each response
// means one thing wherever it is used.
import { type StoreErrorReason, isStoreError } from "../store/lease-store.js";

/** What a failed store call says about its effect. */
export type StoreFailure =
  /** The lease is not what this daemon last saw (someone wrote or created it meanwhile): the call did nothing. */
  | "stale"
  /** The lease does not exist (someone deleted it meanwhile): the call did nothing. */
  | "gone"
  /** Waiting cannot fix it: the Lease is not ours, RBAC refuses, or the API server rejects the object. */
  | "refused"
  /** The store did not answer in time or could not be reached: a write may have taken effect. */
  | "unanswered"
  /** The call waited for a connection past its deadline and was never sent: it did nothing. */
  | "not-sent";

export const STORE_FAILURE_POLICY: Readonly<Record<StoreErrorReason, StoreFailure>> = {
  conflict: "stale",
  exists: "stale",
  "not-found": "gone",
  foreign: "refused",
  forbidden: "refused",
  invalid: "refused",
  unavailable: "unanswered",
  shed: "not-sent",
};

/** What a failed call was for; the response to a failure depends on it and on nothing else. */
export type CallRole =
  /** An acquiring write (create, acquire): if it took effect, this daemon holds the lease. */
  | "take"
  /** Any other write of the contender's own: a queue write, a release, a lease duration written back. */
  | "write"
  /** The daemon's own renewal of a session hold. */
  | "renew"
  /** A holder's call: Renew, Proclaim, Release or Resign. */
  | "holder-call"
  /** A read of the lease after a conflict or an unanswered acquiring write. */
  | "read"
  /** Creating again a Lease deleted by hand (docs/design.md 3.2). */
  | "restore";

export type FailureResponse =
  /** Count a conflict (a waiter then announces itself before it tries again), then read the lease and decide again. */
  | "conflict"
  /** Read the lease and decide again. */
  | "refresh"
  /** Fail every waiting claim with the reason, and back off. */
  | "fail-waiters"
  /** The acquiring write may have made this daemon holder: read the lease before anything else; then as retry-later. */
  | "settle"
  /** Fail a claim at the head of the queue that does not wait (TryAcquire), and back off before the next call. */
  | "retry-later"
  /** Back off before the next call, and nothing else. */
  | "back-off"
  /** Drop the lease from the cache: the next decision sees it deleted. */
  | "forget"
  /** Renew again on the renewal's own retry schedule, until the renew deadline. */
  | "retry-renewal"
  /** The holder's call fails with the mapped error. */
  | "reject"
  /** Try the same call again after a pause (a few times). */
  | "retry"
  /** Stop: someone else's write wins, or waiting cannot fix it. */
  | "give-up";

export const FAILURE_RESPONSES: Readonly<Record<CallRole, Readonly<Record<StoreFailure, FailureResponse>>>> = {
  take: { stale: "conflict", gone: "conflict", refused: "fail-waiters", unanswered: "settle", "not-sent": "retry-later" },
  write: { stale: "conflict", gone: "conflict", refused: "fail-waiters", unanswered: "retry-later", "not-sent": "retry-later" },
  // A renewal that conflicts reads the lease; if that read fails too, it is retried on its schedule.
  renew: { stale: "refresh", gone: "forget", refused: "retry-renewal", unanswered: "retry-renewal", "not-sent": "retry-renewal" },
  "holder-call": { stale: "refresh", gone: "refresh", refused: "reject", unanswered: "reject", "not-sent": "reject" },
  read: { stale: "back-off", gone: "back-off", refused: "fail-waiters", unanswered: "back-off", "not-sent": "back-off" },
  restore: { stale: "give-up", gone: "give-up", refused: "give-up", unanswered: "retry", "not-sent": "retry" },
};

/** What a failed store call says. Anything thrown that is not a StoreError is a bug and is rethrown. */
export function failureOf(err: unknown): StoreFailure {
  if (!isStoreError(err)) throw err;
  return STORE_FAILURE_POLICY[err.reason];
}

/** The response to a call for `role` that failed with `failure`. */
export function responseTo(role: CallRole, failure: StoreFailure): FailureResponse {
  return FAILURE_RESPONSES[role][failure];
}
