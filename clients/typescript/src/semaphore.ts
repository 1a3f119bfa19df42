// Counting semaphores through the sidecar: at most N holders of a name at
// once, across every daemon of the namespace. `client.semaphore(name, N)`
// names one; its `acquire()` holds one permit for as long as you keep it
// (given back on dispose), `tryAcquire()` takes one for a lease you renew, and
// `get()` tells who holds them. A permit is held like a lock (hold.ts): the
// same deadlines, the same client-side deadline on its promise, the same
// acknowledged release; it is named by its hold id instead of its token.
import type { ClientReadableStream } from "@grpc/grpc-js";
import { timeoutOf, unary } from "./deadlines.js";
import type {
  AcquirePermitResponse,
  GetSemaphoreResponse,
  PermitHolder,
  SemaphoreServiceClient,
  TryAcquirePermitResponse,
} from "./gen/metaparticle/sync/v1/semaphore_service.js";
import { type AcquireOptions, type LeaseCalls, LeaseHold, type LeaseOptions, StreamHold, acquireHold } from "./hold.js";
import { type ReadOptions, defaultName, fromDuration, optionalDuration, readConsistency } from "./internal.js";

/** One holder of a semaphore's permit, as the sidecar sees it. */
export interface PermitHolderInfo {
  readonly holder: string;
  /** The daemon process that holds the permit for it. */
  readonly holderIdentity: string;
  /** The hold's fencing token; 0 for a hold of another daemon, whose token this one does not know. */
  readonly token: number;
  readonly acquireTime: Date | undefined;
  readonly leaseDurationMs: number;
  /** ms until the hold's lease expires unless renewed, as the sidecar observed it. */
  readonly remainingMs: number;
}

export interface SemaphoreInfo {
  /** The semaphore's N; 0 when it was never used. */
  readonly permits: number;
  /** The holds whose lease has not expired, as the sidecar observed them. */
  readonly holders: readonly PermitHolderInfo[];
  /** The last fencing token granted; 0 if none was. */
  readonly token: number;
  /** The identities of the daemons waiting for a permit, in the order they will be served. */
  readonly waitingDaemons: readonly string[];
}

/** What `tryAcquire()` answers: the permit taken, or who holds them all. */
export interface PermitAttempt {
  /** The permit, held for its lease; undefined when none was free. */
  readonly permit: LeasedPermit | undefined;
  /** Who holds the permits when none was free; empty when `permit` is set. */
  readonly holders: readonly PermitHolderInfo[];
}

/** A permit's ReleasePermit and RenewPermit, bound to one hold. */
function permitCalls(client: SemaphoreServiceClient, name: string, holdId: string): LeaseCalls {
  return {
    what: `a permit of semaphore ${name}`,
    release: (metadata, callOptions, callback) => client.releasePermit({ name, holdId }, metadata, callOptions, callback),
    renew: (leaseDuration) => (metadata, callOptions, callback) =>
      client.renewPermit({ name, holdId, leaseDuration }, metadata, callOptions, callback),
  };
}

/**
 * A permit held by a stream: the sidecar renews it until you call `release()`
 * or dispose it (`await using permit = await semaphore.acquire()`). `signal`
 * aborts, with a LostError as reason, the moment you must stop acting: the
 * sidecar reported the permit lost, or its heartbeats stopped before the last
 * `valid_for` ran out. `release()` resolves once the sidecar has given the
 * permit back (StreamHold).
 */
export class Permit extends StreamHold {
  constructor(
    name: string,
    /** Names this hold in ReleasePermit; opaque. */
    readonly holdId: string,
    /** Fencing token: strictly greater than every earlier token of this semaphore. */
    token: number,
    holder: string,
    /** The semaphore's N. */
    readonly permits: number,
    acquireTime: Date | undefined,
    /** Lease duration in ms. */
    leaseDurationMs: number,
    call: ClientReadableStream<AcquirePermitResponse>,
    client: SemaphoreServiceClient,
  ) {
    super(name, token, holder, acquireTime, leaseDurationMs, call, permitCalls(client, name, holdId));
  }
}

/**
 * A permit taken with `tryAcquire()`: held for its lease unless renewed with
 * `renew()`, given back with `release()`, both by its hold id. `signal` aborts
 * when the last `validForMs` runs out without a renewal.
 */
export class LeasedPermit extends LeaseHold {
  constructor(
    client: SemaphoreServiceClient,
    name: string,
    /** Names this hold in RenewPermit and ReleasePermit; opaque. */
    readonly holdId: string,
    token: number,
    holder: string,
    /** The semaphore's N. */
    readonly permits: number,
    validForMs: number,
  ) {
    super(name, token, holder, validForMs, permitCalls(client, name, holdId));
  }
}

/**
 * Semaphore `name` with `permits` (N) permits: at most N holds at once. Every
 * caller of a name must use the same N; another N is refused by the sidecar
 * with FAILED_PRECONDITION, reason PERMITS_MISMATCH, field `permits`, and
 * nothing is held. The sidecar accepts N from 1 to 32.
 */
export class Semaphore {
  constructor(
    private readonly client: SemaphoreServiceClient,
    readonly name: string,
    readonly permits: number,
  ) {
    if (!Number.isSafeInteger(permits))
      throw new RangeError(`permits must be a whole number (the sidecar accepts 1 to 32); got ${permits}`);
  }

  /**
   * Waits for a permit and holds it until released or disposed:
   *
   *     await using permit = await client.semaphore("export", 3).acquire();
   *     await runExport({ fencingToken: permit.token, signal: permit.signal });
   *
   * Waits at most `waitTimeoutMs` (default 5 min) or `timeoutMs`, whichever is
   * shorter, then rejects with DEADLINE_EXCEEDED, also when the sidecar does
   * not answer (see AcquireOptions).
   */
  acquire(options: AcquireOptions = {}): Promise<Permit> {
    const { client, name, permits } = this;
    const holder = options.holder ?? defaultName("MSYNC_HOLDER");
    return acquireHold(
      `a permit of semaphore ${name}`,
      options,
      (waitTimeout) =>
        client.acquirePermit({ name, permits, holder, leaseDuration: optionalDuration(options.leaseDurationMs), waitTimeout }),
      (a, call) =>
        new Permit(name, a.holdId, a.fencingToken, a.holder, a.permits, a.acquireTime, fromDuration(a.leaseDuration), call, client),
    );
  }

  /**
   * One attempt without waiting: `permit` is then held for its lease unless
   * renewed; when no permit is free, `permit` is undefined and `holders` says
   * who holds them. Deadline `timeoutMs`, default 10 s.
   */
  async tryAcquire(options: LeaseOptions = {}): Promise<PermitAttempt> {
    const { client, name, permits } = this;
    const holder = options.holder ?? defaultName("MSYNC_HOLDER");
    const request = { name, permits, holder, leaseDuration: optionalDuration(options.leaseDurationMs) };
    const response = await unary<TryAcquirePermitResponse>(
      `TryAcquirePermit of semaphore ${name}`,
      { signal: options.signal, timeoutMs: timeoutOf(options) },
      (metadata, callOptions, callback) => client.tryAcquirePermit(request, metadata, callOptions, callback),
    );
    const hold = response.hold;
    if (!response.acquired || hold === undefined) return { permit: undefined, holders: response.holders.map(holderInfo) };
    const permit = new LeasedPermit(client, name, hold.holdId, hold.fencingToken, hold.holder, hold.permits, fromDuration(hold.validFor));
    return { permit, holders: [] };
  }

  /** Who holds the semaphore's permits, and who waits. Deadline `timeoutMs`, default 10 s. */
  get(options: ReadOptions = {}): Promise<SemaphoreInfo> {
    return getSemaphore(this.client, this.name, options);
  }
}

/** GetSemaphore: who holds semaphore `name`'s permits, whatever its N. */
export async function getSemaphore(client: SemaphoreServiceClient, name: string, options: ReadOptions): Promise<SemaphoreInfo> {
  const r = await unary<GetSemaphoreResponse>(
    `GetSemaphore of semaphore ${name}`,
    { signal: options.signal, timeoutMs: timeoutOf(options) },
    (metadata, callOptions, callback) =>
      client.getSemaphore({ name, consistency: readConsistency(options) }, metadata, callOptions, callback),
  );
  return { permits: r.permits, holders: r.holders.map(holderInfo), token: r.fencingToken, waitingDaemons: r.waitingDaemons };
}

function holderInfo(h: PermitHolder): PermitHolderInfo {
  return {
    holder: h.holder,
    holderIdentity: h.holderIdentity,
    token: h.fencingToken,
    acquireTime: h.acquireTime,
    leaseDurationMs: fromDuration(h.leaseDuration),
    remainingMs: fromDuration(h.remaining),
  };
}
