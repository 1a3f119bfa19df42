// Lock operations on top of the contenders: a session-held Acquire, a
// lease-held TryAcquire with Renew and Release, and reads.
import { Claim, type Grant, type LossReason } from "./claim.js";
import type { Engine } from "./engine.js";
import { SyncError, gaveUp } from "./errors.js";
import { addSessionClaim } from "./session-claim.js";
import { expiresAt, isFree } from "./lease-cache.js";

export interface LockRequest {
  /** Lease name, already checked and prefixed (see `Locks.leaseName`). */
  readonly leaseName: string;
  readonly holder: string;
  readonly leaseMs: number;
}

/** Where the fate of one Acquire is reported. */
export interface AcquireSink {
  acquired(grant: Grant): void;
  renewed(validForMs: number): void;
  /** The holder must stop acting; the hold is over. */
  lost(reason: LossReason, message: string): void;
  /** The lock was never acquired: wait timeout, shutdown or store failure. */
  failed(error: SyncError): void;
  /** The holder gave the lock back by token (Release) and the store has taken it: end the hold without a loss. */
  released(): void;
}

export type TryAcquireResult =
  | { readonly acquired: true; readonly grant: Grant }
  | { readonly acquired: false; readonly holder: string; readonly token: number; readonly leaseMs: number };

export interface LockState {
  readonly held: boolean;
  readonly holder: string;
  readonly holderIdentity: string;
  readonly token: number;
  readonly acquireTime: Date | undefined;
  readonly leaseMs: number;
  readonly remainingMs: number;
}

export class Locks {
  /** Where each session hold reports, so that a Release by its token can end its stream. */
  private readonly sessions = new WeakMap<Claim, AcquireSink>();

  constructor(private readonly engine: Engine) {}

  /** Maps a lock name to its Lease name. */
  prefix(): string {
    return this.engine.prefix("lock");
  }

  /**
   * Waits for the lock and holds it, renewing, until `signal` aborts. With
   * `waitTimeoutMs` the wait ends with a "wait-timeout" failure; 0 means do
   * not wait at all.
   */
  acquire(
    request: LockRequest & { readonly waitTimeoutMs: number | undefined; readonly nonFair?: boolean },
    sink: AcquireSink,
    signal: AbortSignal,
  ): void {
    if (signal.aborted) return;
    const claim = addSessionClaim(
      this.engine.contender(request.leaseName, "lock"),
      { holder: request.holder, leaseMs: request.leaseMs, persistent: false, value: "", nonFair: request.nonFair === true },
      request.waitTimeoutMs,
      sink,
      signal,
      this.engine.clock,
      (waitMs) =>
        new SyncError(
          "wait-timeout",
          `lock not acquired within the wait timeout of ${waitMs / 1000} s: ${this.describeHolder(request.leaseName)}`,
        ),
    );
    this.sessions.set(claim, sink);
  }

  /**
   * One attempt, no waiting; on success the lock is held for `leaseMs` unless
   * renewed. When `signal` aborts before the answer (the caller gave up), the
   * attempt is dropped, and a lease its write took meanwhile is given back:
   * nobody was told of it.
   */
  tryAcquire(request: LockRequest, signal?: AbortSignal): Promise<TryAcquireResult> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(gaveUp(`TryAcquire ${request.leaseName}`));
      const contender = this.engine.contender(request.leaseName, "lock");
      const claim = new Claim(
        { holder: request.holder, leaseMs: request.leaseMs, mode: "lease", noWait: true, persistent: false, value: "" },
        {
          granted: (grant) => resolve({ acquired: true, grant }),
          renewed: () => {},
          lost: () => {},
          failed: (error) => {
            if (error.code !== "wait-timeout") return reject(error);
            const record = this.engine.cache.get(request.leaseName)?.record;
            resolve({
              acquired: false,
              holder: record?.holder ?? "",
              token: record?.transitions ?? 0,
              leaseMs: (record?.leaseDurationSeconds ?? 0) * 1000,
            });
          },
        },
      );
      signal?.addEventListener(
        "abort",
        () => {
          void contender.end(claim);
          reject(gaveUp(`TryAcquire ${request.leaseName}`));
        },
        { once: true },
      );
      contender.add(claim);
    });
  }

  /**
   * Extends a lease-held lock; resolves with how long the holder may act. A
   * Renew whose `signal` aborts before its turn to be written (the caller gave
   * up) is not written.
   */
  async renew(leaseName: string, token: number, leaseMs: number | undefined, signal?: AbortSignal): Promise<number> {
    return this.heldBy(leaseName, token).renew(token, leaseMs, signal);
  }

  /**
   * Gives back a lock by its token, lease-held or session-held, and resolves
   * once the store has taken the release. A session hold's stream then ends
   * without a loss: the holder learns from the reply, not from a poll, that
   * the next holder may act.
   */
  async release(leaseName: string, token: number): Promise<void> {
    const contender = this.heldBy(leaseName, token);
    const claim = contender.claimFor(token)!;
    await contender.release(token, undefined);
    this.sessions.get(claim)?.released();
  }

  async get(leaseName: string, fresh: boolean): Promise<LockState> {
    const obs = await this.engine.observe(leaseName, fresh, `read lock ${leaseName}`);
    if (obs === undefined) {
      return { held: false, holder: "", holderIdentity: "", token: 0, acquireTime: undefined, leaseMs: 0, remainingMs: 0 };
    }
    const now = this.engine.clock.now();
    const held = !isFree(obs, now);
    const record = obs.record;
    return {
      held,
      holder: record.holder,
      holderIdentity: record.holderIdentity,
      token: record.transitions,
      acquireTime: record.acquireTime,
      leaseMs: record.leaseDurationSeconds * 1000,
      remainingMs: held ? expiresAt(obs) - now : 0,
    };
  }

  private heldBy(leaseName: string, token: number) {
    const contender = this.engine.existingContender(leaseName);
    if (contender?.claimFor(token) === undefined) {
      throw new SyncError("not-held", `token ${token} is not held by this daemon for ${leaseName}: ${this.describeHolder(leaseName)}`);
    }
    return contender;
  }

  private describeHolder(leaseName: string): string {
    const obs = this.engine.cache.get(leaseName);
    if (obs === undefined) return "it was never acquired";
    if (isFree(obs, this.engine.clock.now())) return `it is free; the last token is ${obs.record.transitions}`;
    return `it is held by ${obs.record.holder} with token ${obs.record.transitions}`;
  }
}
