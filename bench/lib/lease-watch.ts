// A watch on one Lease, straight from the API server, timestamping every
// change as the harness sees it: splits a handoff into its steps.
import { request } from "node:https";
import type { IncomingMessage } from "node:http";
import type { ControlPlane } from "../../test/controlplane/controlplane.js";
import { nowMs } from "./clock.js";

export interface LeaseChange {
  /** CLOCK_MONOTONIC ms at which the event arrived. */
  readonly at: number;
  readonly type: string;
  readonly holderIdentity: string;
  readonly transitions: number;
  /** The Lease as the event carried it. */
  readonly object: LeaseObject;
}

/** A Lease as the API server serves it, as far as the benchmark reads or writes it. */
export interface LeaseObject {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; resourceVersion?: string; [key: string]: unknown };
  spec: { holderIdentity?: string; leaseTransitions?: number; leaseDurationSeconds?: number; [key: string]: unknown };
}

export class LeaseWatch {
  readonly changes: LeaseChange[] = [];
  private response: IncomingMessage | undefined;
  private closed = false;
  private readonly waiters: Array<{ match: (change: LeaseChange) => boolean; resolve: (change: LeaseChange) => void }> = [];

  private constructor(
    private readonly cp: ControlPlane,
    private readonly path: string,
  ) {}

  /** Starts watching `name` in `namespace`; resolves once the watch is open. */
  static async start(cp: ControlPlane, namespace: string, name: string): Promise<LeaseWatch> {
    const path =
      `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases` +
      `?watch=true&fieldSelector=${encodeURIComponent(`metadata.name=${name}`)}&timeoutSeconds=3600`;
    const watch = new LeaseWatch(cp, path);
    await watch.open();
    return watch;
  }

  private open(): Promise<void> {
    return new Promise((resolve, reject) => {
      const url = new URL(this.cp.server + this.path);
      const req = request(
        url,
        {
          method: "GET",
          ca: this.cp.caPem || undefined,
          headers: { Authorization: `Bearer ${this.cp.tokens.admin}`, Accept: "application/json" },
        },
        (res) => {
          if (res.statusCode !== 200) return reject(new Error(`watch ${this.path}: HTTP ${res.statusCode}`));
          this.response = res;
          let buffer = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => {
            const at = nowMs();
            buffer += chunk;
            let newline: number;
            while ((newline = buffer.indexOf("\n")) >= 0) {
              const line = buffer.slice(0, newline);
              buffer = buffer.slice(newline + 1);
              if (line.trim() === "") continue;
              const event = JSON.parse(line) as { type: string; object: LeaseObject };
              const change: LeaseChange = {
                at,
                type: event.type,
                holderIdentity: event.object?.spec?.holderIdentity ?? "",
                transitions: event.object?.spec?.leaseTransitions ?? 0,
                object: event.object,
              };
              this.changes.push(change);
              this.wake(change);
            }
          });
          res.on("error", () => {});
          resolve();
        },
      );
      req.on("error", (err) => (this.closed ? undefined : reject(err)));
      req.end();
    });
  }

  /** Resolves with the first change from now on that matches. */
  next(match: (change: LeaseChange) => boolean): Promise<LeaseChange> {
    return new Promise((resolve) => this.waiters.push({ match, resolve }));
  }

  private wake(change: LeaseChange): void {
    for (const waiter of this.waiters.filter((w) => w.match(change))) {
      this.waiters.splice(this.waiters.indexOf(waiter), 1);
      waiter.resolve(change);
    }
  }

  /** The first change after `at` that matches, if any. */
  firstAfter(at: number, match: (change: LeaseChange) => boolean = () => true): LeaseChange | undefined {
    return this.changes.find((c) => c.at > at && match(c));
  }

  close(): void {
    this.closed = true;
    this.response?.destroy();
  }
}
