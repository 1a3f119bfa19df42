// Health and reflection, so probes and grpcurl work with no proto files.
import test from "ava";
import { credentials, loadPackageDefinition, type Client } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { createRequire } from "node:module";
import { protoPath as healthProtoPath } from "grpc-health-check";
import { startTestDaemon } from "../support/test-daemon.js";

type Unary = (request: object, callback: (err: Error | null, response: Record<string, unknown>) => void) => void;

function healthClient(address: string): Client & { check: Unary } {
  const pkg = loadPackageDefinition(loadSync(healthProtoPath, { enums: String })) as unknown as {
    grpc: { health: { v1: { Health: new (a: string, c: unknown) => Client & { check: Unary } } } };
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

test("graceful shutdown: a holder hears Lost with reason shutdown", async (t) => {
  const d = await startTestDaemon();
  const lock = await d.client.lock("draining");
  const lost = new Promise((resolve) => lock.signal.addEventListener("abort", () => resolve(lock.signal.reason)));
  const stopping = d.stop();
  const reason = (await lost) as { reason: string };
  t.is(reason.reason, "shutdown", "the holder heard the daemon is shutting down");
  await stopping;
});

test("reflection lists LockService, ElectionService and Health", async (t) => {
  const d = await startTestDaemon();
  t.teardown(() => d.stop());
  const require = createRequire(import.meta.url);
  const reflectionProto = require.resolve("@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto");
  const pkg = loadPackageDefinition(loadSync(reflectionProto)) as unknown as {
    grpc: {
      reflection: {
        v1: {
          ServerReflection: new (
            a: string,
            c: unknown,
          ) => Client & { serverReflectionInfo(): NodeJS.ReadWriteStream & { write(m: object): void; end(): void } };
        };
      };
    };
  };
  const client = new pkg.grpc.reflection.v1.ServerReflection(d.address, credentials.createInsecure());
  t.teardown(() => client.close());
  const call = client.serverReflectionInfo();
  const response = new Promise<{ listServicesResponse: { service: Array<{ name: string }> } }>((resolve, reject) => {
    call.on("data", resolve);
    call.on("error", reject);
  });
  call.write({ listServices: "" });
  const names = (await response).listServicesResponse.service.map((s) => s.name);
  call.end();
  t.true(names.includes("metaparticle.sync.v1.LockService"));
  t.true(names.includes("metaparticle.sync.v1.ElectionService"));
  t.true(names.includes("grpc.health.v1.Health"));
});
