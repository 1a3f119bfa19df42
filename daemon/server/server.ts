// The gRPC server: LockService, ElectionService, SemaphoreService, RWLockService, grpc.health.v1.Health and
// server reflection (fed from the descriptor set built from proto/), so
// grpcurl and standard probes work with no proto files at hand.
import { Server, ServerCredentials } from "@grpc/grpc-js";
import { createFileRegistry, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { ElectionServiceService } from "metaparticle-sync-client/gen/metaparticle/sync/v1/election_service";
import { LockServiceService } from "metaparticle-sync-client/gen/metaparticle/sync/v1/lock_service";
import { RWLockServiceService } from "metaparticle-sync-client/gen/metaparticle/sync/v1/rwlock_service";
import { SemaphoreServiceService } from "metaparticle-sync-client/gen/metaparticle/sync/v1/semaphore_service";
import type { Engine } from "../engine/index.js";
import { descriptorSetBase64 } from "../gen/descriptor-set.js";
import type { Logger } from "../log.js";
import { StreamRegistry } from "./calls.js";
import { electionService } from "./election-service.js";
import { lockService } from "./lock-service.js";
import { rwlockService } from "./rwlock-service.js";
import { semaphoreService } from "./semaphore-service.js";
import { withDecodeErrors } from "./decode.js";
import { HealthService } from "./health.js";
import { DescriptorIndex, addReflection } from "./reflection.js";

/** Longest wait for calls in flight once shutdown has ended every stream. */
export const DRAIN_GRACE_MS = 1_000;

export const SERVICE_NAMES = [
  "metaparticle.sync.v1.LockService",
  "metaparticle.sync.v1.ElectionService",
  "metaparticle.sync.v1.SemaphoreService",
  "metaparticle.sync.v1.RWLockService",
] as const;

export interface ServerOptions {
  /** host:port to listen on; port 0 picks a free one. */
  readonly address: string;
  /**
   * Interval of HTTP/2 pings to clients. A client that stops answering (a
   * frozen or vanished process) has its streams cancelled, which releases
   * what they hold.
   */
  readonly keepaliveMs: number;
}

/**
 * Health service names: "" and each API service report whether calls can be
 * served (the lease cache is synced and the daemon is not shutting down), as
 * does "readiness"; "liveness" reports that the process answers at all.
 */
const READY_NAMES = ["", "readiness", ...SERVICE_NAMES];

export class DaemonServer {
  readonly health: HealthService;
  private probeServer: Server | undefined;
  private readonly server: Server;
  private readonly streams: StreamRegistry;
  private drained: Promise<void> | undefined;

  private constructor(
    engine: Engine,
    private readonly log: Logger,
    options: ServerOptions,
  ) {
    this.server = new Server({
      "grpc.keepalive_time_ms": options.keepaliveMs,
      "grpc.keepalive_timeout_ms": options.keepaliveMs,
    });
    raiseStreamResetLimit(this.server);
    this.streams = new StreamRegistry(log);
    const descriptors = Buffer.from(descriptorSetBase64, "base64");
    const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, descriptors));
    const locks = withDecodeErrors(LockServiceService, lockService(engine, this.streams, log), registry, log);
    const elections = withDecodeErrors(ElectionServiceService, electionService(engine, this.streams, log), registry, log);
    this.server.addService(locks.definition, locks.implementation);
    this.server.addService(elections.definition, elections.implementation);
    const semaphores = withDecodeErrors(SemaphoreServiceService, semaphoreService(engine, this.streams, log), registry, log);
    this.server.addService(semaphores.definition, semaphores.implementation);
    const rwlocks = withDecodeErrors(RWLockServiceService, rwlockService(engine, this.streams, log), registry, log);
    this.server.addService(rwlocks.definition, rwlocks.implementation);
    this.health = new HealthService(registry, {
      ...Object.fromEntries(READY_NAMES.map((s) => [s, "NOT_SERVING" as const])),
      liveness: "SERVING",
    });
    this.health.addToServer(this.server);
    let index: DescriptorIndex | undefined;
    const served = new Set<string>([...SERVICE_NAMES, "grpc.health.v1.Health"]);
    addReflection(this.server, () => (index ??= new DescriptorIndex(descriptors, served)));
  }

  /** Binds the address and starts serving; health stays NOT_SERVING until `setServing`. */
  static async start(engine: Engine, log: Logger, options: ServerOptions): Promise<{ server: DaemonServer; port: number }> {
    const server = new DaemonServer(engine, log, options);
    const port = await new Promise<number>((resolve, reject) =>
      server.server.bindAsync(options.address, ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
    );
    return { server, port };
  }

  setServing(serving: boolean): void {
    const status = serving ? "SERVING" : "NOT_SERVING";
    for (const service of READY_NAMES) this.health.setStatus(service, status);
  }

  /** Also serves grpc.health.v1 alone on `address`, for probes that cannot reach the loopback API port. */
  async serveHealthOn(address: string): Promise<number> {
    const server = new Server();
    this.health.addToServer(server);
    this.probeServer = server;
    return new Promise((resolve, reject) =>
      server.bindAsync(address, ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
    );
  }

  /** Stops taking new calls; open calls continue until `close`. */
  stopAccepting(): void {
    this.setServing(false);
    this.drained ??= new Promise((resolve) => this.server.tryShutdown(() => resolve()));
  }

  /**
   * Ends every stream still open with UNAVAILABLE and `reason`, gives calls
   * in flight a moment to finish (at most `timeoutMs`), then closes whatever
   * remains. Everything held is released before this is called, so the wait
   * is short: idle client connections may never drain by themselves.
   */
  async close(reason: string, timeoutMs: number): Promise<void> {
    this.stopAccepting();
    this.streams.endAll(reason);
    let timer: NodeJS.Timeout | undefined;
    const grace = Math.min(timeoutMs, DRAIN_GRACE_MS);
    await Promise.race([this.drained, new Promise((resolve) => (timer = setTimeout(resolve, grace)))]);
    clearTimeout(timer);
    this.server.forceShutdown();
    this.probeServer?.forceShutdown();
  }
}

/**
 * Node's HTTP/2 server closes a whole connection, with INTERNAL_ERROR, once a
 * client has reset streams faster than 33 a second beyond a burst of 1000:
 * its guard against "rapid reset" floods. Here every release of a held lock
 * and every end of an Observe is a client reset, so a busy app would lose
 * everything it holds on that connection. The API port serves the app in the
 * same pod, so the guard is raised far above any honest client's rate. grpc-js
 * forwards no such option; it builds the HTTP/2 server from this object, and
 * test/faults/stream-churn.test.ts fails if that ever stops working.
 */
function raiseStreamResetLimit(server: Server): void {
  const options = (server as unknown as { commonServerOptions?: Record<string, unknown> }).commonServerOptions;
  if (options === undefined) return;
  options.streamResetBurst = 1_000_000;
  options.streamResetRate = 100_000;
}
