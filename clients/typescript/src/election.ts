// Leader election through the sidecar: `campaign()` joins as a candidate and
// reports events as callbacks and as an async iterator; `observe()` follows
// the leader without campaigning.
import { status, type ClientReadableStream } from "@grpc/grpc-js";
import type { CampaignResponse, ElectionServiceClient, ObserveResponse } from "./gen/metaparticle/sync/v1/election_service.js";
import { LossReason } from "./gen/metaparticle/sync/v1/types.js";
import { type CallOptions, timeoutOf, unary } from "./deadlines.js";
import { EventQueue, LostError, SyncClientError, Watchdog, fromDuration, lossReasonNames, optionalDuration } from "./internal.js";

export interface Leader {
  /** The leading candidate, or "" when nobody leads. */
  readonly leader: string;
  readonly value: string;
  readonly term: number;
}

/** One term of leadership; `signal` aborts (reason: LostError) when it ends. */
export interface Leadership {
  readonly term: number;
  readonly signal: AbortSignal;
}

export type CampaignEvent =
  | { readonly type: "elected"; readonly term: number; readonly signal: AbortSignal }
  | { readonly type: "deposed"; readonly term: number; readonly reason: string; readonly message: string }
  | ({ readonly type: "leader-changed" } & Leader);

export interface CampaignOptions {
  /** This candidate's name, shown as the leader; default MSYNC_CANDIDATE, POD_NAME or host/pid. */
  readonly candidate?: string;
  /** Value proclaimed when elected, e.g. this candidate's address. */
  readonly value?: string;
  /** Lease duration in ms, whole seconds; default the daemon's (15 s). */
  readonly leaseDurationMs?: number;
  /** @deprecated The same as `leaseDurationMs`. */
  readonly leaseDuration?: number;
  /** Ends the campaign (giving up leadership) when it aborts. */
  readonly signal?: AbortSignal;
  onElected?(leadership: Leadership): void;
  onDeposed?(term: number, reason: string, message: string): void;
  onLeaderChanged?(leader: Leader): void;
}

/**
 * A running campaign. A deposed candidate stays in the campaign and may be
 * elected again; it ends with `resign()`, `close()`, dispose, or `signal`.
 * Deposed with reason `shutdown`, though, the campaign is over: it closes its
 * stream at once (so the sidecar hands the leadership on) and its events end
 * with an UNAVAILABLE SyncClientError, as when the sidecar ends the stream.
 * Iterate it for its events; leaving a `for await` loop early (break, return,
 * throw) ends the campaign too, like closing the stream.
 */
export class Campaign implements AsyncDisposable, AsyncIterable<CampaignEvent> {
  private call: ClientReadableStream<CampaignResponse>;
  private readonly events: EventQueue<CampaignEvent>;
  private current: { term: number; controller: AbortController } | undefined;
  private readonly watchdog: Watchdog;
  private settle!: { resolve(): void; reject(err: unknown): void };
  private closed = false;
  /** Set once the campaign has ended and its outcome is settled. */
  private finished = false;
  /** Set the moment `resign()` is called: from then on no election is reported, whatever the Resign's outcome. */
  private resigning = false;
  /** Resolves when the campaign ends normally; rejects if the sidecar ended it with an error. */
  readonly done: Promise<void>;

  constructor(
    private readonly client: ElectionServiceClient,
    readonly name: string,
    readonly candidate: string,
    private readonly options: CampaignOptions,
  ) {
    this.done = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
    this.done.catch(() => {}); // observed through `done` or the iterator, not as an unhandled rejection
    this.events = new EventQueue(() => this.close());
    this.watchdog = new Watchdog(() => this.heartbeatTimeout());
    this.call = this.join();
    options.signal?.addEventListener("abort", () => this.close(), { once: true });
  }

  /** Opens a Campaign stream; events from a stream that was replaced are ignored. */
  private join(): ClientReadableStream<CampaignResponse> {
    const call = this.client.campaign({
      name: this.name,
      candidate: this.candidate,
      value: this.options.value ?? "",
      leaseDuration: optionalDuration(this.options.leaseDurationMs ?? this.options.leaseDuration),
    });
    call.on("data", (message: CampaignResponse) => {
      if (call === this.call) this.onMessage(message);
    });
    call.on("error", (err: Error & { code?: number }) => {
      if (call === this.call) this.finish(err.code === status.CANCELLED ? undefined : SyncClientError.from(err));
    });
    call.on("end", () => {
      if (call === this.call) this.finish();
    });
    return call;
  }

  /**
   * The sidecar went quiet while this candidate led: stop leading now, and
   * campaign again on a new stream. Cancelling the old one makes the sidecar
   * give that term up as soon as it can, instead of renewing a leadership
   * nobody acts on.
   */
  private heartbeatTimeout(): void {
    this.depose("heartbeat-timeout", "no heartbeat from the sidecar before leadership stopped being valid");
    // A candidate that is resigning or closing is leaving, not campaigning again.
    if (this.closed || this.resigning) return;
    const stale = this.call;
    this.call = this.join();
    stale.cancel();
  }

  /** The current term of leadership, if this candidate leads. */
  get leadership(): Leadership | undefined {
    return this.current === undefined ? undefined : { term: this.current.term, signal: this.current.controller.signal };
  }

  get leading(): boolean {
    return this.current !== undefined;
  }

  /** How many ms this candidate may still act as leader without another heartbeat; 0 when not leading. */
  get validForMs(): number {
    return this.current === undefined ? 0 : Math.max(0, this.watchdog.deadline - performance.now());
  }

  /**
   * Publishes a new value to observers; only while leading (else rejects with
   * FAILED_PRECONDITION). Deadline `timeoutMs`, default 10 s.
   */
  async proclaim(value: string, options: CallOptions = {}): Promise<void> {
    const term = this.requireLeading("proclaim");
    await unary(
      `Proclaim in election ${this.name}`,
      { signal: options.signal, timeoutMs: timeoutOf(options) },
      (metadata, callOptions, callback) => this.client.proclaim({ name: this.name, term, value }, metadata, callOptions, callback),
    );
  }

  /**
   * Steps down and ends the campaign; another candidate is elected at once.
   * The current term ends the moment it is called (its signal aborts; a
   * `deposed` event, reason `resigned`), no `elected` is reported again
   * whatever happens to the Resign, and then the campaign's events end.
   *
   * Resolves once the sidecar has given the leadership back, or at once if
   * this candidate was not leading. Waits at most `timeoutMs` (default 10 s)
   * and never past the end of the leadership's promise (its last `valid_for`):
   * if that runs out first, the term is over anyway and this resolves. If the
   * deadline passes while the promise still runs, the campaign's stream is
   * closed (the sidecar gives the leadership back as soon as it can) and this
   * rejects with DEADLINE_EXCEEDED.
   */
  async resign(options: CallOptions = {}): Promise<void> {
    const timeoutMs = timeoutOf(options);
    if (this.resigning || this.closed) return;
    this.resigning = true;
    const term = this.current?.term;
    const promiseEnd = this.watchdog.deadline;
    // The leader stops acting before the sidecar may elect another.
    this.depose("resigned", "this candidate resigned");
    if (term === undefined) return this.close();
    const remainingMs = Math.max(0, promiseEnd - performance.now());
    try {
      await unary(
        `Resign from election ${this.name}`,
        { signal: options.signal, timeoutMs: Math.min(timeoutMs, remainingMs) },
        (metadata, callOptions, callback) => this.client.resign({ name: this.name, term }, metadata, callOptions, callback),
      );
    } catch (err) {
      const error = err instanceof SyncClientError ? err : undefined;
      // The term was over already (FAILED_PRECONDITION), or its promise ran out first: nothing left to give back.
      const over = error?.code === status.FAILED_PRECONDITION || (error?.code === status.DEADLINE_EXCEEDED && remainingMs <= timeoutMs);
      if (!over) throw err;
    } finally {
      this.close();
    }
  }

  /** Leaves the campaign, giving up leadership at once if leading. */
  close(): void {
    this.closed = true;
    this.depose("resigned", "the campaign was closed");
    this.call.cancel();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
    await this.done.catch(() => {});
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<CampaignEvent> {
    return this.events;
  }

  private onMessage(message: CampaignResponse): void {
    const event = message.event;
    switch (event?.$case) {
      case "elected": {
        // A candidate resigning or closed is leaving: the sidecar may still
        // elect it before it serves the Resign or sees the stream closed, but
        // nobody is there to lead.
        if (this.resigning || this.closed) return;
        this.depose("taken-over", "elected again with a new term");
        const controller = new AbortController();
        this.current = { term: event.value.term, controller };
        this.watchdog.extend(fromDuration(event.value.validFor));
        const leadership = { term: event.value.term, signal: controller.signal };
        this.options.onElected?.(leadership);
        this.events.push({ type: "elected", ...leadership });
        return;
      }
      case "renewed":
        if (this.current !== undefined) this.watchdog.extend(fromDuration(event.value.validFor));
        return;
      case "deposed":
        if (this.current?.term === event.value.term) this.depose(lossReasonNames[event.value.reason] ?? "unknown", event.value.message);
        if (event.value.reason === LossReason.LOSS_REASON_SHUTDOWN) this.acknowledgeShutdown();
        return;
      case "leaderChanged": {
        const leader = { leader: event.value.leader, value: event.value.value, term: event.value.term };
        this.options.onLeaderChanged?.(leader);
        this.events.push({ type: "leader-changed", ...leader });
        return;
      }
    }
  }

  /** Ends the current term, if any, on this side: abort its signal and report it. */
  private depose(reason: string, message: string): void {
    const current = this.current;
    if (current === undefined) return;
    this.current = undefined;
    this.watchdog.stop();
    current.controller.abort(new LostError(reason, message));
    this.options.onDeposed?.(current.term, reason, message);
    this.events.push({ type: "deposed", term: current.term, reason, message });
  }

  /**
   * The sidecar is shutting down and deposed this candidate: the campaign is
   * over. Closing the stream at once is the acknowledgement the sidecar waits
   * for before it gives the Lease back (docs/design.md 3.7), so another
   * candidate is elected at once; the campaign ends as the stream's end
   * would have ended it, with UNAVAILABLE, and does not rejoin.
   */
  private acknowledgeShutdown(): void {
    const call = this.call;
    this.finish(
      new SyncClientError(status.UNAVAILABLE, `${status[status.UNAVAILABLE]}: the daemon is shutting down`, undefined, "SHUTTING_DOWN"),
    );
    call.cancel();
  }

  private finish(error?: SyncClientError): void {
    if (this.finished) return;
    this.finished = true;
    this.closed = true;
    if (this.resigning) this.depose("resigned", "this candidate resigned");
    else this.depose("stream-ended", error?.message ?? "the campaign ended");
    this.events.close(error);
    if (error === undefined) this.settle.resolve();
    else this.settle.reject(error);
  }

  private requireLeading(action: string): number {
    if (this.current === undefined)
      throw new SyncClientError(status.FAILED_PRECONDITION, `cannot ${action} election ${this.name}: this candidate is not the leader`);
    return this.current.term;
  }
}

/** Streams the current leader at once and then every change; stops when the loop exits or `signal` aborts. */
export function observe(client: ElectionServiceClient, name: string, signal?: AbortSignal): AsyncIterableIterator<Leader> {
  const call = client.observe({ name });
  const queue = new EventQueue<Leader>(() => call.cancel());
  call.on("data", (message: ObserveResponse) => queue.push({ leader: message.leader, value: message.value, term: message.term }));
  call.on("error", (err: Error & { code?: number }) => queue.close(err.code === status.CANCELLED ? undefined : SyncClientError.from(err)));
  call.on("end", () => queue.close());
  signal?.addEventListener("abort", () => call.cancel(), { once: true });
  return queue;
}
