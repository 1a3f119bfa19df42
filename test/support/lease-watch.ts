// A test's own watch on one Lease, straight to the harness's API server: every
// version it tells, with the local time (performance.now()) the test heard
// it, so that a test can await a state of the stored Lease instead of polling
// it, and compare what daemons did with when the store showed it. It costs the
// API server one WATCH request (counted when it ends) and nothing else: no
// list, no get.
import * as https from "node:https";
import type { ControlPlane } from "../controlplane/controlplane.js";

/** A Lease as the API server sends it, the fields tests read. */
export interface StoredLease {
  metadata: {
    name: string;
    uid: string;
    resourceVersion: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec: { holderIdentity?: string; leaseDurationSeconds?: number; leaseTransitions?: number; renewTime?: string };
}

export interface LeaseVersion {
  readonly type: "ADDED" | "MODIFIED" | "DELETED";
  /** performance.now() when the test heard of it. */
  readonly at: number;
  readonly lease: StoredLease;
}

export class LeaseWatch {
  /** Every version told, in order. */
  readonly versions: LeaseVersion[] = [];
  private readonly listeners = new Set<() => void>();
  private request: ReturnType<typeof https.request> | undefined;
  private ended: Error | undefined;

  private constructor() {}

  /**
   * Watches the Lease `name` in `namespace`, from its current state on (an
   * existing Lease is told first, as ADDED). Resolves once the watch is open.
   */
  static async start(cp: ControlPlane, namespace: string, name: string): Promise<LeaseWatch> {
    const watch = new LeaseWatch();
    await watch.open(cp, namespace, name);
    return watch;
  }

  /** The Lease as last told; undefined before it exists and after it was deleted. */
  get current(): StoredLease | undefined {
    const last = this.versions.at(-1);
    return last === undefined || last.type === "DELETED" ? undefined : last.lease;
  }

  /** Where the versions told from now on will start: pass it to `next`. */
  mark(): number {
    return this.versions.length;
  }

  /** The first version at index `from` or later for which `check` holds, once it is told. */
  next(check: (version: LeaseVersion) => boolean, what: string, from = 0, timeoutMs = 20_000): Promise<LeaseVersion> {
    const find = () => this.versions.slice(from).find(check);
    const found = find();
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => done(new Error(`the Lease was not told ${what} within ${timeoutMs} ms; last: ${this.describe()}`)),
        timeoutMs,
      );
      const listener = () => {
        const version = find();
        if (version !== undefined) return done(undefined, version);
        if (this.ended !== undefined) done(new Error(`the watch ended before the Lease was told ${what}: ${this.ended.message}`));
      };
      const done = (error: Error | undefined, version?: LeaseVersion) => {
        clearTimeout(timer);
        this.listeners.delete(listener);
        if (error === undefined) resolve(version!);
        else reject(error);
      };
      this.listeners.add(listener);
    });
  }

  /** Calls `listener` after every version told (and when the watch ends); returns how to stop. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  stop(): void {
    this.ended ??= new Error("stopped");
    this.request?.destroy();
  }

  private describe(): string {
    const last = this.versions.at(-1);
    return last === undefined ? "nothing" : `${last.type} ${JSON.stringify(last.lease.metadata.annotations ?? {})}`;
  }

  private open(cp: ControlPlane, namespace: string, name: string): Promise<void> {
    const query = `watch=true&timeoutSeconds=600&fieldSelector=${encodeURIComponent(`metadata.name=${name}`)}`;
    const url = new URL(`/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases?${query}`, cp.server);
    return new Promise((resolve, reject) => {
      const req = https.request(
        url,
        { headers: { Authorization: `Bearer ${cp.tokens.admin}`, Accept: "application/json" }, ca: cp.caPem },
        (res) => {
          if (res.statusCode !== 200) {
            reject(new Error(`watch ${name}: HTTP ${res.statusCode}`));
            res.resume();
            return;
          }
          resolve();
          let buffer = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => {
            buffer += chunk;
            let newline: number;
            while ((newline = buffer.indexOf("\n")) >= 0) {
              const line = buffer.slice(0, newline);
              buffer = buffer.slice(newline + 1);
              if (line.trim() !== "") this.told(JSON.parse(line) as { type: string; object: StoredLease });
            }
          });
          const end = (error: Error) => {
            this.ended ??= error;
            for (const listener of [...this.listeners]) listener();
          };
          res.on("end", () => end(new Error("the API server ended the watch")));
          res.on("error", end);
        },
      );
      req.on("error", (error) => {
        reject(error);
        this.ended ??= error;
        for (const listener of [...this.listeners]) listener();
      });
      this.request = req;
      req.end();
    });
  }

  private told(event: { type: string; object: StoredLease }): void {
    if (event.type !== "ADDED" && event.type !== "MODIFIED" && event.type !== "DELETED") {
      this.ended ??= new Error(`the watch told ${event.type}: ${JSON.stringify(event.object)}`);
    } else {
      this.versions.push({ type: event.type, at: performance.now(), lease: event.object });
    }
    for (const listener of [...this.listeners]) listener();
  }
}
