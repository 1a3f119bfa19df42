// One simulated daemon's connection to a shared MemoryStore, which a test can
// cut: while partitioned, calls fail as unreachable and watch events are lost;
// on healing, the watch relists, as the Kubernetes store does after a broken
// watch.
import type { CallOptions, LeaseFields, LeaseRecord, LeaseStore, Seat, WatchEvent } from "../../daemon/store/lease-store.js";
import { StoreError } from "../../daemon/store/lease-store.js";
import type { MemoryStore, MemoryWatchHandle } from "../../daemon/store/memory/memory-store.js";

/**
 * Which way a partition cuts: `both`; `writes`, calls fail but watch events
 * come (it hears but cannot write); `hearing`, calls go through but the watch
 * is silent (it writes but does not hear: a half-open watch).
 */
export type PartitionMode = "both" | "writes" | "hearing";

export class ConnectionStore implements LeaseStore {
  readonly distributed = true;
  private callsCut = false;
  private hearingCut = false;
  private listener: ((event: WatchEvent) => void) | undefined;
  private inner: MemoryWatchHandle | undefined;
  /** Watch events held back while `holdEvents` is on, delivered by `releaseEvents`. */
  private held: WatchEvent[] | undefined;
  /**
   * Decides, per call, that the store applies it but the reply is lost: the
   * caller sees "unavailable" although the write took effect.
   */
  loseReply: ((operation: "get" | "create" | "update" | "patch", name: string) => boolean) | undefined;
  /** Runs before every call of this connection only: return a promise to slow it (a slow link). */
  before: (() => Promise<void> | undefined) | undefined;
  /** Runs after the store applied a call, before its reply: return a promise to hold the reply back (and ignore the caller's deadline). */
  after: (() => Promise<void> | undefined) | undefined;
  /** Schedules the delivery of each watch event (a watch that lags behind the store); undefined: at once. */
  delayEvents: ((deliver: () => void) => void) | undefined;
  /** Calls made through this connection, by operation. */
  readonly calls = { get: 0, create: 0, update: 0, patch: 0 };

  constructor(private readonly shared: MemoryStore) {}

  describe(): string {
    return "test connection to a shared memory store";
  }

  isNewer(a: string, b: string): boolean {
    return this.shared.isNewer(a, b);
  }

  /** Cuts the connection (by default both ways): calls fail, watch events are dropped, until `heal`. */
  partition(mode: PartitionMode = "both"): void {
    this.callsCut = mode !== "hearing";
    this.hearingCut = mode !== "writes";
  }

  /** Restores the connection; the watch relists like after a broken watch. */
  heal(): void {
    this.callsCut = false;
    this.hearingCut = false;
    // The names watched, as the shared store has them now.
    this.inner?.relist();
  }

  /** Holds watch events back (a slow watch) until `releaseEvents`. */
  holdEvents(): void {
    this.held ??= [];
  }

  releaseEvents(): void {
    const held = this.held ?? [];
    this.held = undefined;
    for (const event of held) this.listener?.(event);
  }

  async get(name: string, options?: CallOptions): Promise<LeaseRecord | undefined> {
    this.enter("get");
    await this.before?.();
    return this.reply("get", name, await this.shared.get(name, options));
  }

  async create(fields: LeaseFields, options?: CallOptions): Promise<LeaseRecord> {
    this.enter("create");
    await this.before?.();
    return this.reply("create", fields.name, await this.shared.create(fields, options));
  }

  async update(lease: LeaseRecord, options?: CallOptions): Promise<LeaseRecord> {
    this.enter("update");
    await this.before?.();
    return this.reply("update", lease.name, await this.shared.update(lease, options));
  }

  async markWaiting(lease: LeaseRecord, identity: string, waiting: boolean, options?: CallOptions): Promise<LeaseRecord> {
    this.enter("patch");
    await this.before?.();
    return this.reply("patch", lease.name, await this.shared.markWaiting(lease, identity, waiting, options));
  }

  async patchSeat(lease: LeaseRecord, identity: string, expected: Seat, next: Seat, options?: CallOptions): Promise<LeaseRecord> {
    this.enter("patch");
    await this.before?.();
    return this.reply("patch", lease.name, await this.shared.patchSeat(lease, identity, expected, next, options));
  }

  watch(listener: (event: WatchEvent) => void, names?: ReadonlySet<string>): MemoryWatchHandle {
    this.listener = listener;
    const inner = this.shared.watch((event) => {
      if (this.hearingCut || this.listener !== listener) return;
      if (this.held !== undefined) this.held.push(event);
      else if (this.delayEvents !== undefined) this.delayEvents(() => this.listener === listener && !this.hearingCut && listener(event));
      else listener(event);
    }, names);
    this.inner = inner;
    return {
      stop: async () => {
        this.listener = undefined;
        await inner.stop();
      },
      rescope: () => inner.rescope(),
      relist: () => inner.relist(),
    };
  }

  private async reply<T>(operation: "get" | "create" | "update" | "patch", name: string, result: T): Promise<T> {
    await this.after?.();
    if (this.loseReply?.(operation, name)) throw new StoreError("unavailable", `${operation} ${name}: applied, but the reply was lost`);
    return result;
  }

  private enter(operation: "get" | "create" | "update" | "patch"): void {
    this.calls[operation] += 1;
    if (this.callsCut) throw new StoreError("unavailable", `${operation}: connection refused (partitioned by the test)`);
  }
}
