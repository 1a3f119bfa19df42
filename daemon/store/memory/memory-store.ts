// An in-process LeaseStore with the same semantics as the Kubernetes one:
// versioned records, conditional writes, and a watch whose events arrive
// after the write that caused them has answered. It is what the daemon uses
// when no cluster is configured, and what engine tests run on.
import {
  type CallOptions,
  type LeaseFields,
  type LeaseRecord,
  type LeaseStore,
  type Seat,
  StoreError,
  type WatchEvent,
  type WatchHandle,
  type WatchScope,
  coversAll,
  bySeatIdentity,
  inScope,
  sameSeat,
  isSeated,
} from "../lease-store.js";

export type StoreOperation = "get" | "create" | "update" | "patch";

/**
 * Runs before every call, so tests can fail or delay it: throw a StoreError to
 * fail the call, or return a promise to hold it.
 */
export type Interceptor = (operation: StoreOperation, name: string) => void | Promise<void>;

export class MemoryStore implements LeaseStore {
  readonly distributed = false;
  private readonly leases = new Map<string, LeaseRecord>();
  /**
   * The version each lease was created at. Versions count every write of the
   * store, so a record of a lease at a version before it was read from an
   * earlier lease of that name, deleted since: this store's uid.
   */
  private readonly createdAt = new Map<string, number>();
  /** Names that exist but belong to someone else, like a controller's own Lease. */
  private readonly foreign = new Set<string>();
  private readonly watchers = new Set<Watcher>();
  private revision = 0;
  /** Counts calls by operation, so tests can prove that waiting costs nothing. */
  readonly calls: Record<StoreOperation, number> = { get: 0, create: 0, update: 0, patch: 0 };
  interceptor: Interceptor | undefined;

  describe(): string {
    return "memory (in this process only; not distributed)";
  }

  isNewer(a: string, b: string): boolean {
    return Number(a) > Number(b);
  }

  async get(name: string, options?: CallOptions): Promise<LeaseRecord | undefined> {
    await this.enter("get", name, options);
    if (this.foreign.has(name)) throw foreignError(name);
    return this.leases.get(name);
  }

  async create(fields: LeaseFields, options?: CallOptions): Promise<LeaseRecord> {
    await this.enter("create", fields.name, options);
    if (this.foreign.has(fields.name)) throw foreignError(fields.name);
    if (this.leases.has(fields.name)) throw new StoreError("exists", `lease ${fields.name} already exists`);
    const created = this.commit(copyLists(fields), fields.writtenHolder ?? fields.holderIdentity);
    this.createdAt.set(created.name, this.revision);
    return created;
  }

  async update(lease: LeaseRecord, options?: CallOptions): Promise<LeaseRecord> {
    await this.enter("update", lease.name, options);
    if (this.foreign.has(lease.name)) throw foreignError(lease.name);
    const current = this.leases.get(lease.name);
    if (current === undefined) throw new StoreError("not-found", `lease ${lease.name} not found`);
    if (current.version !== lease.version) {
      throw new StoreError("conflict", `lease ${lease.name} changed (version ${current.version}, not ${lease.version})`);
    }
    // As on Kubernetes: an update that changes nothing is no new version and sends no watch event.
    // As the Kubernetes store's annotation: a write that changes the holder records it, and so does a semaphore's grant
    // (a new token: it has no holder, see recordToLease); any other leaves it.
    const writtenHolder =
      current.holderIdentity === lease.holderIdentity && !grantsPermit(current, lease) ? current.writtenHolder : lease.holderIdentity;
    if (sameFields(current, lease) && current.writtenHolder === writtenHolder && current.writtenDuration === writtenDuration(lease))
      return current;
    const { version: _version, writtenHolder: _written, ...fields } = lease;
    return this.commit(copyLists(fields), writtenHolder ?? fields.holderIdentity);
  }

  async markWaiting(lease: LeaseRecord, identity: string, waiting: boolean, options?: CallOptions): Promise<LeaseRecord> {
    await this.enter("patch", lease.name, options);
    if (this.foreign.has(lease.name)) throw foreignError(lease.name);
    const current = this.leases.get(lease.name);
    if (current === undefined) throw new StoreError("not-found", `lease ${lease.name} not found`);
    const others = (current.waiting ?? []).filter((id) => id !== identity);
    const next = waiting ? [...others, identity] : others;
    // As a merge patch that changes nothing: no new version, no watch event.
    if (sameList(next, current.waiting ?? [])) return current;
    const { version: _version, writtenHolder: _written, ...fields } = current;
    return this.commit(copyLists({ ...fields, waiting: next }), current.writtenHolder ?? current.holderIdentity);
  }

  async patchSeat(lease: LeaseRecord, identity: string, expected: Seat, next: Seat, options?: CallOptions): Promise<LeaseRecord> {
    if (expected.identity !== identity || next.identity !== identity) throw new Error(`patchSeat: the seats are not ${identity}'s`);
    await this.enter("patch", lease.name, options);
    if (this.foreign.has(lease.name)) throw foreignError(lease.name);
    const current = this.leases.get(lease.name);
    if (current === undefined) throw new StoreError("not-found", `lease ${lease.name} not found`);
    if (Number(lease.version) < (this.createdAt.get(lease.name) ?? 0))
      throw new StoreError("conflict", `lease ${lease.name} was deleted and created again since version ${lease.version}`);
    const stored = current.seats?.find((seat) => seat.identity === identity);
    if (stored === undefined || !sameSeat(stored, expected))
      throw new StoreError("conflict", `lease ${lease.name}: the seat of ${identity} is not the one expected`);
    // As a patch that changes nothing: no new version, no watch event.
    if (sameSeat(next, stored)) return current;
    const { version: _version, writtenHolder: _written, ...fields } = current;
    const seats = current.seats!.map((seat) => (seat.identity === identity ? next : seat));
    return this.commit(copyLists({ ...fields, seats }), current.writtenHolder ?? current.holderIdentity);
  }

  watch(listener: (event: WatchEvent) => void, names?: ReadonlySet<string>): MemoryWatchHandle {
    const watcher: Watcher = { listener, scope: new Set() };
    this.watchers.add(watcher);
    // A relist covers the names wanted now; a scope that grows keeps the names it had (see rescope()).
    const list = (keep?: WatchScope) => {
      // The scope changes now; events already on their way are filtered by it when delivered.
      const scope: WatchScope = names === undefined || keep === "all" ? "all" : new Set([...(keep ?? []), ...names]);
      watcher.scope = scope;
      const leases = [...this.leases.values()].filter((lease) => inScope(scope, lease.name));
      const version = String(this.revision);
      setImmediate(() => {
        if (this.watchers.has(watcher)) listener({ type: "synced", leases, scope, version });
      });
    };
    list();
    return {
      stop: async () => {
        this.watchers.delete(watcher);
      },
      rescope: () => {
        if (names !== undefined && !coversAll(watcher.scope, names)) list(watcher.scope);
      },
      relist: () => list(),
    };
  }

  /** Test hook: deletes a lease as an administrator might. */
  delete(name: string): void {
    if (!this.leases.delete(name)) return;
    this.createdAt.delete(name);
    this.revision += 1;
    this.emit({ type: "delete", name, version: String(this.revision) });
  }

  /**
   * Test hook: changes a lease as an administrator might (kubectl edit): an
   * unconditional write that is not a daemon's.
   */
  edit(name: string, change: (record: LeaseRecord) => LeaseFields): void {
    const current = this.leases.get(name);
    if (current === undefined) return;
    // Neither annotation is a daemon's to change here: the duration a daemon wrote stays as it was.
    const { version: _version, writtenHolder: _written, ...fields } = { ...change(current) } as LeaseRecord;
    this.commit({ ...copyLists(fields), writtenDuration: writtenDuration(current) }, current.writtenHolder ?? current.holderIdentity);
  }

  /** Test hook: makes `name` exist without the managed label. */
  addForeign(name: string): void {
    this.foreign.add(name);
  }

  /** Test hook: the record as stored right now. */
  peek(name: string): LeaseRecord | undefined {
    return this.leases.get(name);
  }

  private async enter(operation: StoreOperation, name: string, options: CallOptions | undefined): Promise<void> {
    this.calls[operation] += 1;
    const signal = options?.signal;
    const abandoned = () => new StoreError("unavailable", `${operation} ${name}: abandoned`);
    if (signal?.aborted) throw abandoned();
    const held = this.interceptor?.(operation, name);
    if (held !== undefined && signal !== undefined) {
      // A held call ends when its caller gives up on it, as an HTTP request would.
      let onAbort!: () => void;
      const aborted = new Promise<never>((_resolve, reject) => (onAbort = () => reject(abandoned())));
      signal.addEventListener("abort", onAbort, { once: true });
      try {
        await Promise.race([held, aborted]);
      } finally {
        signal.removeEventListener("abort", onAbort);
      }
    } else {
      await held;
    }
    if (signal?.aborted) throw abandoned();
  }

  /** Stores `fields` as a new version; `writtenHolder` is the holderIdentity the last daemon write left. */
  private commit(fields: LeaseFields, writtenHolder: string): LeaseRecord {
    this.revision += 1;
    const record: LeaseRecord = Object.freeze({
      ...fields,
      version: String(this.revision),
      writtenHolder,
      writtenDuration: writtenDuration(fields),
    });
    this.leases.set(record.name, record);
    this.emit({ type: "upsert", lease: record });
    return record;
  }

  private emit(event: WatchEvent): void {
    // Like an API server, the watch event reaches listeners only after the
    // write's own reply.
    const name = event.type === "upsert" ? event.lease.name : event.type === "delete" ? event.name : undefined;
    setImmediate(() => {
      for (const watcher of this.watchers) {
        if (name === undefined || inScope(watcher.scope, name)) watcher.listener(event);
      }
    });
  }
}

/** A memory store's watch, which a test can make relist as after a broken watch. */
export interface MemoryWatchHandle extends WatchHandle {
  /** Lists the names wanted now and sends "synced", as a relist after a 410 Gone would. */
  relist(): void;
}

interface Watcher {
  readonly listener: (event: WatchEvent) => void;
  /** The names this watcher's last list covered. */
  scope: WatchScope;
}

/** True when writing `b` over `a` would change none of the stored fields. */
function sameFields(a: LeaseFields, b: LeaseFields): boolean {
  const time = (d: Date | undefined) => d?.getTime();
  return (
    a.name === b.name &&
    a.kind === b.kind &&
    a.holderIdentity === b.holderIdentity &&
    a.holder === b.holder &&
    a.leaseDurationSeconds === b.leaseDurationSeconds &&
    time(a.acquireTime) === time(b.acquireTime) &&
    time(a.renewTime) === time(b.renewTime) &&
    a.transitions === b.transitions &&
    a.value === b.value &&
    sameList(a.queue, b.queue) &&
    sameList(a.waiting ?? [], b.waiting ?? []) &&
    a.permits === b.permits &&
    a.exclusiveToken === b.exclusiveToken &&
    sameSeats(a.seats ?? [], b.seats ?? []) &&
    sameList(a.brokenSeats ?? [], b.brokenSeats ?? [])
  );
}

function sameSeats(a: readonly Seat[], b: readonly Seat[]): boolean {
  return a.length === b.length && a.every((seat, i) => sameSeat(seat, b[i]!));
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((id, i) => b[i] === id);
}

/**
 * `fields` with lists of their own, and as the Kubernetes store reads them
 * back: no empty `waiting`, `seats` or `brokenSeats` (a Lease without such
 * keys), seats in identity order, one per identity (one key each: the last
 * written stays).
 */
function copyLists(fields: LeaseFields): LeaseFields {
  const { waiting, seats, brokenSeats, ...rest } = fields;
  const byIdentity = new Map((seats ?? []).map((seat) => [seat.identity, { ...seat }] as const));
  const sorted = [...byIdentity.values()].sort(bySeatIdentity);
  return {
    ...rest,
    queue: [...fields.queue],
    ...(waiting === undefined || waiting.length === 0 ? {} : { waiting: [...waiting] }),
    ...(sorted.length === 0 ? {} : { seats: sorted }),
    ...(brokenSeats === undefined || brokenSeats.length === 0 ? {} : { brokenSeats: [...brokenSeats].sort() }),
  };
}

function foreignError(name: string): StoreError {
  return new StoreError("foreign", `lease ${name} exists but is not managed by metaparticle-sync`);
}

/** The duration the last daemon acquisition or renewal wrote, as the Kubernetes store's annotation keeps it. */
function writtenDuration(fields: LeaseFields): number {
  return fields.writtenDuration ?? fields.leaseDurationSeconds;
}

/** True when `next` is a semaphore's grant over `current`: a new token. */
function grantsPermit(current: LeaseFields, next: LeaseFields): boolean {
  return isSeated(next.kind) && next.transitions > current.transitions;
}
