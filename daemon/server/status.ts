// The one table from engine errors to gRPC status codes. Only SyncError
// carries a code; anything else that reaches a handler is a bug, answered
// with UNKNOWN and logged.
import { Metadata, type StatusObject, status as Status } from "@grpc/grpc-js";
import { SyncError, type SyncErrorCode } from "../engine/index.js";
import type { Logger } from "../log.js";

const statusByCode: Record<SyncErrorCode, Status> = {
  "invalid-argument": Status.INVALID_ARGUMENT,
  "not-held": Status.FAILED_PRECONDITION,
  "foreign-lease": Status.FAILED_PRECONDITION,
  "wait-timeout": Status.DEADLINE_EXCEEDED,
  unavailable: Status.UNAVAILABLE,
  "permission-denied": Status.PERMISSION_DENIED,
  "shutting-down": Status.UNAVAILABLE,
};

/** The status a failed call ends with. */
export function statusOf(err: unknown, log: Logger): StatusObject {
  const metadata = new Metadata();
  if (err instanceof SyncError) {
    if (err.field !== undefined) metadata.set("field", err.field);
    return { code: statusByCode[err.code], details: err.message, metadata };
  }
  log.error({ err }, "bug: a call failed with an unexpected error");
  return { code: Status.UNKNOWN, details: `internal error: ${err instanceof Error ? err.message : String(err)}`, metadata };
}
