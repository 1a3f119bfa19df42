// Locks through the sidecar: `lock()` holds one for as long as you keep it
// (released on dispose), `tryLock()` takes one for a lease you renew. What a
// lock shares with a semaphore's permit (deadlines, the client's own deadline,
// the acknowledged release) is in hold.ts; this file has the lock's calls.
import type { ClientReadableStream } from "@grpc/grpc-js";
import { type AcquireResponse, Fairness, type LockServiceClient } from "./gen/metaparticle/sync/v1/lock_service.js";
import { type AcquireOptions, type LeaseCalls, LeaseHold, type RenewOptions, StreamHold, acquireHold } from "./hold.js";
import { fromDuration, optionalDuration } from "./internal.js";

export type { RenewOptions } from "./hold.js";

export interface LockOptions extends AcquireOptions {
  /**
   * true (the default): waiters of all sidecars are served first come, first
   * served. false: when a client of this lock's sidecar releases it, the
   * sidecar may hand it straight to this waiter, ahead of other sidecars'
   * waiters, up to 16 times in a row; more handoffs per second on a hot lock,
   * at the cost of order.
   */
  readonly fair?: boolean;
  /** @deprecated The same as `leaseDurationMs`. */
  readonly leaseDuration?: number;
  /** @deprecated The same as `waitTimeoutMs`. */
  readonly waitTimeout?: number;
}

/** A lock's Release and Renew, bound to one token. */
function lockCalls(client: LockServiceClient, name: string, token: number): LeaseCalls {
  return {
    what: `lock ${name}`,
    release: (metadata, callOptions, callback) => client.release({ name, fencingToken: token }, metadata, callOptions, callback),
    renew: (leaseDuration) => (metadata, callOptions, callback) =>
      client.renew({ name, fencingToken: token, leaseDuration }, metadata, callOptions, callback),
  };
}

/**
 * A held lock. It stays held, renewed by the sidecar, until you call
 * `release()` or dispose it (`await using lock = await client.lock(...)`).
 * `signal` aborts, with a LostError as reason, the moment you must stop
 * acting: the sidecar reported the lock lost, or its heartbeats stopped.
 * `release()` resolves once the sidecar has given the lock back (StreamHold).
 */
export class Lock extends StreamHold {
  constructor(
    name: string,
    /** Fencing token: strictly greater than every earlier token of this lock. */
    token: number,
    holder: string,
    acquireTime: Date | undefined,
    /** Lease duration in ms. */
    leaseDurationMs: number,
    call: ClientReadableStream<AcquireResponse>,
    client: LockServiceClient,
  ) {
    super(name, token, holder, acquireTime, leaseDurationMs, call, lockCalls(client, name, token));
  }

  /** @deprecated The same as `validForMs`. */
  get validFor(): number {
    return this.validForMs;
  }

  /** @deprecated The same as `leaseDurationMs`. */
  get leaseDuration(): number {
    return this.leaseDurationMs;
  }
}

/**
 * Opens an Acquire stream and resolves with the lock once the sidecar grants
 * it. The wait is bounded twice: the sidecar is told the wait timeout, and this
 * side gives up on its own clock a grace period later, or at `timeoutMs`.
 */
export function acquire(client: LockServiceClient, name: string, holder: string, options: LockOptions): Promise<Lock> {
  return acquireHold(
    `lock ${name}`,
    { ...options, waitTimeoutMs: options.waitTimeoutMs ?? options.waitTimeout },
    (waitTimeout) =>
      client.acquire({
        name,
        holder,
        leaseDuration: optionalDuration(options.leaseDurationMs ?? options.leaseDuration),
        waitTimeout,
        fairness: options.fair === false ? Fairness.FAIRNESS_NON_FAIR : Fairness.FAIRNESS_UNSPECIFIED,
      }),
    (a, call) => new Lock(name, a.fencingToken, a.holder, a.acquireTime, fromDuration(a.leaseDuration), call, client),
  );
}

/**
 * A lock taken with `tryLock`: held for its lease unless renewed. `signal`
 * aborts when the last `validFor` runs out without a renewal.
 */
export class LeasedLock extends LeaseHold {
  constructor(client: LockServiceClient, name: string, token: number, holder: string, validForMs: number) {
    super(name, token, holder, validForMs, lockCalls(client, name, token));
  }

  /** @deprecated The same as `validForMs`. */
  get validFor(): number {
    return this.validForMs;
  }

  /**
   * Extends the lease, by `leaseDurationMs` if given (whole seconds), and
   * resolves with how many ms you may act. A number instead of options is the
   * older form of `{ leaseDurationMs }`.
   */
  override renew(options: RenewOptions | number = {}): Promise<number> {
    return super.renew(typeof options === "number" ? { leaseDurationMs: options } : options);
  }
}
