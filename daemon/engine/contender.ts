// One contender per lease name on this daemon. It holds the lease on behalf of
// the claim at the head of its local FIFO queue, renews it, hands it to the
// next local claim or gives it back, and joins the lease's cross-daemon wait
// queue while its claims wait.
//
// All store calls of one contender run one at a time, from a single loop that
// looks at the current state (`plan`) and performs the one call it calls for.
// Watch events, timers and callers only change state and kick the loop.
import type { Clock, Timer } from "./clock.js";
import { Claim, type Grant, type LossReason } from "./claim.js";
import { SyncError, fromStoreError } from "./errors.js";
import { type LeaseCache, type Observation, expiresAt, isFree } from "./lease-cache.js";
import type { EngineObserver } from "./observer.js";
import { type LeaseTiming, jittered } from "./timing.js";
import { type LeaseKind, type LeaseRecord, type LeaseStore, type StoreError, isStoreError } from "../store/lease-store.js";

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
  readonly onIdle: (contender: Contender) => void;
  /** Told about store failures the contender absorbs by retrying. */
  readonly onStoreError: (name: string, doing: string, error: unknown) => void;
  readonly observer: EngineObserver;
}

/** A holder's call that the contender loop serves in order: Renew, Proclaim, Release or Resign. */
type RequestBody =
  | { readonly kind: "renew"; readonly leaseMs: number | undefined }
  | { readonly kind: "proclaim"; readonly value: string }
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
  retryMs: number;
  renewTimer: Timer | undefined;
  deadlineTimer: Timer | undefined;
  readonly requests: Request[];
}

/** Longest wait in the cross-daemon queue; beyond it a daemon contends without queueing. */
const MAX_QUEUE = 64;
const MIN_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 2000;
/**
 * Consecutive handoffs between local claims before the holder lets the lease
 * go free once, so a daemon whose queue write keeps losing to those handoffs
 * is served (its write cannot land while the holder writes back to back).
 */
export const MAX_LOCAL_HANDOFFS = 16;
/** Bounds of the pause after such a yield, before this daemon takes the lease back. */
const MIN_YIELD_MS = 5;
/** Repeated conflicts on a lease someone else writes back off: from this, doubling, with full jitter. */
const MIN_CONFLICT_BACKOFF_MS = 10;
const MAX_CONFLICT_BACKOFF_MS = 1000;

export class Contender {
  private readonly waiting: Claim[] = [];
  private holding: Holding | undefined;
  private closing = false;
  private running = false;
  private dirty = false;
  private wakeTimer: Timer | undefined;
  private backoffUntil = 0;
  private backoffMs = MIN_BACKOFF_MS;
  /** Consecutive conflicts of this contender's writes; from the second on, queue writes back off. */
  private conflicts = 0;
  private conflictRetryAt = 0;
  /** Handoffs between local claims since the lease was last free. */
  private localHandoffs = 0;
  /** After yielding the lease, this daemon leaves it free for others until then. */
  private yieldUntil = 0;
  /** Round trip of the last write, to size the yield. */
  private lastWriteMs = 0;
  /**
   * An acquiring write whose outcome is unknown (it timed out): the store may
   * name this daemon holder. The contender stays until a read settles it.
   */
  private uncertain = false;
  /** A lease-held lock kept at shutdown: it runs out on its own, never released early. */
  private retainedToken: number | undefined;
  private readonly unsubscribe: () => void;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly ctx: ContenderContext,
    readonly name: string,
    readonly kind: LeaseKind,
  ) {
    this.unsubscribe = ctx.cache.subscribe(name, () => this.kick());
  }

  /** Queues a claim; its sink hears the outcome. */
  add(claim: Claim): void {
    if (this.closing) {
      claim.state = "ended";
      claim.markSettled();
      claim.sink.failed(new SyncError("shutting-down", "the daemon is shutting down"));
      return;
    }
    if (claim.options.noWait && (this.holding !== undefined || this.waiting.length > 0)) {
      this.failClaim(claim, this.notFreeError());
      return;
    }
    claim.waitingSince = this.ctx.clock.now();
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
      claim.state = "ended";
      claim.markSettled();
    } else if (claim.state === "held") {
      claim.state = "ended";
      const holding = this.holding;
      if (holding?.claim === claim) this.stopRenewing(holding);
      else claim.markSettled();
    }
    this.kick();
    return claim.settled;
  }

  /** Renews a lease-held claim on behalf of the caller. Resolves with how long the holder may act. */
  renew(token: number, leaseMs: number | undefined): Promise<number> {
    return this.request(token, "lease", { kind: "renew", leaseMs });
  }

  /** Publishes a new election value for the holder of `token`. */
  async proclaim(token: number, value: string): Promise<void> {
    await this.request(token, undefined, { kind: "proclaim", value });
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

  /** Stops taking claims, tells holders they lost and waiters they failed, and gives the lease back. */
  shutdown(): Promise<void> {
    this.closing = true;
    for (const claim of this.waiting.splice(0)) {
      this.failClaim(claim, new SyncError("shutting-down", "the daemon is shutting down"));
    }
    const holding = this.holding;
    if (holding?.claim.options.mode === "lease") {
      // Its holder has no stream to hear of a release and acts until its
      // valid_for runs out: the lease must stay held, so it is left to expire.
      this.retainedToken = holding.token;
      holding.claim.state = "ended";
      this.dropHolding(holding);
    } else if (holding !== undefined) {
      this.lose(holding, "shutdown", "the daemon is shutting down; the lease was released");
    }
    this.kick();
    return this.idle();
  }

  /** Resolves once the contender has nothing left to do. */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Re-evaluates what to do; called on every relevant change. */
  kick(): void {
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
        const step = this.plan();
        if (step !== undefined) {
          await step();
          this.dirty = true;
        }
      } while (this.dirty);
    } finally {
      this.running = false;
    }
    if (this.isIdle()) {
      this.wakeTimer?.cancel();
      this.unsubscribe();
      for (const resolve of this.idleWaiters.splice(0)) resolve();
      this.ctx.onIdle(this);
    }
  }

  private isIdle(): boolean {
    if (this.running || this.holding !== undefined || this.waiting.length > 0 || this.uncertain) return false;
    const record = this.ctx.cache.get(this.name)?.record;
    if (record !== undefined && this.isRetained(record)) return true;
    return record === undefined || (record.holderIdentity !== this.ctx.identity && !record.queue.includes(this.ctx.identity));
  }

  private isRetained(record: LeaseRecord): boolean {
    return this.closing && record.holderIdentity === this.ctx.identity && record.transitions === this.retainedToken;
  }

  /** Picks the one store call the current state calls for, or schedules a wake-up and returns nothing. */
  private plan(): (() => Promise<void>) | undefined {
    const now = this.ctx.clock.now();
    const obs = this.ctx.cache.get(this.name);
    const record = obs?.record;
    const holding = this.holding;
    if (holding !== undefined) {
      if (record === undefined || record.holderIdentity !== this.ctx.identity || record.transitions !== holding.token) {
        if (record === undefined && !this.ctx.cache.synced) return undefined;
        this.lose(holding, record === undefined ? "deleted" : "taken-over", lossMessage(record));
        return this.plan();
      }
      const expired = now >= expiresAt(obs!);
      if (holding.claim.state === "ended") {
        if (expired) {
          // Giving it back kept failing and the lease ran out on its own.
          this.dropHolding(holding);
          return this.plan();
        }
        if (now < this.backoffUntil) return this.wakeAt(this.backoffUntil);
        return () => this.endedStep(holding, record);
      }
      if (holding.claim.options.mode === "lease" && expired) {
        // The caller stopped renewing; its lease has run out.
        holding.claim.state = "ended";
        this.dropHolding(holding);
        return this.plan();
      }
      if (holding.requests.length > 0) return () => this.requestStep(holding, record);
      if (holding.renewDue) return () => this.renewStep(holding, record);
      if (holding.claim.options.mode === "lease") return this.wakeAt(expiresAt(obs!));
      return undefined;
    }
    if (now < this.backoffUntil) return this.wakeAt(this.backoffUntil);
    if (this.uncertain) return () => this.settleStep();
    if (!this.ctx.cache.synced) return this.notSynced();
    const head = this.waiting[0];
    const mine = record?.holderIdentity === this.ctx.identity;
    if (head === undefined) {
      if (mine && this.isRetained(record!)) return undefined;
      if (mine) return () => this.releaseStaleStep(record!);
      if (record?.queue.includes(this.ctx.identity)) return () => this.dequeueStep(record);
      return undefined;
    }
    if (obs === undefined) return () => this.createStep(head);
    if (mine || isFree(obs, now)) {
      const turn = this.turn(obs, now);
      if (turn.mine && !mine && now < this.yieldUntil && !head.options.noWait) return this.wakeAt(this.yieldUntil);
      if (turn.mine) return () => this.acquireStep(head, obs, turn.skip);
      if (head.options.noWait) return this.failHeadAndReplan(head);
      if (!this.queued(obs.record)) return this.enqueueWhenDue(obs.record);
      return this.wakeAt(turn.until);
    }
    if (head.options.noWait) return this.failHeadAndReplan(head);
    if (!this.queued(obs.record)) return this.enqueueWhenDue(obs.record);
    return this.wakeAt(expiresAt(obs));
  }

  /**
   * Whether this daemon may take a free lease now. Daemons queued ahead of it
   * go first; once the lease has been free for the turn grace without them
   * taking it, they are presumed gone and skipped.
   */
  private turn(obs: Observation, now: number): { mine: true; skip: string[] } | { mine: false; until: number } {
    const record = obs.record;
    if (record.holderIdentity === this.ctx.identity) return { mine: true, skip: [] };
    const position = record.queue.indexOf(this.ctx.identity);
    const ahead = position === -1 ? [...record.queue] : record.queue.slice(0, position);
    if (ahead.length === 0) return { mine: true, skip: [] };
    const freeAt = record.holderIdentity === "" ? obs.changedAt : expiresAt(obs);
    const until = freeAt + this.ctx.timing(record.leaseDurationSeconds * 1000).turnGraceMs;
    return now >= until ? { mine: true, skip: ahead } : { mine: false, until };
  }

  /**
   * Before the first list succeeds nothing can be decided. Claims wait for it,
   * unless the list failed in a way waiting cannot fix (RBAC), or the claim
   * does not wait at all.
   */
  private notSynced(): undefined {
    const error = this.ctx.cache.syncError;
    if (error === undefined) return undefined;
    if (error.reason === "forbidden" || error.reason === "foreign") {
      this.failWaiting("list the leases", error);
    } else {
      for (const claim of this.waiting.filter((c) => c.options.noWait)) {
        this.waiting.splice(this.waiting.indexOf(claim), 1);
        this.failClaim(claim, fromStoreError(error, "list the leases"));
      }
    }
    return undefined;
  }

  /** Joins the wait queue, unless repeated conflicts call for a pause first. */
  private enqueueWhenDue(record: LeaseRecord): (() => Promise<void>) | undefined {
    if (this.ctx.clock.now() < this.conflictRetryAt) return this.wakeAt(this.conflictRetryAt);
    return () => this.enqueueStep(record);
  }

  private queued(record: LeaseRecord): boolean {
    return record.queue.includes(this.ctx.identity) || record.queue.length >= MAX_QUEUE;
  }

  private failHeadAndReplan(head: Claim): (() => Promise<void>) | undefined {
    this.waiting.shift();
    this.failClaim(head, this.notFreeError());
    return this.plan();
  }

  // ---- store calls -------------------------------------------------------

  private async createStep(head: Claim): Promise<void> {
    const wall = this.ctx.clock.wallTime();
    const sentAt = this.ctx.clock.now();
    await this.attempt("create the lease", head.options.leaseMs, true, async (signal) => {
      const record = await this.ctx.store.create(
        {
          name: this.name,
          kind: this.kind,
          holderIdentity: this.ctx.identity,
          holder: head.options.holder,
          leaseDurationSeconds: head.options.leaseMs / 1000,
          acquireTime: wall,
          renewTime: wall,
          transitions: this.ctx.cache.tokenFloor(this.name) + 1,
          value: this.kind === "election" ? head.options.value : "",
          queue: [],
        },
        { signal },
      );
      this.granted(head, record, sentAt);
    });
  }

  private async acquireStep(head: Claim, obs: Observation, skip: readonly string[]): Promise<void> {
    const record = obs.record;
    const wall = this.ctx.clock.wallTime();
    const sentAt = this.ctx.clock.now();
    // A handoff starts when the lease is free AND this claim wants it: a lease
    // that stood free before anyone asked is not a slow handoff.
    const freeAt = Math.max(head.waitingSince, record.holderIdentity === "" ? obs.changedAt : Math.min(sentAt, expiresAt(obs)));
    await this.attempt("acquire the lease", head.options.leaseMs, true, async (signal) => {
      const next = this.acquisition(record, head, wall);
      const updated = await this.ctx.store.update(
        { ...next, queue: record.queue.filter((id) => id !== this.ctx.identity && !skip.includes(id)) },
        { signal },
      );
      this.granted(head, updated, sentAt, this.ctx.clock.now() - freeAt);
    });
  }

  private async enqueueStep(record: LeaseRecord): Promise<void> {
    await this.attempt("join the wait queue", record.leaseDurationSeconds * 1000, false, async (signal) => {
      this.ctx.cache.remember(await this.ctx.store.update({ ...record, queue: [...record.queue, this.ctx.identity] }, { signal }));
    });
  }

  private async dequeueStep(record: LeaseRecord): Promise<void> {
    await this.attempt("leave the wait queue", record.leaseDurationSeconds * 1000, false, async (signal) => {
      this.ctx.cache.remember(
        await this.ctx.store.update({ ...record, queue: record.queue.filter((id) => id !== this.ctx.identity) }, { signal }),
      );
    });
  }

  /** Reads the lease after an acquiring write of unknown outcome: the cache then shows whether it took effect. */
  private async settleStep(): Promise<void> {
    if (await this.refresh()) this.uncertain = false;
  }

  /** Gives back a lease this daemon still appears to hold although no claim holds it (after a loss or expiry). */
  private async releaseStaleStep(record: LeaseRecord): Promise<void> {
    await this.attempt("release the lease", record.leaseDurationSeconds * 1000, false, async (signal) => {
      this.ctx.cache.remember(await this.ctx.store.update(this.releaseRecord(record, false), { signal }));
    });
  }

  /** Gives back the lease of a claim whose caller went away (stream closed, or cancelled while acquiring). */
  private async endedStep(holding: Holding, record: LeaseRecord): Promise<void> {
    await this.attempt("release the lease", holding.timing.leaseMs, true, (signal) => this.giveBack(holding, record, signal));
  }

  /**
   * Hands the lease straight to the next local claim when no other daemon
   * waits (one write), or else releases it so the daemon at the head of the
   * wait queue takes it, queueing this daemon behind the others if it still
   * has claims waiting.
   */
  private async giveBack(holding: Holding, record: LeaseRecord, signal: AbortSignal, served?: Request): Promise<void> {
    const next = this.closing ? undefined : this.waiting[0];
    const othersWaiting = record.queue.some((id) => id !== this.ctx.identity);
    const wall = this.ctx.clock.wallTime();
    const sentAt = this.ctx.clock.now();
    const finish = () => {
      this.lastWriteMs = this.ctx.clock.now() - sentAt;
      if (served !== undefined) holding.requests.splice(holding.requests.indexOf(served), 1);
      holding.claim.state = "ended";
      this.dropHolding(holding);
    };
    if (next !== undefined && !othersWaiting && this.localHandoffs < MAX_LOCAL_HANDOFFS) {
      const updated = await this.ctx.store.update(this.acquisition(record, next, wall), { signal });
      finish();
      this.localHandoffs += 1;
      this.granted(next, updated, sentAt, this.ctx.clock.now() - sentAt);
    } else {
      // Past the budget of local handoffs the lease goes free once without
      // this daemon in the queue, and it waits a few write round trips
      // before taking it back: time for a daemon that could not get into the
      // queue to take it.
      const yielding = next !== undefined && !othersWaiting;
      const updated = await this.ctx.store.update(this.releaseRecord(record, next !== undefined && !yielding), { signal });
      finish();
      this.localHandoffs = 0;
      if (yielding) {
        const grace = this.ctx.timing(record.leaseDurationSeconds * 1000).turnGraceMs;
        this.yieldUntil = this.ctx.clock.now() + Math.min(grace, Math.max(MIN_YIELD_MS, 4 * this.lastWriteMs));
      }
      this.ctx.cache.remember(updated);
    }
  }

  /** Serves the holder's oldest Renew, Proclaim, Release or Resign call. */
  private async requestStep(holding: Holding, record: LeaseRecord): Promise<void> {
    const request = holding.requests[0]!;
    const sentAt = this.ctx.clock.now();
    const signal = this.timeoutSignal(holding.timing.renewDeadlineMs);
    try {
      if (request.kind === "release") {
        await this.giveBack(holding, record, signal.signal, request);
        request.resolve(0);
        return;
      }
      const leaseMs = request.kind === "renew" ? (request.leaseMs ?? holding.timing.leaseMs) : holding.timing.leaseMs;
      // A shorter lease must still cover what the holder was promised: its
      // reply may be lost, and then the holder acts on the earlier valid_for.
      const writtenMs = Math.max(leaseMs, this.ctx.leaseCovering(holding.promisedUntil - sentAt));
      const next: LeaseRecord =
        request.kind === "renew"
          ? { ...record, renewTime: this.ctx.clock.wallTime(), leaseDurationSeconds: writtenMs / 1000 }
          : { ...record, value: request.value };
      const updated = await this.ctx.store.update(next, { signal: signal.signal });
      holding.requests.shift();
      if (request.kind === "renew") {
        holding.timing = this.ctx.timing(leaseMs);
        this.renewed(holding, sentAt);
      }
      this.ctx.cache.remember(updated);
      request.resolve(this.validFor(holding));
    } catch (err) {
      if (isStoreError(err, "conflict")) {
        // Someone joined the wait queue meanwhile; `plan` retries on the fresh record.
        await this.refresh();
        return;
      }
      if (holding.requests[0] === request) holding.requests.shift();
      if (isStoreError(err, "conflict")) await this.refresh();
      request.reject(
        isStoreError(err, "not-found") || isStoreError(err, "conflict")
          ? new SyncError("unavailable", `${request.kind} ${this.name}: the lease changed meanwhile; try again`)
          : fromStoreError(err, `${request.kind} ${this.name}`),
      );
    } finally {
      signal.cancel();
    }
  }

  private async renewStep(holding: Holding, record: LeaseRecord): Promise<void> {
    const sentAt = this.ctx.clock.now();
    const remaining = holding.sentAt + holding.timing.renewDeadlineMs - sentAt;
    const signal = this.timeoutSignal(remaining);
    try {
      const updated = await this.ctx.store.update(
        { ...record, renewTime: this.ctx.clock.wallTime(), leaseDurationSeconds: holding.timing.leaseMs / 1000 },
        { signal: signal.signal },
      );
      if (this.holding === holding) {
        this.ctx.observer.renewed?.(this.kind, this.ctx.clock.now() - sentAt);
        this.renewed(holding, sentAt);
        holding.claim.sink.renewed(this.validFor(holding));
      }
      this.ctx.cache.remember(updated);
    } catch (err) {
      await this.renewFailed(holding, "renew the lease", err);
    } finally {
      signal.cancel();
    }
  }

  /**
   * Runs one acquiring or releasing call. Conflicts re-read the lease and
   * leave the next step to `plan`; other failures back off. Foreign and
   * forbidden leases fail every waiting claim, since waiting cannot fix them.
   */
  private async attempt(
    doing: string,
    leaseMs: number,
    acquiring: boolean,
    call: (signal: AbortSignal) => Promise<void>,
  ): Promise<boolean> {
    const signal = this.timeoutSignal(this.ctx.timing(leaseMs).renewDeadlineMs);
    try {
      await call(signal.signal);
      this.backoffMs = MIN_BACKOFF_MS;
      this.conflicts = 0;
      return true;
    } catch (err) {
      if (isStoreError(err, "conflict") || isStoreError(err, "exists") || isStoreError(err, "not-found")) {
        this.conflicts += 1;
        if (this.conflicts > 1) {
          const ceiling = Math.min(MAX_CONFLICT_BACKOFF_MS, MIN_CONFLICT_BACKOFF_MS * 2 ** (this.conflicts - 2));
          this.conflictRetryAt = this.ctx.clock.now() + ceiling * this.ctx.random();
        }
        await this.refresh();
      } else if (isStoreError(err, "foreign") || isStoreError(err, "forbidden") || isStoreError(err, "invalid")) {
        this.failWaiting(doing, err);
      } else {
        // The write may have taken effect although no reply came.
        if (acquiring) this.uncertain = true;
        this.ctx.onStoreError(this.name, doing, err);
        const head = this.waiting[0];
        if (head?.options.noWait) {
          this.waiting.shift();
          this.failClaim(head, fromStoreError(err, doing));
        }
        this.backOff();
      }
      return false;
    } finally {
      signal.cancel();
    }
  }

  /** Re-reads the lease after a conflict, so the next plan works from its latest version. */
  private async refresh(): Promise<boolean> {
    const leaseMs = (this.ctx.cache.get(this.name)?.record.leaseDurationSeconds ?? 0) * 1000 || this.holding?.timing.leaseMs;
    const signal = this.timeoutSignal(this.ctx.timing(leaseMs ?? this.defaultLeaseMs()).renewDeadlineMs);
    try {
      const record = await this.ctx.store.get(this.name, { signal: signal.signal });
      if (record === undefined) this.ctx.cache.forget(this.name);
      else this.ctx.cache.remember(record);
      return true;
    } catch (err) {
      if (isStoreError(err, "foreign") || isStoreError(err, "forbidden")) this.failWaiting("read the lease", err);
      else {
        this.ctx.onStoreError(this.name, "read the lease", err);
        this.backOff();
      }
      return false;
    } finally {
      signal.cancel();
    }
  }

  private defaultLeaseMs(): number {
    return this.waiting[0]?.options.leaseMs ?? 15_000;
  }

  /** Fails every waiting claim with a store error that waiting cannot fix: a foreign Lease, an RBAC denial, an invalid object. */
  private failWaiting(doing: string, err: StoreError): void {
    const error = err.reason === "invalid" ? new SyncError("unavailable", `${doing}: ${err.message}`) : fromStoreError(err, doing);
    for (const claim of this.waiting.splice(0)) this.failClaim(claim, error);
    this.backOff();
  }

  private async renewFailed(holding: Holding, doing: string, err: unknown): Promise<void> {
    if (this.holding !== holding) return;
    this.ctx.observer.renewFailed?.(this.kind, isStoreError(err) ? err.reason : "error");
    // After a conflict with a fresh record `plan` renews again at once, or
    // notices the lease is no longer ours.
    if (isStoreError(err, "conflict") && (await this.refresh())) return;
    if (isStoreError(err, "not-found")) {
      this.ctx.cache.forget(this.name);
      return;
    }
    if (!isStoreError(err, "conflict")) this.ctx.onStoreError(this.name, doing, err);
    holding.renewDue = false;
    const delay = holding.retryMs;
    holding.retryMs = Math.min(holding.retryMs * 2, holding.timing.maxRetryMs);
    holding.renewTimer?.cancel();
    holding.renewTimer = this.ctx.clock.setTimer(delay, () => {
      holding.renewDue = true;
      this.kick();
    });
  }

  // ---- state changes -----------------------------------------------------

  /** The record an acquisition by `claim` writes over `record`. */
  private acquisition(record: LeaseRecord, claim: Claim, wall: Date): LeaseRecord {
    return {
      ...record,
      holderIdentity: this.ctx.identity,
      holder: claim.options.holder,
      leaseDurationSeconds: claim.options.leaseMs / 1000,
      acquireTime: wall,
      renewTime: wall,
      transitions: Math.max(record.transitions, this.ctx.cache.tokenFloor(this.name)) + 1,
      value: this.kind === "election" ? claim.options.value : "",
    };
  }

  /** The record a release writes: no holder, the last transition count kept so tokens never go back. */
  private releaseRecord(record: LeaseRecord, stillWaiting: boolean): LeaseRecord {
    const others = record.queue.filter((id) => id !== this.ctx.identity);
    return {
      ...record,
      holderIdentity: "",
      value: this.kind === "election" ? "" : record.value,
      queue: stillWaiting && others.length < MAX_QUEUE ? [...others, this.ctx.identity] : others,
    };
  }

  private granted(claim: Claim, record: LeaseRecord, sentAt: number, handoffMs?: number): void {
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
      retryMs: 0,
      renewTimer: undefined,
      deadlineTimer: undefined,
      requests: [],
    };
    this.holding = holding;
    if (claim.state === "ended") {
      // The caller gave up while the acquiring write was in flight; `plan` releases it.
      this.ctx.cache.remember(record);
      return;
    }
    claim.state = "held";
    claim.token = holding.token;
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
        if (this.holding === holding) {
          this.lose(
            holding,
            "renew-deadline-exceeded",
            `no renewal succeeded within the renew deadline of ${holding.timing.renewDeadlineMs} ms`,
          );
          this.kick();
        }
      });
    }
  }

  /** How long, from now, the holder may act; remembered as promised. */
  private validFor(holding: Holding): number {
    const until = holding.sentAt + holding.timing.renewDeadlineMs;
    holding.promisedUntil = Math.max(holding.promisedUntil, until);
    return Math.max(0, until - this.ctx.clock.now());
  }

  /** The holder must stop acting now. Persistent (election) claims go back into the queue. */
  private lose(holding: Holding, reason: LossReason, message: string): void {
    const claim = holding.claim;
    const wasHeld = claim.state === "held";
    if (wasHeld) {
      if (claim.options.persistent && !this.closing) {
        claim.state = "waiting";
        claim.waitingSince = this.ctx.clock.now();
        this.waiting.push(claim);
      } else {
        claim.state = "ended";
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

  private failClaim(claim: Claim, error: SyncError): void {
    claim.state = "ended";
    claim.markSettled();
    claim.sink.failed(error);
  }

  private backOff(): void {
    this.backoffUntil = this.ctx.clock.now() + this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, MAX_BACKOFF_MS);
  }

  /** Schedules the next look at the state; returns nothing so `plan` can return it. */
  private wakeAt(at: number): undefined {
    this.wakeTimer?.cancel();
    this.wakeTimer = this.ctx.clock.setTimer(at - this.ctx.clock.now(), () => this.kick());
    return undefined;
  }

  private timeoutSignal(ms: number): { signal: AbortSignal; cancel(): void } {
    const controller = new AbortController();
    const timer = this.ctx.clock.setTimer(ms, () => controller.abort(new Error(`timed out after ${Math.round(ms)} ms`)));
    return { signal: controller.signal, cancel: () => timer.cancel() };
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

function lossMessage(record: LeaseRecord | undefined): string {
  if (record === undefined) return "the lease was deleted";
  if (record.holderIdentity === "") return "the lease was released by someone else";
  return `the lease is now held by ${record.holder} (${record.holderIdentity}), token ${record.transitions}`;
}
