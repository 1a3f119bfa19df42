// gRPC server reflection (v1 and v1alpha) over the descriptor set that buf
// built from proto/, so grpcurl and other tools need no proto files. It serves
// the compiled FileDescriptorProtos as they are, with their dependencies,
// rather than descriptors rebuilt from a loaded package definition, which can
// lose imports and mangle map entries. That is what @grpc/reflection serves:
// the `fileDescriptorProtos` proto-loader rebuilds for each type. (Handing it
// a package definition that carries buf's own serialized files instead would
// let it serve these without loss; not tried yet.)
import { type MethodDefinition, type Server, type ServerDuplexStream, type ServiceDefinition, status } from "@grpc/grpc-js";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { type DescriptorProto, type FileDescriptorProto, FileDescriptorProtoSchema, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

interface ReflectionRequest {
  host?: string;
  file_by_filename?: string;
  file_containing_symbol?: string;
  file_containing_extension?: { containing_type: string; extension_number: number };
  all_extension_numbers_of_type?: string;
  list_services?: string;
  message_request?: string;
}

/** The files of a descriptor set, indexed by name and by every fully qualified symbol they define. */
export class DescriptorIndex {
  private readonly files = new Map<string, { proto: FileDescriptorProto; bytes: Uint8Array }>();
  private readonly symbols = new Map<string, string>();
  /** The services listed: those the server serves, of the ones the set defines. */
  readonly services: string[] = [];

  /** `served`: the services to list (a service defined in the API but not yet served is not); undefined lists every one. */
  constructor(descriptorSet: Uint8Array, served?: ReadonlySet<string>) {
    for (const file of fromBinary(FileDescriptorSetSchema, descriptorSet).file) {
      this.files.set(file.name, { proto: file, bytes: toBinary(FileDescriptorProtoSchema, file) });
      const scope = file.package === "" ? "" : `${file.package}.`;
      for (const service of file.service) {
        this.symbols.set(scope + service.name, file.name);
        if (served === undefined || served.has(scope + service.name)) this.services.push(scope + service.name);
        for (const method of service.method) this.symbols.set(`${scope}${service.name}.${method.name}`, file.name);
      }
      for (const type of file.enumType) this.symbols.set(scope + type.name, file.name);
      const messages = (prefix: string, types: DescriptorProto[]) => {
        for (const type of types) {
          this.symbols.set(prefix + type.name, file.name);
          for (const nested of type.enumType) this.symbols.set(`${prefix}${type.name}.${nested.name}`, file.name);
          messages(`${prefix}${type.name}.`, type.nestedType);
        }
      };
      messages(scope, file.messageType);
    }
  }

  /** The named file and every file it imports, transitively; undefined if unknown. */
  withDependencies(fileName: string): Uint8Array[] | undefined {
    if (!this.files.has(fileName)) return undefined;
    const seen = new Set<string>();
    const visit = (name: string) => {
      const file = this.files.get(name);
      if (file === undefined || seen.has(name)) return;
      seen.add(name);
      file.proto.dependency.forEach(visit);
    };
    visit(fileName);
    return [...seen].map((name) => this.files.get(name)!.bytes);
  }

  fileDefining(symbol: string): string | undefined {
    return this.symbols.get(symbol.replace(/^\./, ""));
  }
}

/** The reflection service's own messages, from the definition shipped with @grpc/reflection, parsed on first use. */
type Codec = { decode(bytes: Buffer): ReflectionRequest; encode(response: object): Buffer };

async function loadCodec(version: "v1" | "v1alpha"): Promise<Codec> {
  // A CommonJS package: its exports are the default export of the namespace, bundled or not.
  const { loadSync } = (await import("@grpc/proto-loader")).default;
  // The lean build (scripts/bundle.mjs) ships the file beside itself; the plain build reads it from the package.
  const file = `grpc/reflection/${version}/reflection.proto`;
  const beside = fileURLToPath(new URL(`./proto/${file}`, import.meta.url));
  const protoPath = existsSync(beside) ? beside : createRequire(import.meta.url).resolve(`@grpc/reflection/build/proto/${file}`);
  const definition = loadSync(protoPath, { keepCase: true, longs: Number, enums: String, defaults: false, oneofs: true });
  const method = (definition[`grpc.reflection.${version}.ServerReflection`] as Record<string, MethodDefinition<ReflectionRequest, object>>)
    .ServerReflectionInfo!;
  return { decode: (bytes) => method.requestDeserialize(bytes), encode: (response) => method.responseSerialize(response) };
}

/**
 * Adds grpc.reflection.v1 and v1alpha to `server`, answering from `index`.
 * The reflection messages are parsed with protobufjs, which costs memory and
 * start-up time, so they are loaded at the first reflection call: the
 * service is registered with pass-through (de)serializers and each stream
 * decodes and encodes its messages, in order, once the codec is loaded.
 */
export function addReflection(server: Server, index: () => DescriptorIndex): void {
  for (const version of ["v1", "v1alpha"] as const) {
    let codec: Promise<Codec> | undefined;
    const bytes = (value: Buffer) => value;
    const definition: ServiceDefinition = {
      ServerReflectionInfo: {
        path: `/grpc.reflection.${version}.ServerReflection/ServerReflectionInfo`,
        requestStream: true,
        responseStream: true,
        requestSerialize: bytes,
        requestDeserialize: bytes,
        responseSerialize: bytes,
        responseDeserialize: bytes,
      },
    };
    server.addService(definition, {
      ServerReflectionInfo: (stream: ServerDuplexStream<Buffer, Buffer>) => {
        let replies: Promise<unknown> = (codec ??= loadCodec(version));
        const fail = (err: unknown) =>
          stream.emit("error", {
            code: status.INTERNAL,
            details: `reflection failed: ${err instanceof Error ? err.message : String(err)}`,
          });
        stream.on("data", (request: Buffer) => {
          replies = replies.then(async () => {
            const { decode, encode } = await codec!;
            stream.write(encode(answer(index(), decode(request))));
          }, fail);
        });
        stream.on("end", () => void replies.then(() => stream.end(), fail));
      },
    });
  }
}

function answer(index: DescriptorIndex, request: ReflectionRequest): object {
  const reply = (response: object) => ({ valid_host: request.host ?? "", original_request: request, ...response });
  const files = (names: Array<string | undefined>, what: string) => {
    const found = names.map((name) => (name === undefined ? undefined : index.withDependencies(name)));
    if (found.some((f) => f === undefined)) {
      return reply({ error_response: { error_code: status.NOT_FOUND, error_message: `${what} not found` } });
    }
    return reply({ file_descriptor_response: { file_descriptor_proto: found.flat().map((bytes) => Buffer.from(bytes!)) } });
  };
  switch (request.message_request) {
    case "list_services":
      return reply({ list_services_response: { service: index.services.map((name) => ({ name })) } });
    case "file_by_filename":
      return files([request.file_by_filename], `file ${request.file_by_filename}`);
    case "file_containing_symbol":
      return files([index.fileDefining(request.file_containing_symbol ?? "")], `symbol ${request.file_containing_symbol}`);
    case "file_containing_extension":
    case "all_extension_numbers_of_type":
      return reply({ error_response: { error_code: status.NOT_FOUND, error_message: "this API defines no extensions" } });
    default:
      return reply({ error_response: { error_code: status.INVALID_ARGUMENT, error_message: "unknown reflection request" } });
  }
}
