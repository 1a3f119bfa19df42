// Read-write locks: many shared holds of a name at once, or one exclusive
// hold (docs/design.md 3.14). A read-write lock is a semaphore of
// RW_CAPACITY permits whose writer's hold counts them all: each daemon has a
// readers' contender and a writer's, each with its own seat and its own entry
// in the one queue, so a writer is granted exactly when no seat holds a
// permit, and a reader waits behind a writer queued ahead of it (semaphores.ts
// serves the queue in order). Every grant writes the next token; a writer's
// also records it as the lock's exclusive token, which every shared hold
// reports as its fencing token.
import type { Grant } from "./claim.js";
import type { Clock } from "./clock.js";
import { SyncError, gaveUp } from "./errors.js";
import type { Observation } from "./lease-cache.js";
import { line } from "./lease-records.js";
import type { AcquireSink } from "./locks.js";
import { type PermitHoldView, RW_CAPACITY, type SemaphoreContender, SeatHolds, isExclusiveEntry, rwRole, untagged } from "./semaphores.js";

export type RWLockMode = "shared" | "exclusive";

export interface RWLockRequest {
  /** Lease name, already checked and prefixed. */
  readonly leaseName: string;
  readonly holder: string;
  readonly leaseMs: number;
  readonly mode: RWLockMode;
}

/** One daemon's shared holds, as GetRWLock lists them. */
export interface ReaderSeatView {
  readonly holderIdentity: string;
  readonly holder: string;
  readonly readers: number;
  readonly remainingMs: number;
}

export interface RWLockState {
  readonly mode: RWLockMode | undefined;
  /** The exclusive hold, while there is one. */
  readonly writer: PermitHoldView | undefined;
  /** The token of the current or latest exclusive hold; 0 if none. */
  readonly fencingToken: number;
  readonly readers: readonly ReaderSeatView[];
  readonly waitingDaemons: readonly string[];
}

export class RWLocks {
  private readonly holds: SeatHolds;

  constructor(private readonly engine: RWLockEngine) {
    this.holds = new SeatHolds(engine.clock);
  }

  prefix(): string {
    return this.engine.prefix("rwlock");
  }

  /** Waits for the lock in `mode` and holds it, renewing, until `signal` aborts; with `waitTimeoutMs` (0: do not wait) the wait is bounded. */
  acquire(request: RWLockRequest & { readonly waitTimeoutMs: number | undefined }, sink: AcquireSink, signal: AbortSignal): void {
    if (signal.aborted) return;
    this.holds.acquire(
      this.engine.rwlockContender(request.leaseName, request.mode),
      { holder: request.holder, leaseMs: request.leaseMs, permits: RW_CAPACITY },
      request.waitTimeoutMs,
      sink,
      signal,
      (waitMs) =>
        new SyncError("wait-timeout", `${request.leaseName} not held ${request.mode} within the wait timeout of ${waitMs / 1000} s`),
    );
  }

  /** One attempt, no waiting; on success the lock is held in `mode` for `leaseMs` unless renewed. */
  tryAcquire(request: RWLockRequest, signal?: AbortSignal): Promise<{ acquired: true; grant: Grant } | { acquired: false }> {
    const doing = `TryAcquireRWLock ${request.leaseName}`;
    if (signal?.aborted) return Promise.reject(gaveUp(doing));
    const contender = this.engine.rwlockContender(request.leaseName, request.mode);
    return this.holds.tryAcquire(contender, { holder: request.holder, leaseMs: request.leaseMs, permits: RW_CAPACITY }, doing, signal);
  }

  renew(leaseName: string, token: number, leaseMs: number | undefined, signal?: AbortSignal): Promise<number> {
    return this.holds.renew(this.holding(leaseName, token), leaseName, token, leaseMs, signal);
  }

  /** Gives a hold back by its id; a session hold's stream then ends without a loss. */
  release(leaseName: string, token: number): Promise<void> {
    return this.holds.release(this.holding(leaseName, token), leaseName, token);
  }

  async get(leaseName: string, fresh: boolean): Promise<RWLockState> {
    const obs = await this.engine.observe(leaseName, fresh, `read read-write lock ${leaseName}`);
    if (obs === undefined) return { mode: undefined, writer: undefined, fencingToken: 0, readers: [], waitingDaemons: [] };
    const now = this.engine.clock.now();
    let writer: PermitHoldView | undefined;
    const readers: ReaderSeatView[] = [];
    for (const [key, { seat, holdEnd }] of obs.seats) {
      if (now >= holdEnd) continue;
      const identity = seat?.identity ?? `(unreadable seat ${key})`;
      const live = seat !== undefined && seat.released !== true ? seat : undefined;
      if (isExclusiveEntry(identity) || live?.permits === RW_CAPACITY) {
        writer = this.ownWriter(obs, identity, now) ?? {
          holder: live?.holder ?? "",
          holderIdentity: untagged(identity),
          token: obs.record.exclusiveToken ?? 0,
          acquireTime: live === undefined ? undefined : new Date(live.acquireWallMs),
          leaseMs: (live?.durationSeconds ?? 0) * 1000,
          remainingMs: holdEnd - now,
        };
        continue;
      }
      readers.push({
        holderIdentity: untagged(identity),
        holder: live?.holder ?? "",
        readers: live?.permits ?? 1,
        remainingMs: holdEnd - now,
      });
    }
    const mode = writer !== undefined ? "exclusive" : readers.length > 0 ? "shared" : undefined;
    return {
      mode,
      writer,
      fencingToken: obs.record.exclusiveToken ?? 0,
      readers,
      waitingDaemons: line(obs.record).map(untagged),
    };
  }

  /** This daemon's own exclusive hold, as its contender knows it, when `identity` is this daemon's writer. */
  private ownWriter(obs: Observation, identity: string, now: number): PermitHoldView | undefined {
    if (identity !== rwRole(this.engine.identity, "exclusive").identity) return undefined;
    return this.engine.existingRWLock(obs.record.name, "exclusive")?.ownHolds(now)[0];
  }

  /** The contender of `leaseName` that has the hold `token`, if any. */
  private holding(leaseName: string, token: number): SemaphoreContender | undefined {
    const exclusive = this.engine.existingRWLock(leaseName, "exclusive");
    if (exclusive?.holdOf(token) !== undefined) return exclusive;
    return this.engine.existingRWLock(leaseName, "shared");
  }
}

/** What RWLocks needs of the engine. */
export interface RWLockEngine {
  readonly clock: Clock;
  readonly identity: string;
  prefix(kind: "rwlock"): string;
  rwlockContender(leaseName: string, mode: RWLockMode): SemaphoreContender;
  existingRWLock(leaseName: string, mode: RWLockMode): SemaphoreContender | undefined;
  observe(leaseName: string, fresh: boolean, doing: string): Promise<Observation | undefined>;
}
