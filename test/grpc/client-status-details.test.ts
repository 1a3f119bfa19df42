// The TypeScript client's reader and writer of the standard error details
// (clients/typescript/src/status-details.ts), checked against protobufjs
// encoding the same google.rpc messages from their .proto definitions.
import test from "ava";
import protobuf from "protobufjs";
import { ERROR_DOMAIN, decodeStatusDetails, encodeStatusDetails } from "metaparticle-sync-client";

// The messages as google/rpc/status.proto, google/protobuf/any.proto and google/rpc/error_details.proto define them.
const { root } = protobuf.parse(`
  syntax = "proto3";
  package google.rpc;
  message Any { string type_url = 1; bytes value = 2; }
  message Status { int32 code = 1; string message = 2; repeated Any details = 3; }
  message BadRequest {
    message FieldViolation { string field = 1; string description = 2; string reason = 3; }
    repeated FieldViolation field_violations = 1;
  }
  message ErrorInfo { string reason = 1; string domain = 2; map<string, string> metadata = 3; }
  message RetryInfo { int32 retry_delay = 1; }
`);
const Status = root.lookupType("google.rpc.Status");
const BadRequest = root.lookupType("google.rpc.BadRequest");
const ErrorInfo = root.lookupType("google.rpc.ErrorInfo");
const RetryInfo = root.lookupType("google.rpc.RetryInfo");

function any(type: protobuf.Type, value: Record<string, unknown>) {
  return { typeUrl: `type.googleapis.com/${type.fullName.slice(1)}`, value: type.encode(type.create(value)).finish() };
}

test("status details: decodes a google.rpc.Status with BadRequest and ErrorInfo as protobufjs encodes it", (t) => {
  const bytes = Status.encode(
    Status.create({
      code: 3,
      message: "name: must be a DNS label",
      details: [
        any(RetryInfo, { retryDelay: 5 }), // a detail of another type is skipped
        any(BadRequest, {
          fieldViolations: [
            { field: "name", description: "must be a DNS label", reason: "BAD_NAME" },
            { field: "holder", description: "too long" },
          ],
        }),
        any(ErrorInfo, { reason: "INVALID_ARGUMENT", domain: ERROR_DOMAIN, metadata: { limit: "63", what: "name" } }),
      ],
    }),
  ).finish();
  t.deepEqual(decodeStatusDetails(bytes), {
    code: 3,
    message: "name: must be a DNS label",
    fieldViolations: [
      { field: "name", description: "must be a DNS label" },
      { field: "holder", description: "too long" },
    ],
    errorInfo: { reason: "INVALID_ARGUMENT", domain: ERROR_DOMAIN, metadata: { limit: "63", what: "name" } },
  });
  t.deepEqual(decodeStatusDetails(Status.encode(Status.create({ code: 5 })).finish()), { code: 5, message: "", fieldViolations: [] });
  t.deepEqual(decodeStatusDetails(new Uint8Array(0)), { code: 0, message: "", fieldViolations: [] });
});

test("status details: what encodeStatusDetails writes, protobufjs reads back, and so does the decoder", (t) => {
  const input = {
    code: 9,
    message: "lock db is held by someone else ✓",
    fieldViolations: [{ field: "fencing_token", description: "not the token of the current holder" }, { field: "name" }],
    errorInfo: { reason: "NOT_HELD", metadata: { holder: "pod-a" } },
  };
  const bytes = encodeStatusDetails(input);
  const status = Status.toObject(Status.decode(bytes), { defaults: true }) as {
    code: number;
    message: string;
    details: Array<{ typeUrl: string; value: Uint8Array }>;
  };
  t.is(status.code, 9);
  t.is(status.message, input.message);
  t.deepEqual(
    status.details.map((d) => d.typeUrl),
    ["type.googleapis.com/google.rpc.BadRequest", "type.googleapis.com/google.rpc.ErrorInfo"],
  );
  t.deepEqual(BadRequest.toObject(BadRequest.decode(status.details[0]!.value), { defaults: true }), {
    fieldViolations: [
      { field: "fencing_token", description: "not the token of the current holder", reason: "" },
      { field: "name", description: "", reason: "" },
    ],
  });
  t.deepEqual(ErrorInfo.toObject(ErrorInfo.decode(status.details[1]!.value), { defaults: true }), {
    reason: "NOT_HELD",
    domain: ERROR_DOMAIN,
    metadata: { holder: "pod-a" },
  });
  t.deepEqual(decodeStatusDetails(bytes), {
    code: 9,
    message: input.message,
    fieldViolations: [
      { field: "fencing_token", description: "not the token of the current holder" },
      { field: "name", description: "" },
    ],
    errorInfo: { reason: "NOT_HELD", domain: ERROR_DOMAIN, metadata: { holder: "pod-a" } },
  });
  // Without violations or ErrorInfo there are no details at all.
  t.deepEqual(Status.toObject(Status.decode(encodeStatusDetails({ code: 14, message: "down" })), { defaults: true }), {
    code: 14,
    message: "down",
    details: [],
  });
});

test("status details: bytes that are not a google.rpc.Status are refused", (t) => {
  t.throws(() => decodeStatusDetails(new Uint8Array([0x0a, 0x05, 0x61])));
});
