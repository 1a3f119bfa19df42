// Requests the generated decoder cannot represent get INVALID_ARGUMENT naming
// the field, like any other bad input. ts-proto decodes int64 fields
// (fencing tokens, terms, Duration seconds) as JavaScript numbers and throws
// beyond 2^53; grpc-js would answer such a request INTERNAL "Error
// deserializing request" before any handler runs. Each method's deserializer
// is wrapped so that the request reaches its handler as a DecodeFailure, and
// the handler answers with the status of the error it carries. Which field is
// at fault is found by decoding the bytes again with protobuf-es, which reads
// int64 as bigint, against the descriptors the daemon serves for reflection.
import { type DescMessage, type FileRegistry, fromBinary } from "@bufbuild/protobuf";
import { type ReflectMessage, reflect } from "@bufbuild/protobuf/reflect";
import type { ServiceDefinition, UntypedServiceImplementation } from "@grpc/grpc-js";
import { SyncError, invalidArgument } from "../engine/index.js";
import type { Logger } from "../log.js";
import { statusOf } from "./status.js";

const failure = Symbol("decode failure");

interface DecodeFailure {
  readonly [failure]: SyncError;
}

function isFailure(request: unknown): request is DecodeFailure {
  return typeof request === "object" && request !== null && failure in request;
}

type Handler = (call: { request: unknown; emit(event: "error", status: unknown): boolean }, callback?: (err: unknown) => void) => void;

/** The service definition and implementation with every request decoder and handler wrapped as described above. */
export function withDecodeErrors<D extends ServiceDefinition, I extends UntypedServiceImplementation>(
  definition: D,
  implementation: I,
  registry: FileRegistry,
  log: Logger,
): { definition: D; implementation: I } {
  const wrappedDefinition: Record<string, unknown> = {};
  const wrappedImplementation: Record<string, unknown> = {};
  for (const [key, method] of Object.entries(definition)) {
    const input = inputOf(registry, method.path);
    wrappedDefinition[key] = {
      ...method,
      requestDeserialize: (bytes: Buffer) => {
        try {
          return method.requestDeserialize(bytes);
        } catch (err) {
          return { [failure]: explain(input, bytes, err) } satisfies DecodeFailure;
        }
      },
    };
    const handler = implementation[key] as unknown as Handler;
    wrappedImplementation[key] = ((call, callback) => {
      if (!isFailure(call.request)) return handler(call, callback);
      const status = statusOf(call.request[failure], log);
      if (callback !== undefined) callback(status);
      else call.emit("error", status);
    }) satisfies Handler;
  }
  return { definition: wrappedDefinition as D, implementation: wrappedImplementation as unknown as I };
}

/** The request message type of a method path such as "/metaparticle.sync.v1.LockService/Renew". */
function inputOf(registry: FileRegistry, path: string): DescMessage | undefined {
  const [, service, method] = path.split("/");
  return registry.getService(service ?? "")?.methods.find((m) => m.name === method)?.input;
}

function explain(input: DescMessage | undefined, bytes: Uint8Array, cause: unknown): SyncError {
  const problem = cause instanceof Error ? cause.message : String(cause);
  if (input === undefined) return new SyncError("invalid-argument", `the request could not be decoded: ${problem}`);
  let message;
  try {
    message = fromBinary(input, bytes);
  } catch (err) {
    return new SyncError(
      "invalid-argument",
      `the request is not a valid ${input.typeName}: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  const found = outOfRange(reflect(input, message));
  if (found === undefined) return new SyncError("invalid-argument", `the request could not be decoded: ${problem}`);
  return invalidArgument(found.field, `${found.detail} is beyond the largest supported value (2^53 - 1)`);
}

/** The first field, by proto name, holding a 64-bit integer JavaScript numbers cannot represent. */
function outOfRange(message: ReflectMessage): { field: string; detail: string } | undefined {
  for (const field of message.fields) {
    if (!message.isSet(field)) continue;
    if (field.fieldKind === "scalar") {
      const value = message.get(field);
      if (typeof value === "bigint" && (value > BigInt(Number.MAX_SAFE_INTEGER) || value < -BigInt(Number.MAX_SAFE_INTEGER))) {
        return { field: field.name, detail: String(value) };
      }
    } else if (field.fieldKind === "message") {
      const inner = outOfRange(message.get(field));
      if (inner !== undefined) return { field: field.name, detail: `${inner.field} ${inner.detail}` };
    }
  }
  return undefined;
}
