// How handlers answer calls: unary handlers are async functions whose errors
// go through the status table, and every open server stream (Acquire,
// Campaign, Observe) is tracked so that shutdown can end those still open
// with UNAVAILABLE.
import type { sendUnaryData, ServerUnaryCall, ServerWritableStream } from "@grpc/grpc-js";
import type { Lost } from "metaparticle-sync-client/gen/metaparticle/sync/v1/lock_service";
import type { Renewed } from "metaparticle-sync-client/gen/metaparticle/sync/v1/types";
import { type AcquireSink, type Grant, SyncError } from "../engine/index.js";
import type { Logger } from "../log.js";
import { toDuration, toLossReason } from "./convert.js";
import { statusOf } from "./status.js";

export interface OpenStream<T> {
  /** Aborts when the client cancels or the stream ends. */
  readonly signal: AbortSignal;
  send(message: T): void;
  /** Ends the stream with OK, or with the status of `error`. Later calls do nothing. */
  end(error?: unknown): void;
}

export class StreamRegistry {
  private readonly open = new Set<OpenStream<unknown>>();

  constructor(private readonly log: Logger) {}

  track<Req, Res>(call: ServerWritableStream<Req, Res>): OpenStream<Res> {
    const controller = new AbortController();
    let ended = false;
    const stream: OpenStream<Res> = {
      signal: controller.signal,
      send: (message) => {
        if (!ended) call.write(message);
      },
      end: (error) => {
        if (ended) return;
        ended = true;
        this.open.delete(stream as OpenStream<unknown>);
        controller.abort();
        if (error === undefined) call.end();
        else call.emit("error", statusOf(error, this.log));
      },
    };
    call.on("cancelled", () => {
      ended = true;
      this.open.delete(stream as OpenStream<unknown>);
      controller.abort();
    });
    this.open.add(stream as OpenStream<unknown>);
    return stream;
  }

  /** Ends every stream still open with UNAVAILABLE. */
  endAll(reason: string): void {
    for (const stream of [...this.open]) stream.end(new SyncError("shutting-down", reason));
  }

  get size(): number {
    return this.open.size;
  }
}

/**
 * Adapts an async function to a grpc-js unary handler, mapping errors through
 * the status table. `signal` aborts when the caller gives up before the answer
 * (it cancelled, or its deadline passed): a Renew, Proclaim or TryAcquire not
 * yet written is then dropped.
 */
export function unary<Req, Res>(log: Logger, handler: (request: Req, signal: AbortSignal) => Promise<Res>) {
  return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
    const controller = new AbortController();
    let answered = false;
    // grpc-js also tells "cancelled" once an answer has gone out: only a call still unanswered was given up.
    call.on("cancelled", () => answered || controller.abort());
    const answer = (error: ReturnType<typeof statusOf> | null, response?: Res) => {
      answered = true;
      callback(error, response);
    };
    handler(call.request, controller.signal).then(
      (response) => answer(null, response),
      (err: unknown) => answer(statusOf(err, log)),
    );
  };
}

/** The events of a stream that holds something (Acquire, AcquirePermit): `acquired` once, `renewed`, then `lost`. */
export type HoldEvent<Acquired> =
  { $case: "acquired"; value: Acquired } | { $case: "renewed"; value: Renewed } | { $case: "lost"; value: Lost };

/**
 * The engine's sink for a hold kept by `stream`: each event sent as the
 * stream's message, a loss logged with `fields` (and the stream ended, except
 * at shutdown), a failure ending the stream with its status, a release by
 * token ending it with OK.
 */
export function holdSink<Acquired>(
  stream: OpenStream<{ event?: HoldEvent<Acquired> }>,
  acquired: (grant: Grant) => Acquired,
  log: Logger,
  fields: Record<string, unknown>,
  lostWhat: string,
): AcquireSink {
  return {
    acquired: (grant) => stream.send({ event: { $case: "acquired", value: acquired(grant) } }),
    renewed: (validForMs) => stream.send({ event: { $case: "renewed", value: { validFor: toDuration(validForMs) } } }),
    lost: (reason, message) => {
      log.warn({ ...fields, reason, message }, lostWhat);
      stream.send({ event: { $case: "lost", value: { reason: toLossReason(reason), message } } });
      // At shutdown the stream stays open: the holder closing it, once it has read the loss, is what
      // lets the daemon give the lease back at once (docs/design.md 3.7); shutdown ends it later.
      if (reason !== "shutdown") stream.end();
    },
    failed: (error) => stream.end(error),
    released: () => stream.end(),
  };
}
