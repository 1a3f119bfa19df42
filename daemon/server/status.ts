// The one table from engine errors to gRPC status codes. Only SyncError
// carries a code; anything else that reaches a handler is a bug, answered
// with UNKNOWN and logged.
//
// Every error carries the standard details (`grpc-status-details-bin`): a
// `google.rpc.ErrorInfo` whose reason names the engine error, and, when a
// request field is wrong, a `google.rpc.BadRequest` naming it. Clients read
// them with their language's standard helper. The `field` trailer of earlier
// releases is still sent for clients that read it.
import { Metadata, type StatusObject, status as Status } from "@grpc/grpc-js";
import { STATUS_DETAILS_KEY, encodeStatusDetails, type ErrorReason } from "metaparticle-sync-client/status-details";
import { SyncError, type SyncErrorCode } from "../engine/index.js";
import type { Logger } from "../log.js";

const statusByCode: Record<SyncErrorCode, { readonly code: Status; readonly reason: ErrorReason }> = {
  "invalid-argument": { code: Status.INVALID_ARGUMENT, reason: "INVALID_ARGUMENT" },
  "not-held": { code: Status.FAILED_PRECONDITION, reason: "NOT_HELD" },
  "foreign-lease": { code: Status.FAILED_PRECONDITION, reason: "FOREIGN_LEASE" },
  "permits-mismatch": { code: Status.FAILED_PRECONDITION, reason: "PERMITS_MISMATCH" },
  "wait-timeout": { code: Status.DEADLINE_EXCEEDED, reason: "WAIT_TIMEOUT" },
  unavailable: { code: Status.UNAVAILABLE, reason: "UNAVAILABLE" },
  "permission-denied": { code: Status.PERMISSION_DENIED, reason: "PERMISSION_DENIED" },
  "shutting-down": { code: Status.UNAVAILABLE, reason: "SHUTTING_DOWN" },
};

/** The status a failed call ends with. */
export function statusOf(err: unknown, log: Logger): StatusObject {
  const metadata = new Metadata();
  if (err instanceof SyncError) {
    const { code, reason } = statusByCode[err.code];
    const fieldViolations = err.field === undefined ? [] : [{ field: err.field, description: err.message }];
    metadata.set(
      STATUS_DETAILS_KEY,
      Buffer.from(encodeStatusDetails({ code, message: err.message, fieldViolations, errorInfo: { reason } })),
    );
    if (err.field !== undefined) metadata.set("field", err.field);
    return { code, details: err.message, metadata };
  }
  log.error({ err }, "bug: a call failed with an unexpected error");
  return { code: Status.UNKNOWN, details: `internal error: ${err instanceof Error ? err.message : String(err)}`, metadata };
}
