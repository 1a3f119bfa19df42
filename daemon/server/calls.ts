// How handlers answer calls: unary handlers are async functions whose errors
// go through the status table, and every open server stream (Acquire,
// Campaign, Observe) is tracked so that shutdown can end those still open
// with UNAVAILABLE.
import type { sendUnaryData, ServerUnaryCall, ServerWritableStream } from "@grpc/grpc-js";
import { SyncError } from "../engine/index.js";
import type { Logger } from "../log.js";
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

/** Adapts an async function to a grpc-js unary handler, mapping errors through the status table. */
export function unary<Req, Res>(log: Logger, handler: (request: Req) => Promise<Res>) {
  return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
    handler(call.request).then(
      (response) => callback(null, response),
      (err: unknown) => callback(statusOf(err, log)),
    );
  };
}
