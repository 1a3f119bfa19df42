// The harness's own watch on the managed Leases of a run's namespace, straight
// to the API server (never through a fault proxy). Every version it sees goes
// into the history as a "lease" event, so the checker can verify the store
// side: tokens never go back, one holder per token, no holder writes a token
// again after releasing it. It resumes from its last resourceVersion after
// the API server restarts and relists after 410 Gone (versions in between are
// then missed, which the checker only counts as unverified).
import * as https from "node:https";
import type { HistoryWriter } from "./history.js";

interface LeaseObject {
  metadata?: { name?: string; resourceVersion?: string; annotations?: Record<string, string> };
  spec?: { holderIdentity?: string; leaseTransitions?: number; renewTime?: string };
}

export class LeaseRecorder {
  private stopped = false;
  private request: ReturnType<typeof https.request> | undefined;
  private resourceVersion = "";
  private done: Promise<void> | undefined;
  versions = 0;
  relists = 0;

  constructor(
    private readonly server: string,
    private readonly caPem: string,
    private readonly token: string,
    private readonly namespace: string,
    private readonly history: HistoryWriter,
  ) {}

  start(): void {
    this.done = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.request?.destroy();
    await this.done;
  }

  private async run(): Promise<void> {
    let needList = true;
    while (!this.stopped) {
      try {
        if (needList) {
          await this.list();
          needList = false;
        }
        const outcome = await this.watch();
        if (outcome === "gone") {
          this.relists += 1;
          needList = true;
        }
      } catch {
        // API server down or restarting: try again shortly.
      }
      if (!this.stopped) await new Promise((resolve) => setTimeout(resolve, 300));
    }
  }

  private path(query: string): string {
    return `/apis/coordination.k8s.io/v1/namespaces/${this.namespace}/leases?labelSelector=${encodeURIComponent("app.kubernetes.io/managed-by=metaparticle-sync")}${query}`;
  }

  private async list(): Promise<void> {
    const body = await new Promise<string>((resolve, reject) => {
      const req = https.request(
        new URL(this.path(""), this.server),
        { headers: { Authorization: `Bearer ${this.token}`, Accept: "application/json" }, ca: this.caPem, timeout: 10_000 },
        (res) => {
          let text = "";
          res.on("data", (c: Buffer) => (text += c.toString()));
          res.on("end", () => (res.statusCode === 200 ? resolve(text) : reject(new Error(`list: HTTP ${res.statusCode}`))));
          res.on("error", reject);
        },
      );
      req.on("timeout", () => req.destroy(new Error("list timed out")));
      req.on("error", reject);
      req.end();
    });
    const list = JSON.parse(body) as { metadata: { resourceVersion: string }; items: LeaseObject[] };
    for (const item of list.items) this.record(item);
    this.resourceVersion = list.metadata.resourceVersion;
  }

  private watch(): Promise<"ended" | "gone"> {
    return new Promise((resolve, reject) => {
      const url = new URL(this.path(`&watch=1&allowWatchBookmarks=true&resourceVersion=${this.resourceVersion}`), this.server);
      const req = https.request(
        url,
        { headers: { Authorization: `Bearer ${this.token}`, Accept: "application/json" }, ca: this.caPem },
        (res) => {
          if (res.statusCode === 410) return resolve("gone");
          if (res.statusCode !== 200) return reject(new Error(`watch: HTTP ${res.statusCode}`));
          let buffer = "";
          let gone = false;
          res.on("data", (chunk: Buffer) => {
            buffer += chunk.toString();
            let newline: number;
            while ((newline = buffer.indexOf("\n")) >= 0) {
              const line = buffer.slice(0, newline);
              buffer = buffer.slice(newline + 1);
              if (line.trim() === "") continue;
              const event = JSON.parse(line) as { type: string; object: LeaseObject & { code?: number } };
              if (event.type === "ERROR") {
                if (event.object.code === 410) gone = true;
                continue;
              }
              const rv = event.object.metadata?.resourceVersion;
              if (rv !== undefined) this.resourceVersion = rv;
              if (event.type === "ADDED" || event.type === "MODIFIED") this.record(event.object);
            }
          });
          res.on("end", () => resolve(gone ? "gone" : "ended"));
          res.on("error", reject);
          res.on("aborted", () => reject(new Error("watch aborted")));
        },
      );
      this.request = req;
      req.on("error", reject);
      req.end();
    });
  }

  private record(lease: LeaseObject): void {
    this.versions += 1;
    this.history.record({
      ev: "lease",
      name: lease.metadata?.name,
      resourceVersion: lease.metadata?.resourceVersion,
      holderIdentity: lease.spec?.holderIdentity ?? "",
      transitions: lease.spec?.leaseTransitions ?? 0,
      renewTime: lease.spec?.renewTime,
      detail: lease.metadata?.annotations?.["sync.metaparticle.io/queue"],
    });
  }
}
