// Read-write locks through the sidecar: many shared holds of a name at once,
// or one exclusive hold, across every daemon of the namespace; a waiting
// writer is not starved by readers that come after it. `client.rwlock(name)`
// names one; its `acquire(mode)` holds it for as long as you keep it (given
// back on dispose), `tryAcquire(mode)` takes it for a lease you renew, and
// `get()` tells how it is held. A hold is kept like a lock or a permit
// (hold.ts): the same deadlines, the same client-side deadline on its promise,
// the same acknowledged release. Like a permit it is renewed and released by
// its hold id, never by its token: shared holds may carry the same token.
import type { ClientReadableStream } from "@grpc/grpc-js";
import { timeoutOf, unary } from "./deadlines.js";
import {
  type AcquireRWLockResponse,
  type GetRWLockResponse,
  LockMode,
  type RWLockAcquired,
  type RWLockServiceClient,
  type ReaderSeat,
  type TryAcquireRWLockResponse,
} from "./gen/metaparticle/sync/v1/rwlock_service.js";
import { type AcquireOptions, type LeaseCalls, LeaseHold, type LeaseOptions, StreamHold, acquireHold } from "./hold.js";
import { type ReadOptions, defaultName, fromDuration, optionalDuration, readConsistency } from "./internal.js";

/**
 * How a read-write lock is held: `"shared"` (a read hold: other shared holds
 * at once, no exclusive one) or `"exclusive"` (a write hold: nothing else).
 */
export type RWLockMode = "shared" | "exclusive";

const WIRE_MODES: Readonly<Record<RWLockMode, LockMode>> = {
  shared: LockMode.LOCK_MODE_SHARED,
  exclusive: LockMode.LOCK_MODE_EXCLUSIVE,
};

/** The mode as sent; anything but "shared" or "exclusive" (from JavaScript, say) is a RangeError, before anything is sent. */
function wireMode(mode: RWLockMode): LockMode {
  if (!Object.hasOwn(WIRE_MODES, mode)) throw new RangeError(`mode must be "shared" or "exclusive"; got ${JSON.stringify(mode)}`);
  return WIRE_MODES[mode];
}

/** The mode the sidecar reports; undefined for LOCK_MODE_UNSPECIFIED (not held). */
function modeOf(mode: LockMode): RWLockMode | undefined {
  if (mode === LockMode.LOCK_MODE_SHARED) return "shared";
  if (mode === LockMode.LOCK_MODE_EXCLUSIVE) return "exclusive";
  return undefined;
}

/** How messages name a hold: "a shared hold of read-write lock catalog". */
export function describeRWHold(name: string, mode: RWLockMode): string {
  return `${mode === "shared" ? "a shared" : "an exclusive"} hold of read-write lock ${name}`;
}

/** The shared holds of one daemon, which share one seat in the lock. */
export interface ReaderSeatInfo {
  /** The daemon process whose clients hold the lock shared. */
  readonly holderIdentity: string;
  /** The holder name of that daemon's first reader. */
  readonly holder: string;
  /** How many shared holds that daemon has. */
  readonly readers: number;
  /** ms until the seat's lease expires unless renewed, as the sidecar observed it. */
  readonly remainingMs: number;
}

/** How a read-write lock is held, as the sidecar sees it. */
export interface RWLockInfo {
  /** True while some hold's lease has not expired. */
  readonly held: boolean;
  /** How it is held; undefined when it is not. */
  readonly mode: RWLockMode | undefined;
  /** The exclusive holder's name; "" unless held exclusive. */
  readonly holder: string;
  /** The daemon process of the exclusive holder; "" unless held exclusive. */
  readonly holderIdentity: string;
  /** The token of the current or last exclusive hold; 0 if it was never held exclusive. */
  readonly token: number;
  /** When the exclusive holder acquired it, by the wall clock of the daemon that wrote it. */
  readonly acquireTime: Date | undefined;
  /** ms until the exclusive hold's lease expires unless renewed, as the sidecar observed it. */
  readonly remainingMs: number;
  /** One seat per daemon whose clients hold the lock shared; empty unless held shared. */
  readonly readers: readonly ReaderSeatInfo[];
  /** The identities of the daemons waiting, in the order they will be served. */
  readonly waitingDaemons: readonly string[];
}

/** What `tryAcquire()` answers: the hold taken, or how the lock is held. */
export type RWLockAttempt =
  | {
      /** The hold, kept for its lease. */
      readonly hold: LeasedRWLockHold;
      readonly state: undefined;
    }
  | {
      readonly hold: undefined;
      /** How the lock was held when the attempt failed. */
      readonly state: RWLockInfo;
    };

/** A hold's ReleaseRWLock and RenewRWLock, bound to its hold id. */
function rwHoldCalls(client: RWLockServiceClient, name: string, mode: RWLockMode, holdId: string): LeaseCalls {
  return {
    what: describeRWHold(name, mode),
    release: (metadata, callOptions, callback) => client.releaseRwLock({ name, holdId }, metadata, callOptions, callback),
    renew: (leaseDuration) => (metadata, callOptions, callback) =>
      client.renewRwLock({ name, holdId, leaseDuration }, metadata, callOptions, callback),
  };
}

/**
 * A read-write lock held by a stream: the sidecar renews it until you call
 * `release()` or dispose it (`await using hold = await rw.acquire("shared")`).
 * `signal` aborts, with a LostError as reason, the moment you must stop
 * acting: the sidecar reported the hold lost, or its heartbeats stopped before
 * the last `valid_for` ran out. `release()` resolves once the sidecar has
 * given the hold back (StreamHold).
 */
export class RWLockHold extends StreamHold {
  /**
   * Fencing token. Exclusive: strictly greater than every earlier exclusive
   * token of this lock. Shared: the token of the last exclusive hold before
   * it (0 if none), which other shared holds may carry too.
   */
  declare readonly token: number;

  /** Names this hold in ReleaseRWLock; opaque, unique per hold. */
  readonly holdId: string;

  /** @internal Made by `RWLock.acquire()`. */
  constructor(
    client: RWLockServiceClient,
    name: string,
    /** How the lock is held. */
    readonly mode: RWLockMode,
    acquired: RWLockAcquired,
    call: ClientReadableStream<AcquireRWLockResponse>,
  ) {
    const { holdId, fencingToken, holder, acquireTime, leaseDuration } = acquired;
    super(name, fencingToken, holder, acquireTime, fromDuration(leaseDuration), call, rwHoldCalls(client, name, mode, holdId));
    this.holdId = holdId;
  }
}

/**
 * A read-write lock held with `tryAcquire()`: kept for its lease unless
 * renewed with `renew()`, given back with `release()`, both by its hold id.
 * `signal` aborts when the last `validForMs` runs out without a renewal.
 */
export class LeasedRWLockHold extends LeaseHold {
  /** Fencing token, as RWLockHold's: a shared hold's is the last exclusive hold's (0 if none). */
  declare readonly token: number;

  /** Names this hold in RenewRWLock and ReleaseRWLock; opaque, unique per hold. */
  readonly holdId: string;

  /** @internal Made by `RWLock.tryAcquire()`. */
  constructor(
    client: RWLockServiceClient,
    name: string,
    /** How the lock is held. */
    readonly mode: RWLockMode,
    acquired: RWLockAcquired,
  ) {
    const { holdId, fencingToken, holder, validFor } = acquired;
    super(name, fencingToken, holder, fromDuration(validFor), rwHoldCalls(client, name, mode, holdId));
    this.holdId = holdId;
  }
}

/**
 * Read-write lock `name`: many shared holds at once, or one exclusive hold.
 * It is not the lock `name` of `client.lock()`, nor semaphore `name`: each is
 * a lock of its own. Nothing is sent until you call one of its methods.
 */
export class RWLock {
  constructor(
    private readonly client: RWLockServiceClient,
    readonly name: string,
  ) {}

  /**
   * Waits until the lock can be held in `mode` and holds it until released or
   * disposed:
   *
   *     await using hold = await client.rwlock("catalog").acquire("shared");
   *     await readCatalog({ fencingToken: hold.token, signal: hold.signal });
   *
   * Waits at most `waitTimeoutMs` (default 5 min) or `timeoutMs`, whichever is
   * shorter, then rejects with DEADLINE_EXCEEDED, reason WAIT_TIMEOUT, also
   * when the sidecar does not answer (see AcquireOptions). A reader that asks
   * while a writer waits queues behind the writer.
   */
  async acquire(mode: RWLockMode, options: AcquireOptions = {}): Promise<RWLockHold> {
    const { client, name } = this;
    const request = this.request(mode, options);
    return acquireHold(
      describeRWHold(name, mode),
      options,
      (waitTimeout) => client.acquireRwLock({ ...request, waitTimeout }),
      (acquired, call) => new RWLockHold(client, name, modeOf(acquired.mode) ?? mode, acquired, call),
    );
  }

  /**
   * One attempt without waiting: `hold` is then kept for its lease (default
   * the sidecar's, 15 s) unless renewed; when the lock cannot be held in
   * `mode` now, `hold` is undefined and `state` says how it is held.
   * Deadline `timeoutMs`, default 10 s.
   */
  async tryAcquire(mode: RWLockMode, options: LeaseOptions = {}): Promise<RWLockAttempt> {
    const { client, name } = this;
    const request = this.request(mode, options);
    const response = await unary<TryAcquireRWLockResponse>(
      `TryAcquireRWLock of read-write lock ${name}`,
      { signal: options.signal, timeoutMs: timeoutOf(options) },
      (metadata, callOptions, callback) => client.tryAcquireRwLock(request, metadata, callOptions, callback),
    );
    const acquired = response.hold;
    if (!response.acquired || acquired === undefined) return { hold: undefined, state: rwLockInfo(response.state) };
    return { hold: new LeasedRWLockHold(client, name, modeOf(acquired.mode) ?? mode, acquired), state: undefined };
  }

  /** What AcquireRWLock and TryAcquireRWLock both send; a bad mode throws before anything is. */
  private request(mode: RWLockMode, options: LeaseOptions) {
    const holder = options.holder ?? defaultName("MSYNC_HOLDER");
    return { name: this.name, mode: wireMode(mode), holder, leaseDuration: optionalDuration(options.leaseDurationMs) };
  }

  /** How the lock is held, and who waits. Deadline `timeoutMs`, default 10 s; `fresh` reads the store instead of the sidecar's cache. */
  async get(options: ReadOptions = {}): Promise<RWLockInfo> {
    const { client, name } = this;
    const response = await unary<GetRWLockResponse>(
      `GetRWLock of read-write lock ${name}`,
      { signal: options.signal, timeoutMs: timeoutOf(options) },
      (metadata, callOptions, callback) =>
        client.getRwLock({ name, consistency: readConsistency(options) }, metadata, callOptions, callback),
    );
    return rwLockInfo(response);
  }
}

/** The sidecar's GetRWLockResponse as RWLockInfo; a missing one (never sent by the sidecar) reads as not held. */
function rwLockInfo(r: GetRWLockResponse | undefined): RWLockInfo {
  return {
    held: r?.held ?? false,
    mode: r === undefined ? undefined : modeOf(r.mode),
    holder: r?.holder ?? "",
    holderIdentity: r?.holderIdentity ?? "",
    token: r?.fencingToken ?? 0,
    acquireTime: r?.acquireTime,
    remainingMs: fromDuration(r?.remaining),
    readers: (r?.readers ?? []).map(seatInfo),
    waitingDaemons: r?.waitingDaemons ?? [],
  };
}

function seatInfo(seat: ReaderSeat): ReaderSeatInfo {
  return { holderIdentity: seat.holderIdentity, holder: seat.holder, readers: seat.readers, remainingMs: fromDuration(seat.remaining) };
}
