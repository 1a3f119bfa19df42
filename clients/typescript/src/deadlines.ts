// How long the client waits for the sidecar: the defaults every language's
// client shares (none of them is "forever"), the per-call options, and the one
// helper through which every unary call goes, with its deadline and signal.
import { type CallOptions as GrpcCallOptions, type ClientUnaryCall, Metadata, type ServiceError, status } from "@grpc/grpc-js";
import { SyncClientError } from "./internal.js";

/** The deadline of a unary call (tryLock, renew, release, getLock, getLeader, proclaim, resign) unless `timeoutMs` says otherwise: 10 s. */
export const DEFAULT_CALL_TIMEOUT_MS = 10_000;

/** How long `lock()` waits for the lock unless `waitTimeoutMs` says otherwise: 5 min. */
export const DEFAULT_WAIT_TIMEOUT_MS = 5 * 60_000;

/**
 * How long after its wait timeout `lock()` gives up on its own clock when the
 * sidecar has not answered (a frozen or unreachable sidecar): 1 s, so that a
 * sidecar that is merely slow still answers with its own verdict first.
 */
export const WAIT_TIMEOUT_GRACE_MS = 1000;

/**
 * gRPC keepalive on the client's channel: a ping after 10 s without traffic,
 * also while no call is active, and the connection is dropped if no answer
 * comes within 5 s. That is how a campaign, an observation or a held lock's
 * stream learns that a frozen or vanished sidecar stopped answering (they have
 * no overall deadline). The sidecar (grpc-js) accepts pings this often.
 */
export const KEEPALIVE_TIME_MS = 10_000;
export const KEEPALIVE_TIMEOUT_MS = 5000;

/** The channel options that turn the keepalive above on. */
export const KEEPALIVE_CHANNEL_OPTIONS = {
  "grpc.keepalive_time_ms": KEEPALIVE_TIME_MS,
  "grpc.keepalive_timeout_ms": KEEPALIVE_TIMEOUT_MS,
  "grpc.keepalive_permit_without_calls": 1,
} as const;

/** What every call of the client takes. */
export interface CallOptions {
  /**
   * This call's deadline in ms; default DEFAULT_CALL_TIMEOUT_MS (10 s). When
   * it passes, the call fails with a SyncClientError whose code is
   * DEADLINE_EXCEEDED.
   */
  readonly timeoutMs?: number;
  /** Cancels the call when it aborts; the call then rejects with `signal.reason`. */
  readonly signal?: AbortSignal;
}

/** `timeoutMs` checked: finite and not negative. */
export function timeoutOf(options: CallOptions, fallbackMs = DEFAULT_CALL_TIMEOUT_MS): number {
  const ms = options.timeoutMs ?? fallbackMs;
  if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`timeoutMs must be a finite number of ms, not negative; got ${ms}`);
  return ms;
}

/** Starts one unary call of a generated client with the given metadata, call options and callback. */
export type Start<Response> = (
  metadata: Metadata,
  options: Partial<GrpcCallOptions>,
  callback: (error: ServiceError | null, response: Response) => void,
) => ClientUnaryCall;

/**
 * Makes one unary call with a gRPC deadline of `timeoutMs` (the sidecar's
 * side sees it too) and cancels it when `signal` aborts. `what` names the call
 * in the error message of an expired deadline.
 */
export function unary<Response>(
  what: string,
  options: CallOptions & { readonly timeoutMs: number },
  start: Start<Response>,
): Promise<Response> {
  const { timeoutMs, signal } = options;
  return new Promise<Response>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    let settled = false;
    const onAbort = () => {
      if (settled) return;
      settled = true;
      call.cancel();
      reject(signal!.reason);
    };
    const call = start(new Metadata(), { deadline: Date.now() + timeoutMs }, (err, response) => {
      signal?.removeEventListener("abort", onAbort);
      if (settled) return;
      settled = true;
      if (err === null) return resolve(response);
      if (err.code === status.DEADLINE_EXCEEDED && err.metadata?.get("grpc-status-details-bin").length === 0) {
        // Expired here, not refused by the sidecar: say which call and after how long.
        return reject(
          new SyncClientError(status.DEADLINE_EXCEEDED, `DEADLINE_EXCEEDED: no answer from the sidecar to ${what} within ${timeoutMs} ms`),
        );
      }
      reject(SyncClientError.from(err));
    });
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
