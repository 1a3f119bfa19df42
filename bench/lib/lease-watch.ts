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
}

export class LeaseWatch {
  readonly changes: LeaseChange[] = [];
  private response: IncomingMessage | undefined;
  private closed = false;

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
              const event = JSON.parse(line) as {
                type: string;
                object?: { spec?: { holderIdentity?: string; leaseTransitions?: number } };
              };
              this.changes.push({
                at,
                type: event.type,
                holderIdentity: event.object?.spec?.holderIdentity ?? "",
                transitions: event.object?.spec?.leaseTransitions ?? 0,
              });
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

  /** The first change after `at` that matches, if any. */
  firstAfter(at: number, match: (change: LeaseChange) => boolean = () => true): LeaseChange | undefined {
    return this.changes.find((c) => c.at > at && match(c));
  }

  close(): void {
    this.closed = true;
    this.response?.destroy();
  }
}
