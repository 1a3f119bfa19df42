// The composition root: store, engine, gRPC server and metrics wired
// together, and the order in which they start and stop.
import { randomBytes } from "node:crypto";
import type { Server as HttpServer } from "node:http";
import type { Config } from "./config.js";
import { Engine } from "./engine/index.js";
import type { Logger } from "./log.js";
import type { Metrics } from "./metrics.js";
import { DRAIN_GRACE_MS, DaemonServer } from "./server/server.js";
import { createStore } from "./store/create-store.js";
import type { LeaseStore } from "./store/lease-store.js";

export interface RunningDaemon {
  /** The port the gRPC server listens on (useful with port 0). */
  readonly port: number;
  /** The metrics port, when metrics are enabled. */
  readonly metricsPort: number | undefined;
  /** The health-only probe port, when enabled. */
  readonly healthPort: number | undefined;
  /** The holder identity this process writes: the configured identity plus a per-process id. */
  readonly identity: string;
  readonly engine: Engine;
  readonly store: LeaseStore;
  /** Resolves once the lease cache has synced with the store; health turns SERVING then. */
  readonly ready: Promise<void>;
  /**
   * Graceful shutdown: stop accepting calls, tell every holder and leader,
   * release everything held so others take over at once, end every stream with
   * UNAVAILABLE. Bounded by the configured shutdown timeout.
   */
  stop(): Promise<void>;
}

/** Starts serving; calls made before the store has synced wait for it (or fail, if it cannot sync). */
export async function startDaemon(config: Config, log: Logger, store?: LeaseStore): Promise<RunningDaemon> {
  const identity = `${config.identity}_${randomBytes(4).toString("hex")}`;
  // prom-client is loaded only when metrics are served: most sidecars never pay for it.
  const metrics: Metrics | undefined = config.metricsListen === "" ? undefined : new (await import("./metrics.js")).Metrics();
  const leaseStore = store ?? (await createStore(config, log, metrics?.storeObserver));
  if (leaseStore.distributed) {
    log.info({ backend: config.backend, reason: config.backendReason, store: leaseStore.describe() }, "lease store selected");
  } else {
    log.warn(
      { backend: config.backend, reason: config.backendReason },
      "memory backend: locks and elections exist only inside this daemon process and are NOT distributed",
    );
  }
  const engine = new Engine({
    store: leaseStore,
    identity,
    leaseDurationMs: config.leaseDurationMs,
    renewDeadlineMs: config.renewDeadlineMs,
    leasePrefix: config.leasePrefix,
    observer: metrics?.engineObserver,
    onStoreError: (name, doing, err) =>
      log.warn({ lease: name, err: err instanceof Error ? err.message : String(err) }, `store call failed, retrying: ${doing}`),
  });
  metrics?.readStatsFrom(() => engine.stats());

  const host = (address: string) => address.slice(0, address.lastIndexOf(":"));
  const { server, port } = await DaemonServer.start(engine, log, { address: config.listen, keepaliveMs: config.keepaliveMs });
  log.info({ address: `${host(config.listen)}:${port}`, identity }, "gRPC server listening");
  let metricsServer: HttpServer | undefined;
  let metricsPort: number | undefined;
  if (metrics !== undefined) {
    ({ server: metricsServer, port: metricsPort } = await metrics.serve(config.metricsListen));
    log.info({ address: `${host(config.metricsListen)}:${metricsPort}` }, "metrics listening on /metrics");
  }
  let healthPort: number | undefined;
  if (config.healthListen !== "") {
    healthPort = await server.serveHealthOn(config.healthListen);
    log.info({ address: `${host(config.healthListen)}:${healthPort}` }, "health probes listening");
  }

  const ready = engine.start().then(() => {
    if (engine.closed) return;
    server.setServing(true);
    log.info(
      { namespace: config.namespace || undefined, leaseDurationMs: config.leaseDurationMs, renewDeadlineMs: config.renewDeadlineMs },
      "ready: lease cache synced, serving",
    );
  });

  let stopping: Promise<void> | undefined;
  const stop = async () => {
    const started = Date.now();
    server.stopAccepting();
    // Ending the streams keeps a part of the budget of its own: the engine may spend the rest waiting
    // for holders to close their streams (3.7), and a stream cut off unended tells its client nothing.
    const endingMs = Math.min(DRAIN_GRACE_MS, config.shutdownTimeoutMs / 2);
    const released = await engine.shutdown(config.shutdownTimeoutMs - endingMs);
    await server.close("the daemon is shutting down", Math.max(endingMs, config.shutdownTimeoutMs - (Date.now() - started)));
    metricsServer?.close();
    if (released) log.info({ ms: Date.now() - started }, "stopped: everything held was released");
    else log.warn({ ms: Date.now() - started }, "stopped: what was still held at the shutdown timeout is left to expire");
  };
  return {
    port,
    metricsPort,
    healthPort,
    identity,
    engine,
    store: leaseStore,
    ready,
    stop: () => (stopping ??= stop()),
  };
}
