// The simulated clients: each talks to one daemon through the engine's public
// API only, and records what it was told, when, in the history the checker
// judges. Holders are modelled without the client library's watchdog ("raw"):
// a hold ends at the latest when the last valid_for its holder was given runs
// out, which is also exactly where a client wrapper's own heartbeat deadline
// would end it.
import type { Timer } from "../../daemon/engine/clock.js";
import { type Engine, type Grant, type LeaderState, type LockState, type LossReason, SyncError } from "../../daemon/engine/index.js";
import type { EventFields, EventType } from "../faults/history.js";
import type { FaultyStore } from "./faulty-store.js";
import type { ReadAnswer } from "./read-oracle.js";
import { type Random, between } from "./random.js";

/** Events only the simulator records; the checker passes over them. */
export type SimOnlyEvent = "renew" | "renew-failed" | "release-failed" | "leader" | "note" | "proclaim" | "proclaim-failed";
export type SimEventFields = Omit<EventFields, "ev"> & {
  readonly ev: EventType | SimOnlyEvent;
  /** On a grant: the highest token of the lease its daemon had heard of (see FaultyStore.heardOf). */
  readonly heard?: number;
};

/** What a client needs of the simulated world. */
export interface World {
  now(): number;
  timer(ms: number, fn: () => void): Timer;
  record(client: string, fields: SimEventFields): void;
  readonly random: Random;
  /** After the workload's end: clients wind down, so that every waiter can be served before the run ends. */
  winding(): boolean;
  violation(rule: string, resource: string, message: string): void;
  /**
   * True when no fault touches `leaseName` now (nor excuses it), and `daemon`
   * is up and has been reachable since `since` (default: now).
   */
  faultFree(daemon: DaemonLink, leaseName: string, since?: number): boolean;
  /** A client of `daemon` holds `resource` at this moment (the store-call oracle spares daemons that held recently). */
  holding(daemon: DaemonLink, resource: Resource): void;
  /** A client that was done occupies its lock again (a request of its was applied after it gave up). */
  occupiedAgain(client: TryClient): void;
  /** A holder is told its lease was deleted: a violation unless someone deleted the Lease since `since`. */
  toldDeleted(resource: Resource, holder: string, since: number, daemon: DaemonLink, token: number): void;
  /** A read was answered (GetLock, GetLeader, or a leader an Observe or a Campaign was told): the read oracle judges it. */
  readAnswered(answer: Omit<ReadAnswer, "reader"> & { readonly reader?: string }): void;
}

/** The daemon a client talks to, as the client sees it. */
export interface DaemonLink {
  readonly slot: number;
  /**
   * Its node's monotonic clock, in ms per simulated ms. A client runs on the
   * same node as its sidecar, so it counts a valid_for on that clock too.
   */
  readonly clockRate: number;
  readonly engine: Engine;
  readonly store: FaultyStore;
  /** Dead or shutting down: no call reaches it. */
  gone(): boolean;
  /** Delivers a request when the daemon process runs (after a freeze; never if it died). */
  io(fn: () => void): void;
  readonly streams: Set<Stream>;
}

/** A long-lived call (Acquire, Campaign, Observe) that ends when the daemon dies. */
export interface Stream {
  broken(): void;
}

/** Events that end a hold in the history, and events that extend one by the valid_for they carry. */
const HOLD_ENDS = new Set<string>(["lost", "deposed", "release", "resign", "campaign-end", "campaign-close"]);
const HOLD_GOES_ON = new Set<string>(["acquired", "elected", "renewed"]);

/** A unary call's deadline on the client side, as a gRPC client would set it. */
const CALL_DEADLINE_MS = 5_000;

export type Resource = {
  readonly kind: "lock" | "election" | "semaphore" | "rwlock";
  readonly name: string;
  readonly leaseName: string;
  /** A semaphore's N. */
  readonly permits?: number;
  /** A lock whose clients all ask FAIRNESS_NON_FAIR. */
  readonly nonFair?: boolean;
};

/** The engine's operations for a lock, a semaphore or one `mode` of a read-write lock `resource`, in one shape. */
function lockLike(daemon: DaemonLink, resource: Resource, mode: "shared" | "exclusive" | undefined) {
  const engine = daemon.engine;
  if (resource.kind === "rwlock") {
    const rwlocks = engine.rwlocks;
    return {
      acquire: (
        request: Parameters<typeof engine.locks.acquire>[0],
        sink: Parameters<typeof engine.locks.acquire>[1],
        signal: AbortSignal,
      ) => rwlocks.acquire({ ...request, mode: mode! }, sink, signal),
      tryAcquire: async (request: Parameters<typeof engine.locks.tryAcquire>[0], signal?: AbortSignal) => {
        const result = await rwlocks.tryAcquire({ ...request, mode: mode! }, signal);
        return result.acquired ? result : { acquired: false as const, holder: "", token: 0, leaseMs: 0 };
      },
      renew: (leaseName: string, token: number, leaseMs: number | undefined, signal?: AbortSignal) =>
        rwlocks.renew(leaseName, token, leaseMs, signal),
      release: (leaseName: string, token: number) => rwlocks.release(leaseName, token),
    };
  }
  if (resource.kind !== "semaphore") return engine.locks;
  const permits = resource.permits!;
  const semaphores = engine.semaphores;
  return {
    acquire: (request: Parameters<typeof engine.locks.acquire>[0], sink: Parameters<typeof engine.locks.acquire>[1], signal: AbortSignal) =>
      semaphores.acquire({ ...request, permits }, sink, signal),
    tryAcquire: async (request: Parameters<typeof engine.locks.tryAcquire>[0], signal?: AbortSignal) => {
      const result = await semaphores.tryAcquire({ ...request, permits }, signal);
      return result.acquired ? result : { acquired: false as const, holder: "", token: 0, leaseMs: 0 };
    },
    renew: (leaseName: string, token: number, leaseMs: number | undefined, signal?: AbortSignal) =>
      semaphores.renew(leaseName, token, leaseMs, signal),
    release: (leaseName: string, token: number) => semaphores.release(leaseName, token),
  };
}

abstract class Client {
  done = false;
  /** A read-write lock's client: the mode it holds the lock in. */
  mode: "shared" | "exclusive" | undefined;
  /** The client stopped reading its stream: it hears nothing more. */
  stalled = false;

  /** For the record of a grant of `token`: the highest token of its lease its daemon had heard of when it wrote it. */
  protected heard(token: number): number | undefined {
    return this.daemon.store.heardWhenIssued(this.resource.leaseName, token);
  }

  constructor(
    protected readonly world: World,
    readonly id: string,
    readonly daemon: DaemonLink,
    readonly resource: Resource,
  ) {}

  protected record(fields: SimEventFields): void {
    // The history counts time in whole microseconds: a valid_for is kept to them too (rounded down), so a
    // hold granted at the very instant the previous holder's valid_for ends does not read as overlapping
    // it by a rounding error.
    // A valid_for counted on the node's clock, in simulated time.
    const validForMs = fields.validForMs === undefined ? undefined : Math.floor(this.simulatedMs(fields.validForMs) * 1000) / 1000;
    const shared = this.mode === "shared" ? { shared: true } : {};
    this.world.record(this.id, {
      daemon: this.daemon.slot,
      kind: this.resource.kind,
      name: this.resource.name,
      ...shared,
      ...fields,
      validForMs,
    });
    if (HOLD_ENDS.has(fields.ev)) this.actsUntil = 0;
    else if (validForMs !== undefined && HOLD_GOES_ON.has(fields.ev)) this.actsUntil = this.world.now() + validForMs;
  }

  /** How long `ms` counted on this client's node's clock lasts in simulated time (clock drift). */
  protected simulatedMs(ms: number): number {
    return ms / this.daemon.clockRate;
  }

  /** Until when the hold the history has open for this client goes on, by the last valid_for it read; 0 when none is open. */
  protected actsUntil = 0;
  /**
   * Until when this client goes on holding though its stream or its daemon is
   * gone (its hold ends with its valid_for, or when an administrator revokes
   * the lease): a TryAcquire holder whose daemon died, a stream holder whose
   * stream ended while it was not reading.
   */
  orphanedUntil = 0;

  /**
   * The stream ended unread: the hold the history has open goes on until its
   * valid_for runs out. A waiter (no hold open; `heard`: what it is told) hears
   * it when it reads again, at the end of its stall: its wait ends in the
   * history then, not never (a waiter whose daemon died waits no longer).
   */
  protected orphaned(heard: SimEventFields): void {
    this.orphanedUntil = this.actsUntil;
    if (this.actsUntil === 0) this.world.timer(Math.max(0, this.stalledUntil - this.world.now()), () => this.record(heard));
  }

  /** When the client reads its stream again (simulated time), after `stall`. */
  protected stalledUntil = 0;

  /**
   * Makes a unary call: it fails as unavailable if the daemon is gone or does
   * not answer within the deadline. A request still reaches a daemon that was
   * frozen (the server counts the deadline from when it reads it, on its own
   * clock, and then aborts `signal`, as grpc-js does): `late` hears what it did
   * after the client gave up.
   */
  protected unary<T>(call: (signal: AbortSignal) => Promise<T>, late?: (value: T) => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.daemon.gone()) return reject(new SyncError("unavailable", "the daemon is gone"));
      let answered = false;
      const timer = this.world.timer(CALL_DEADLINE_MS, () => {
        if (answered) return;
        answered = true;
        reject(new SyncError("unavailable", "deadline exceeded (client side)"));
      });
      const answer = (fn: () => void) => {
        if (answered) return;
        answered = true;
        timer.cancel();
        fn();
      };
      this.daemon.io(() => {
        const server = new AbortController();
        const deadline = this.daemon.engine.clock.setTimer(CALL_DEADLINE_MS, () => server.abort());
        let promise: Promise<T>;
        try {
          promise = call(server.signal);
        } catch (err) {
          deadline.cancel();
          return answer(() => reject(err));
        }
        promise.finally(() => deadline.cancel()).catch(() => {});
        promise.then(
          (value) => {
            if (answered) late?.(value);
            answer(() => resolve(value));
          },
          (err: unknown) => answer(() => reject(err)),
        );
      });
    });
  }

  /** A leader this client's stream told it of, for the read oracle: as of the moment it was told (a cached read). */
  protected told(call: string, leader: LeaderState): void {
    const now = this.world.now();
    const { slot } = this.daemon;
    this.world.readAnswered({
      reader: this.id,
      slot,
      kind: "election",
      leaseName: this.resource.leaseName,
      fresh: false,
      call,
      sent: now,
      replied: now,
      leader,
    });
  }

  /** Any failure an API call may report is a SyncError; anything else is a bug in the engine. */
  protected codeOf(err: unknown, doing: string): string {
    if (err instanceof SyncError) return err.code;
    this.world.violation("unexpected-error", `${this.resource.kind}/${this.resource.name}`, `${this.id}: ${doing} threw ${String(err)}`);
    return "bug";
  }
}

export interface AcquireOptions {
  readonly leaseMs: number;
  readonly holdMs: number;
  readonly waitTimeoutMs: number | undefined;
  /** Cancel while still waiting after this long. */
  readonly cancelAfterMs: number | undefined;
  /** Cancel before the daemon ever sees the call (an already aborted signal). */
  readonly preCancelled: boolean;
  /** Called once the stream is over, e.g. to acquire again. */
  readonly then?: () => void;
}

/** A blocking Acquire stream: waits, holds for a while, closes. Renewals come from the daemon. */
/** A client with a stream open (Acquire, Campaign): one timer of its own, and a stream it may stop reading. */
abstract class StreamClient extends Client {
  protected timer: Timer | undefined;

  /** The client closes its stream. */
  abstract close(): void;

  /** The client stops reading its stream; it closes it after `ms`. */
  stall(ms: number): void {
    this.stalled = true;
    this.record({ ev: "note", detail: `stops reading its stream for ${Math.round(ms)} ms, then closes it` });
    this.timer?.cancel();
    this.stalledUntil = this.world.now() + ms;
    this.timer = this.world.timer(ms, () => this.close());
  }
}

export class AcquireClient extends StreamClient implements Stream {
  /** When the daemon granted the lock to this client (simulated time). */
  private heldSince = 0;
  private heldToken = 0;
  state: "waiting" | "held" | "done" = "waiting";
  /** The daemon holds the lease for this stream (granted and not lost, nor closed by the client). */
  daemonHolds = false;
  /** When the client called Acquire (simulated time). */
  startedAt = 0;

  /** The Acquire does not wait (a wait timeout of 0). */
  get noWait(): boolean {
    return this.options.waitTimeoutMs === 0;
  }
  private readonly controller = new AbortController();

  constructor(
    world: World,
    id: string,
    daemon: DaemonLink,
    resource: Resource,
    private readonly options: AcquireOptions,
  ) {
    super(world, id, daemon, resource);
  }

  start(): void {
    this.startedAt = this.world.now();
    this.record({ ev: "acquire-start", detail: `lease ${this.options.leaseMs} ms, wait ${this.options.waitTimeoutMs ?? "forever"}` });
    this.daemon.streams.add(this);
    if (this.options.preCancelled) {
      this.controller.abort();
      this.record({ ev: "acquire-cancelled" });
      this.finish();
    }
    this.daemon.io(() => {
      try {
        lockLike(this.daemon, this.resource, this.mode).acquire(
          {
            leaseName: this.resource.leaseName,
            holder: this.id,
            leaseMs: this.options.leaseMs,
            waitTimeoutMs: this.options.waitTimeoutMs,
            nonFair: this.resource.nonFair,
          },
          {
            acquired: (grant) => this.acquired(grant),
            renewed: (validForMs) => {
              if (this.state === "held" && !this.stalled) this.record({ ev: "renewed", validForMs, raw: true });
            },
            lost: (reason, message) => this.lost(reason, message),
            failed: (error) => this.failed(error),
            // The simulated clients end a hold by closing the stream, never by Release.
            released: () => {},
          },
          this.controller.signal,
        );
      } catch (err) {
        this.failed(err);
      }
    });
    if (this.options.cancelAfterMs !== undefined) {
      this.timer = this.world.timer(this.options.cancelAfterMs, () => {
        if (this.state === "waiting") this.close();
      });
    }
  }

  /** The client closes its stream: it stops waiting, or stops acting and lets the daemon release. */
  close(): void {
    if (this.state === "done") return;
    this.record({ ev: this.state === "held" ? "release" : "acquire-cancelled" });
    this.daemonHolds = false;
    this.finish();
    this.daemon.io(() => this.controller.abort());
  }

  /** Winding down: a hold ends soon. */
  windDown(): void {
    if (this.state !== "held") return;
    this.timer?.cancel();
    this.timer = this.world.timer(between(this.world.random, 0, 2_000), () => this.close());
  }

  broken(): void {
    if (this.state === "done") return;
    this.daemonHolds = false;
    // A client that is not reading its stream does not hear it end either: its hold ends with its valid_for.
    if (this.stalled) this.orphaned({ ev: "acquire-failed", detail: "stream-ended" });
    else this.record(this.state === "held" ? { ev: "lost", reason: "stream-ended" } : { ev: "acquire-failed", detail: "stream-ended" });
    this.finish();
  }

  private acquired(grant: Grant): void {
    if (this.state !== "waiting") return;
    this.daemonHolds = true;
    this.state = "held";
    this.heldSince = this.world.now();
    this.heldToken = grant.token;
    this.world.holding(this.daemon, this.resource);
    // (A shared hold's fencing token is its lock's latest exclusive one; its own token names it in calls.)
    this.record({
      ev: "acquired",
      token: grant.fencingToken ?? grant.token,
      validForMs: grant.validForMs,
      raw: true,
      heard: this.heard(grant.token),
    });
    this.timer?.cancel();
    const holdMs = this.world.winding() ? Math.min(this.options.holdMs, 500) : this.options.holdMs;
    this.timer = this.world.timer(holdMs, () => this.close());
  }

  private lost(reason: LossReason, message: string): void {
    this.daemonHolds = false;
    if (this.state !== "held") return;
    if (reason === "deleted") this.world.toldDeleted(this.resource, this.id, this.heldSince, this.daemon, this.heldToken);
    // Not reading its stream, it hears nothing now: it acts until its last valid_for runs out, and closes the
    // stream when it reads again (at the end of its stall).
    if (this.stalled) return;
    this.record({ ev: "lost", reason, detail: message });
    this.finish();
    // Having read its Lost, it closes the stream, as the client libraries do: at a shutdown, that is what
    // lets the daemon give the lease back before the last valid_for has run out.
    this.world.timer(0, () => this.daemon.io(() => this.controller.abort()));
  }

  private failed(error: unknown): void {
    if (this.state !== "waiting") return;
    this.record({ ev: "acquire-failed", detail: this.codeOf(error, "Acquire") });
    this.finish();
  }

  private finish(): void {
    if (this.state === "done") return;
    if (this.state === "held") this.world.holding(this.daemon, this.resource);
    this.state = "done";
    this.done = true;
    this.timer?.cancel();
    this.daemon.streams.delete(this);
    this.options.then?.();
  }
}

export interface TryOptions {
  readonly leaseMs: number;
  readonly holdMs: number;
  /** Stops renewing (and never releases) after the grant: a client that went away. */
  readonly abandon: boolean;
  readonly renewLeases: readonly (number | undefined)[];
}

/** A TryAcquire holder: holds by renewing on its own, releases with Release. No stream, no watchdog. */
export class TryClient extends Client {
  state: "trying" | "held" | "done" = "trying";
  token = 0;
  private validUntil = 0;
  /** Latest moment the store may still name this holder: after any write that may have been applied. */
  occupiedUntil = 0;
  private leaseMs: number;
  private releaseAt = 0;
  private timer: Timer | undefined;
  /** TryAcquire attempts left: a client polls a busy lock a few times. */
  private attempts = 6;

  constructor(
    world: World,
    id: string,
    daemon: DaemonLink,
    resource: Resource,
    private readonly options: TryOptions,
  ) {
    super(world, id, daemon, resource);
    this.leaseMs = options.leaseMs;
  }

  /** The lock counts as held by this client in the liveness oracles. */
  occupies(now: number): boolean {
    return this.state !== "trying" && now < this.occupiedUntil;
  }

  start(): void {
    this.record({ ev: "acquire-start", detail: `TryAcquire, lease ${this.leaseMs} ms` });
    this.unary(
      (signal) =>
        lockLike(this.daemon, this.resource, this.mode).tryAcquire(
          { leaseName: this.resource.leaseName, holder: this.id, leaseMs: this.leaseMs },
          signal,
        ),
      (late) => {
        // Granted after this client gave up: the lease stands, unrenewed, until it runs out.
        if (!late.acquired) return;
        this.occupiedUntil = Math.max(this.occupiedUntil, this.world.now() + this.leaseMs);
        this.world.occupiedAgain(this);
        this.record({ ev: "note", detail: `TryAcquire granted token ${late.grant.token} after the client gave up` });
      },
    ).then(
      (result) => {
        if (!result.acquired) {
          this.record({ ev: "acquire-failed", detail: `not free: ${result.holder} token ${result.token}` });
          if (--this.attempts > 0 && !this.world.winding()) {
            this.timer = this.world.timer(this.world.random.int(200, 3_000), () => this.start());
            return;
          }
          this.state = "done";
          this.done = true;
          return;
        }
        const now = this.world.now();
        this.state = "held";
        this.world.holding(this.daemon, this.resource);
        this.token = result.grant.token;
        this.validUntil = now + this.simulatedMs(result.grant.validForMs);
        this.occupiedUntil = now + this.leaseMs;
        this.releaseAt = now + (this.world.winding() ? Math.min(this.options.holdMs, 1_000) : this.options.holdMs);
        this.record({
          ev: "acquired",
          token: result.grant.fencingToken ?? this.token,
          validForMs: result.grant.validForMs,
          raw: true,
          heard: this.heard(this.token),
        });
        if (!this.options.abandon) this.next();
        else this.record({ ev: "note", detail: "will neither renew nor release" });
      },
      (err: unknown) => {
        const code = this.codeOf(err, "TryAcquire");
        this.record({ ev: "acquire-failed", detail: code });
        // The write may have been applied: the store may name this holder that long.
        if (code === "unavailable") this.occupiedUntil = this.world.now() + this.leaseMs;
        this.state = "done";
        this.done = true;
      },
    );
  }

  windDown(): void {
    if (this.state !== "held" || this.options.abandon) return;
    this.releaseAt = Math.min(this.releaseAt, this.world.now() + between(this.world.random, 0, 2_000));
    this.next();
  }

  /** Schedules the next Renew (not sooner than `minDelayMs`), or the Release once the hold time is over. */
  private next(minDelayMs = 0): void {
    this.timer?.cancel();
    if (this.state !== "held") return;
    const now = this.world.now();
    const renewAt = now + Math.max(minDelayMs, Math.max(0, this.validUntil - now) * between(this.world.random, 0.05, 0.5));
    if (this.releaseAt <= renewAt) this.timer = this.world.timer(this.releaseAt - now, () => this.release());
    else if (renewAt >= this.validUntil) this.timer = this.world.timer(this.validUntil - now, () => this.expired());
    else this.timer = this.world.timer(renewAt - now, () => this.renew());
  }

  private renew(): void {
    if (this.state !== "held") return;
    const now = this.world.now();
    if (now >= this.validUntil) return this.expired();
    if (this.daemon.gone()) {
      // Its token lived in that daemon process; it holds on until its valid_for runs out, and stops.
      this.record({ ev: "note", detail: "its daemon is gone; holds until valid_for runs out" });
      this.state = "done";
      this.done = true;
      this.orphanedUntil = this.validUntil;
      return;
    }
    const leaseMs = this.world.random.pick(this.options.renewLeases);
    const asked = leaseMs ?? this.leaseMs;
    this.record({ ev: "renew", token: this.token, detail: `lease ${leaseMs ?? "unchanged"}` });
    this.unary(
      (signal) => lockLike(this.daemon, this.resource, this.mode).renew(this.resource.leaseName, this.token, leaseMs, signal),
      // Renewed after this client gave up (its daemon was frozen): the lease stands that much longer,
      // at least as long as the one it had (no write shortens a promise).
      () => {
        this.occupiedUntil = Math.max(this.occupiedUntil, this.world.now() + Math.max(asked, this.leaseMs));
        this.world.occupiedAgain(this);
      },
    ).then(
      (validForMs) => {
        const at = this.world.now();
        this.world.holding(this.daemon, this.resource);
        this.leaseMs = asked;
        this.occupiedUntil = Math.max(this.occupiedUntil, at + asked);
        if (at < this.validUntil) {
          this.validUntil = at + this.simulatedMs(validForMs);
          this.record({ ev: "renewed", validForMs, raw: true });
        }
        this.next();
      },
      (err: unknown) => {
        const code = this.codeOf(err, "Renew");
        this.record({ ev: "renew-failed", token: this.token, detail: code });
        if (code === "not-held") {
          this.record({ ev: "lost", reason: "not-held" });
          this.state = "done";
          this.done = true;
          return;
        }
        // The write may have been applied: the store may name this holder that long.
        this.occupiedUntil = Math.max(this.occupiedUntil, this.world.now() + asked);
        // A client backs off before it tries again.
        this.next(this.world.random.int(100, 1_000));
      },
    );
  }

  private release(): void {
    if (this.state !== "held") return;
    if (this.world.now() >= this.validUntil) return this.expired();
    const started = this.world.now();
    const faultFree = this.world.faultFree(this.daemon, this.resource.leaseName);
    this.record({ ev: "release", token: this.token });
    this.state = "done";
    this.done = true;
    this.unary(() => lockLike(this.daemon, this.resource, this.mode).release(this.resource.leaseName, this.token)).then(
      () => {
        this.occupiedUntil = 0;
        this.world.holding(this.daemon, this.resource);
        this.record({ ev: "released", token: this.token });
      },
      (err: unknown) => {
        const code = this.codeOf(err, "Release");
        this.record({ ev: "release-failed", token: this.token, detail: code });
        if (code === "unavailable" && faultFree && this.world.faultFree(this.daemon, this.resource.leaseName, started)) {
          this.world.violation(
            "release-unavailable",
            `${this.resource.kind}/${this.resource.name}`,
            `${this.id}: Release of held token ${this.token} failed with unavailable while no fault touched the lock: ${(err as Error).message}`,
          );
        }
      },
    );
  }

  /** Its valid_for ran out before it acted: it stops, as a careful client would. */
  private expired(): void {
    if (this.state !== "held") return;
    this.record({ ev: "note", detail: "valid_for ran out; stops using the lock" });
    this.state = "done";
    this.done = true;
  }
}

export interface CampaignOptions {
  readonly leaseMs: number;
  /** How long to lead before resigning, closing, or staying on. */
  readonly leadMs: number;
  /** What the leader does once `leadMs` is over. */
  readonly then: "resign" | "close" | "stay";
  /** Leave the campaign if not elected within this long. */
  readonly patienceMs: number | undefined;
}

/** A Campaign stream, with Resign and Proclaim while leading. */
export class CampaignClient extends StreamClient implements Stream {
  /** The daemon said elected, and not deposed or ended since. */
  leading = false;
  term = 0;
  /** Terms this candidate won. */
  readonly terms: number[] = [];
  lastDeposedTerm = 0;
  lastLeader: LeaderState | undefined;
  private readonly controller = new AbortController();

  constructor(
    world: World,
    id: string,
    daemon: DaemonLink,
    resource: Resource,
    private readonly options: CampaignOptions,
  ) {
    super(world, id, daemon, resource);
  }

  start(): void {
    this.record({ ev: "campaign-start" });
    this.daemon.streams.add(this);
    this.daemon.io(() => {
      try {
        this.daemon.engine.elections.campaign(
          { leaseName: this.resource.leaseName, candidate: this.id, value: `${this.id}-v0`, leaseMs: this.options.leaseMs },
          {
            elected: (term, validForMs) => this.elected(term, validForMs),
            renewed: (validForMs) => {
              if (this.leading && !this.done && !this.stalled) this.record({ ev: "renewed", validForMs, raw: true });
            },
            leaderChanged: (state) => {
              if (this.done || this.stalled) return;
              this.lastLeader = state;
              this.record({ ev: "leader", detail: `${state.leader || "(nobody)"} term ${state.term}` });
              this.told("Campaign", state);
            },
            deposed: (term, reason) => {
              this.world.holding(this.daemon, this.resource);
              this.leading = false;
              this.lastDeposedTerm = term;
              if (this.done || this.stalled) return;
              this.record({ ev: "deposed", token: term, reason });
              // Deposed because its daemon shuts down, the campaign is over: having read it, the candidate closes
              // its stream, which lets the daemon give the lease back before the last valid_for has run out.
              if (reason === "shutdown") this.world.timer(0, () => this.close());
            },
            ended: (error) => {
              this.leading = false;
              if (this.done) return;
              const detail = error === undefined ? undefined : this.codeOf(error, "Campaign");
              // A candidate that is not reading its stream does not hear it end: its term ends with its valid_for.
              if (this.stalled) this.orphaned({ ev: "campaign-end", detail });
              else this.record({ ev: "campaign-end", detail });
              this.finish();
            },
          },
          this.controller.signal,
        );
      } catch (err) {
        this.record({ ev: "campaign-end", detail: this.codeOf(err, "Campaign") });
        this.finish();
      }
    });
    if (this.options.patienceMs !== undefined) {
      this.timer = this.world.timer(this.options.patienceMs, () => {
        if (!this.leading) this.close();
      });
    }
  }

  close(): void {
    if (this.done) return;
    this.record({ ev: "campaign-close" });
    if (this.leading) this.world.holding(this.daemon, this.resource);
    this.leading = false;
    this.finish();
    this.daemon.io(() => this.controller.abort());
  }

  /** Winding down: candidates stay as they are, so the final leader can be checked. */
  windDown(): void {
    if (!this.stalled) this.timer?.cancel();
  }

  broken(): void {
    if (this.done) return;
    if (this.stalled) this.orphaned({ ev: "campaign-end", detail: "stream-ended" });
    else {
      if (this.leading) this.record({ ev: "deposed", token: this.term, reason: "stream-ended" });
      this.record({ ev: "campaign-end", detail: "stream-ended" });
    }
    this.leading = false;
    this.finish();
  }

  private elected(term: number, validForMs: number): void {
    this.world.holding(this.daemon, this.resource);
    this.leading = true;
    this.term = term;
    this.terms.push(term);
    if (this.done || this.stalled) return;
    this.record({ ev: "elected", token: term, validForMs, raw: true, heard: this.heard(term) });
    if (this.world.winding()) return;
    this.timer?.cancel();
    this.timer = this.world.timer(this.options.leadMs, () => this.leadOver(term));
  }

  private leadOver(term: number): void {
    if (this.done || !this.leading || this.term !== term || this.world.winding()) return;
    if (this.world.random.bool(0.3)) this.proclaim(term);
    switch (this.options.then) {
      case "close":
        return this.close();
      case "stay":
        return;
      case "resign": {
        const started = this.world.now();
        const faultFree = this.world.faultFree(this.daemon, this.resource.leaseName);
        this.record({ ev: "resign", token: term });
        this.unary(() => this.daemon.engine.elections.resign(this.resource.leaseName, term)).then(
          () => this.record({ ev: "resigned", token: term }),
          (err: unknown) => {
            const code = this.codeOf(err, "Resign");
            this.record({ ev: "resign-failed", token: term, detail: code });
            if (code === "unavailable" && faultFree && this.world.faultFree(this.daemon, this.resource.leaseName, started)) {
              this.world.violation(
                "release-unavailable",
                `election/${this.resource.name}`,
                `${this.id}: Resign of term ${term} failed with unavailable while no fault touched the election: ${(err as Error).message}`,
              );
            }
            this.close();
          },
        );
        return;
      }
    }
  }

  private proclaim(term: number): void {
    const value = `${this.id}-v${term}`;
    this.record({ ev: "proclaim", token: term, detail: value });
    this.unary((signal) => this.daemon.engine.elections.proclaim(this.resource.leaseName, term, value, signal)).catch((err: unknown) =>
      this.record({ ev: "proclaim-failed", token: term, detail: this.codeOf(err, "Proclaim") }),
    );
  }

  private finish(): void {
    this.done = true;
    this.timer?.cancel();
    this.daemon.streams.delete(this);
  }
}

/** An Observe stream: remembers the last leader it was told of. */
export class ObserverClient extends Client implements Stream {
  lastLeader: LeaderState | undefined;
  private readonly controller = new AbortController();

  start(closeAfterMs: number | undefined): void {
    this.daemon.streams.add(this);
    this.record({ ev: "note", detail: "Observe" });
    this.daemon.io(() => {
      try {
        this.daemon.engine.elections.observe(
          this.resource.leaseName,
          (state) => {
            if (this.done || this.stalled) return;
            this.lastLeader = state;
            this.record({ ev: "leader", detail: `${state.leader || "(nobody)"} term ${state.term}` });
            this.told("Observe", state);
          },
          this.controller.signal,
        );
      } catch (err) {
        this.codeOf(err, "Observe");
        this.done = true;
      }
    });
    if (closeAfterMs !== undefined) this.world.timer(closeAfterMs, () => this.close());
  }

  close(): void {
    if (this.done) return;
    this.done = true;
    this.daemon.streams.delete(this);
    this.daemon.io(() => this.controller.abort());
  }

  stall(): void {
    this.stalled = true;
  }

  broken(): void {
    this.done = true;
    this.daemon.streams.delete(this);
  }
}

/** One GetLock or GetLeader, cached or fresh: its answer goes to the read oracle, a failure must be a SyncError. */
export function read(world: World, daemon: DaemonLink, resource: Resource, fresh: boolean): void {
  const kind = resource.kind;
  if (kind === "semaphore" || kind === "rwlock") return; // GetSemaphore and GetRWLock are not in the read oracle yet.
  const sent = world.now();
  const call = resource.kind === "lock" ? "GetLock" : "GetLeader";
  daemon.io(() => {
    let promise: Promise<LockState | LeaderState>;
    try {
      promise = daemon.store.untracked(() =>
        resource.kind === "lock"
          ? daemon.engine.locks.get(resource.leaseName, fresh)
          : daemon.engine.elections.getLeader(resource.leaseName, fresh),
      );
    } catch (err) {
      promise = Promise.reject(err);
    }
    promise.then(
      (answer) => {
        const base = { slot: daemon.slot, kind, leaseName: resource.leaseName, fresh, call, sent, replied: world.now() };
        world.readAnswered(resource.kind === "lock" ? { ...base, lock: answer as LockState } : { ...base, leader: answer as LeaderState });
      },
      (err: unknown) => {
        if (!(err instanceof SyncError))
          world.violation("unexpected-error", `${resource.kind}/${resource.name}`, `a read threw ${String(err)}`);
      },
    );
  });
}
