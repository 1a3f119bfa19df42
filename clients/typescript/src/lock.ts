// Locks through the sidecar: `lock()` holds one for as long as you keep it
// (released on dispose), `tryLock()` takes one for a lease you renew.
import { status, type ClientReadableStream } from "@grpc/grpc-js";
import { setTimeout as sleep } from "node:timers/promises";
import type { AcquireResponse, GetLockResponse, LockServiceClient } from "./gen/metaparticle/sync/v1/lock_service.js";
import { ReadConsistency } from "./gen/metaparticle/sync/v1/types.js";
import { LostError, SyncClientError, Watchdog, fromDuration, lossReasonNames, optionalDuration } from "./internal.js";

export interface LockOptions {
  /** Your name for the holder, shown to others; default MSYNC_HOLDER or host/pid. */
  readonly holder?: string;
  /** Lease duration in ms, whole seconds; default the daemon's (15 s). */
  readonly leaseDurationMs?: number;
  /** @deprecated The same as `leaseDurationMs`. */
  readonly leaseDuration?: number;
  /** Give up waiting after this many ms (0: do not wait). Default: wait until `signal` aborts. */
  readonly waitTimeoutMs?: number;
  /** @deprecated The same as `waitTimeoutMs`. */
  readonly waitTimeout?: number;
  /** Stops waiting for the lock. */
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
  private released = false;

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

  /** How many ms the holder may act without another heartbeat. */
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
   * Releases the lock and resolves once the sidecar has given it back, so
   * the next waiter can have it from then on.
   */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    this.watchdog.stop();
    const wasLost = this.lost;
    if (!wasLost) this.controller.abort(new LostError("released", `lock ${this.name} was released`));
    // Closing the stream is what releases a lock held by Acquire; the sidecar
    // has no reply for that, so read until its Lease no longer shows this
    // token (on this channel, which the cancellation went through first).
    this.call.cancel();
    if (!wasLost) await this.sidecarReleased(performance.now() + this.leaseDurationMs);
  }

  private async sidecarReleased(deadline: number): Promise<void> {
    for (let pause = 5; performance.now() < deadline; pause = Math.min(pause * 2, 200)) {
      const state = await new Promise<GetLockResponse | undefined>((resolve) =>
        this.client.getLock({ name: this.name, consistency: ReadConsistency.READ_CONSISTENCY_FRESH }, (err, r) =>
          resolve(err ? undefined : r),
        ),
      );
      // An unreachable sidecar cannot hold the lock past its lease either; stop asking.
      if (state === undefined || !state.held || state.fencingToken !== this.token) return;
      await sleep(pause);
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

export function acquire(client: LockServiceClient, name: string, holder: string, options: LockOptions): Promise<Lock> {
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) return reject(options.signal.reason);
    const call = client.acquire({
      name,
      holder,
      leaseDuration: optionalDuration(options.leaseDurationMs ?? options.leaseDuration),
      waitTimeout: optionalDuration(options.waitTimeoutMs ?? options.waitTimeout),
    });
    let lock: Lock | undefined;
    const onAbort = () => {
      call.cancel();
      reject(options.signal!.reason);
    };
    options.signal?.addEventListener("abort", onAbort, { once: true });
    call.on("data", (message: AcquireResponse) => {
      const event = message.event;
      if (event?.$case === "acquired") {
        options.signal?.removeEventListener("abort", onAbort);
        const a = event.value;
        lock = new Lock(name, a.fencingToken, a.holder, a.acquireTime, fromDuration(a.leaseDuration), call, client);
        lock.heartbeat(fromDuration(a.validFor));
        resolve(lock);
      } else if (event?.$case === "renewed") {
        lock?.heartbeat(fromDuration(event.value.validFor));
      } else if (event?.$case === "lost") {
        lock?.lose(new LostError(lossReasonNames[event.value.reason] ?? "unknown", event.value.message));
      }
    });
    call.on("error", (err: Error & { code?: number }) => {
      options.signal?.removeEventListener("abort", onAbort);
      if (lock === undefined) reject(SyncClientError.from(err));
      else if (err.code !== status.CANCELLED) lock.lose(new LostError("stream-ended", `the sidecar stream ended: ${err.message}`));
    });
    call.on("end", () => {
      if (lock === undefined)
        reject(new SyncClientError(status.UNAVAILABLE, `the sidecar ended the stream before lock ${name} was acquired`));
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

  /** Extends the lease (optionally with a new duration in ms); resolves with how many ms you may act. */
  renew(leaseDurationMs?: number): Promise<number> {
    return new Promise((resolve, reject) =>
      this.client.renew(
        { name: this.name, fencingToken: this.token, leaseDuration: optionalDuration(leaseDurationMs) },
        (err, response) => {
          if (err) return reject(SyncClientError.from(err));
          const validFor = fromDuration(response.validFor);
          if (!this.lost) this.watchdog.extend(validFor);
          resolve(validFor);
        },
      ),
    );
  }

  /** Gives the lock back; the next waiter gets it at once. */
  release(): Promise<void> {
    return new Promise((resolve, reject) =>
      this.client.release({ name: this.name, fencingToken: this.token }, (err) => {
        if (err) return reject(SyncClientError.from(err));
        this.watchdog.stop();
        if (!this.lost) this.controller.abort(new LostError("released", `lock ${this.name} was released`));
        resolve();
      }),
    );
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.lost) await this.release();
  }
}
