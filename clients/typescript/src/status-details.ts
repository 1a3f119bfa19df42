// The standard gRPC error details (the `grpc-status-details-bin` trailer), for
// both sides: the sidecar encodes them, the client decodes them. The trailer
// holds a `google.rpc.Status` whose `details` are `google.protobuf.Any`s; the
// two we use are `google.rpc.BadRequest` (which request field is wrong) and
// `google.rpc.ErrorInfo` (why, as a stable machine-readable reason).
//
// TypeScript has no standard helper for these (Go has status.Details(), Java
// StatusProto, Python grpcio-status), so this one small module reads and
// writes exactly these messages with @bufbuild/protobuf's wire format, and the
// daemon imports the encoder from here: one definition for both sides.
// Field numbers are those of google/rpc/status.proto, google/protobuf/any.proto
// and google/rpc/error_details.proto.
import { BinaryReader, BinaryWriter, WireType } from "@bufbuild/protobuf/wire";

/** The trailer that carries the details, as every gRPC implementation names it. */
export const STATUS_DETAILS_KEY = "grpc-status-details-bin";

/** The `ErrorInfo.domain` of every error the metaparticle-sync sidecar sends. */
export const ERROR_DOMAIN = "sync.metaparticle.io";

/**
 * The `ErrorInfo.reason`s the sidecar sends; a newer sidecar may add more.
 * `PERMITS_MISMATCH` (FAILED_PRECONDITION, field `permits`): a semaphore was
 * asked for with another number of permits than the one it has; nothing was
 * held.
 */
export type ErrorReason =
  | "INVALID_ARGUMENT"
  | "NOT_HELD"
  | "FOREIGN_LEASE"
  | "WAIT_TIMEOUT"
  | "UNAVAILABLE"
  | "PERMISSION_DENIED"
  | "SHUTTING_DOWN"
  | "PERMITS_MISMATCH";

export const BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest";
export const ERROR_INFO_TYPE = "type.googleapis.com/google.rpc.ErrorInfo";

/** `google.rpc.BadRequest.FieldViolation`: `field` is the request field's name as in the proto, e.g. `lease_duration`. */
export interface FieldViolation {
  readonly field: string;
  readonly description: string;
}

/** `google.rpc.ErrorInfo`. */
export interface ErrorInfo {
  readonly reason: string;
  readonly domain: string;
  readonly metadata: Readonly<Record<string, string>>;
}

/** What a `google.rpc.Status` says, with the details this project uses decoded. */
export interface StatusDetails {
  /** The gRPC status code (google.rpc.Code), the same as the call's status. */
  readonly code: number;
  readonly message: string;
  /** From the first `BadRequest` detail; empty when there is none. */
  readonly fieldViolations: readonly FieldViolation[];
  /** The first `ErrorInfo` detail, if any. */
  readonly errorInfo?: ErrorInfo;
}

/** What `encodeStatusDetails` takes: descriptions, the domain and metadata may be left out. */
export interface StatusDetailsInput {
  readonly code: number;
  readonly message: string;
  readonly fieldViolations?: ReadonlyArray<{ readonly field: string; readonly description?: string }>;
  /** `domain` defaults to ERROR_DOMAIN. */
  readonly errorInfo?: { readonly reason: string; readonly domain?: string; readonly metadata?: Readonly<Record<string, string>> };
}

/**
 * Encodes a `google.rpc.Status` with a `BadRequest` detail (when there are
 * field violations) and an `ErrorInfo` detail (when given): the value of the
 * `grpc-status-details-bin` trailer.
 */
export function encodeStatusDetails(input: StatusDetailsInput): Uint8Array {
  const details: Array<[string, Uint8Array]> = [];
  if (input.fieldViolations !== undefined && input.fieldViolations.length > 0) {
    const badRequest = new BinaryWriter();
    for (const violation of input.fieldViolations) {
      badRequest.tag(1, WireType.LengthDelimited).fork();
      badRequest.tag(1, WireType.LengthDelimited).string(violation.field);
      if (violation.description) badRequest.tag(2, WireType.LengthDelimited).string(violation.description);
      badRequest.join();
    }
    details.push([BAD_REQUEST_TYPE, badRequest.finish()]);
  }
  if (input.errorInfo !== undefined) {
    const info = new BinaryWriter();
    info.tag(1, WireType.LengthDelimited).string(input.errorInfo.reason);
    info.tag(2, WireType.LengthDelimited).string(input.errorInfo.domain ?? ERROR_DOMAIN);
    for (const [key, value] of Object.entries(input.errorInfo.metadata ?? {})) {
      info.tag(3, WireType.LengthDelimited).fork();
      info.tag(1, WireType.LengthDelimited).string(key);
      info.tag(2, WireType.LengthDelimited).string(value);
      info.join();
    }
    details.push([ERROR_INFO_TYPE, info.finish()]);
  }
  const status = new BinaryWriter();
  if (input.code !== 0) status.tag(1, WireType.Varint).int32(input.code);
  if (input.message !== "") status.tag(2, WireType.LengthDelimited).string(input.message);
  for (const [typeUrl, value] of details) {
    status.tag(3, WireType.LengthDelimited).fork();
    status.tag(1, WireType.LengthDelimited).string(typeUrl);
    status.tag(2, WireType.LengthDelimited).bytes(value);
    status.join();
  }
  return status.finish();
}

/**
 * Decodes the `grpc-status-details-bin` trailer. Details of other types are
 * skipped. Throws on bytes that are not a `google.rpc.Status`.
 */
export function decodeStatusDetails(bytes: Uint8Array): StatusDetails {
  let code = 0;
  let message = "";
  let fieldViolations: FieldViolation[] | undefined;
  let errorInfo: ErrorInfo | undefined;
  readFields(bytes, (field, wireType, reader) => {
    if (field === 1 && wireType === WireType.Varint) code = reader.int32();
    else if (field === 2 && wireType === WireType.LengthDelimited) message = reader.string();
    else if (field === 3 && wireType === WireType.LengthDelimited) {
      const any = decodeAny(reader.bytes());
      if (any.typeUrl === BAD_REQUEST_TYPE) fieldViolations ??= decodeBadRequest(any.value);
      else if (any.typeUrl === ERROR_INFO_TYPE) errorInfo ??= decodeErrorInfo(any.value);
    } else return false;
    return true;
  });
  return { code, message, fieldViolations: fieldViolations ?? [], ...(errorInfo === undefined ? {} : { errorInfo }) };
}

/** Calls `onField` for each field; a field it does not take (returns false) is skipped. */
function readFields(bytes: Uint8Array, onField: (field: number, wireType: WireType, reader: BinaryReader) => boolean): void {
  const reader = new BinaryReader(bytes);
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (!onField(field, wireType, reader)) reader.skip(wireType, field);
  }
}

function decodeAny(bytes: Uint8Array): { typeUrl: string; value: Uint8Array } {
  let typeUrl = "";
  let value: Uint8Array = new Uint8Array(0);
  readFields(bytes, (field, wireType, reader) => {
    if (wireType !== WireType.LengthDelimited) return false;
    if (field === 1) typeUrl = reader.string();
    else if (field === 2) value = reader.bytes();
    else return false;
    return true;
  });
  return { typeUrl, value };
}

function decodeBadRequest(bytes: Uint8Array): FieldViolation[] {
  const violations: FieldViolation[] = [];
  readFields(bytes, (field, wireType, reader) => {
    if (field !== 1 || wireType !== WireType.LengthDelimited) return false;
    const violation = { field: "", description: "" };
    readFields(reader.bytes(), (inner, innerType, r) => {
      if (innerType !== WireType.LengthDelimited) return false;
      if (inner === 1) violation.field = r.string();
      else if (inner === 2) violation.description = r.string();
      else return false;
      return true;
    });
    violations.push(violation);
    return true;
  });
  return violations;
}

function decodeErrorInfo(bytes: Uint8Array): ErrorInfo {
  let reason = "";
  let domain = "";
  const metadata: Record<string, string> = {};
  readFields(bytes, (field, wireType, reader) => {
    if (wireType !== WireType.LengthDelimited) return false;
    if (field === 1) reason = reader.string();
    else if (field === 2) domain = reader.string();
    else if (field === 3) {
      let key = "";
      let value = "";
      readFields(reader.bytes(), (inner, innerType, r) => {
        if (innerType !== WireType.LengthDelimited) return false;
        if (inner === 1) key = r.string();
        else if (inner === 2) value = r.string();
        else return false;
        return true;
      });
      metadata[key] = value;
    } else return false;
    return true;
  });
  return { reason, domain, metadata };
}
