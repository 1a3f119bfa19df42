// How the engine performs store calls: every call has a deadline, and every
// failure is classified by the one policy table (store-policy.ts) before the
// caller decides what to do with it.
import type { Clock } from "./clock.js";
import { type StoreFailureAction, failureAction } from "./store-policy.js";
import { StoreError } from "../store/lease-store.js";

export type CallResult<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly action: StoreFailureAction; readonly error: StoreError };

export class StoreCalls {
  constructor(
    private readonly clock: Clock,
    /** Told about failures the engine absorbs by retrying or failing waiters (not about conflicts). */
    private readonly onStoreError: (name: string, doing: string, error: unknown) => void,
  ) {}

  /**
   * Runs `call` with a signal that aborts after `timeoutMs` (the store then
   * fails it as "unavailable"), and classifies a failure.
   */
  async run<T>(name: string, doing: string, timeoutMs: number, call: (signal: AbortSignal) => Promise<T>): Promise<CallResult<T>> {
    const controller = new AbortController();
    // The deadline holds even if the store ignores the signal: a reply that
    // comes after it is not acted on, and its call counts as unanswered.
    let expire!: () => void;
    const expired = new Promise<never>((_resolve, reject) => {
      expire = () => reject(new StoreError("unavailable", `${doing}: no answer within ${Math.round(timeoutMs)} ms`));
    });
    const timer = this.clock.setTimer(timeoutMs, () => {
      controller.abort(new Error(`timed out after ${Math.round(timeoutMs)} ms`));
      expire();
    });
    const startedAt = this.clock.now();
    const call$ = call(controller.signal);
    call$.catch(() => {});
    try {
      const value = await Promise.race([call$, expired]);
      // A process that was paused can see the reply before its timer fires.
      if (this.clock.now() - startedAt > timeoutMs) {
        throw new StoreError("unavailable", `${doing}: answered after its deadline of ${Math.round(timeoutMs)} ms`);
      }
      return { ok: true, value };
    } catch (err) {
      const action = failureAction(err);
      if (action !== "refresh") this.onStoreError(name, doing, err);
      return { ok: false, action, error: err as StoreError };
    } finally {
      timer.cancel();
    }
  }
}
