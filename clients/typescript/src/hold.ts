// Holds through the sidecar, whatever is held: a lock, or one permit of a
// semaphore. A `StreamHold` is kept by an Acquire (or AcquirePermit) stream
// that the sidecar renews, and `acquireHold` waits on that stream for the
// grant; a `LeaseHold` is kept by a lease the caller renews. Locks and permits
// differ only in their calls and in the words of their messages (lock.ts,
// semaphore.ts): the deadlines, the client's own deadline on every promise
// and the acknowledged release (docs/design.md 3.11) are written once, here.
import { status, type ClientReadableStream } from "@grpc/grpc-js";
import { type CallOptions, DEFAULT_WAIT_TIMEOUT_MS, type Start, WAIT_TIMEOUT_GRACE_MS, timeoutOf, unary } from "./deadlines.js";
import { formatDuration } from "./duration.js";
import type { Duration } from "./gen/google/protobuf/duration.js";
import type { Lost } from "./gen/metaparticle/sync/v1/lock_service.js";
import type { Renewed } from "./gen/metaparticle/sync/v1/types.js";
import { LostError, SyncClientError, Watchdog, fromDuration, lossReasonNames, optionalDuration, toDuration } from "./internal.js";

/** What a blocking acquisition takes: `lock()`, and a semaphore's `acquire()`. */
export interface AcquireOptions {
  /** Your name for the holder, shown to others; default MSYNC_HOLDER or host/pid. */
  readonly holder?: string;
  /** Lease duration in ms, whole seconds; default the daemon's (15 s). */
  readonly leaseDurationMs?: number;
  /**
   * Give up waiting after this many ms (0: fail at once if nothing is free);
   * default DEFAULT_WAIT_TIMEOUT_MS (5 min). Sent to the sidecar, and kept on
   * this client's clock too: if the sidecar does not answer by then (frozen,
   * unreachable), the acquisition fails WAIT_TIMEOUT_GRACE_MS (1 s) later.
   * Either way the error has code DEADLINE_EXCEEDED and reason WAIT_TIMEOUT.
   * The sidecar accepts up to 24 h.
   */
  readonly waitTimeoutMs?: number;
  /**
   * The deadline of the whole acquisition, waiting included, in ms: it also
   * bounds the wait timeout. Fails with DEADLINE_EXCEEDED. Default: none
   * beyond the wait timeout.
   */
  readonly timeoutMs?: number;
  /** Stops waiting; the acquisition then rejects with `signal.reason`. */
  readonly signal?: AbortSignal;
}

/** What a one-attempt acquisition takes: `tryLock()`, and a semaphore's `tryAcquire()`. */
export interface LeaseOptions extends CallOptions {
  /** Your name for the holder, shown to others; default MSYNC_HOLDER or host/pid. */
  readonly holder?: string;
  /** Lease duration in ms, whole seconds; default the daemon's (15 s). */
  readonly leaseDurationMs?: number;
}

/** What `renew()` of a LeasedLock or a LeasedPermit takes. */
export interface RenewOptions extends CallOptions {
  /** The new lease duration in ms, whole seconds; default the current one. */
  readonly leaseDurationMs?: number;
}

/** The calls that tell one hold from another: how messages name it, and its Release (or ReleasePermit). */
export interface HoldCalls {
  /** How messages name what is held, e.g. "lock db-migration" or "a permit of semaphore export". */
  readonly what: string;
  readonly release: Start<unknown>;
}

/** A lease-held hold's calls: also its Renew (or RenewPermit), with the new lease duration if one is given. */
export interface LeaseCalls extends HoldCalls {
  renew(leaseDuration: Duration | undefined): Start<{ readonly validFor?: Duration | undefined }>;
}

/**
 * What every hold has: its name, token and holder, and a signal that aborts,
 * with a LostError as reason, the moment the holder must stop acting: at the
 * latest when the sidecar's last promise (`valid_for`) runs out on this
 * process's clock without a newer one, whatever the sidecar does meanwhile.
 */
export abstract class Hold<Calls extends HoldCalls = HoldCalls> {
  private readonly controller = new AbortController();
  protected readonly watchdog = new Watchdog(() => this.expired());

  /** Aborts when the hold is lost or released; `signal.reason` is a LostError. */
  readonly signal: AbortSignal = this.controller.signal;

  constructor(
    readonly name: string,
    /** Fencing token: strictly greater than every earlier token of this name. */
    readonly token: number,
    readonly holder: string,
    protected readonly calls: Calls,
  ) {}

  /** True once the hold is lost or released: stop acting. */
  get lost(): boolean {
    return this.signal.aborted;
  }

  /** How many ms the holder may still act: the sidecar's last `valid_for`, counted down here. */
  get validForMs(): number {
    return this.lost ? 0 : Math.max(0, this.watchdog.deadline - performance.now());
  }

  /** The last `valid_for` ran out without a newer one. */
  protected abstract expired(): void;

  /** Ends the hold on this side with `reason`, unless it has ended already; the watchdog stops either way. */
  protected end(reason: LostError): void {
    this.watchdog.stop();
    if (!this.lost) this.controller.abort(reason);
  }

  /** Ends the hold because its holder gave it back: not a loss. */
  protected endReleased(): void {
    this.end(new LostError("released", `${this.calls.what} was released`));
  }
}

/**
 * A hold kept by a stream. It stays held, renewed by the sidecar, until you
 * call `release()` or dispose it (`await using`). `signal` aborts, with a
 * LostError as reason, the moment you must stop acting: the sidecar reported
 * the hold lost, or its heartbeats stopped.
 */
export class StreamHold extends Hold implements AsyncDisposable {
  private releasing: Promise<void> | undefined;

  constructor(
    name: string,
    token: number,
    holder: string,
    readonly acquireTime: Date | undefined,
    /** Lease duration in ms. */
    readonly leaseDurationMs: number,
    private readonly call: ClientReadableStream<unknown>,
    calls: HoldCalls,
  ) {
    super(name, token, holder, calls);
  }

  protected expired(): void {
    this.lose(
      new LostError(
        "heartbeat-timeout",
        `no heartbeat from the sidecar before ${this.calls.what} (token ${this.token}) stopped being valid`,
      ),
    );
  }

  /**
   * Gives the hold back and resolves once the sidecar has released it (its
   * Release answered), so the next holder may have it from then on. `signal`
   * aborts at once, with reason `released`: stop acting before you call this.
   *
   * It waits at most `timeoutMs` (default 10 s), and never past the end of the
   * current promise (the last `valid_for`): if that runs out first, the hold is
   * over anyway and this resolves. If the deadline passes while the promise
   * still runs, the stream is cancelled (the sidecar gives the hold back as
   * soon as it can) and this rejects with DEADLINE_EXCEEDED. A hold already
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
    // From here on a `lost` or the stream's end is not a loss: the holder is giving the hold back.
    this.endReleased();
    const remainingMs = promiseEnd - performance.now();
    if (wasLost || remainingMs <= 0) {
      this.call.cancel();
      return;
    }
    // The wait ends with the promise at the latest: after that the hold is over, answered or not.
    const cutByPromise = remainingMs <= timeoutMs;
    try {
      await unary<unknown>(
        `Release of ${this.calls.what}`,
        { timeoutMs: Math.min(timeoutMs, remainingMs), signal: options.signal },
        this.calls.release,
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
    this.end(error);
    this.call.cancel();
  }
}

/** One event of an Acquire or AcquirePermit stream: the grant (`A`), a renewal, or a loss. */
export interface HoldEvent<A> {
  event?: { $case: "acquired"; value: A } | { $case: "renewed"; value: Renewed } | { $case: "lost"; value: Lost } | undefined;
}

/**
 * Opens an Acquire (or AcquirePermit) stream with `open`, given the wait
 * timeout to send, and resolves with the hold `grant` makes of the sidecar's
 * `acquired`. The wait is bounded twice: the sidecar is told the wait timeout,
 * and this side gives up on its own clock a grace period later, or at
 * `timeoutMs`. `what` names the hold in messages.
 */
export function acquireHold<A extends { readonly validFor?: Duration | undefined }, H extends StreamHold>(
  what: string,
  options: AcquireOptions,
  open: (waitTimeout: Duration) => ClientReadableStream<HoldEvent<A>>,
  grant: (acquired: A, call: ClientReadableStream<HoldEvent<A>>) => H,
): Promise<H> {
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) return reject(options.signal.reason);
    const waitMs = options.waitTimeoutMs ?? DEFAULT_WAIT_TIMEOUT_MS;
    const callMs = options.timeoutMs === undefined ? undefined : timeoutOf(options);
    const sentWaitMs = callMs === undefined ? waitMs : Math.min(waitMs, callMs);
    const call = open(toDuration(sentWaitMs));
    let hold: H | undefined;
    let settled = false;
    const settle = (error: unknown, granted?: H) => {
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
                `DEADLINE_EXCEEDED: ${what} not acquired within its wait timeout of ${formatDuration(waitMs)}, and no answer from the sidecar ${formatDuration(WAIT_TIMEOUT_GRACE_MS)} after it`,
                undefined,
                "WAIT_TIMEOUT",
              )
            : new SyncClientError(status.DEADLINE_EXCEEDED, `DEADLINE_EXCEEDED: ${what} not acquired within ${formatDuration(callMs)}`),
        ),
      waitLimited ? waitMs + WAIT_TIMEOUT_GRACE_MS : callMs,
    );
    call.on("data", (message: HoldEvent<A>) => {
      const event = message.event;
      if (event?.$case === "acquired") {
        hold = grant(event.value, call);
        hold.heartbeat(fromDuration(event.value.validFor));
        if (settled)
          hold.release().catch(() => {}); // given up on just before: give it back
        else settle(undefined, hold);
      } else if (event?.$case === "renewed") {
        hold?.heartbeat(fromDuration(event.value.validFor));
      } else if (event?.$case === "lost") {
        hold?.lose(new LostError(lossReasonNames[event.value.reason] ?? "unknown", event.value.message));
      }
    });
    call.on("error", (err: Error & { code?: number }) => {
      if (hold === undefined) settle(SyncClientError.from(err));
      else if (err.code !== status.CANCELLED) hold.lose(new LostError("stream-ended", `the sidecar stream ended: ${err.message}`));
    });
    call.on("end", () => {
      if (hold === undefined) settle(new SyncClientError(status.UNAVAILABLE, `the sidecar ended the stream before ${what} was acquired`));
      else hold.lose(new LostError("stream-ended", `the sidecar ended the stream of ${what}`));
    });
  });
}

/**
 * A hold taken for a lease: held unless the lease runs out without a renewal.
 * `signal` aborts when the last `validFor` runs out without a renewal, or on
 * release.
 */
export class LeaseHold extends Hold<LeaseCalls> implements AsyncDisposable {
  constructor(name: string, token: number, holder: string, validForMs: number, calls: LeaseCalls) {
    super(name, token, holder, calls);
    this.watchdog.extend(validForMs);
  }

  protected expired(): void {
    this.end(new LostError("heartbeat-timeout", `lease of ${this.calls.what} (token ${this.token}) ran out without a renewal`));
  }

  /**
   * Extends the lease, by `leaseDurationMs` if given (whole seconds), and
   * resolves with how many ms you may act. Deadline `timeoutMs`, default 10 s.
   */
  async renew(options: RenewOptions = {}): Promise<number> {
    const { leaseDurationMs, ...call } = options;
    const response = await unary(
      `Renew of ${this.calls.what}`,
      { ...call, timeoutMs: timeoutOf(call) },
      this.calls.renew(optionalDuration(leaseDurationMs)),
    );
    const validFor = fromDuration(response.validFor);
    if (!this.lost) this.watchdog.extend(validFor);
    return validFor;
  }

  /**
   * Gives the hold back; the next waiter gets it at once. Rejects with
   * FAILED_PRECONDITION if the lease had already run out and the sidecar no
   * longer has the hold, and with DEADLINE_EXCEEDED after `timeoutMs`
   * (default 10 s).
   */
  async release(options: CallOptions = {}): Promise<void> {
    await unary(`Release of ${this.calls.what}`, { ...options, timeoutMs: timeoutOf(options) }, this.calls.release);
    this.endReleased();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.lost) await this.release();
  }
}
