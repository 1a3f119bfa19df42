// How the engine performs store calls: every call has a deadline, waits its
// turn for a connection by priority, and every failure is classified by the
// policy (store-policy.ts) before the caller looks up its response.
import type { Clock } from "./clock.js";
import { type StoreFailure, failureOf } from "./store-policy.js";
import { StoreError } from "../store/lease-store.js";

export type CallResult<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly failure: StoreFailure; readonly error: StoreError };

/**
 * Which calls go first when the store cannot take them all at once:
 * - `keep`: what keeps a holder's lease or hands it on (renewals, a holder's
 *   own calls, releases): a late one costs a holder its lock;
 * - `take`: acquiring writes and the reads that settle them, joining the wait queue;
 * - `other`: leaving the wait queue, clients' reads, restoring a deleted Lease.
 */
export type CallPriority = "keep" | "take" | "other";
const ORDER: readonly CallPriority[] = ["keep", "take", "other"];
/** Connections a call of this priority leaves to the more urgent ones (when the limit allows it more than one). */
const RESERVED: Readonly<Record<CallPriority, number>> = { keep: 0, take: 1, other: 2 };

export class StoreCalls {
  private readonly gate: Gate;

  constructor(
    private readonly clock: Clock,
    /** Told about failures the engine absorbs by retrying or failing waiters (not about a stale or gone lease). */
    private readonly onStoreError: (name: string, doing: string, error: unknown) => void,
    /** Calls in flight at once; the others wait, the most urgent first. */
    maxInFlight = Number.POSITIVE_INFINITY,
  ) {
    this.gate = new Gate(maxInFlight);
  }

  /** Calls waiting for a turn now, for metrics and tests. */
  get queued(): number {
    return this.gate.waiting;
  }

  /**
   * Runs `call` once its turn comes, with a signal that aborts `timeoutMs`
   * after it was asked for (the store then fails it as "unavailable"), and
   * classifies a failure. A call whose deadline passes while it waits for its
   * turn is never sent: it fails as "shed", and nothing happened.
   */
  async run<T>(
    name: string,
    doing: string,
    timeoutMs: number,
    call: (signal: AbortSignal) => Promise<T>,
    priority: CallPriority = "take",
  ): Promise<CallResult<T>> {
    const controller = new AbortController();
    // The deadline holds even if the store ignores the signal: a reply that
    // comes after it is not acted on, and its call counts as unanswered.
    let expire!: () => void;
    const expired = new Promise<never>((_resolve, reject) => {
      expire = () => reject(new StoreError("unavailable", `${doing}: no answer within ${Math.round(timeoutMs)} ms`));
    });
    expired.catch(() => {});
    const timer = this.clock.setTimer(timeoutMs, () => {
      controller.abort(new Error(`timed out after ${Math.round(timeoutMs)} ms`));
      expire();
    });
    const startedAt = this.clock.now();
    let leave: (() => void) | undefined;
    try {
      leave = await this.gate.enter(priority, controller.signal, () => {
        const waited = Math.round(this.clock.now() - startedAt);
        return new StoreError("shed", `${doing}: not sent, no connection to the store came free within ${waited} ms`);
      });
      const call$ = call(controller.signal);
      call$.then(leave, leave);
      const value = await Promise.race([call$, expired]);
      // A process that was paused can see the reply before its timer fires.
      if (this.clock.now() - startedAt > timeoutMs) {
        throw new StoreError("unavailable", `${doing}: answered after its deadline of ${Math.round(timeoutMs)} ms`);
      }
      return { ok: true, value };
    } catch (err) {
      const failure = failureOf(err);
      if (failure !== "stale" && failure !== "gone") this.onStoreError(name, doing, err);
      return { ok: false, failure, error: err as StoreError };
    } finally {
      timer.cancel();
      leave?.();
    }
  }
}

/**
 * Lets at most `limit` calls run at once. The others wait in one line per
 * priority, served in order of priority, then of arrival. A waiting call
 * leaves the line when its signal aborts. A call of a lower priority leaves
 * connections free for the higher ones (`RESERVED`): calls that hang until
 * their deadline (seconds) can take every connection, and clients' reads that
 * hang must not hold back the renewals and releases of what is held, nor
 * acquisitions.
 */
class Gate {
  private running = 0;
  private readonly lines = new Map<CallPriority, Array<() => void>>(ORDER.map((p) => [p, []]));

  constructor(private readonly limit: number) {}

  get waiting(): number {
    let count = 0;
    for (const line of this.lines.values()) count += line.length;
    return count;
  }

  /** Resolves with the function that ends the turn (once) when the call may go; rejects with `refused()` on abort. */
  enter(priority: CallPriority, signal: AbortSignal, refused: () => Error): Promise<() => void> {
    if (signal.aborted) return Promise.reject(refused());
    return new Promise((resolve, reject) => {
      const line = this.lines.get(priority)!;
      const onAbort = () => {
        line.splice(line.indexOf(go), 1);
        reject(refused());
      };
      const go = () => {
        signal.removeEventListener("abort", onAbort);
        resolve(this.admit());
      };
      signal.addEventListener("abort", onAbort, { once: true });
      line.push(go);
      this.serve();
    });
  }

  /** How many calls may run at once while one of `priority` starts: never fewer than one. */
  private capFor(priority: CallPriority): number {
    return Math.max(1, this.limit - RESERVED[priority]);
  }

  /** Starts the waiting calls that may go now, the most urgent first. */
  private serve(): void {
    for (const priority of ORDER) {
      const line = this.lines.get(priority)!;
      while (line.length > 0 && this.running < this.capFor(priority)) line.shift()!();
      // A call that must wait keeps the less urgent ones waiting too: they never overtake it.
      if (line.length > 0) return;
    }
  }

  private admit(): () => void {
    this.running += 1;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.running -= 1;
      this.serve();
    };
  }
}
