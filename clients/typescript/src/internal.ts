// Small pieces shared by the client's lock, semaphore and election wrappers.
import { Metadata, type ServiceError, status } from "@grpc/grpc-js";
import { hostname } from "node:os";
import type { CallOptions } from "./deadlines.js";
import type { Duration } from "./gen/google/protobuf/duration.js";
import { ReadConsistency } from "./gen/metaparticle/sync/v1/types.js";
import { type ErrorReason, STATUS_DETAILS_KEY, type StatusDetails, decodeStatusDetails } from "./status-details.js";

export function toDuration(ms: number): Duration {
  if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`durations must be finite and not negative, got ${ms} ms`);
  const whole = Math.round(ms);
  return { seconds: Math.floor(whole / 1000), nanos: (whole % 1000) * 1_000_000 };
}

export function optionalDuration(ms: number | undefined): Duration | undefined {
  return ms === undefined ? undefined : toDuration(ms);
}

export function fromDuration(duration: Duration | undefined): number {
  return duration === undefined ? 0 : duration.seconds * 1000 + duration.nanos / 1e6;
}

/** The first of `variables` that is set, else host/pid: the default holder or candidate name. */
export function defaultName(...variables: string[]): string {
  for (const variable of variables) {
    const value = process.env[variable];
    if (value) return value;
  }
  return `${hostname()}/${process.pid}`;
}

/** What a read of who holds (getLock, getLeader, a semaphore's get) takes. */
export interface ReadOptions extends CallOptions {
  /** Read from the API server instead of the sidecar's watch cache. */
  readonly fresh?: boolean;
}

/** The consistency a read asks for: the sidecar's watch cache unless `fresh`. */
export function readConsistency(options: ReadOptions): ReadConsistency {
  return options.fresh ? ReadConsistency.READ_CONSISTENCY_FRESH : ReadConsistency.READ_CONSISTENCY_CACHED;
}

/**
 * A failed call to the sidecar: its gRPC status `code` and, from the standard
 * error details (`grpc-status-details-bin`), the request `field` at fault
 * (google.rpc.BadRequest) and the machine-readable `reason` (google.rpc.ErrorInfo).
 * A deadline that passed, on the sidecar or on this client's own clock, has
 * code DEADLINE_EXCEEDED; a lock's or a permit's wait timeout also has reason
 * WAIT_TIMEOUT.
 */
export class SyncClientError extends Error {
  constructor(
    readonly code: status,
    message: string,
    /** The request field the sidecar named as wrong, e.g. `name` or `lease_duration`. */
    readonly field?: string,
    /** The sidecar's ErrorInfo reason, e.g. `NOT_HELD`, `WAIT_TIMEOUT` or `PERMITS_MISMATCH` (ErrorReason lists them). */
    readonly reason?: ErrorReason | (string & {}),
  ) {
    super(message);
    this.name = "SyncClientError";
  }

  static from(err: unknown): SyncClientError {
    if (err instanceof SyncClientError) return err;
    const service = err as Partial<ServiceError>;
    if (typeof service.code === "number") {
      const details = service.metadata instanceof Metadata ? detailsOf(service.metadata) : undefined;
      return new SyncClientError(
        service.code,
        `${status[service.code]}: ${service.details ?? service.message}`,
        details?.fieldViolations[0]?.field,
        details?.errorInfo?.reason,
      );
    }
    return new SyncClientError(status.UNKNOWN, err instanceof Error ? err.message : String(err));
  }
}

/** The standard error details of a failed call, if it carries readable ones. */
function detailsOf(metadata: Metadata): StatusDetails | undefined {
  const [bytes] = metadata.get(STATUS_DETAILS_KEY);
  if (!(bytes instanceof Uint8Array)) return undefined;
  try {
    return decodeStatusDetails(bytes);
  } catch {
    return undefined; // not a google.rpc.Status: the code and message still say what failed
  }
}

/** Why a lock or leadership ended: the reason of the AbortSignal that fires. */
export class LostError extends Error {
  constructor(
    /** "renew-deadline-exceeded", "taken-over", "shutdown", "deleted", "heartbeat-timeout", "stream-ended" or "released". */
    readonly reason: string,
    message: string,
  ) {
    super(message);
    this.name = "LostError";
  }
}

/**
 * The client's own deadline (DESIGN 3.1): a daemon that froze or died
 * cannot say the lease is lost, so if no heartbeat arrives before the last
 * `valid_for` runs out, on this process's monotonic clock, the holder is told
 * to stop by this watchdog instead.
 */
export class Watchdog {
  private timer: NodeJS.Timeout | undefined;
  /** performance.now() by which the next heartbeat must arrive. */
  deadline = 0;

  constructor(private readonly onExpired: () => void) {}

  extend(validForMs: number): void {
    // A heartbeat read after the deadline (say, this process was paused) does
    // not revive what already stopped being valid: the timer still fires.
    if (this.timer !== undefined && performance.now() >= this.deadline) return;
    clearTimeout(this.timer);
    this.deadline = performance.now() + validForMs;
    this.timer = setTimeout(this.onExpired, validForMs);
    this.timer.unref?.();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}

export const lossReasonNames: Record<number, string> = {
  1: "renew-deadline-exceeded",
  2: "taken-over",
  3: "shutdown",
  4: "deleted",
};

/** A queue of events read with `for await`; `close` ends the iteration, `fail` makes it throw. */
export class EventQueue<T> implements AsyncIterableIterator<T> {
  private readonly items: T[] = [];
  private waiting: { resolve(result: IteratorResult<T>): void; reject(err: unknown): void } | undefined;
  private ended = false;
  private error: unknown;

  constructor(private readonly onReturn: () => void = () => {}) {}

  push(item: T): void {
    if (this.ended) return;
    if (this.waiting !== undefined) {
      const waiting = this.waiting;
      this.waiting = undefined;
      waiting.resolve({ value: item, done: false });
    } else {
      this.items.push(item);
    }
  }

  close(error?: unknown): void {
    if (this.ended) return;
    this.ended = true;
    this.error = error;
    const waiting = this.waiting;
    this.waiting = undefined;
    if (waiting === undefined) return;
    if (error === undefined) waiting.resolve({ value: undefined, done: true });
    else waiting.reject(error);
  }

  next(): Promise<IteratorResult<T>> {
    if (this.items.length > 0) return Promise.resolve({ value: this.items.shift()!, done: false });
    if (this.ended) return this.error === undefined ? Promise.resolve({ value: undefined, done: true }) : Promise.reject(this.error);
    return new Promise((resolve, reject) => (this.waiting = { resolve, reject }));
  }

  /** Called when a `for await` loop exits early: stop the source. */
  return(): Promise<IteratorResult<T>> {
    this.onReturn();
    this.close();
    this.items.length = 0;
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }
}
