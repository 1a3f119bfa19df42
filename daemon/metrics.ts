// Prometheus metrics on their own port, fed by the engine's and the store's
// observer hooks. Gauges are read from the engine at scrape time.
import { createServer, type Server } from "node:http";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { type EngineObserver, type EngineStats, noStats } from "./engine/index.js";
import type { StoreObserver } from "./store/kubernetes/kubernetes-store.js";

const latencyBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export class Metrics {
  readonly registry = new Registry();
  readonly engineObserver: EngineObserver;
  readonly storeObserver: StoreObserver;
  private stats: () => EngineStats = noStats;

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    const stats = () => this.stats();
    new Gauge({
      name: "msync_locks_held",
      help: "Locks held through this daemon.",
      registers,
      collect() {
        this.set(stats().held.lock);
      },
    });
    new Gauge({
      name: "msync_elections_led",
      help: "Elections in which a candidate on this daemon leads.",
      registers,
      collect() {
        this.set(stats().held.election);
      },
    });
    new Gauge({
      name: "msync_waiters",
      help: "Acquire and Campaign calls waiting on this daemon.",
      labelNames: ["kind"],
      registers,
      collect() {
        const { waiting } = stats();
        this.set({ kind: "lock" }, waiting.lock);
        this.set({ kind: "election" }, waiting.election);
      },
    });

    const acquisitions = new Counter({
      name: "msync_acquisitions_total",
      help: "Leases acquired (locks and terms of leadership).",
      labelNames: ["kind"],
      registers,
    });
    const handoff = new Histogram({
      name: "msync_handoff_seconds",
      help: "From a waiting caller observing a lease free (released or expired), or asking for a free one, to acquiring it.",
      labelNames: ["kind"],
      buckets: latencyBuckets,
      registers,
    });
    const renew = new Histogram({
      name: "msync_renew_seconds",
      help: "Latency of successful renewals.",
      labelNames: ["kind"],
      buckets: latencyBuckets,
      registers,
    });
    const renewFailures = new Counter({
      name: "msync_renew_failures_total",
      help: "Renewals that failed (and were retried).",
      labelNames: ["kind", "reason"],
      registers,
    });
    const lost = new Counter({
      name: "msync_leases_lost_total",
      help: "Holders and leaders told to stop, by reason.",
      labelNames: ["kind", "reason"],
      registers,
    });
    const watchRestarts = new Counter({
      name: "msync_watch_restarts_total",
      help: "Restarts of the Lease watch, by reason.",
      labelNames: ["reason"],
      registers,
    });
    const watchEvents = new Counter({
      name: "msync_watch_events_total",
      help: "Events received on the Lease watch, by type (ADDED, MODIFIED, DELETED, BOOKMARK, ERROR).",
      labelNames: ["type"],
      registers,
    });
    const apiRequests = new Counter({
      name: "msync_api_requests_total",
      help: "Requests to the Kubernetes API server, by verb and HTTP code.",
      labelNames: ["verb", "code"],
      registers,
    });
    const apiLatency = new Histogram({
      name: "msync_api_request_seconds",
      help: "Latency of requests to the Kubernetes API server.",
      labelNames: ["verb"],
      buckets: latencyBuckets,
      registers,
    });

    this.engineObserver = {
      acquired: (kind, handoffMs) => {
        acquisitions.inc({ kind });
        if (handoffMs !== undefined) handoff.observe({ kind }, handoffMs / 1000);
      },
      renewed: (kind, ms) => renew.observe({ kind }, ms / 1000),
      renewFailed: (kind, reason) => renewFailures.inc({ kind, reason }),
      lost: (kind, reason) => lost.inc({ kind, reason }),
    };
    this.storeObserver = {
      request: (verb, code, ms) => {
        apiRequests.inc({ verb, code: String(code) });
        apiLatency.observe({ verb }, ms / 1000);
      },
      watchRestart: (reason) => watchRestarts.inc({ reason }),
      watchEvent: (type) => watchEvents.inc({ type }),
    };
  }

  /** Where the engine gauges come from, once the engine exists. */
  readStatsFrom(stats: () => EngineStats): void {
    this.stats = stats;
  }

  /** Serves GET /metrics on `address` (host:port); resolves with the bound port. */
  async serve(address: string): Promise<{ port: number; server: Server }> {
    const colon = address.lastIndexOf(":");
    const host = address.slice(0, colon).replace(/^\[|\]$/g, "");
    const server = createServer((request, response) => {
      if (request.method !== "GET" || request.url?.split("?")[0] !== "/metrics") {
        response.writeHead(404).end("not found; metrics are at /metrics\n");
        return;
      }
      this.registry.metrics().then(
        (text) => response.writeHead(200, { "content-type": this.registry.contentType }).end(text),
        (err: Error) => response.writeHead(500).end(err.message),
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(Number(address.slice(colon + 1)), host, () => resolve());
    });
    const bound = server.address();
    return { port: typeof bound === "object" && bound !== null ? bound.port : 0, server };
  }
}
