// The engine's errors: one type, with a fixed set of codes named by what went
// wrong in the domain. The gRPC layer maps each code to a status in one table;
// anything thrown that is not a SyncError is a bug.
import { isStoreError } from "../store/lease-store.js";

export type SyncErrorCode =
  /** A request field is malformed or out of bounds; `field` names it. */
  | "invalid-argument"
  /** A token or term is not the one this daemon holds now. Nothing was changed. */
  | "not-held"
  /** The Lease exists but is not managed by metaparticle-sync; it is never modified. */
  | "foreign-lease"
  /** A semaphore claim asks with another N than the semaphore's; `field` names it. Nothing was changed. */
  | "permits-mismatch"
  /** The wait for a lock ended before it was free. */
  | "wait-timeout"
  /** The store could not be reached. */
  | "unavailable"
  /** The store refused the call (RBAC); the message names the verb and resource. */
  | "permission-denied"
  /** The daemon is shutting down and takes no new work. */
  | "shutting-down";

export class SyncError extends Error {
  constructor(
    readonly code: SyncErrorCode,
    message: string,
    /** The request field at fault, for "invalid-argument". */
    readonly field?: string,
  ) {
    super(message);
    this.name = "SyncError";
  }
}

export function invalidArgument(field: string, problem: string): SyncError {
  return new SyncError("invalid-argument", `${field}: ${problem}`, field);
}

/**
 * Turns a store failure into the engine error a caller should see. Conflicts
 * never reach callers: the engine retries them.
 */
export function fromStoreError(err: unknown, doing: string): SyncError {
  if (err instanceof SyncError) return err;
  if (isStoreError(err, "foreign")) return new SyncError("foreign-lease", err.message);
  if (isStoreError(err, "forbidden")) return new SyncError("permission-denied", `${doing}: ${err.message}`);
  if (isStoreError(err)) return new SyncError("unavailable", `${doing}: ${err.message}`);
  throw err;
}

/** The error a call given up by its caller ends with; nobody reads it, since the call is over. */
export function gaveUp(what: string): SyncError {
  return new SyncError("unavailable", `${what} given up by its caller (cancelled, or its deadline passed): nothing of it is kept`);
}
