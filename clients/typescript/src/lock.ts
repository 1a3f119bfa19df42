// Locks through the sidecar: `lock()` holds one for as long as you keep it
// (released on dispose), `tryLock()` takes one for a lease you renew.
import { status, type ClientReadableStream } from "@grpc/grpc-js";
import { type CallOptions, DEFAULT_WAIT_TIMEOUT_MS, WAIT_TIMEOUT_GRACE_MS, timeoutOf, unary } from "./deadlines.js";
import type { AcquireResponse, LockServiceClient, RenewResponse } from "./gen/metaparticle/sync/v1/lock_service.js";
import { formatDuration } from "./duration.js";
import { LostError, SyncClientError, Watchdog, fromDuration, lossReasonNames, optionalDuration, toDuration } from "./internal.js";

/** What `LeasedLock.renew()` takes. */
export interface RenewOptions extends CallOptions {
  /** The new lease duration in ms, whole seconds; default the lock's current one. */
  readonly leaseDurationMs?: number;
}

export interface LockOptions {
  /** Your name for the holder, shown to others; default MSYNC_HOLDER or host/pid. */
  readonly holder?: string;
  /** Lease duration in ms, whole seconds; default the daemon's (15 s). */
  readonly leaseDurationMs?: number;
  /** @deprecated The same as `leaseDurationMs`. */
  readonly leaseDuration?: number;
  /**
   * Give up waiting for the lock after this many ms (0: fail at once if it is
   * held); default DEFAULT_WAIT_TIMEOUT_MS (5 min). Sent to the sidecar, and
   * kept on this client's clock too: if the sidecar does not answer by then
   * (frozen, unreachable), `lock()` fails WAIT_TIMEOUT_GRACE_MS (1 s) later.
   * Either way the error has code DEADLINE_EXCEEDED and reason WAIT_TIMEOUT.
   * The sidecar accepts up to 24 h.
   */
  readonly waitTimeoutMs?: number;
  /** @deprecated The same as `waitTimeoutMs`. */
  readonly waitTimeout?: number;
  /**
   * The deadline of the whole `lock()` call, waiting included, in ms: it also
   * bounds the wait timeout. Fails with DEADLINE_EXCEEDED. Default: none
   * beyond the wait timeout.
   */
  readonly timeoutMs?: number;
  /** Stops waiting for the lock; `lock()` then rejects with `signal.reason`. */
  readonly signal?: AbortSignal;
}

/**
 * A held lock. It stays held, renewed by the sidecar, until you call
 * `release()` or dispose it (`await using lock = await client.lock(...)`).
 * `signal` aborts, with a LostError as reason, the moment you must stop
 * acting: the sidecar reported the lock lost, or its heartbeats stopped.
 */
export class Lock implements AsyncDisposable {
  private readonly controller = new AbortController();
  private readonly watchdog: Watchdog;
  private releasing: Promise<void> | undefined;

  /** Aborts when the lock is lost or released; `signal.reason` is a LostError. */
  readonly signal: AbortSignal = this.controller.signal;

  constructor(
    readonly name: string,
    /** Fencing token: strictly greater than every earlier token of this lock. */
    readonly token: number,
    readonly holder: string,
    readonly acquireTime: Date | undefined,
    /** Lease duration in ms. */
    readonly leaseDurationMs: number,
    private readonly call: ClientReadableStream<AcquireResponse>,
    private readonly client: LockServiceClient,
  ) {
    this.watchdog = new Watchdog(() =>
      this.lose(
        new LostError("heartbeat-timeout", `no heartbeat from the sidecar before lock ${name} (token ${token}) stopped being valid`),
      ),
    );
  }

  /** True once the lock is lost or released: stop acting. */
  get lost(): boolean {
    return this.signal.aborted;
  }

  /** How many ms the holder may act without another heartbeat (the sidecar's last `valid_for`, counted down here). */
  get validForMs(): number {
    return this.lost ? 0 : Math.max(0, this.watchdog.deadline - performance.now());
  }

  /** @deprecated The same as `validForMs`. */
  get validFor(): number {
    return this.validForMs;
  }

  /** @deprecated The same as `leaseDurationMs`. */
  get leaseDuration(): number {
    return this.leaseDurationMs;
  }

  /**
   * Gives the lock back and resolves once the sidecar has released it (its
   * Release answered), so the next holder may have it from then on. `signal`
   * aborts at once, with reason `released`: stop acting before you call this.
   *
   * It waits at most `timeoutMs` (default 10 s), and never past the end of the
   * current promise (the last `valid_for`): if that runs out first, the hold is
   * over anyway and this resolves. If the deadline passes while the promise
   * still runs, the stream is cancelled (the sidecar gives the lock back as
   * soon as it can) and this rejects with DEADLINE_EXCEEDED. A lock already
   * lost resolves at once. Calling it again waits for the first call, without
   * repeating its error (its stream is closed: nothing is left to do).
   */
  release(options: CallOptions = {}): Promise<void> {
    if (this.releasing !== undefined) return this.releasing.catch(() => {});
    this.releasing = this.giveBack(options);
    return this.releasing;
  }

  private async giveBack(options: CallOptions): Promise<void> {
    const timeoutMs = timeoutOf(options);
    const promiseEnd = this.watchdog.deadline;
    const wasLost = this.lost;
    this.watchdog.stop();
    // From here on a `lost` or the stream's end is not a loss: the holder is giving the lock back.
    if (!wasLost) this.controller.abort(new LostError("released", `lock ${this.name} was released`));
    const remainingMs = promiseEnd - performance.now();
    if (wasLost || remainingMs <= 0) {
      this.call.cancel();
      return;
    }
    // The wait ends with the promise at the latest: after that the hold is over, answered or not.
    const cutByPromise = remainingMs <= timeoutMs;
    try {
      await unary<unknown>(
        `Release of lock ${this.name}`,
        { timeoutMs: Math.min(timeoutMs, remainingMs), signal: options.signal },
        (metadata, callOptions, callback) =>
          this.client.release({ name: this.name, fencingToken: this.token }, metadata, callOptions, callback),
      );
    } catch (err) {
      const error = err instanceof SyncClientError ? err : undefined;
      // Not held any more: lost or expired meanwhile, so there is nothing left to give back.
      if (error?.code === status.FAILED_PRECONDITION) return;
      // The promise ran out before the sidecar answered: nobody may count on this hold any more.
      if (error?.code === status.DEADLINE_EXCEEDED && cutByPromise) return;
      throw err;
    } finally {
      // The sidecar ends the stream itself after a Release; after anything else, closing it makes the sidecar let go.
      this.call.cancel();
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }

  /** @internal */
  heartbeat(validForMs: number): void {
    if (!this.lost) this.watchdog.extend(validForMs);
  }

  /** @internal */
  lose(error: LostError): void {
    if (this.lost) return;
    this.watchdog.stop();
    this.controller.abort(error);
    this.call.cancel();
  }
}

/**
 * Opens an Acquire stream and resolves with the lock once the sidecar grants
 * it. The wait is bounded twice: the sidecar is told the wait timeout, and this
 * side gives up on its own clock a grace period later, or at `timeoutMs`.
 */
export function acquire(client: LockServiceClient, name: string, holder: string, options: LockOptions): Promise<Lock> {
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) return reject(options.signal.reason);
    const waitMs = options.waitTimeoutMs ?? options.waitTimeout ?? DEFAULT_WAIT_TIMEOUT_MS;
    const callMs = options.timeoutMs === undefined ? undefined : timeoutOf(options);
    const sentWaitMs = callMs === undefined ? waitMs : Math.min(waitMs, callMs);
    const call = client.acquire({
      name,
      holder,
      leaseDuration: optionalDuration(options.leaseDurationMs ?? options.leaseDuration),
      waitTimeout: toDuration(sentWaitMs),
    });
    let lock: Lock | undefined;
    let settled = false;
    const settle = (error: unknown, granted?: Lock) => {
      if (settled) return;
      settled = true;
      clearTimeout(ownClock);
      options.signal?.removeEventListener("abort", onAbort);
      if (granted !== undefined) return resolve(granted);
      call.cancel();
      reject(error);
    };
    const onAbort = () => settle(options.signal!.reason);
    options.signal?.addEventListener("abort", onAbort, { once: true });
    // This side's own clock: a frozen sidecar answers neither the grant nor the wait timeout.
    const waitLimited = callMs === undefined || waitMs + WAIT_TIMEOUT_GRACE_MS <= callMs;
    const ownClock = setTimeout(
      () =>
        settle(
          waitLimited
            ? new SyncClientError(
                status.DEADLINE_EXCEEDED,
                `DEADLINE_EXCEEDED: lock ${name} not acquired within its wait timeout of ${formatDuration(waitMs)}, and no answer from the sidecar ${formatDuration(WAIT_TIMEOUT_GRACE_MS)} after it`,
                undefined,
                "WAIT_TIMEOUT",
              )
            : new SyncClientError(
                status.DEADLINE_EXCEEDED,
                `DEADLINE_EXCEEDED: lock ${name} not acquired within ${formatDuration(callMs)}`,
              ),
        ),
      waitLimited ? waitMs + WAIT_TIMEOUT_GRACE_MS : callMs,
    );
    call.on("data", (message: AcquireResponse) => {
      const event = message.event;
      if (event?.$case === "acquired") {
        const a = event.value;
        lock = new Lock(name, a.fencingToken, a.holder, a.acquireTime, fromDuration(a.leaseDuration), call, client);
        lock.heartbeat(fromDuration(a.validFor));
        if (settled)
          lock.release().catch(() => {}); // given up on just before: give it back
        else settle(undefined, lock);
      } else if (event?.$case === "renewed") {
        lock?.heartbeat(fromDuration(event.value.validFor));
      } else if (event?.$case === "lost") {
        lock?.lose(new LostError(lossReasonNames[event.value.reason] ?? "unknown", event.value.message));
      }
    });
    call.on("error", (err: Error & { code?: number }) => {
      if (lock === undefined) settle(SyncClientError.from(err));
      else if (err.code !== status.CANCELLED) lock.lose(new LostError("stream-ended", `the sidecar stream ended: ${err.message}`));
    });
    call.on("end", () => {
      if (lock === undefined)
        settle(new SyncClientError(status.UNAVAILABLE, `the sidecar ended the stream before lock ${name} was acquired`));
      else lock.lose(new LostError("stream-ended", `the sidecar ended the stream of lock ${name}`));
    });
  });
}

/**
 * A lock taken with `tryLock`: held for its lease unless renewed. `signal`
 * aborts when the last `validFor` runs out without a renewal.
 */
export class LeasedLock implements AsyncDisposable {
  private readonly controller = new AbortController();
  private readonly watchdog: Watchdog;
  readonly signal: AbortSignal = this.controller.signal;

  constructor(
    private readonly client: LockServiceClient,
    readonly name: string,
    readonly token: number,
    readonly holder: string,
    validForMs: number,
  ) {
    this.watchdog = new Watchdog(() =>
      this.controller.abort(new LostError("heartbeat-timeout", `lease of lock ${name} (token ${token}) ran out without a renewal`)),
    );
    this.watchdog.extend(validForMs);
  }

  get lost(): boolean {
    return this.signal.aborted;
  }

  /** How many ms the holder may act without renewing. */
  get validForMs(): number {
    return this.lost ? 0 : Math.max(0, this.watchdog.deadline - performance.now());
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
  async renew(options: RenewOptions | number = {}): Promise<number> {
    const { leaseDurationMs, ...call } = typeof options === "number" ? { leaseDurationMs: options } : options;
    const request = { name: this.name, fencingToken: this.token, leaseDuration: optionalDuration(leaseDurationMs) };
    const response = await unary<RenewResponse>(
      `Renew of lock ${this.name}`,
      { ...call, timeoutMs: timeoutOf(call) },
      (metadata, callOptions, callback) => this.client.renew(request, metadata, callOptions, callback),
    );
    const validFor = fromDuration(response.validFor);
    if (!this.lost) this.watchdog.extend(validFor);
    return validFor;
  }

  /**
   * Gives the lock back; the next waiter gets it at once. Rejects with
   * FAILED_PRECONDITION if the lease had already run out and someone else took
   * the lock, and with DEADLINE_EXCEEDED after `timeoutMs` (default 10 s).
   */
  async release(options: CallOptions = {}): Promise<void> {
    await unary(`Release of lock ${this.name}`, { ...options, timeoutMs: timeoutOf(options) }, (metadata, callOptions, callback) =>
      this.client.release({ name: this.name, fencingToken: this.token }, metadata, callOptions, callback),
    );
    this.watchdog.stop();
    if (!this.lost) this.controller.abort(new LostError("released", `lock ${this.name} was released`));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.lost) await this.release();
  }
}
