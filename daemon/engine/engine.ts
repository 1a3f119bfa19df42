// The composition of the engine: one lease cache fed by the store's watch,
// one contender per lease name in use, and the lock and election operations
// built on them.
import { type Clock, systemClock } from "./clock.js";
import { Contender, type ContenderContext } from "./contender.js";
import { Elections } from "./elections.js";
import { SyncError, fromStoreError } from "./errors.js";
import { LeaseCache, type Observation } from "./lease-cache.js";
import { line } from "./lease-records.js";
import { Locks } from "./locks.js";
import { RWLocks } from "./rwlocks.js";
import { SemaphoreContender, Semaphores, rwRole } from "./semaphores.js";
import { StoreCalls } from "./store-calls.js";
import { responseTo } from "./store-policy.js";
import { type EngineObserver, type EngineStats, noStats } from "./observer.js";
import { type LeaseTiming, leaseCovering, leaseTiming } from "./timing.js";
import { MAX_LEASE_MS, MIN_LEASE_MS } from "./validate.js";
import type { LeaseFields, LeaseKind, LeaseStore } from "../store/lease-store.js";

export interface EngineOptions {
  readonly store: LeaseStore;
  /** Identity of this daemon process, unique per process start; written as holderIdentity. */
  readonly identity: string;
  /** Lease duration when a request names none. Default 15 s, as client-go. */
  readonly leaseDurationMs?: number;
  /** How long a holder acts without a successful renewal, at the default lease. Default 10 s. */
  readonly renewDeadlineMs?: number;
  /** Prefix of every Lease name; lock and election names follow "lock-" or "election-". Default "msync-". */
  readonly leasePrefix?: string;
  readonly clock?: Clock;
  /** Source of jitter; tests pass a constant. */
  readonly random?: () => number;
  /** Told about store failures that the engine absorbs by retrying. */
  readonly onStoreError?: (name: string, doing: string, error: unknown) => void;
  /** Told about acquisitions, renewals and losses, for metrics. */
  readonly observer?: EngineObserver;
  /**
   * Store calls in flight at once; more wait in the engine, what keeps a
   * holder's lease first. Default: the store's own `maxCallsInFlight`, else no limit.
   */
  readonly maxStoreCallsInFlight?: number;
}

export const DEFAULT_LEASE_DURATION_MS = 15_000;
export const DEFAULT_RENEW_DEADLINE_MS = 10_000;
export const DEFAULT_LEASE_PREFIX = "msync-";
/** Tries to restore a Lease deleted by hand (see Engine.restore), backing off from 400 ms. */
const RESTORE_ATTEMPTS = 4;
const RESTORE_BACKOFF_MS = 200;

export class Engine {
  readonly locks: Locks;
  readonly elections: Elections;
  readonly semaphores: Semaphores;
  readonly rwlocks: RWLocks;
  readonly cache: LeaseCache;
  readonly leaseDurationMs: number;
  readonly renewDeadlineMs: number;
  readonly leasePrefix: string;
  /** By Lease name; a read-write lock's by name and mode (`SemaphoreContender.key`). */
  private readonly contenders = new Map<string, Contender | SemaphoreContender>();
  /** Seats this process has taken, counted up so that a seat taken again is told apart from its tombstone. */
  private seatAcquisitions = 0;
  private readonly context: ContenderContext;
  private closing = false;

  constructor(options: EngineOptions) {
    this.leaseDurationMs = options.leaseDurationMs ?? DEFAULT_LEASE_DURATION_MS;
    this.renewDeadlineMs = options.renewDeadlineMs ?? DEFAULT_RENEW_DEADLINE_MS;
    this.leasePrefix = options.leasePrefix ?? DEFAULT_LEASE_PREFIX;
    validateOptions(options.identity, this.leaseDurationMs, this.renewDeadlineMs, this.leasePrefix);
    const clock = options.clock ?? systemClock;
    // Semaphores and read-write locks are new: no older daemon wrote one without the name label.
    const seated = [this.prefix("semaphore"), this.prefix("rwlock")];
    this.cache = new LeaseCache(options.store, clock, this.leaseDurationMs, (name) => !seated.some((prefix) => name.startsWith(prefix)));
    this.context = {
      store: options.store,
      cache: this.cache,
      clock,
      identity: options.identity,
      timing: (leaseMs) => this.timing(leaseMs),
      leaseCovering: (remainingMs) =>
        leaseCovering({ leaseDurationMs: this.leaseDurationMs, renewDeadlineMs: this.renewDeadlineMs }, remainingMs),
      random: options.random ?? Math.random,
      onIdle: (contender) => {
        const key = contender.key ?? contender.name;
        if (this.contenders.get(key) === contender) this.contenders.delete(key);
      },
      calls: new StoreCalls(clock, options.onStoreError ?? (() => {}), options.maxStoreCallsInFlight ?? options.store.maxCallsInFlight),
      observer: options.observer ?? {},
      joins: { byUpdate: false },
    };
    this.locks = new Locks(this);
    this.elections = new Elections(this);
    this.semaphores = new Semaphores(this);
    this.rwlocks = new RWLocks(this);
    this.cache.onDeleted = (name, last, toldBy) => void this.restore(name, last, toldBy);
  }

  get identity(): string {
    return this.context.identity;
  }

  get clock(): Clock {
    return this.context.clock;
  }

  get store(): LeaseStore {
    return this.context.store;
  }

  /** Starts the watch; resolves once the first full list is in, when the engine can serve. */
  async start(): Promise<void> {
    this.cache.start();
    await this.cache.ready();
    for (const contender of this.contenders.values()) contender.kick();
  }

  timing(leaseMs: number): LeaseTiming {
    return leaseTiming({ leaseDurationMs: this.leaseDurationMs, renewDeadlineMs: this.renewDeadlineMs }, leaseMs);
  }

  /** The Lease name prefix for a kind: names of locks and elections never collide. */
  prefix(kind: LeaseKind): string {
    return `${this.leasePrefix}${kind}-`;
  }

  /** The contender for a Lease name, created on first use. */
  contender(leaseName: string, kind: LeaseKind): Contender {
    if (this.closing) throw new SyncError("shutting-down", "the daemon is shutting down");
    let contender = this.contenders.get(leaseName);
    if (contender === undefined) {
      contender = new Contender(this.context, leaseName, kind);
      this.contenders.set(leaseName, contender);
    }
    if (!(contender instanceof Contender)) throw new Error(`${leaseName} is not a lock or an election`);
    return contender;
  }

  /** The contender for a semaphore's Lease name, created on first use. */
  semaphoreContender(leaseName: string): SemaphoreContender {
    if (this.closing) throw new SyncError("shutting-down", "the daemon is shutting down");
    let contender = this.contenders.get(leaseName);
    if (contender === undefined) {
      contender = new SemaphoreContender(this.context, leaseName, () => ++this.seatAcquisitions);
      this.contenders.set(leaseName, contender);
    }
    if (!(contender instanceof SemaphoreContender)) throw new Error(`${leaseName} is not a semaphore`);
    return contender;
  }

  /** The contender of one mode of a read-write lock's Lease name, created on first use. */
  rwlockContender(leaseName: string, mode: "shared" | "exclusive"): SemaphoreContender {
    if (this.closing) throw new SyncError("shutting-down", "the daemon is shutting down");
    const key = `${leaseName} ${mode}`;
    let contender = this.contenders.get(key);
    if (contender === undefined) {
      contender = new SemaphoreContender(this.context, leaseName, () => ++this.seatAcquisitions, rwRole(this.identity, mode));
      this.contenders.set(key, contender);
    }
    return contender as SemaphoreContender;
  }

  /** The contender of one mode of a read-write lock's Lease name if one is active. */
  existingRWLock(leaseName: string, mode: "shared" | "exclusive"): SemaphoreContender | undefined {
    return this.contenders.get(`${leaseName} ${mode}`) as SemaphoreContender | undefined;
  }

  /** Leases held and claims waiting on this daemon right now, by kind. */
  stats(): EngineStats {
    const stats = noStats();
    for (const contender of this.contenders.values()) {
      const { held, waiting } = contender.counts;
      stats.held[contender.kind] += held;
      stats.waiting[contender.kind] += waiting;
    }
    return stats;
  }

  /** The contender for a Lease name if one is active. */
  existingContender(leaseName: string): Contender | undefined {
    const contender = this.contenders.get(leaseName);
    return contender instanceof Contender ? contender : undefined;
  }

  /** The contender for a semaphore's Lease name if one is active. */
  existingSemaphore(leaseName: string): SemaphoreContender | undefined {
    const contender = this.contenders.get(leaseName);
    return contender instanceof SemaphoreContender ? contender : undefined;
  }

  /**
   * Brings a Lease into the cache for a read: as watched when the watch
   * covers it (a client of this daemon uses the name) and `fresh` is not
   * asked, else from the store.
   */
  async observe(leaseName: string, fresh: boolean, doing: string): Promise<Observation | undefined> {
    if (fresh || (this.cache.synced && !this.cache.covers(leaseName))) {
      // A client's read waits behind what keeps and takes leases when the store is busy.
      const read = (signal: AbortSignal) => this.store.get(leaseName, { signal });
      const seen = this.cache.get(leaseName);
      const result = await this.context.calls.run(leaseName, doing, this.renewDeadlineMs, read, "other");
      if (!result.ok) throw fromStoreError(result.error, doing);
      if (result.value !== undefined) this.cache.remember(result.value);
      else {
        this.cache.forget(leaseName, seen);
        // The read's own answer: the Lease was gone at some instant of the call. A version the watch told meanwhile
        // may be newer (kept in the cache), or older than the deletion the read saw (seed 434306): not an answer.
        return undefined;
      }
    } else if (!this.cache.synced) {
      const error = this.cache.syncError;
      throw error === undefined
        ? new SyncError("unavailable", "the lease cache has not synced with the store yet")
        : fromStoreError(error, doing);
    }
    return this.cache.get(leaseName);
  }

  /**
   * Tells every holder it lost, gives every lease back once its holder can
   * no longer act on it (a session holder: once it closed its stream or its
   * promise ran out; a lease-held lock: never, it runs out) and stops the
   * watch. Resolves when done or after `timeoutMs`, whichever comes first;
   * what is still held then is left to expire.
   */
  /** Resolves with true when everything held was given back in time, false when some is left to expire. */
  async shutdown(timeoutMs: number): Promise<boolean> {
    this.closing = true;
    this.elections.shutdown();
    const contenders = [...this.contenders.values()];
    const released = Promise.all(contenders.map((c) => c.shutdown()));
    let timer: ReturnType<Clock["setTimer"]> | undefined;
    let timedOut = false;
    const timeout = new Promise<void>((resolve) => (timer = this.clock.setTimer(timeoutMs, () => resolve(void (timedOut = true)))));
    await Promise.race([released, timeout]);
    timer?.cancel();
    if (timedOut) for (const contender of contenders) contender.abandon();
    await this.cache.stop();
    return !timedOut;
  }

  /**
   * Creates again at once a Lease deleted by hand while this daemon watched
   * it: free, with the highest token this daemon has seen for the name, and,
   * while the last holder it observed may still act, held off until then (the
   * holder-identity annotation names that holder; see docs/design.md 3.2).
   * Every daemon watching the name tries: one create wins, the others find the
   * Lease there. A daemon that learned of the deletion from a list (its watch
   * broke, fell behind, or a call found the Lease gone) may not have heard the
   * last tokens issued before it: it leaves the restore to a daemon whose
   * watch told the deletion, and restores the Lease itself only if it is still
   * gone when the hold it counts for the name has run out (seeds 293797 and
   * 309403: restored at once, the Lease came back below a token issued).
   */
  private async restore(name: string, last: Observation, toldBy: "event" | "list"): Promise<void> {
    if (toldBy === "list") {
      for (let end = this.cache.holdEnd(name); end > this.clock.now(); end = this.cache.holdEnd(name)) {
        await new Promise<void>((resolve) => this.clock.setTimer(end - this.clock.now(), resolve));
        if (this.closing || this.cache.get(name) !== undefined) return;
      }
    }
    // A store that does not answer is tried again a few times, unless someone re-created the Lease meanwhile.
    for (let attempt = 0; attempt < RESTORE_ATTEMPTS; attempt++) {
      if (attempt > 0) await new Promise<void>((resolve) => this.clock.setTimer(RESTORE_BACKOFF_MS * 2 ** attempt, resolve));
      const floor = this.cache.tokenFloor(name);
      if (this.closing || floor === 0 || this.cache.get(name) !== undefined || !this.cache.covers(name)) return;
      const heldForMs = this.cache.holdEnd(name) - this.clock.now();
      const record = last.record;
      const restoredSeconds = heldForMs > 0 ? Math.ceil(heldForMs / 1000) : Math.max(1, record.leaseDurationSeconds);
      const fields: LeaseFields = {
        name,
        kind: record.kind,
        holderIdentity: "",
        holder: "",
        leaseDurationSeconds: restoredSeconds,
        writtenDuration: restoredSeconds,
        acquireTime: record.acquireTime,
        renewTime: this.clock.wallTime(),
        transitions: floor,
        value: "",
        // (Daemons that announced they wait keep their places, behind the queue.)
        queue: [...line(record)],
        // A semaphore's N, written once when it was created: every claim checks its own against it.
        ...(record.permits === undefined ? {} : { permits: record.permits }),
        // A read-write lock's readers report the latest exclusive token: it goes on from the last.
        ...(record.exclusiveToken === undefined ? {} : { exclusiveToken: record.exclusiveToken }),
        writtenHolder: heldForMs > 0 ? record.holderIdentity || record.writtenHolder || "(deleted)" : "",
      };
      const result = await this.context.calls.run(
        name,
        "restore the deleted lease",
        this.renewDeadlineMs,
        (signal) => this.store.create(fields, { signal }),
        "other",
      );
      if (result.ok) return this.cache.remember(result.value);
      if (responseTo("restore", result.failure) !== "retry") return;
    }
  }

  get closed(): boolean {
    return this.closing;
  }
}

function validateOptions(identity: string, leaseDurationMs: number, renewDeadlineMs: number, leasePrefix: string): void {
  if (identity === "") throw new Error("identity must not be empty");
  if (
    !Number.isInteger(leaseDurationMs) ||
    leaseDurationMs < MIN_LEASE_MS ||
    leaseDurationMs > MAX_LEASE_MS ||
    leaseDurationMs % 1000 !== 0
  ) {
    throw new Error(
      `lease duration must be whole seconds between ${MIN_LEASE_MS / 1000} s and ${MAX_LEASE_MS / 1000} s, got ${leaseDurationMs} ms`,
    );
  }
  if (!(renewDeadlineMs > 0 && renewDeadlineMs < leaseDurationMs)) {
    throw new Error(
      `renew deadline must be positive and shorter than the lease duration (${leaseDurationMs} ms), got ${renewDeadlineMs} ms`,
    );
  }
  if (!/^([a-z0-9]([-a-z0-9.]*[a-z0-9.-])?)?$/.test(leasePrefix) || leasePrefix.length > 63) {
    throw new Error(
      `lease prefix must be lower-case letters, digits, '-' and '.', starting with a letter or digit, at most 63 characters, got ${JSON.stringify(leasePrefix)}`,
    );
  }
}
