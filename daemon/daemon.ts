// The composition root: store, engine and gRPC server wired together, and
// the order in which they start and stop.
import { randomBytes } from "node:crypto";
import type { Config } from "./config.js";
import { Engine } from "./engine/index.js";
import type { Logger } from "./log.js";
import { DaemonServer } from "./server/server.js";
import { createStore } from "./store/create-store.js";
import type { LeaseStore } from "./store/lease-store.js";

export interface RunningDaemon {
  /** The port the gRPC server listens on (useful with port 0). */
  readonly port: number;
  /** The holder identity this process writes: the configured identity plus a per-process id. */
  readonly identity: string;
  readonly engine: Engine;
  readonly store: LeaseStore;
  /**
   * Graceful shutdown: stop accepting calls, tell every holder and leader,
   * release everything held so others take over at once, end every stream with
   * UNAVAILABLE. Bounded by the configured shutdown timeout.
   */
  stop(): Promise<void>;
}

export async function startDaemon(config: Config, log: Logger, store?: LeaseStore): Promise<RunningDaemon> {
  const identity = `${config.identity}_${randomBytes(4).toString("hex")}`;
  const leaseStore = store ?? (await createStore(config, log));
  const where = leaseStore.describe();
  if (leaseStore.distributed) log.info({ backend: config.backend, reason: config.backendReason, store: where }, "lease store selected");
  else
    log.warn(
      { backend: config.backend, reason: config.backendReason },
      "memory backend: locks and elections exist only inside this daemon process and are NOT distributed",
    );
  const engine = new Engine({
    store: leaseStore,
    identity,
    leaseDurationMs: config.leaseDurationMs,
    renewDeadlineMs: config.renewDeadlineMs,
    leasePrefix: config.leasePrefix,
    onStoreError: (name, doing, err) =>
      log.warn({ lease: name, err: err instanceof Error ? err.message : String(err) }, `store call failed, retrying: ${doing}`),
  });
  const { server, port } = await DaemonServer.start(engine, log, { address: config.listen, keepaliveMs: config.keepaliveMs });
  const host = config.listen.slice(0, config.listen.lastIndexOf(":"));
  log.info({ address: `${host}:${port}`, identity }, "gRPC server listening");
  await engine.start();
  server.setServing(true);
  log.info(
    { namespace: config.namespace || undefined, leaseDurationMs: config.leaseDurationMs, renewDeadlineMs: config.renewDeadlineMs },
    "ready: lease cache synced, serving",
  );

  let stopping: Promise<void> | undefined;
  const stop = async () => {
    const started = Date.now();
    server.stopAccepting();
    await engine.shutdown(config.shutdownTimeoutMs);
    await server.close("the daemon is shutting down", Math.max(0, config.shutdownTimeoutMs - (Date.now() - started)));
    log.info({ ms: Date.now() - started }, "stopped: everything held was released");
  };
  return {
    port,
    identity,
    engine,
    store: leaseStore,
    stop: () => (stopping ??= stop()),
  };
}
