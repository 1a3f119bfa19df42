// The storage interface the engine runs on. It exists only for the engine's
// lock and election algorithms: a small set of reads and conditional writes on
// lease records, plus one watch. `kubernetes/` implements it on
// coordination.k8s.io/v1 Lease objects and `memory/` in process, with the same
// semantics.

/**
 * What a lease backs: a lock, an election, a counting semaphore or a
 * read-write lock. Kept in the record so one watch serves all. A semaphore's
 * Lease has seats and no exclusive holder; a read-write lock's exclusive hold
 * is a lock's, and its shared holds are seats.
 */
export const LEASE_KINDS = ["lock", "election", "semaphore", "rwlock"] as const;
export type LeaseKind = (typeof LEASE_KINDS)[number];

/** Whether a kind's holds are seats, each grant a new token, and no holder of the Lease as a whole. */
export function isSeated(kind: LeaseKind): boolean {
  return kind === "semaphore" || kind === "rwlock";
}

/**
 * One daemon's shared hold on a semaphore or a read-write lock: every local
 * holder of that daemon rides on it. Only that daemon writes it, except that
 * a conditional write (an exclusive acquisition, a hand edit) may remove it.
 */
export interface LiveSeat {
  /** identity is the daemon process that holds the seat. */
  readonly identity: string;
  /**
   * acquisition is the seat's acquisition count: counted up per process each
   * time it takes a seat, so a seat taken again after its tombstone is told
   * apart from the one before.
   */
  readonly acquisition: number;
  /** durationSeconds is how long the seat holds without renewal, from the last renewal its observers see. */
  readonly durationSeconds: number;
  /** renewMs is the holder's wall clock at its last renewal (ms); it changes at every renewal, so each one is a new value. */
  readonly renewMs: number;
  /** holder is the first 63 characters of the name of the seat's first rider, for display. */
  readonly holder: string;
  /** riders is how many local holders ride on the seat, for display. */
  readonly riders: number;
  /** acquireWallMs is the holder's wall clock when it took the seat (ms), for display. */
  readonly acquireWallMs: number;
  /** permits is how many of a semaphore's permits the seat holds; undefined on a read-write lock. */
  readonly permits?: number;
  readonly released?: undefined;
}

/**
 * A seat given back: written over its seat by the seat's own daemon only, so
 * that observers end that seat's hold at once instead of at its expiry.
 */
export interface SeatTombstone {
  /** identity is the daemon process whose seat this was. */
  readonly identity: string;
  /** acquisition is the acquisition count of the seat it ends. */
  readonly acquisition: number;
  readonly released: true;
}

/** A seat as stored: held, or a tombstone. */
export type Seat = LiveSeat | SeatTombstone;

/** Which seat: its daemon and its acquisition. */
export interface SeatId {
  readonly identity: string;
  readonly acquisition: number;
  /**
   * Set on a seat the write did not leave but its writer still counted: one
   * removed by hand whose holders may still act, for this many milliseconds
   * after the write as its writer observed it (`LeaseFields.seated`).
   */
  readonly forMs?: number;
}

/**
 * The fields of a managed lease the engine reads and writes. Only the
 * conversion module of each store knows how they map onto a stored object.
 */
export interface LeaseFields {
  /** Stored object name, already prefixed by the engine. */
  readonly name: string;
  readonly kind: LeaseKind;
  /** Identity of the daemon process that holds the lease; "" when free. */
  readonly holderIdentity: string;
  /** Caller-supplied holder (lock) or candidate (election) name, for display. */
  readonly holder: string;
  /** Lease duration in whole seconds, as the holder wrote it. */
  readonly leaseDurationSeconds: number;
  /** Wall-clock times written by the holder. For display only: no decision uses them. */
  readonly acquireTime: Date | undefined;
  readonly renewTime: Date | undefined;
  /** Number of acquisitions so far: the fencing token of the latest one. */
  readonly transitions: number;
  /** Value proclaimed by an election's leader. */
  readonly value: string;
  /** Identities of daemon processes waiting for the lease, in arrival order. */
  readonly queue: readonly string[];
  /**
   * Identities of daemon processes that announced they wait (`markWaiting`)
   * and are not yet in `queue`, in no order; undefined: none. A conditional
   * write stores exactly these: the engine moves them into `queue` when it
   * writes (lease-records.ts), and a write that carries them on leaves them.
   */
  readonly waiting?: readonly string[];
  /**
   * The holderIdentity the last daemon write left; when it differs from
   * holderIdentity, someone who is not a daemon (an administrator, another
   * program) changed the holder since. Undefined: the same as holderIdentity.
   * An update that changes holderIdentity records it here, any other leaves
   * it; a create may say otherwise (a Lease restored after a deletion by hand,
   * free but held off).
   */
  readonly writtenHolder?: string;
  /**
   * The leaseDurationSeconds the last daemon acquisition or renewal wrote;
   * when it differs from leaseDurationSeconds, someone who is not a daemon
   * changed the duration since (the longer of the two counts). A daemon's
   * acquisitions, renewals and restores set it; its other writes carry what
   * they read. Undefined: the same as leaseDurationSeconds.
   */
  readonly writtenDuration?: number;
  /** A semaphore's number of permits (N), written when its Lease is created; undefined for other kinds or when unreadable. */
  readonly permits?: number;
  /**
   * A read-write lock's token of its latest exclusive hold, which its shared
   * holds report; `transitions` counts every grant, shared ones too.
   * Undefined for other kinds, when unreadable, or before any exclusive hold.
   */
  readonly exclusiveToken?: number;
  /**
   * The seats of a semaphore or read-write lock, tombstones included, one per
   * daemon identity, in identity order; undefined: none. A conditional write
   * stores exactly these (and the broken ones it names): it removes the
   * others.
   */
  readonly seats?: readonly Seat[];
  /**
   * The seats (identity and acquisition) a daemon's last conditional write or
   * create left, tombstones included; undefined: none recorded. Only such
   * writes set it (a seat patch leaves it), so a seat it names that `seats`
   * does not have was removed by someone who is not a daemon: a daemon that
   * first sees the Lease then cannot know what that seat held. It also names,
   * with `forMs`, the seats removed by hand before the write that its writer
   * still counted: for a daemon that first sees the Lease after that write.
   */
  readonly seated?: readonly SeatId[];
  /**
   * Seats whose stored value is not a seat (it does not parse, or names an
   * identity that is not the one its key is for), by their key as stored:
   * their holder and lease are unknown. A conditional write keeps those it
   * names, as they were, and removes the others.
   */
  readonly brokenSeats?: readonly string[];
}

/** A lease as read from the store, with the version a conditional write must match. */
export interface LeaseRecord extends LeaseFields {
  readonly version: string;
  /**
   * The store's own object as read, opaque to the engine. The engine's
   * updates spread the record, so this travels along and the store can keep
   * fields the engine does not know about (labels, annotations added by people).
   */
  readonly native?: unknown;
}

export type StoreErrorReason =
  /** A conditional write lost to a concurrent one (version mismatch). */
  | "conflict"
  /** A create found the object already there. */
  | "exists"
  /** The object is gone. */
  | "not-found"
  /** An object with this name exists but is not managed by metaparticle-sync. */
  | "foreign"
  /** The backend could not be reached or did not answer in time. */
  | "unavailable"
  /**
   * The call was never sent: the engine kept it waiting for a free connection
   * to the backend past its deadline (more calls than the backend serves at
   * once). Nothing happened.
   */
  | "shed"
  /** The backend refused the call (RBAC). `detail` names the verb and resource. */
  | "forbidden"
  /** The backend rejected the object as invalid. */
  | "invalid";

export class StoreError extends Error {
  constructor(
    readonly reason: StoreErrorReason,
    message: string,
  ) {
    super(message);
    this.name = "StoreError";
  }
}

export function isStoreError(err: unknown, reason?: StoreErrorReason): err is StoreError {
  return err instanceof StoreError && (reason === undefined || err.reason === reason);
}

/**
 * The names a watch covers: a set of lease names, or "all" managed leases.
 * Events arrive only for names in scope, so a daemon hears nothing of leases
 * its clients do not use.
 */
export type WatchScope = ReadonlySet<string> | "all";

/** The order seats are stored in (`LeaseFields.seats`): by identity. */
export function bySeatIdentity(a: Seat, b: Seat): number {
  return a.identity < b.identity ? -1 : a.identity > b.identity ? 1 : 0;
}

/** True when `a` and `b` are the same seat, field for field. */
export function sameSeat(a: Seat, b: Seat): boolean {
  if (a.identity !== b.identity || a.acquisition !== b.acquisition || a.released !== b.released) return false;
  if (a.released === true || b.released === true) return true;
  return (
    a.durationSeconds === b.durationSeconds &&
    a.renewMs === b.renewMs &&
    a.holder === b.holder &&
    a.riders === b.riders &&
    a.acquireWallMs === b.acquireWallMs &&
    a.permits === b.permits
  );
}

/** True when `scope` covers `name`. */
export function inScope(scope: WatchScope, name: string): boolean {
  return scope === "all" || scope.has(name);
}

/** True when `scope` covers every name of `names`. */
export function coversAll(scope: WatchScope, names: Iterable<string>): boolean {
  if (scope === "all") return true;
  for (const name of names) if (!scope.has(name)) return false;
  return true;
}

export type WatchEvent =
  /**
   * Every managed lease in `scope` as of `version` (the store's version when
   * it listed), after the first list and after every relist (a broken watch,
   * or a scope that grew). Names in scope that are not listed did not exist
   * then; a record newer than `version` (a reply that came first) is newer
   * than the list.
   */
  | { readonly type: "synced"; readonly leases: readonly LeaseRecord[]; readonly scope: WatchScope; readonly version: string }
  /** A lease was created or changed. */
  | { readonly type: "upsert"; readonly lease: LeaseRecord }
  /** A lease was deleted, at the store's `version` (a record newer than that was written after). */
  | { readonly type: "delete"; readonly name: string; readonly version: string }
  /** Listing failed (the store keeps retrying); until the next "synced" the listener's view may be stale or empty. */
  | { readonly type: "error"; readonly error: StoreError };

export interface WatchHandle {
  /** Stops the watch; no events are delivered after it resolves. */
  stop(): Promise<void>;
  /**
   * Says that the watched set of names changed. Names added are listed and
   * watched soon, announced by a "synced" event whose scope covers them; names
   * removed may stay in scope until the store next relists.
   */
  rescope(): void;
}

export interface WatchOptions {
  /**
   * checkUnlabelled says whether a name wanted that a list did not return may
   * be a Lease an older daemon wrote without the name label, which only a read
   * of that name finds (docs/design.md 3.10). False for kinds no older daemon
   * writes, which saves that read. Undefined: every name is checked.
   */
  readonly checkUnlabelled?: (name: string) => boolean;
}

export interface CallOptions {
  /** Abandons the call; it then fails with reason "unavailable". */
  readonly signal?: AbortSignal;
}

export interface LeaseStore {
  /** Reads one lease. Resolves undefined when absent; rejects with "foreign" when not ours. */
  get(name: string, options?: CallOptions): Promise<LeaseRecord | undefined>;
  /** Creates a lease; rejects with "exists" (or "foreign") when the name is taken. */
  create(fields: LeaseFields, options?: CallOptions): Promise<LeaseRecord>;
  /** Replaces a lease only if it is still at `lease.version`; rejects with "conflict" otherwise. */
  update(lease: LeaseRecord, options?: CallOptions): Promise<LeaseRecord>;
  /**
   * Adds `identity` to the lease's `waiting` (or removes it), whatever its
   * version: a change of that one entry, which cannot conflict with another
   * write and changes nothing else. Resolves with the lease after it (the
   * same version when nothing changed). `lease` is the lease as last seen:
   * a store that can tell rejects with "conflict" when the stored object is
   * not the one seen (deleted and created again), and with "not-found" when
   * it is gone, so a daemon never marks a Lease it has not seen as its own.
   */
  markWaiting(lease: LeaseRecord, identity: string, waiting: boolean, options?: CallOptions): Promise<LeaseRecord>;
  /**
   * Replaces `identity`'s seat with `next` if and only if the stored object is
   * the one `lease` was read from (not deleted and created again since; writes
   * in between do not matter) and that seat is still exactly `expected`, and
   * changes nothing else: so renewing or giving back a seat conflicts only
   * with a change of that seat. Resolves with the lease after it (the same
   * version when `next` is `expected`); rejects with "conflict" otherwise,
   * with "not-found" when the lease is gone. There is no form for an absent
   * seat: a seat is taken by a conditional update or create, which orders it
   * against every other write, and Kubernetes' JSON patch cannot test that a
   * key is absent.
   */
  patchSeat(lease: LeaseRecord, identity: string, expected: Seat, next: Seat, options?: CallOptions): Promise<LeaseRecord>;
  /**
   * Starts the one watch on the managed leases named in `names` (a live set
   * the caller changes, calling `rescope()` after), or on all of them when
   * `names` is undefined. The first event is "synced" with everything in
   * scope; after a broken or expired watch, or when the scope grows, the store
   * relists and sends "synced" again, so the listener never misses a final
   * state.
   */
  watch(listener: (event: WatchEvent) => void, names?: ReadonlySet<string>, options?: WatchOptions): WatchHandle;
  /** True if version `a` of an object is newer than version `b` of it. */
  isNewer(a: string, b: string): boolean;
  /** Says where leases live, for logs. */
  describe(): string;
  /** False for stores that only one process can see. */
  readonly distributed: boolean;
  /**
   * How many calls this process should have in flight at once (the rest wait
   * in the engine, the most urgent first); undefined for no limit.
   */
  readonly maxCallsInFlight?: number;
}
