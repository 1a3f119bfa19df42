// Health and reflection, so probes and grpcurl work with no proto files.
import test from "ava";
import { Metadata, credentials, loadPackageDefinition, status, type Client } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { createRequire } from "node:module";
import { protoPath as healthProtoPath } from "grpc-health-check";
import { create, createFileRegistry, fromBinary } from "@bufbuild/protobuf";
import { type FileDescriptorProto, FileDescriptorProtoSchema, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { RWLockServiceClient } from "metaparticle-sync-client/gen/metaparticle/sync/v1/rwlock_service";
import { startTestDaemon } from "../support/test-daemon.js";

type Unary = (request: object, callback: (err: (Error & { code?: number }) | null, response: Record<string, unknown>) => void) => void;
type HealthClient = Client & { check: Unary; list: Unary; watch(request: object): NodeJS.ReadableStream & { cancel(): void } };

function healthClient(address: string): HealthClient {
  const pkg = loadPackageDefinition(loadSync(healthProtoPath, { enums: String })) as unknown as {
    grpc: { health: { v1: { Health: new (a: string, c: unknown) => HealthClient } } };
  };
  return new pkg.grpc.health.v1.Health(address, credentials.createInsecure());
}

test("health reports SERVING for the server and both services", async (t) => {
  const d = await startTestDaemon();
  t.teardown(() => d.stop());
  const health = healthClient(d.address);
  t.teardown(() => health.close());
  for (const service of ["", "metaparticle.sync.v1.LockService", "metaparticle.sync.v1.ElectionService"]) {
    const response = await new Promise<Record<string, unknown>>((resolve, reject) =>
      health.check({ service }, (err, r) => (err ? reject(err) : resolve(r))),
    );
    t.is(response.status, "SERVING", `service "${service}"`);
  }
});

test("health: Check of an unknown service is NOT_FOUND, List names every service, Watch follows a change", async (t) => {
  const d = await startTestDaemon();
  let stopped = false;
  t.teardown(() => (stopped ? undefined : d.stop()));
  const health = healthClient(d.address);
  t.teardown(() => health.close());
  const unknown = await new Promise<Error & { code?: number }>((resolve, reject) =>
    health.check({ service: "no.such.Service" }, (err) => (err ? resolve(err) : reject(new Error("Check succeeded")))),
  );
  t.is(unknown.code, status.NOT_FOUND);
  t.regex(unknown.message, /Health status unknown for service no\.such\.Service/);

  const listed = await new Promise<Record<string, unknown>>((resolve, reject) =>
    health.list({}, (err, r) => (err ? reject(err) : resolve(r))),
  );
  t.deepEqual(listed.statuses, {
    "": { status: "SERVING" },
    readiness: { status: "SERVING" },
    liveness: { status: "SERVING" },
    "metaparticle.sync.v1.LockService": { status: "SERVING" },
    "metaparticle.sync.v1.ElectionService": { status: "SERVING" },
    "metaparticle.sync.v1.SemaphoreService": { status: "SERVING" },
    "metaparticle.sync.v1.RWLockService": { status: "SERVING" },
  });

  const watch = health.watch({ service: "readiness" });
  const seen: string[] = [];
  const notServing = new Promise<void>((resolve) =>
    watch.on("data", (r: { status: string }) => {
      seen.push(r.status);
      if (r.status === "NOT_SERVING") resolve();
    }),
  );
  watch.on("error", () => {}); // the stream ends with the daemon
  const unknownWatch = health.watch({ service: "no.such.Service" });
  unknownWatch.on("error", () => {}); // CANCELLED, below
  const first = await new Promise<string>((resolve) => unknownWatch.once("data", (r: { status: string }) => resolve(r.status)));
  unknownWatch.cancel();
  t.is(first, "SERVICE_UNKNOWN");
  while (seen.length === 0) await new Promise((r) => setTimeout(r, 5));
  stopped = true;
  const stopping = d.stop();
  await notServing;
  await stopping;
  t.deepEqual(seen, ["SERVING", "NOT_SERVING"], "the current status first, then the change");
});

test("graceful shutdown: a holder hears Lost with reason shutdown", async (t) => {
  const d = await startTestDaemon();
  const lock = await d.client.lock("draining");
  const lost = new Promise((resolve) => lock.signal.addEventListener("abort", () => resolve(lock.signal.reason)));
  const stopping = d.stop();
  const reason = (await lost) as { reason: string };
  t.is(reason.reason, "shutdown", "the holder heard the daemon is shutting down");
  await stopping;
});

test("reflection serves complete descriptors: every type of every service resolves, with comments", async (t) => {
  const d = await startTestDaemon();
  t.teardown(() => d.stop());
  const require = createRequire(import.meta.url);
  const reflectionProto = require.resolve("@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto");
  const pkg = loadPackageDefinition(loadSync(reflectionProto, { keepCase: true, oneofs: true })) as unknown as {
    grpc: {
      reflection: {
        v1: {
          ServerReflection: new (
            a: string,
            c: unknown,
          ) => Client & { ServerReflectionInfo(): NodeJS.ReadWriteStream & { write(m: object): void; end(): void } };
        };
      };
    };
  };
  const client = new pkg.grpc.reflection.v1.ServerReflection(d.address, credentials.createInsecure());
  t.teardown(() => client.close());
  const call = client.ServerReflectionInfo();
  const responses: Array<Record<string, any>> = [];
  call.on("data", (r: Record<string, any>) => responses.push(r));
  const ask = async (request: object) => {
    const before = responses.length;
    call.write(request);
    while (responses.length === before) await new Promise((r) => setTimeout(r, 5));
    return responses.at(-1)!;
  };
  const services = ((await ask({ list_services: "" })).list_services_response.service as Array<{ name: string }>).map((s) => s.name);
  t.deepEqual([...services].sort(), [
    "grpc.health.v1.Health",
    "metaparticle.sync.v1.ElectionService",
    "metaparticle.sync.v1.LockService",
    "metaparticle.sync.v1.RWLockService",
    "metaparticle.sync.v1.SemaphoreService",
  ]);

  // Build a registry from what reflection returns for each service, as grpcurl does: it must resolve every type.
  const files = new Map<string, Uint8Array>();
  for (const service of services) {
    const response = await ask({ file_containing_symbol: service });
    for (const bytes of response.file_descriptor_response.file_descriptor_proto as Buffer[]) {
      const file = fromBinary(FileDescriptorProtoSchema, bytes);
      files.set(file.name, bytes);
    }
  }
  call.end();
  // Reflection answers with the requested file first; order the files so imports come first, as a
  // descriptor pool needs, failing if an import was not served.
  const protos = new Map([...files].map(([name, bytes]) => [name, fromBinary(FileDescriptorProtoSchema, bytes)]));
  const ordered: FileDescriptorProto[] = [];
  const visit = (name: string, importer: string) => {
    const file = protos.get(name);
    if (file === undefined) throw new Error(`reflection did not serve ${name}, imported by ${importer}`);
    if (ordered.includes(file)) return;
    file.dependency.forEach((dependency) => visit(dependency, name));
    ordered.push(file);
  };
  for (const name of protos.keys()) visit(name, "the request");
  const registry = createFileRegistry(create(FileDescriptorSetSchema, { file: ordered }));
  for (const service of services) {
    const desc = registry.getService(service);
    if (desc === undefined) return t.fail(`${service} does not resolve`);
    for (const method of desc.methods)
      t.truthy(method.input.typeName && method.output.typeName, `${service}.${method.name} resolves its types`);
  }
  t.truthy(registry.getMessage("google.protobuf.Duration"), "imports are served too");
  const comments = protos.get("metaparticle/sync/v1/lock_service.proto")!.sourceCodeInfo?.location.map((l) => l.leadingComments) ?? [];
  t.true(
    comments.some((c) => c.includes("Renew extends a lock taken with TryAcquire")),
    "source comments are kept",
  );
});

test("every service of the proto is served and reported by health; an unknown service is NOT_FOUND", async (t) => {
  const d = await startTestDaemon();
  t.teardown(() => d.stop());
  const rwlocks = new RWLockServiceClient(d.address, credentials.createInsecure());
  t.teardown(() => rwlocks.close());
  const deadline = () => ({ deadline: Date.now() + 5_000 });
  const state = await new Promise<{ held: boolean }>((resolve, reject) =>
    rwlocks.getRwLock({ name: "catalog", consistency: 0 }, new Metadata(), deadline(), (err, response) =>
      err ? reject(err) : resolve(response!),
    ),
  );
  t.false(state.held, "RWLockService answers");
  const health = healthClient(d.address);
  t.teardown(() => health.close());
  for (const service of ["metaparticle.sync.v1.SemaphoreService", "metaparticle.sync.v1.RWLockService"]) {
    const served = await new Promise<{ status: string }>((resolve, reject) =>
      health.check({ service }, (err, response) => (err ? reject(err) : resolve(response as unknown as { status: string }))),
    );
    t.is(served.status, "SERVING", `${service} is served and reported SERVING`);
  }
  const unknown = await new Promise<Error & { code?: number }>((resolve) =>
    health.check({ service: "metaparticle.sync.v1.NoSuchService" }, (err) => resolve(err!)),
  );
  t.is(unknown?.code, status.NOT_FOUND);
});
