// How one faulty call plays out in simulated time, whatever it is a call to:
// a daemon's call on the shared memory store (faulty-store.ts) or its request
// to the simulated API server (kube-connection.ts). Only the errors differ.
import type { Clock, Timer } from "../../daemon/engine/clock.js";

/** What happens to one store call. */
export type CallFault =
  | { readonly kind: "none" }
  /** The reply comes this much later than usual. */
  | { readonly kind: "latency"; readonly ms: number }
  /** An update loses to a concurrent write (409); nothing is applied. */
  | { readonly kind: "conflict" }
  /** The write is applied, but its caller sees "unavailable" after `ms`, as after a reset connection or a timeout. */
  | { readonly kind: "lost-reply"; readonly ms: number }
  /** The write is applied at once; its success reply comes `ms` later (a slow network back, no freeze). */
  | { readonly kind: "late-reply"; readonly ms: number }
  /** No answer until the caller's signal aborts (or the HTTP client's own timeout); `applied`: the write went through. */
  | { readonly kind: "hang"; readonly applied: boolean };

/** How long a call without a deadline hangs: the HTTP client's own timeout, far past the end of any run. */
export const HTTP_CLIENT_TIMEOUT_MS = 300_000;

/** The errors a caller sees, as its transport reports them. */
export interface FaultErrors {
  /** The simulated 409. */
  conflict(): unknown;
  /** The reply was lost (the write was applied). */
  lostReply(): unknown;
  /** The caller's signal aborted the call. */
  abandoned(): unknown;
  /** The HTTP client gave up on a call without a deadline. */
  clientTimeout(): unknown;
}

export interface FaultyCall<T> {
  readonly clock: Clock;
  readonly fault: CallFault;
  readonly baseLatencyMs: number;
  readonly signal: AbortSignal | undefined;
  /** Told once the call has answered (or failed). */
  readonly ended: (() => void) | undefined;
  /** Hands the answer to the calling process: at once, after its freeze, or never once it is dead. */
  readonly deliver: (fn: () => void) => void;
  /** Does the call; run at most once, after the latency (or not at all for a 409). */
  readonly perform: () => Promise<T>;
  readonly errors: FaultErrors;
}

export function runWithFault<T>(call: FaultyCall<T>): Promise<T> {
  const { clock, fault, signal, errors, perform } = call;
  const hasDeadline = signal !== undefined;
  return new Promise<T>((resolve, reject) => {
    let answered = false;
    let timer: Timer | undefined;
    const answer = (fn: () => void) => {
      if (answered) return;
      answered = true;
      timer?.cancel();
      signal?.removeEventListener("abort", abandon);
      call.ended?.();
      call.deliver(fn);
    };
    const fail = (error: unknown) => answer(() => reject(error));
    const abandon = () => fail(errors.abandoned());
    const after = (ms: number, fn: () => void) => {
      if (ms <= 0) fn();
      else timer = clock.setTimer(ms, fn);
    };
    const run = () => perform().then((value) => answer(() => resolve(value)), fail);
    if (signal?.aborted) return abandon();
    signal?.addEventListener("abort", abandon, { once: true });
    switch (fault.kind) {
      case "none":
        return after(call.baseLatencyMs, run);
      case "latency":
        return after(call.baseLatencyMs + fault.ms, run);
      case "conflict":
        return after(call.baseLatencyMs, () => fail(errors.conflict()));
      case "lost-reply":
        return after(call.baseLatencyMs, () => {
          perform().then(() => after(fault.ms, () => fail(errors.lostReply())), fail);
        });
      case "late-reply":
        return after(call.baseLatencyMs, () => {
          perform().then((value) => after(fault.ms, () => answer(() => resolve(value))), fail);
        });
      case "hang":
        if (fault.applied) perform().catch(() => {});
        if (!hasDeadline) after(HTTP_CLIENT_TIMEOUT_MS, () => fail(errors.clientTimeout()));
        return;
    }
  });
}
