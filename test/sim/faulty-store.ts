// One simulated daemon's connection to the shared memory store, with the
// faults of a real network and API server injected on demand: latency, a
// write applied whose reply is lost, a call that hangs until its caller's
// deadline, a 409, a watch that drops events and relists, and a process that
// is frozen (its replies and watch events wait until it runs again) or dead
// (nothing reaches it any more). It implements the engine's LeaseStore, so the
// engine runs on it unchanged.
import type { Clock, Timer } from "../../daemon/engine/clock.js";
import type { CallOptions, LeaseFields, LeaseRecord, LeaseStore, WatchEvent, WatchHandle } from "../../daemon/store/lease-store.js";
import { StoreError, type WatchScope, inScope } from "../../daemon/store/lease-store.js";
import type { MemoryStore, MemoryWatchHandle, StoreOperation } from "../../daemon/store/memory/memory-store.js";
import { ConnectionStore } from "../support/connection-store.js";

/** What happens to one store call. */
export type CallFault =
  | { readonly kind: "none" }
  /** The reply comes this much later than usual. */
  | { readonly kind: "latency"; readonly ms: number }
  /** An update loses to a concurrent write (409); nothing is applied. */
  | { readonly kind: "conflict" }
  /** The write is applied, but its caller sees "unavailable" after `ms`, as after a reset connection or a timeout. */
  | { readonly kind: "lost-reply"; readonly ms: number }
  /** No answer until the caller's signal aborts (or the HTTP client's own timeout); `applied`: the write went through. */
  | { readonly kind: "hang"; readonly applied: boolean };

export interface FaultHooks {
  /** Chooses the fault of one call; `acquiring`: a write that makes this connection's daemon the holder. */
  decide(operation: StoreOperation, name: string, hasDeadline: boolean, acquiring: boolean): CallFault;
  /** A call with a fault began; returns what to call once it has answered. */
  faultBegan(fault: CallFault, operation: StoreOperation, name: string, hasDeadline: boolean): () => void;
  /** Told of every call and its outcome, for the trace (optional). */
  traceCall?(line: string): void;
  /**
   * A held (or held-off) lease this daemon's watch lists for the first time
   * (its scope grew to cover it): the daemon counts its expiry from now
   * (docs/design.md 3.1, 3.10).
   */
  firstSight?(lease: LeaseRecord): void;
}

/** How long a call without a deadline hangs: the HTTP client's own timeout, far past the end of any run. */
export const HTTP_CLIENT_TIMEOUT_MS = 300_000;

export class FaultyStore implements LeaseStore {
  readonly distributed = true;
  /** Latency of every call, without fault: the network and the API server on a normal day. */
  baseLatencyMs = 0;
  /** Extra latency of every watch event (0: none). Events keep their order. */
  watchDelayMs = 0;
  /** Store calls by lease name, as simulated times: the liveness monitor counts them. */
  readonly callTimes = new Map<string, number[]>();
  private readonly connection: ConnectionStore;
  private listener: ((event: WatchEvent) => void) | undefined;
  private inner: MemoryWatchHandle | undefined;
  /** The scope of the last "synced" event delivered to the daemon. */
  private deliveredScope: WatchScope = new Set();
  private dropping = false;
  private frozen = false;
  private dead = false;
  private readonly held: Array<() => void> = [];
  private lastEventAt = 0;
  private clientRead = false;

  constructor(
    private readonly shared: MemoryStore,
    /** Simulated time: the network's, which no daemon fault stops. */
    private readonly clock: Clock,
    private readonly hooks: FaultHooks,
  ) {
    this.connection = new ConnectionStore(shared);
  }

  describe(): string {
    return "simulated connection to a shared memory store";
  }

  isNewer(a: string, b: string): boolean {
    return this.shared.isNewer(a, b);
  }

  get(name: string, options?: CallOptions): Promise<LeaseRecord | undefined> {
    return this.call("get", name, options?.signal, () => this.connection.get(name));
  }

  create(fields: LeaseFields, options?: CallOptions): Promise<LeaseRecord> {
    return this.call("create", fields.name, options?.signal, () => this.connection.create(fields), fields.holderIdentity !== "");
  }

  update(lease: LeaseRecord, options?: CallOptions): Promise<LeaseRecord> {
    const current = this.shared.peek(lease.name);
    const acquiring = lease.holderIdentity !== "" && current !== undefined && lease.transitions !== current.transitions;
    return this.call("update", lease.name, options?.signal, () => this.connection.update(lease), acquiring);
  }

  watch(listener: (event: WatchEvent) => void, names?: ReadonlySet<string>): WatchHandle {
    this.listener = listener;
    const inner = this.connection.watch((event) => this.fromStore(event), names);
    this.inner = inner;
    return {
      stop: async () => {
        if (this.listener === listener) this.listener = undefined;
        await inner.stop();
      },
      rescope: () => inner.rescope(),
    };
  }

  /** Runs `fn` (a read a client asked for) without counting its store call against the daemon. */
  untracked<T>(fn: () => T): T {
    this.clientRead = true;
    try {
      return fn();
    } finally {
      this.clientRead = false;
    }
  }

  /**
   * Runs `fn` when the daemon process can: at once, after a freeze, or never
   * once it is dead. Replies, watch events and client requests all come
   * through here, in order.
   */
  deliver(fn: () => void): void {
    if (this.dead) return;
    if (this.frozen) this.held.push(fn);
    else fn();
  }

  /** SIGSTOP: what arrives for the daemon waits. */
  freeze(): void {
    this.frozen = true;
  }

  /** SIGCONT: what arrived meanwhile is handled, in order (the caller then lets timers run). */
  thaw(): void {
    this.frozen = false;
    for (const fn of this.held.splice(0)) {
      if (this.dead || this.frozen) break;
      fn();
    }
  }

  /** SIGKILL: nothing reaches the daemon again. */
  kill(): void {
    this.dead = true;
    this.held.length = 0;
    this.connection.partition();
  }

  /** The network between daemon and store is cut: calls fail, watch events are lost; healing relists. */
  partition(): void {
    this.connection.partition();
  }

  heal(): void {
    this.connection.heal();
  }

  /** The watch breaks: events are lost for `ms`, then the store relists (a 410 Gone and a fresh list). */
  restartWatch(ms: number, withError: boolean): void {
    this.dropping = true;
    if (withError) this.enqueue({ type: "error", error: new StoreError("unavailable", "watch: connection reset (simulated)") });
    this.clock.setTimer(ms, () => {
      this.dropping = false;
      this.inner?.relist();
    });
  }

  private fromStore(event: WatchEvent): void {
    if (this.dropping) return;
    this.enqueue(event);
  }

  /** Delivers a watch event after the current watch delay, never before an earlier one. */
  private enqueue(event: WatchEvent): void {
    const now = this.clock.now();
    const at = Math.max(now + this.watchDelayMs, this.lastEventAt);
    this.lastEventAt = at;
    const deliver = () =>
      this.deliver(() => {
        if (event.type === "upsert") this.hear(event.lease);
        if (event.type === "synced") {
          for (const lease of event.leases) {
            this.hear(lease);
            // Held, or free but held off (a holder cleared by hand, a restored Lease): either counts from now.
            const heldOff = lease.holderIdentity !== "" || (lease.writtenHolder ?? "") !== "";
            if (heldOff && !inScope(this.deliveredScope, lease.name)) this.hooks.firstSight?.(lease);
          }
          this.deliveredScope = event.scope;
        }
        this.listener?.(event);
      });
    if (at <= now) deliver();
    else this.clock.setTimer(at - now, deliver);
  }

  /**
   * The highest transition count of each lease this daemon has heard of from
   * the store (watch events and reads; its own writes count once it sees them
   * on the watch). A token above it that repeats one issued elsewhere is a
   * token this daemon could not know of (docs/design.md 3.2).
   */
  private readonly heard = new Map<string, number>();

  heardOf(name: string): number {
    return this.heard.get(name) ?? 0;
  }

  /** For each token this daemon wrote (name#token), what it had heard of when it sent that write. */
  private readonly heardAtWrite = new Map<string, number>();

  /** What this daemon had heard of the lease when it sent the write that issued `token`. */
  heardWhenIssued(name: string, token: number): number | undefined {
    return this.heardAtWrite.get(`${name}#${token}`);
  }

  private hear(lease: LeaseRecord | undefined): void {
    if (lease !== undefined && lease.transitions > this.heardOf(lease.name)) this.heard.set(lease.name, lease.transitions);
  }

  private call<T>(
    operation: StoreOperation,
    name: string,
    signal: AbortSignal | undefined,
    perform: () => Promise<T>,
    acquiring = false,
  ): Promise<T> {
    if (!this.clientRead) {
      let times = this.callTimes.get(name);
      if (times === undefined) this.callTimes.set(name, (times = []));
      times.push(this.clock.now());
    }
    const hasDeadline = signal !== undefined;
    let fault = this.hooks.decide(operation, name, hasDeadline, acquiring);
    if (operation !== "update" && fault.kind === "conflict") fault = { kind: "none" };
    if (operation === "get" && fault.kind === "lost-reply") fault = { kind: "hang", applied: false };
    const ended = fault.kind === "none" ? undefined : this.hooks.faultBegan(fault, operation, name, hasDeadline);
    const heardAtSend = this.heardOf(name);
    const promise = this.perform(operation, name, signal, fault, ended, perform);
    if (operation !== "get") {
      promise.then(
        (value) => this.heardAtWrite.set(`${name}#${(value as LeaseRecord).transitions}`, heardAtSend),
        () => {},
      );
    }
    if (operation === "get")
      promise.then(
        (value) => this.hear(value as LeaseRecord | undefined),
        () => {},
      );
    const trace = this.hooks.traceCall;
    if (trace !== undefined) {
      const call = `${operation} ${name}${hasDeadline ? "" : " (no deadline)"}${fault.kind === "none" ? "" : ` [${fault.kind}]`}`;
      trace(`${call} sent`);
      promise.then(
        (value) => trace(`${call}: ok${value !== undefined && typeof value === "object" ? ` ${describe(value as LeaseRecord)}` : ""}`),
        (err: unknown) => trace(`${call}: failed ${(err as Error).message}`),
      );
    }
    return promise;
  }

  private perform<T>(
    operation: StoreOperation,
    name: string,
    signal: AbortSignal | undefined,
    fault: CallFault,
    ended: (() => void) | undefined,
    perform: () => Promise<T>,
  ): Promise<T> {
    const hasDeadline = signal !== undefined;
    return new Promise<T>((resolve, reject) => {
      let answered = false;
      let timer: Timer | undefined;
      const answer = (fn: () => void) => {
        if (answered) return;
        answered = true;
        timer?.cancel();
        signal?.removeEventListener("abort", abandon);
        ended?.();
        this.deliver(fn);
      };
      const fail = (error: unknown) => answer(() => reject(error));
      const abandon = () => fail(new StoreError("unavailable", `${operation} ${name}: abandoned at the caller's deadline`));
      const after = (ms: number, fn: () => void) => {
        if (ms <= 0) fn();
        else timer = this.clock.setTimer(ms, fn);
      };
      const run = () => perform().then((value) => answer(() => resolve(value)), fail);
      if (signal?.aborted) return abandon();
      signal?.addEventListener("abort", abandon, { once: true });
      switch (fault.kind) {
        case "none":
          return after(this.baseLatencyMs, run);
        case "latency":
          return after(this.baseLatencyMs + fault.ms, run);
        case "conflict":
          return after(this.baseLatencyMs, () =>
            fail(new StoreError("conflict", `update ${name}: the object has been modified (simulated 409)`)),
          );
        case "lost-reply":
          return after(this.baseLatencyMs, () => {
            perform().then(
              () =>
                after(fault.ms, () =>
                  fail(new StoreError("unavailable", `${operation} ${name}: reply lost (simulated; the write was applied)`)),
                ),
              fail,
            );
          });
        case "hang":
          if (fault.applied) perform().catch(() => {});
          if (!hasDeadline) {
            after(HTTP_CLIENT_TIMEOUT_MS, () => fail(new StoreError("unavailable", `${operation} ${name}: HTTP client timeout`)));
          }
          return;
      }
    });
  }
}

function describe(r: LeaseRecord): string {
  return `rv ${r.version} holder=${r.holderIdentity || "-"} transitions=${r.transitions} lease=${r.leaseDurationSeconds}s queue=[${r.queue.join(",")}]`;
}
