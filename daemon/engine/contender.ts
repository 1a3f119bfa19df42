// One contender per lease name on this daemon. It holds the lease on behalf of
// the claim at the head of its local FIFO queue, renews it, hands it to the
// next local claim or gives it back, and joins the lease's cross-daemon wait
// queue while its claims wait.
//
// What to do next is decided by the pure `decide` (decide.ts) from a view of
// this contender's state; this file keeps that state, its timers, and performs
// the one store call each decision calls for. All store calls of a contender
// run one at a time, from a single loop; watch events, timers and callers only
// change state and kick the loop. A failed store call gets the one response
// store-policy.ts gives for what the call was for.
import { Claim, type Grant, type LossReason } from "./claim.js";
import type { Clock, Timer } from "./clock.js";
import { type AfterLoss, type ContenderView, type Decision, type GiveBack, decide, isIdle } from "./decide.js";
import { SyncError, fromStoreError, gaveUp } from "./errors.js";
import { type LeaseCache, type Observation, expiresAt } from "./lease-cache.js";
import * as records from "./lease-records.js";
import type { EngineObserver } from "./observer.js";
import { type CallPriority, type CallResult, StoreCalls } from "./store-calls.js";
import { type CallRole, type FailureResponse, responseTo } from "./store-policy.js";
import { type LeaseTiming, jittered } from "./timing.js";
import { type LeaseKind, type LeaseRecord, type LeaseStore, StoreError, isStoreError } from "../store/lease-store.js";

export interface ContenderContext {
  readonly store: LeaseStore;
  readonly cache: LeaseCache;
  readonly clock: Clock;
  /** Identity of this daemon process, written as the lease's holderIdentity. */
  readonly identity: string;
  readonly timing: (leaseMs: number) => LeaseTiming;
  /** The shortest lease a write must carry to cover a promise running `remainingMs` past its sending. */
  readonly leaseCovering: (remainingMs: number) => number;
  readonly random: () => number;
  /** Told when the contender has nothing left to do, so it can be dropped. */
  readonly onIdle: (contender: { readonly name: string; readonly key?: string }) => void;
  /** Performs store calls with deadlines and reports the failures it absorbs. */
  readonly calls: StoreCalls;
  readonly observer: EngineObserver;
  /**
   * The store refused this daemon's patch of its wait entry (RBAC without the
   * patch verb, as an older version's Role has): it joins queues by a
   * conditional write from then on, as older versions do.
   */
  readonly joins: { byUpdate: boolean };
}

/** A holder's call that the contender loop serves in order: Renew, Proclaim, Release or Resign. */
type RequestBody =
  /** `signal`: aborts when the caller gave up; a Renew or Proclaim not yet written is then dropped. */
  | { readonly kind: "renew"; readonly leaseMs: number | undefined; readonly signal?: AbortSignal }
  | { readonly kind: "proclaim"; readonly value: string; readonly signal?: AbortSignal }
  /** A Release is written even when its caller gave up: the holder has stopped acting, and the lease goes back sooner. */
  | { readonly kind: "release" };
type Request = RequestBody & { resolve(validForMs: number): void; reject(error: SyncError): void };

interface Holding {
  readonly claim: Claim;
  readonly token: number;
  timing: LeaseTiming;
  /** Local time at which the last successful acquire or renew request was SENT. */
  sentAt: number;
  /**
   * Local time until which the holder was told it may act (the end of the
   * last valid_for handed out). No write may let others see the lease expire
   * before it.
   */
  promisedUntil: number;
  renewDue: boolean;
  /** The renew deadline passed with no renewal: set by its timer, acted on by `decide`. */
  pastRenewDeadline: boolean;
  /**
   * Set at shutdown, when a session holder is told it lost: the lease stays
   * held, unrenewed, until this local time (the end of its promise, with the
   * drift margin), unless its caller closes its stream first. A holder that
   * is not reading its stream goes on acting on its last valid_for.
   */
  keepUntil: number | undefined;
  retryMs: number;
  renewTimer: Timer | undefined;
  deadlineTimer: Timer | undefined;
  readonly requests: Request[];
}

const MIN_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 2000;
/**
 * Shortest pause after such a yield before this daemon takes the lease back
 * (it is also at least 4 of its write round trips plus twice its own watch's
 * lag, at most the turn grace): long enough for a daemon with a slow
 * connection to see the lease free and write, which takes it one watch delay
 * and one write. Other daemons' watches lag about as much as this daemon's:
 * they read from the same API server's watch cache.
 */
export const MIN_YIELD_MS = 100;
/** Lease duration for a read when no claim or record names one. */
const FALLBACK_LEASE_MS = 15_000;

export class Contender {
  private readonly waiting: Claim[] = [];
  private holding: Holding | undefined;
  private closing = false;
  private running = false;
  private dirty = false;
  private wakeTimer: Timer | undefined;
  private readonly unsubscribe: () => void;
  private idleWaiters: Array<() => void> = [];
  private backoffUntil = 0;
  private backoffMs = MIN_BACKOFF_MS;
  /** Consecutive conflicts of this contender's writes; after one, a waiter announces itself before it tries again. */
  private conflicts = 0;
  /** Grants to this daemon's claims since another daemon last held the lease, or since the last yield. */
  private grantsInARow = 0;
  /** After yielding the lease, this daemon leaves it free for others until then. */
  private yieldUntil = 0;
  private yieldToken = 0;
  /**
   * After a release the contender stays this long, though idle, so the count
   * of grants in a row and the yield survive a client that lets go and asks
   * again at once.
   */
  private lingerUntil = 0;
  /**
   * An acquiring write whose outcome is unknown (it timed out): the store may
   * name this daemon holder. The contender stays until a read settles it.
   */
  private uncertain = false;
  /** A lease-held lock kept at shutdown: it runs out on its own, never released early. */
  private retainedToken: number | undefined;
  /**
   * The claim being told, right now, that it lost at shutdown. Its stream
   * ending meanwhile is the server closing it on its side, which says nothing
   * of whether the caller read the loss: it is not taken as the caller closing.
   */
  private telling: Claim | undefined;
  /** Past the shutdown timeout: the contender makes no more calls, and what it holds is left to expire. */
  private abandoned = false;
  /**
   * Gone idle and dropped by the engine: a later contender of the name may
   * hold its lease now, so this one never acts again (a claim of its that
   * ended by a loss may still close its stream here).
   */
  private retired = false;

  constructor(
    private readonly ctx: ContenderContext,
    readonly name: string,
    readonly kind: LeaseKind,
  ) {
    this.unsubscribe = ctx.cache.subscribe(name, () => {
      const holder = ctx.cache.get(name)?.record.holderIdentity;
      if (holder !== undefined && holder !== "" && holder !== ctx.identity) this.grantsInARow = 0;
      this.kick();
    });
  }

  /** Queues a claim; its sink hears the outcome. */
  add(claim: Claim): void {
    if (this.closing) {
      claim.fail(new SyncError("shutting-down", "the daemon is shutting down"));
      return;
    }
    if (claim.options.noWait && (this.holding !== undefined || this.waiting.length > 0)) {
      claim.fail(this.notFreeError());
      return;
    }
    claim.wait(this.ctx.clock.now());
    this.waiting.push(claim);
    this.kick();
  }

  /**
   * Ends a claim: a waiting claim leaves the queue, a holding one is released
   * (or handed to the next local claim). Resolves once the store reflects it.
   */
  end(claim: Claim): Promise<void> {
    if (claim.state === "waiting") {
      const index = this.waiting.indexOf(claim);
      if (index >= 0) this.waiting.splice(index, 1);
      claim.end();
      claim.markSettled();
    } else if (claim.state === "held") {
      claim.end();
      const holding = this.holding;
      if (holding?.claim === claim) this.stopRenewing(holding);
      else claim.markSettled();
    } else if (this.holding?.claim === claim && this.telling !== claim) {
      // Told it lost at shutdown, the caller has closed its stream: it no
      // longer acts, so its lease can go back before its promise runs out.
      this.holding.keepUntil = undefined;
    }
    this.kick();
    return claim.settled;
  }

  /** Renews a lease-held claim on behalf of the caller. Resolves with how long the holder may act. */
  renew(token: number, leaseMs: number | undefined, signal?: AbortSignal): Promise<number> {
    return this.request(token, "lease", { kind: "renew", leaseMs, signal });
  }

  /** Publishes a new election value for the holder of `token`. */
  async proclaim(token: number, value: string, signal?: AbortSignal): Promise<void> {
    await this.request(token, undefined, { kind: "proclaim", value, signal });
  }

  /**
   * Gives back the lease `token` holds (Release, Resign). Unlike `end`, the
   * caller learns whether the store took it: on failure the claim still holds.
   */
  async release(token: number, mode: "lease" | undefined): Promise<void> {
    await this.request(token, mode, { kind: "release" });
  }

  private request(token: number, mode: "lease" | undefined, request: RequestBody): Promise<number> {
    return new Promise((resolve, reject) => {
      const holding = this.holding;
      if (holding === undefined || holding.token !== token || holding.claim.state !== "held") {
        reject(this.notHeldError(token));
      } else if (mode === "lease" && holding.claim.options.mode !== "lease") {
        reject(
          new SyncError(
            "not-held",
            `token ${token} of ${this.name} is held by an Acquire stream; it renews by itself and is released by closing the stream`,
          ),
        );
      } else {
        holding.requests.push({ ...request, resolve, reject } as Request);
        this.kick();
      }
    });
  }

  /** Claims holding (0 or 1) and waiting here, for metrics. */
  get counts(): { held: number; waiting: number } {
    return { held: this.holding?.claim.state === "held" ? 1 : 0, waiting: this.waiting.length };
  }

  /** The claim holding `token` here, if any. */
  claimFor(token: number): Claim | undefined {
    const holding = this.holding;
    return holding !== undefined && holding.token === token && holding.claim.state === "held" ? holding.claim : undefined;
  }

  /**
   * Stops taking claims, tells holders they lost and waiters they failed, and
   * gives the lease back once nobody can act on it any more: a session
   * holder's once it closed its stream or its promise ran out, a lease-held
   * lock never (it runs out on its own).
   */
  shutdown(): Promise<void> {
    this.closing = true;
    for (const claim of this.waiting.splice(0)) claim.fail(new SyncError("shutting-down", "the daemon is shutting down"));
    const holding = this.holding;
    if (holding?.claim.options.mode === "lease") {
      // Its holder has no stream to hear of a release and acts until its
      // valid_for runs out: the lease must stay held, so it is left to expire.
      this.retainedToken = holding.token;
      holding.claim.end();
      this.dropHolding(holding);
    } else if (holding?.claim.state === "held") {
      this.noticeShutdown(holding);
    }
    this.kick();
    return this.idle();
  }

  /** Past the shutdown timeout: no more store calls; what is still held is left to expire. */
  abandon(): void {
    this.abandoned = true;
    this.wakeTimer?.cancel();
    if (this.holding !== undefined) this.stopRenewing(this.holding);
  }

  /**
   * Tells a session holder at once that it lost, but keeps its lease,
   * unrenewed, until the holder has closed its stream (it read the loss) or
   * its promise has run out, whichever is first: a holder not reading its
   * stream at that moment (paused, busy) acts on its last valid_for until it
   * ends, and nobody else may hold the lease meanwhile (docs/design.md 3.1).
   * The promise is stretched by the lease's drift margin
   * (lease / renew deadline), as every other daemon's expiry is.
   */
  private noticeShutdown(holding: Holding): void {
    const now = this.ctx.clock.now();
    const remaining = Math.max(0, holding.promisedUntil - now);
    // A Release by token already asked for says the holder has stopped acting: it is served as the give-back.
    const releasing = holding.requests.some((request) => request.kind === "release");
    holding.keepUntil = releasing ? undefined : now + (remaining * holding.timing.leaseMs) / holding.timing.renewDeadlineMs;
    this.stopRenewing(holding);
    const claim = holding.claim;
    claim.end();
    this.telling = claim;
    try {
      this.ctx.observer.lost?.(this.kind, "shutdown");
      claim.sink.lost(
        "shutdown",
        "the daemon is shutting down; the lease is given back once this stream is closed or its valid_for has run out",
      );
    } finally {
      this.telling = undefined;
    }
  }

  /** Resolves once the contender has nothing left to do. */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Re-evaluates what to do; called on every relevant change. */
  kick(): void {
    if (this.abandoned || this.retired) return;
    if (this.running) {
      this.dirty = true;
      return;
    }
    this.running = true;
    void this.loop();
  }

  private async loop(): Promise<void> {
    try {
      do {
        this.dirty = false;
        if (await this.step()) this.dirty = true;
      } while (this.dirty);
    } finally {
      this.running = false;
    }
    if (this.isIdle()) {
      this.retired = true;
      this.wakeTimer?.cancel();
      this.unsubscribe();
      for (const resolve of this.idleWaiters.splice(0)) resolve();
      this.ctx.onIdle(this);
    }
  }

  private isIdle(): boolean {
    return !this.running && isIdle(this.view());
  }

  private view(): ContenderView {
    const holding = this.holding;
    return {
      now: this.ctx.clock.now(),
      identity: this.ctx.identity,
      synced: this.ctx.cache.covers(this.name),
      syncError: this.ctx.cache.syncError,
      observation: this.ctx.cache.get(this.name),
      goneHoldEnd: this.ctx.cache.deletionUntold(this.name) ? Infinity : this.ctx.cache.holdEnd(this.name),
      holding:
        holding === undefined
          ? undefined
          : {
              token: holding.token,
              mode: holding.claim.options.mode,
              persistent: holding.claim.options.persistent,
              ended: holding.claim.state === "ended",
              nextRequest: holding.requests[0]?.kind,
              renewDue: holding.renewDue,
              pastRenewDeadline: holding.pastRenewDeadline,
              leaseMs: holding.timing.leaseMs,
              keepUntil: holding.keepUntil,
            },
      head:
        this.waiting[0] === undefined
          ? undefined
          : { noWait: this.waiting[0].options.noWait, nonFair: this.waiting[0].options.nonFair === true },
      anyNoWait: this.waiting.some((claim) => claim.options.noWait),
      closing: this.closing,
      retainedToken: this.retainedToken,
      backoffUntil: this.backoffUntil,
      conflicted: this.conflicts > 0,
      yieldUntil: this.yieldUntil,
      yieldToken: this.yieldToken,
      uncertain: this.uncertain,
      turnGraceMs: (leaseMs) => this.ctx.timing(leaseMs).turnGraceMs,
      grantsInARow: this.grantsInARow,
      lingerUntil: this.lingerUntil,
    };
  }

  /**
   * Applies decisions that change only local state until one calls for a
   * store call, which it performs, or for waiting. Resolves true after a call.
   */
  private async step(): Promise<boolean> {
    for (;;) {
      const decision = decide(this.view());
      const obs = this.ctx.cache.get(this.name);
      const holding = this.holding;
      switch (decision.do) {
        case "lose":
          this.applyLoss(holding!, decision, obs?.record);
          continue;
        case "drop":
          holding!.claim.end();
          this.dropHolding(holding!);
          continue;
        case "fail-head":
          this.waiting.shift()!.fail(this.notFreeError());
          continue;
        case "fail-unsynced":
          this.failUnsynced(decision.all);
          continue;
        case "wait": {
          const lingering = !this.closing && this.lingerUntil > this.ctx.clock.now() ? this.lingerUntil : undefined;
          const until = decision.until === undefined ? lingering : Math.min(decision.until, lingering ?? Infinity);
          if (until !== undefined) this.wakeAt(until);
          return false;
        }
        default:
          await this.perform(decision, obs, holding);
          return true;
      }
    }
  }

  private async perform(decision: Decision, obs: Observation | undefined, holding: Holding | undefined): Promise<void> {
    const head = this.waiting[0];
    switch (decision.do) {
      case "create":
        return this.createStep(head!);
      case "acquire":
        return this.acquireStep(head!, obs!, decision.skip);
      case "enqueue":
        // Joining the queue is what bounded waiting (3.4) needs from a waiter: it goes with the acquiring writes,
        // before this daemon's clients' reads, or a flood of them keeps its waiters out of the queue for seconds.
        if (this.ctx.joins.byUpdate) return this.queueStep("join the wait queue", records.enqueued(obs!.record, this.ctx.identity), "take");
        return this.markWaitingStep("join the wait queue", obs!.record, true, "take");
      case "dequeue":
        // An announcement not yet admitted is taken back by a patch; a place in the queue by a conditional write.
        if (!obs!.record.queue.includes(this.ctx.identity))
          return this.markWaitingStep("leave the wait queue", obs!.record, false, "other");
        return this.queueStep("leave the wait queue", records.dequeued(obs!.record, this.ctx.identity), "other");
      case "release-stale":
        return this.releaseStaleStep(obs!.record);
      case "give-back":
        return this.giveBackStep(holding!, obs!.record, decision.how);
      case "serve-request":
        return this.requestStep(holding!, obs!.record);
      case "serve-release":
        return this.releaseRequestStep(holding!, obs!.record, decision.how);
      case "renew":
        return this.renewStep(holding!, obs!.record);
      case "restore-duration":
        return this.restoreDurationStep(holding!, obs!.record);
      case "settle":
        return this.settleStep();
      default:
        throw new Error(`no store call for ${decision.do}`);
    }
  }

  /** Before the first list succeeds: fail the claims that cannot wait for it. */
  private failUnsynced(all: boolean): void {
    const error = this.ctx.cache.syncError!;
    for (const claim of this.waiting.filter((c) => all || c.options.noWait)) {
      this.waiting.splice(this.waiting.indexOf(claim), 1);
      claim.fail(fromStoreError(error, "list the leases"));
    }
    if (all) this.backOff();
  }

  // ---- store calls -------------------------------------------------------

  private async createStep(head: Claim): Promise<void> {
    const wall = this.ctx.clock.wallTime();
    const sentAt = this.ctx.clock.now();
    const floor = this.ctx.cache.tokenFloor(this.name);
    const fields = records.newLease(this.name, this.kind, this.ctx.identity, head.options, wall, floor);
    // A create is conditional on nothing but absence. Decided on an absent Lease with no hold to wait out, it may wait
    // seconds for a connection (design 5), while the Lease is taken and then deleted by hand: sent then, it would take
    // a lock whose holder may still act (seed 347000: sent 13.6 s after it was decided). It goes only if what this
    // daemon knows of the name still allows it; else the contender decides again on what it knows now.
    let changed = false;
    const result = await this.attempt("create the lease", head.options.leaseMs, "take", (signal) => {
      if (this.mayStillCreate(floor)) return this.ctx.store.create(fields, { signal });
      changed = true;
      return Promise.reject(new StoreError("conflict", "create the lease: not sent, the lease changed while the call waited"));
    });
    if (result.ok) this.granted(head, result.value, sentAt);
    else if (changed) this.kick();
    else await this.failed(result, "create the lease", "take");
  }

  /** True while the decision is still to create the Lease (absent, no hold to wait out) with the token floor it was made on. */
  private mayStillCreate(floor: number): boolean {
    return decide(this.view()).do === "create" && this.ctx.cache.tokenFloor(this.name) === floor;
  }

  private async acquireStep(head: Claim, obs: Observation, skip: readonly string[]): Promise<void> {
    const record = obs.record;
    const wall = this.ctx.clock.wallTime();
    const sentAt = this.ctx.clock.now();
    // A handoff starts when the lease is free AND this claim wants it: a lease
    // that stood free before anyone asked is not a slow handoff.
    const freeAt = Math.max(head.waitingSince, Math.min(sentAt, obs.holdEnd));
    const next = records.acquisition(record, this.ctx.identity, head.options, wall, this.ctx.cache.tokenFloor(this.name), skip);
    const result = await this.attempt("acquire the lease", head.options.leaseMs, "take", (signal) =>
      this.ctx.store.update(next, { signal }),
    );
    if (result.ok) {
      this.granted(head, result.value, sentAt, this.ctx.clock.now() - freeAt);
    } else {
      await this.failed(result, "acquire the lease", "take");
    }
  }

  private async queueStep(doing: string, next: LeaseRecord, priority: CallPriority): Promise<void> {
    await this.write(doing, next.leaseDurationSeconds * 1000, next, priority);
  }

  /**
   * Announces that this daemon waits for the lease, or takes the announcement
   * back: a patch of its own wait entry, which no other write can make fail.
   * The next conditional write of any daemon moves it into the queue.
   */
  private async markWaitingStep(doing: string, record: LeaseRecord, waiting: boolean, priority: CallPriority): Promise<void> {
    const result = await this.attempt(doing, record.leaseDurationSeconds * 1000, priority, (signal) =>
      this.ctx.store.markWaiting(record, this.ctx.identity, waiting, { signal }),
    );
    if (result.ok) return this.ctx.cache.remember(result.value);
    // Refused the verb: join by a conditional write instead (the next decision), rather than fail the waiters.
    if (waiting && isStoreError(result.error, "forbidden")) {
      this.ctx.joins.byUpdate = true;
      return;
    }
    await this.failed(result, doing, "write");
  }

  /** Gives back a lease this daemon still appears to hold although no claim holds it (after a loss or expiry). */
  private async releaseStaleStep(record: LeaseRecord): Promise<void> {
    await this.write("release the lease", record.leaseDurationSeconds * 1000, records.release(record, this.ctx.identity, "leave"), "keep");
  }

  /** Writes `next` and remembers the result; failures follow the policy. */
  private async write(doing: string, leaseMs: number, next: LeaseRecord, priority: CallPriority): Promise<void> {
    const result = await this.attempt(doing, leaseMs, priority, (signal) => this.ctx.store.update(next, { signal }));
    if (result.ok) this.ctx.cache.remember(result.value);
    else await this.failed(result, doing, "write");
  }

  /** Reads the lease after an acquiring write of unknown outcome: the cache then shows whether it took effect. */
  private async settleStep(): Promise<void> {
    if (await this.refresh()) this.uncertain = false;
  }

  /** Gives back the lease of a claim whose caller went away (stream closed, or cancelled while acquiring). */
  private async giveBackStep(holding: Holding, record: LeaseRecord, how: GiveBack): Promise<void> {
    // A Release by token its holder asked for before the claim ended is answered by this give-back.
    const served = holding.requests.find((request) => request.kind === "release");
    const result = await this.giveBack(holding, record, how, served);
    if (result.ok) served?.resolve(0);
    else await this.failed(result, "release the lease", "write");
  }

  /**
   * Gives the lease back the way `decide` chose (`how`, see `GiveBack`).
   * `served` is the Release or Resign being served.
   */
  private async giveBack(holding: Holding, record: LeaseRecord, how: GiveBack, served?: Request): Promise<CallResult<LeaseRecord>> {
    const next = how === "hand-off" ? this.waiting[0]! : undefined;
    const wall = this.ctx.clock.wallTime();
    const sentAt = this.ctx.clock.now();
    const write =
      next !== undefined
        ? records.acquisition(record, this.ctx.identity, next.options, wall, this.ctx.cache.tokenFloor(this.name))
        : records.release(record, this.ctx.identity, this.placeAfter(how));
    const result = await this.attempt("release the lease", holding.timing.leaseMs, "keep", (signal) =>
      this.ctx.store.update(write, { signal }),
    );
    if (!result.ok) return result;
    const now = this.ctx.clock.now();
    if (served !== undefined) holding.requests.splice(holding.requests.indexOf(served), 1);
    holding.claim.end();
    this.dropHolding(holding);
    if (next !== undefined) {
      this.granted(next, result.value, sentAt, now - sentAt);
      return result;
    }
    // Long enough for another daemon to see the lease free and take it: one watch delay and one write.
    const grace = this.ctx.timing(record.leaseDurationSeconds * 1000).turnGraceMs;
    const watchLagMs = this.ctx.cache.watchLagMs;
    const window = Math.min(grace, Math.max(MIN_YIELD_MS, 4 * (now - sentAt) + 2 * watchLagMs));
    if (how === "yield") {
      this.grantsInARow = 0;
      this.yieldUntil = now + window;
      // A yield of the turn grace (the watch's lag not known yet) ends once another daemon has taken the lease; one
      // sized to the lag runs its course, which a slower daemon may need after a faster one's turn (seed 230521).
      this.yieldToken = watchLagMs === Infinity ? record.transitions : Number.MAX_SAFE_INTEGER;
    }
    // A contender idle after a release keeps its count of grants in a row as long: a daemon whose clients come back
    // later than that has left the others time to take the lease.
    this.lingerUntil = Math.max(this.yieldUntil, now + window);
    this.ctx.cache.remember(result.value);
    return result;
  }

  /** Where a give-back leaves this daemon: queued for its claims that wait, announced if it yields to others, or out. */
  private placeAfter(how: GiveBack): "leave" | "queue" | "announce" {
    if (how === "release-and-queue") return "queue";
    const waiting = this.waiting.length > 0 && !this.closing;
    return how === "yield" && waiting ? "announce" : "leave";
  }

  /** Serves the holder's oldest call, a Release or Resign: gives the lease back as decided. */
  private async releaseRequestStep(holding: Holding, record: LeaseRecord, how: GiveBack): Promise<void> {
    const request = holding.requests[0]!;
    const result = await this.giveBack(holding, record, how, request);
    if (result.ok) return request.resolve(0);
    await this.requestFailed(holding, request, result);
  }

  /** Serves the holder's oldest call, a Renew or a Proclaim. */
  private async requestStep(holding: Holding, record: LeaseRecord): Promise<void> {
    const request = holding.requests[0]!;
    if (request.kind === "release") throw new Error("a release is served by releaseRequestStep");
    if (request.signal?.aborted) {
      // Its caller gave up while it waited its turn (seed 275918: a Renew that waited 17 s extended a lock nobody used).
      holding.requests.shift();
      request.reject(gaveUp(`${request.kind} ${this.name}`));
      return this.kick();
    }
    const doing = `${request.kind} ${this.name}`;
    const sentAt = this.ctx.clock.now();
    const leaseMs = request.kind === "renew" ? (request.leaseMs ?? holding.timing.leaseMs) : holding.timing.leaseMs;
    // A shorter lease must still cover what the holder was promised: its
    // reply may be lost, and then the holder acts on the earlier valid_for.
    const writtenMs = Math.max(leaseMs, this.ctx.leaseCovering(holding.promisedUntil - sentAt));
    const next =
      request.kind === "renew" ? records.renewal(record, this.ctx.clock.wallTime(), writtenMs) : records.proclaimed(record, request.value);
    const result = await this.ctx.calls.run(
      this.name,
      doing,
      holding.timing.renewDeadlineMs,
      (signal) => this.ctx.store.update(next, { signal }),
      "keep",
    );
    if (result.ok) {
      holding.requests.shift();
      if (request.kind === "renew") {
        holding.timing = this.ctx.timing(leaseMs);
        this.renewed(holding, sentAt);
      }
      this.ctx.cache.remember(result.value);
      return request.resolve(this.validFor(holding));
    }
    await this.requestFailed(holding, request, result);
  }

  /** A holder's call failed: retried on a fresh record after a conflict, else the caller hears why. */
  private async requestFailed(holding: Holding, request: Request, result: CallResult<unknown> & { ok: false }): Promise<void> {
    const response = responseTo("holder-call", result.failure);
    if (response === "refresh") {
      // Someone joined the wait queue meanwhile; the next decision retries on the fresh record.
      await this.refresh();
    } else if (response === "reject") {
      if (holding.requests[0] === request) holding.requests.shift();
      request.reject(fromStoreError(result.error, `${request.kind} ${this.name}`));
    } else {
      unexpected(response, "holder-call");
    }
  }

  /**
   * Writes back the lease duration of a held lease that someone else shortened
   * (by hand): at least what covers the holder's promise. Others count it from
   * when they see it, so it only holds them off longer; the holder's promise
   * is not renewed by it.
   */
  private async restoreDurationStep(holding: Holding, record: LeaseRecord): Promise<void> {
    const writtenMs = Math.max(holding.timing.leaseMs, this.ctx.leaseCovering(holding.promisedUntil - this.ctx.clock.now()));
    const next = records.renewal(record, this.ctx.clock.wallTime(), writtenMs);
    await this.write("restore the lease duration", holding.timing.leaseMs, next, "keep");
  }

  private async renewStep(holding: Holding, record: LeaseRecord): Promise<void> {
    const sentAt = this.ctx.clock.now();
    const seen = this.ctx.cache.get(this.name);
    const remaining = holding.sentAt + holding.timing.renewDeadlineMs - sentAt;
    const next = records.renewal(record, this.ctx.clock.wallTime(), holding.timing.leaseMs);
    const result = await this.ctx.calls.run(
      this.name,
      "renew the lease",
      remaining,
      (signal) => this.ctx.store.update(next, { signal }),
      "keep",
    );
    if (result.ok) {
      if (this.holding === holding) {
        this.ctx.observer.renewed?.(this.kind, this.ctx.clock.now() - sentAt);
        this.renewed(holding, sentAt);
        holding.claim.sink.renewed(this.validFor(holding));
      }
      this.ctx.cache.remember(result.value);
      return;
    }
    if (this.holding !== holding) return;
    this.ctx.observer.renewFailed?.(this.kind, result.error.reason);
    const response = responseTo("renew", result.failure);
    // The lease is gone: the next decision sees the deletion and tells the holder.
    if (response === "forget") return this.ctx.cache.forget(this.name, seen);
    // A fresh record lets the next decision renew again at once, or notice the
    // lease was taken over; if the read fails too, the renewal is retried.
    if (response === "refresh") {
      if (await this.refresh()) return;
    } else if (response !== "retry-renewal") {
      unexpected(response, "renew");
    }
    holding.renewDue = false;
    const delay = holding.retryMs;
    holding.retryMs = Math.min(holding.retryMs * 2, holding.timing.maxRetryMs);
    holding.renewTimer?.cancel();
    holding.renewTimer = this.ctx.clock.setTimer(delay, () => {
      holding.renewDue = true;
      this.kick();
    });
  }

  /** Runs one acquiring, queueing or releasing call with the deadline of the lease it is for. */
  private attempt<T>(
    doing: string,
    leaseMs: number,
    priority: CallPriority,
    call: (signal: AbortSignal) => Promise<T>,
  ): Promise<CallResult<T>> {
    return this.ctx.calls.run(this.name, doing, this.ctx.timing(leaseMs).renewDeadlineMs, call, priority).then((result) => {
      if (result.ok) {
        this.backoffMs = MIN_BACKOFF_MS;
        this.conflicts = 0;
      }
      return result;
    });
  }

  /** Acts on a failed acquiring ("take"), queueing or releasing ("write") call, as the policy says. */
  private async failed(result: CallResult<unknown> & { ok: false }, doing: string, role: "take" | "write"): Promise<void> {
    const response = responseTo(role, result.failure);
    switch (response) {
      case "conflict":
        this.conflicts += 1;
        await this.refresh();
        return;
      case "fail-waiters":
        this.failWaiting(doing, result.error);
        return;
      case "settle":
      case "retry-later": {
        if (response === "settle") this.uncertain = true;
        const head = this.waiting[0];
        if (head?.options.noWait) {
          this.waiting.shift();
          head.fail(fromStoreError(result.error, doing));
        }
        this.backOff();
        return;
      }
      default:
        unexpected(response, role);
    }
  }

  /** Re-reads the lease after a conflict or an unanswered write, so the next decision works from its latest version. */
  private async refresh(): Promise<boolean> {
    const leaseMs = (this.ctx.cache.get(this.name)?.record.leaseDurationSeconds ?? 0) * 1000;
    const timeoutMs = this.ctx.timing(leaseMs || this.waiting[0]?.options.leaseMs || FALLBACK_LEASE_MS).renewDeadlineMs;
    const priority = this.holding === undefined ? "take" : "keep";
    const seen = this.ctx.cache.get(this.name);
    const result = await this.ctx.calls.run(
      this.name,
      "read the lease",
      timeoutMs,
      (signal) => this.ctx.store.get(this.name, { signal }),
      priority,
    );
    if (result.ok) {
      if (result.value === undefined) this.ctx.cache.forget(this.name, seen);
      else this.ctx.cache.remember(result.value);
      return true;
    }
    const response = responseTo("read", result.failure);
    if (response === "fail-waiters") this.failWaiting("read the lease", result.error);
    else if (response === "back-off") this.backOff();
    else unexpected(response, "read");
    return false;
  }

  /** Fails every waiting claim with a store error that waiting cannot fix: a foreign Lease, an RBAC denial, an invalid object. */
  private failWaiting(doing: string, err: StoreError): void {
    const error = err.reason === "invalid" ? new SyncError("unavailable", `${doing}: ${err.message}`) : fromStoreError(err, doing);
    for (const claim of this.waiting.splice(0)) claim.fail(error);
    this.backOff();
  }

  // ---- state changes -----------------------------------------------------

  private granted(claim: Claim, record: LeaseRecord, sentAt: number, handoffMs?: number): void {
    if (this.changedHandsSince(record)) {
      // The claim was never told; it waits again, and the next decision starts from what the watch told.
      this.kick();
      return;
    }
    const timing = this.ctx.timing(claim.options.leaseMs);
    const index = this.waiting.indexOf(claim);
    if (index >= 0) this.waiting.splice(index, 1);
    const holding: Holding = {
      claim,
      token: record.transitions,
      timing,
      sentAt,
      promisedUntil: 0,
      renewDue: false,
      pastRenewDeadline: false,
      keepUntil: undefined,
      retryMs: 0,
      renewTimer: undefined,
      deadlineTimer: undefined,
      requests: [],
    };
    this.holding = holding;
    if (claim.state === "ended") {
      // The caller gave up while the acquiring write was in flight; the next decision gives it back.
      this.ctx.cache.remember(record);
      return;
    }
    claim.hold(holding.token);
    this.grantsInARow += 1;
    this.ctx.observer.acquired?.(this.kind, handoffMs);
    this.renewed(holding, sentAt);
    const grant: Grant = {
      token: holding.token,
      acquireTime: record.acquireTime!,
      leaseMs: timing.leaseMs,
      validForMs: this.validFor(holding),
    };
    // The claim hears of its grant before the cache changes, so election
    // listeners can tell this daemon's own leader from someone else.
    claim.sink.granted(grant);
    this.ctx.cache.remember(record);
  }

  /**
   * True when the watch has already told of a later version of the lease that
   * no longer shows the acquisition `record` wrote (its reply came late: a
   * frozen process, a slow API server). The Lease changed hands since, for
   * instance deleted by hand and created again by a daemon that never saw it
   * (seed 433017): that holder may act now, so the acquisition is not granted.
   */
  private changedHandsSince(record: LeaseRecord): boolean {
    const current = this.ctx.cache.get(this.name)?.record;
    if (current === undefined || !this.ctx.store.isNewer(current.version, record.version)) return false;
    return current.holderIdentity !== this.ctx.identity || current.transitions !== record.transitions;
  }

  /** Records a successful acquire or renew sent at `sentAt` and schedules the next renewal and the deadline. */
  private renewed(holding: Holding, sentAt: number): void {
    holding.sentAt = sentAt;
    holding.retryMs = Math.min(MIN_BACKOFF_MS, holding.timing.maxRetryMs);
    holding.renewDue = false;
    holding.renewTimer?.cancel();
    holding.deadlineTimer?.cancel();
    if (holding.claim.options.mode === "session") {
      holding.renewTimer = this.ctx.clock.setTimer(jittered(holding.timing.renewIntervalMs, this.ctx.random), () => {
        holding.renewDue = true;
        this.kick();
      });
      const deadline = sentAt + holding.timing.renewDeadlineMs;
      holding.deadlineTimer = this.ctx.clock.setTimer(deadline - this.ctx.clock.now(), () => {
        if (this.holding !== holding) return;
        holding.pastRenewDeadline = true;
        // Decided and told at once, even while a store call is in flight: the
        // holder hears of its loss at its deadline, not when the call ends.
        const decision = decide(this.view());
        if (decision.do === "lose") this.applyLoss(holding, decision, this.ctx.cache.get(this.name)?.record);
        this.kick();
      });
    }
  }

  /** How long, from now, the holder may act; remembered as promised. */
  private validFor(holding: Holding): number {
    const until = holding.sentAt + holding.timing.renewDeadlineMs;
    holding.promisedUntil = Math.max(holding.promisedUntil, until);
    return Math.max(0, until - this.ctx.clock.now());
  }

  private applyLoss(holding: Holding, decision: Decision & { do: "lose" }, record: LeaseRecord | undefined): void {
    const message =
      decision.reason === "renew-deadline-exceeded"
        ? `no renewal succeeded within the renew deadline of ${holding.timing.renewDeadlineMs} ms`
        : lossMessage(record);
    this.lose(holding, decision.reason, message, decision.then);
  }

  /** The holder must stop acting now; its claim waits again or ends, as `decide` said (`then`). */
  private lose(holding: Holding, reason: LossReason, message: string, then: AfterLoss): void {
    const claim = holding.claim;
    const wasHeld = claim.state === "held";
    if (wasHeld) {
      if (then === "wait-again") {
        claim.wait(this.ctx.clock.now());
        this.waiting.push(claim);
      } else {
        claim.end();
      }
    }
    this.dropHolding(holding);
    if (wasHeld) {
      this.ctx.observer.lost?.(this.kind, reason);
      claim.sink.lost(reason, message);
    }
  }

  /** Forgets the holding; its claim's state must already say what became of it. */
  private dropHolding(holding: Holding): void {
    if (this.holding !== holding) return;
    this.holding = undefined;
    this.stopRenewing(holding);
    for (const request of holding.requests.splice(0)) request.reject(this.notHeldError(holding.token));
    if (holding.claim.state === "ended") holding.claim.markSettled();
  }

  private stopRenewing(holding: Holding): void {
    holding.renewTimer?.cancel();
    holding.deadlineTimer?.cancel();
    holding.renewTimer = holding.deadlineTimer = undefined;
    holding.renewDue = false;
  }

  private backOff(): void {
    this.backoffUntil = this.ctx.clock.now() + this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, MAX_BACKOFF_MS);
  }

  private wakeAt(at: number): void {
    this.wakeTimer?.cancel();
    this.wakeTimer = this.ctx.clock.setTimer(at - this.ctx.clock.now(), () => this.kick());
  }

  private notHeldError(token: number): SyncError {
    const record = this.ctx.cache.get(this.name)?.record;
    const current =
      record === undefined
        ? "it was never acquired"
        : `the current token is ${record.transitions}${record.holderIdentity === "" ? " and it is free" : `, held by ${record.holder}`}`;
    return new SyncError("not-held", `token ${token} is not held by this daemon for ${this.name}: ${current}`);
  }

  private notFreeError(): SyncError {
    const record = this.ctx.cache.get(this.name)?.record;
    const holder = this.holding?.claim.options.holder ?? (record?.holderIdentity ? record.holder : undefined);
    return new SyncError("wait-timeout", holder === undefined ? `${this.name} is not free` : `${this.name} is held by ${holder}`);
  }
}

/** The policy answers a failure with a response its call site does not perform: a bug in store-policy.ts's tables. */
function unexpected(response: FailureResponse, role: CallRole): never {
  throw new Error(`store-policy.ts answers a failed ${role} call with ${response}, which its caller does not perform`);
}

function lossMessage(record: LeaseRecord | undefined): string {
  if (record === undefined) return "the lease was deleted";
  if (record.holderIdentity === "") return "the lease was released by someone else";
  return `the lease is now held by ${record.holder} (${record.holderIdentity}), token ${record.transitions}`;
}
