// A claim is one caller's interest in a lease on this daemon: a blocking
// Acquire, a TryAcquire, or a Campaign. Claims for the same lease wait in one
// FIFO queue inside that lease's contender; the contender tells each claim what
// happens to it through its sink.
import type { SyncError } from "./errors.js";

export type LossReason = "renew-deadline-exceeded" | "taken-over" | "shutdown" | "deleted";

export interface Grant {
  /** Fencing token (lock) or term (election): the lease's transition count after the acquiring write. */
  readonly token: number;
  /** A shared hold of a read-write lock: the token of the latest exclusive hold before it (`token` is its hold's id). */
  readonly fencingToken?: number;
  readonly acquireTime: Date;
  readonly leaseMs: number;
  /** How much longer, from now, the holder may safely act without another renewal. */
  readonly validForMs: number;
}

/** Where a claim's fate is reported. Exactly one of `granted` or `failed` ends the wait. */
export interface ClaimSink {
  granted(grant: Grant): void;
  /** Session claims only: a renewal succeeded. */
  renewed(validForMs: number): void;
  /** The claim held the lease and must stop acting now. */
  lost(reason: LossReason, message: string): void;
  /** The claim ended without being granted (timeout, shutdown, store failure). */
  failed(error: SyncError): void;
}

export interface ClaimOptions {
  /** Caller-supplied holder or candidate name. */
  readonly holder: string;
  readonly leaseMs: number;
  /** "session": the daemon renews while the claim lives. "lease": the caller renews with Renew. */
  readonly mode: "session" | "lease";
  /** Fail at once instead of waiting when the lease is not free for this claim right now. */
  readonly noWait: boolean;
  /** Election claims stay in the queue after losing leadership, to be elected again. */
  readonly persistent: boolean;
  /** Election value proclaimed on election. */
  readonly value: string;
  /**
   * A non-fair lock claim: the holder's daemon may hand the lease to it ahead
   * of other daemons waiting, up to MAX_GRANTS_IN_A_ROW (see decide.ts).
   */
  readonly nonFair?: boolean;
  /** A semaphore claim: the N it asks with. */
  readonly permits?: number;
}

export type ClaimState = "waiting" | "held" | "ended";

/**
 * One caller's claim. Its state changes only through the methods below,
 * called by its contender: waiting -> held -> (waiting again, for an election
 * candidate that lost) -> ended.
 */
export class Claim {
  private current: ClaimState = "waiting";
  private tokenHeld = 0;
  private since = 0;
  private endedResolve!: () => void;
  /** Resolves once the lease this claim held is released (or was never held). */
  readonly settled = new Promise<void>((resolve) => (this.endedResolve = resolve));

  constructor(
    readonly options: ClaimOptions,
    readonly sink: ClaimSink,
  ) {}

  get state(): ClaimState {
    return this.current;
  }

  /** Token of the current or last grant; 0 before any. */
  get token(): number {
    return this.tokenHeld;
  }

  /** When the claim last joined the contender's wait queue (the engine clock's ms). */
  get waitingSince(): number {
    return this.since;
  }

  /** Joins (or, after losing an election, rejoins) the wait queue at `now`. */
  wait(now: number): void {
    this.current = "waiting";
    this.since = now;
  }

  /** The claim now holds the lease with `token`. */
  hold(token: number): void {
    this.current = "held";
    this.tokenHeld = token;
  }

  /** The claim is over, whether or not the store reflects it yet. */
  end(): void {
    this.current = "ended";
  }

  /** Ends a claim that never held, and tells its caller why. */
  fail(error: SyncError): void {
    this.end();
    this.markSettled();
    this.sink.failed(error);
  }

  /** Called by the contender once nothing of this claim remains in the store. */
  markSettled(): void {
    this.endedResolve();
  }
}
