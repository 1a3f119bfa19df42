// One simulated daemon's connection to the shared memory store, with the
// faults of a real network and API server injected on demand: latency, a
// write applied whose reply is lost, a call that hangs until its caller's
// deadline, a 409, a watch that drops events and relists, and a process that
// is frozen (its replies and watch events wait until it runs again) or dead
// (nothing reaches it any more). It implements the engine's LeaseStore, so the
// engine runs on it unchanged.
//
// On the Kubernetes backend the daemon's calls go through the real
// KubernetesStore instead, and the faults apply below it, at its connection to
// the simulated API server (kube-connection.ts); this class then only keeps
// what the oracles read (calls by name, what the daemon heard, first sights).
import type { Clock } from "../../daemon/engine/clock.js";
import type { KubernetesStore } from "../../daemon/store/kubernetes/kubernetes-store.js";
import type {
  CallOptions,
  LeaseFields,
  LeaseRecord,
  LeaseStore,
  Seat,
  WatchEvent,
  WatchHandle,
  WatchOptions,
} from "../../daemon/store/lease-store.js";
import { StoreError, type WatchScope, inScope } from "../../daemon/store/lease-store.js";
import { MemoryStore, type MemoryWatchHandle, type StoreOperation } from "../../daemon/store/memory/memory-store.js";
import { ConnectionStore, type PartitionMode } from "../support/connection-store.js";
import { type CallFault, runWithFault } from "./call-faults.js";
import type { KubeBackend } from "./kube-backend.js";
import type { SimApiConnection } from "./kube-connection.js";

export { type CallFault, HTTP_CLIENT_TIMEOUT_MS } from "./call-faults.js";

/** The daemon's own time and randomness, for the store code that runs in its process (the Kubernetes store's watch). */
export interface DaemonSide {
  readonly clock: Clock;
  readonly random: () => number;
}

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
  /** Kubernetes: a request waited its turn at an API server that cannot keep up (kube-connection.ts). */
  waited?(operation: StoreOperation | "list", name: string, waitMs: number, deaf: boolean): void;
  /** Kubernetes: the daemon heard no watch event from `from` to `to` while a request of its waited in the backlog. */
  watchHeldUp?(from: number, to: number): void;
  /** Kubernetes: a faulty read began while no watch of the daemon was open (kube-connection.ts); returns what ends it. */
  deafRead?(): () => void;
}

export class FaultyStore implements LeaseStore {
  readonly distributed = true;
  /** Latency of every call, without fault: the network and the API server on a normal day. */
  baseLatencyMs = 0;
  /** Extra latency of every watch event (0: none). Events keep their order. */
  watchDelayMs = 0;
  /** Store calls by lease name, as simulated times: the liveness monitor counts them. */
  readonly callTimes = new Map<string, number[]>();
  /** The memory backend: the connection whose calls this class makes faulty. */
  private readonly connection: ConnectionStore | undefined;
  /** The Kubernetes backend: the real store, on a connection that makes its own faults. */
  private readonly kube: { readonly store: KubernetesStore; readonly connection: SimApiConnection } | undefined;
  private readonly shared: MemoryStore | KubeBackend;
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
    shared: MemoryStore | KubeBackend,
    /** Simulated time: the network's, which no daemon fault stops. */
    private readonly clock: Clock,
    private readonly hooks: FaultHooks,
    daemon?: DaemonSide,
  ) {
    this.shared = shared;
    if (shared instanceof MemoryStore) {
      this.connection = new ConnectionStore(shared);
      return;
    }
    this.kube = shared.connect(
      clock,
      {
        decide: (operation, name, hasDeadline, acquiring) => hooks.decide(operation, name, hasDeadline, acquiring),
        faultBegan: (fault, operation, name, hasDeadline) => hooks.faultBegan(fault, operation, name, hasDeadline),
        deliver: (fn) => this.deliver(fn),
        baseLatencyMs: () => this.baseLatencyMs,
        watchDelayMs: () => this.watchDelayMs,
        traceCall: hooks.traceCall,
        waited: hooks.waited,
        watchHeldUp: hooks.watchHeldUp,
        deafRead: hooks.deafRead,
      },
      daemon?.clock ?? clock,
      daemon?.random ?? (() => 0.5),
    );
  }

  describe(): string {
    return this.kube === undefined ? "simulated connection to a shared memory store" : this.kube.store.describe();
  }

  /** As many calls at once as the Kubernetes store allows itself; no limit on the memory store. */
  get maxCallsInFlight(): number | undefined {
    return this.kube?.store.maxCallsInFlight;
  }

  isNewer(a: string, b: string): boolean {
    return this.shared.isNewer(a, b);
  }

  get(name: string, options?: CallOptions): Promise<LeaseRecord | undefined> {
    if (this.kube !== undefined) return this.through("get", name, this.kube.store.get(name, options));
    return this.call("get", name, options?.signal, () => this.connection!.get(name));
  }

  create(fields: LeaseFields, options?: CallOptions): Promise<LeaseRecord> {
    if (this.kube !== undefined) return this.through("create", fields.name, this.kube.store.create(fields, options));
    return this.call("create", fields.name, options?.signal, () => this.connection!.create(fields), fields.holderIdentity !== "");
  }

  update(lease: LeaseRecord, options?: CallOptions): Promise<LeaseRecord> {
    if (this.kube !== undefined) return this.through("update", lease.name, this.kube.store.update(lease, options));
    const current = this.shared.peek(lease.name);
    const acquiring = lease.holderIdentity !== "" && current !== undefined && lease.transitions !== current.transitions;
    return this.call("update", lease.name, options?.signal, () => this.connection!.update(lease), acquiring);
  }

  markWaiting(lease: LeaseRecord, identity: string, waiting: boolean, options?: CallOptions): Promise<LeaseRecord> {
    if (this.kube !== undefined) return this.through("patch", lease.name, this.kube.store.markWaiting(lease, identity, waiting, options));
    return this.call("patch", lease.name, options?.signal, () => this.connection!.markWaiting(lease, identity, waiting));
  }

  patchSeat(lease: LeaseRecord, identity: string, expected: Seat, next: Seat, options?: CallOptions): Promise<LeaseRecord> {
    if (this.kube !== undefined)
      return this.through("patch", lease.name, this.kube.store.patchSeat(lease, identity, expected, next, options));
    return this.call("patch", lease.name, options?.signal, () => this.connection!.patchSeat(lease, identity, expected, next));
  }

  watch(listener: (event: WatchEvent) => void, names?: ReadonlySet<string>, options?: WatchOptions): WatchHandle {
    this.listener = listener;
    if (this.kube !== undefined) {
      // Delays, freezes and breaks happen below, on the connection: what the store reports is the daemon's to hear now.
      const inner = this.kube.store.watch((event) => this.deliverNow(event), names, options);
      return {
        stop: async () => {
          if (this.listener === listener) this.listener = undefined;
          await inner.stop();
        },
        rescope: () => inner.rescope(),
      };
    }
    const inner = this.connection!.watch((event) => this.fromStore(event), names);
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
    // What arrived meanwhile is handled in arrival order, requests and watch events alike, so a request may be
    // decided on before the events after it are taken in: writes sent at this instant count what it knew before.
    this.thawedAt = this.clock.now();
    this.heardBeforeThaw = new Map(this.heard);
    for (const fn of this.held.splice(0)) {
      if (this.dead || this.frozen) break;
      fn();
    }
  }

  /** SIGKILL: nothing reaches the daemon again. */
  kill(): void {
    this.dead = true;
    this.held.length = 0;
    this.kube?.connection.kill();
    this.connection?.partition();
  }

  /**
   * The network between daemon and store is cut (both ways, or only one):
   * calls fail, watch events are lost; healing relists (the Kubernetes store
   * resumes, or relists after a 410).
   */
  partition(mode: PartitionMode = "both"): void {
    this.kube?.connection.partition(mode);
    this.connection?.partition(mode);
  }

  heal(): void {
    this.kube?.connection.heal();
    this.connection?.heal();
  }

  /**
   * The watch breaks: events are lost for `ms`, then the store relists (a 410 Gone and a fresh list). On the
   * Kubernetes backend the watch requests end and are refused for `ms`; the store resumes them itself.
   */
  restartWatch(ms: number, withError: boolean): void {
    if (this.kube !== undefined) return this.kube.connection.breakWatches(ms, withError);
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
    const deliver = () => this.deliver(() => this.deliverNow(event));
    if (at <= now) deliver();
    else this.clock.setTimer(at - now, deliver);
  }

  /** The daemon hears `event` now. */
  private deliverNow(event: WatchEvent): void {
    // (A change of a name the daemon's last list did not cover is not taken in: its cache drops it.)
    if (event.type === "upsert" && inScope(this.deliveredScope, event.lease.name)) this.hear(event.lease);
    if (event.type === "synced") {
      for (const lease of event.leases) {
        this.hear(lease);
        // Held, or free but held off (a holder cleared by hand, a restored Lease): either counts from now.
        // (A semaphore's seats are held as a lock's holder is: counted from now, each for its lease.)
        const seated = (lease.seats ?? []).some((seat) => seat.released !== true) || (lease.seated ?? []).length > 0;
        const heldOff = lease.holderIdentity !== "" || (lease.writtenHolder ?? "") !== "" || seated;
        if (heldOff && !inScope(this.deliveredScope, lease.name)) this.hooks.firstSight?.(lease);
      }
      this.deliveredScope = event.scope;
    }
    this.listener?.(event);
  }

  /**
   * The highest transition count of each lease this daemon has heard of from
   * the store (watch events and reads; its own writes count once it sees them
   * on the watch). A token above it that repeats one issued elsewhere is a
   * token this daemon could not know of (docs/design.md 3.2).
   */
  private readonly heard = new Map<string, number>();
  private heardBeforeThaw = new Map<string, number>();
  private thawedAt = -1;

  /** What the daemon had taken in of `name` when it decided on a write it sends now. */
  private heardAtDecision(name: string): number {
    return this.clock.now() === this.thawedAt ? (this.heardBeforeThaw.get(name) ?? 0) : this.heardOf(name);
  }

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
    this.count(name);
    const hasDeadline = signal !== undefined;
    let fault = this.hooks.decide(operation, name, hasDeadline, acquiring);
    if (operation !== "update" && fault.kind === "conflict") fault = { kind: "none" };
    if (operation === "get" && fault.kind === "lost-reply") fault = { kind: "hang", applied: false };
    const ended = fault.kind === "none" ? undefined : this.hooks.faultBegan(fault, operation, name, hasDeadline);
    const heardAtSend = this.heardAtDecision(name);
    const promise = runWithFault({
      clock: this.clock,
      fault,
      baseLatencyMs: this.baseLatencyMs,
      signal,
      ended,
      deliver: (fn) => this.deliver(fn),
      perform,
      errors: {
        conflict: () => new StoreError("conflict", `update ${name}: the object has been modified (simulated 409)`),
        lostReply: () => new StoreError("unavailable", `${operation} ${name}: reply lost (simulated; the write was applied)`),
        abandoned: () => new StoreError("unavailable", `${operation} ${name}: abandoned at the caller's deadline`),
        clientTimeout: () => new StoreError("unavailable", `${operation} ${name}: HTTP client timeout`),
      },
    });
    this.track(
      operation,
      name,
      heardAtSend,
      promise,
      `${operation} ${name}${hasDeadline ? "" : " (no deadline)"}${fault.kind === "none" ? "" : ` [${fault.kind}]`}`,
    );
    return promise;
  }

  /** A call through the Kubernetes store, whose connection makes the faults: only the bookkeeping here. */
  private through<T>(operation: StoreOperation, name: string, start: Promise<T>): Promise<T> {
    this.count(name);
    this.track(operation, name, this.heardAtDecision(name), start, `${operation} ${name}`);
    return start;
  }

  /** Counts a daemon's store call on `name` for the liveness monitor (not a read a client asked for). */
  private count(name: string): void {
    if (this.clientRead) return;
    let times = this.callTimes.get(name);
    if (times === undefined) this.callTimes.set(name, (times = []));
    times.push(this.clock.now());
  }

  /** Notes what the daemon had heard when it wrote, what a read told it, and the call in the trace. */
  private track<T>(operation: StoreOperation, name: string, heardAtSend: number, promise: Promise<T>, call: string): void {
    // (A patch of a wait key or a seat issues no token.)
    if (operation !== "get" && operation !== "patch") {
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
      trace(`${call} sent`);
      promise.then(
        (value) => trace(`${call}: ok${value !== undefined && typeof value === "object" ? ` ${describe(value as LeaseRecord)}` : ""}`),
        (err: unknown) => trace(`${call}: failed ${(err as Error).message}`),
      );
    }
  }
}

function describe(r: LeaseRecord): string {
  const waiting = r.waiting === undefined ? "" : ` waiting=[${r.waiting.join(",")}]`;
  return `rv ${r.version} holder=${r.holderIdentity || "-"} transitions=${r.transitions} lease=${r.leaseDurationSeconds}s queue=[${r.queue.join(",")}]${waiting}`;
}
