// Counting semaphores: up to N holds of one name at once, across daemons, on
// one Lease (docs/design.md 3.13). Each daemon whose clients hold permits has
// one seat on it, whose `permits` counts them. A grant raises that count with
// a write conditional on the version whose seats were counted, so the stored
// counts never sum past N; renewing and giving back patch the daemon's own
// seat only. Every grant writes the next token, so tokens are one sequence
// per semaphore. Waiting daemons line up as for a lock (3.4): the daemon at
// position q of the queue may take a permit when more than q are free.
//
// One SemaphoreContender per name on this daemon serves all its claims from a
// single loop, as a lock's contender does: watch events, timers and callers
// change state and kick the loop; each pass makes at most one store call.
import { Claim, type Grant, type LossReason } from "./claim.js";
import type { Clock, Timer } from "./clock.js";
import type { ContenderContext } from "./contender.js";
import { SyncError, fromStoreError, gaveUp, invalidArgument } from "./errors.js";
import { type Observation, freePermits } from "./lease-cache.js";
import { MAX_QUEUE, admitted, line } from "./lease-records.js";
import type { AcquireSink } from "./locks.js";
import { addSessionClaim } from "./session-claim.js";
import type { CallResult } from "./store-calls.js";
import { responseTo } from "./store-policy.js";
import { type LeaseTiming, jittered } from "./timing.js";
import {
  type LeaseFields,
  type LeaseRecord,
  type LiveSeat,
  type Seat,
  type SeatId,
  StoreError,
  bySeatIdentity,
  isStoreError,
  sameSeat,
} from "../store/lease-store.js";

/** Most permits a semaphore may have. */
export const MAX_PERMITS = 32;
/** Most daemons holding seats on one Lease at once; beyond it a daemon waits for a seat to end. */
export const MAX_SEATS = 64;
const MIN_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 2000;
const HOLDER_CHARS = 63;
/** Most quarter graces a daemon far back in the queue waits past the turn grace before it skips those ahead. */
const MAX_STAGGERS = 4;
/** Races a claim that does not wait (TryAcquirePermit) may lose before it fails as finding no permit free. */
const MAX_TRY_CONFLICTS = 3;
/** Lease duration for a call when nothing names one. */
const FALLBACK_LEASE_MS = 15_000;

/**
 * Who a contender is on its Lease, and what one hold counts. A semaphore's
 * contender is its daemon and a hold counts one permit. A read-write lock is
 * a semaphore of RW_CAPACITY permits with two contenders per daemon, each
 * with its own seat and queue entry: the readers' (a hold counts one) and the
 * writer's (a hold counts them all), so a writer holds exactly when no one
 * else does (docs/design.md 3.14).
 */
export interface SeatRole {
  readonly kind: "semaphore" | "rwlock";
  /** The identity its seat and queue entries carry: the daemon's, tagged with the mode for a read-write lock. */
  readonly identity: string;
  readonly mode: "permit" | "shared" | "exclusive";
  /** Permits one hold counts. */
  readonly weight: number;
  /** Permits the contender whose queue entry is `entry` waits for. */
  need(entry: string): number;
}

export function semaphoreRole(identity: string): SeatRole {
  return { kind: "semaphore", identity, mode: "permit", weight: 1, need: () => 1 };
}

/** Holds of one read-write lock at once: readers, or one writer that counts them all. */
export const RW_CAPACITY = 1_000_000;
const EXCLUSIVE_TAG = " exclusive";

/** Whether a seat or queue entry of a read-write lock is a writer's. */
export function isExclusiveEntry(entry: string): boolean {
  return entry.endsWith(EXCLUSIVE_TAG);
}

/** The contender of `mode` of a read-write lock on the daemon `identity`: its identity is tagged (no identity has a space). */
export function rwRole(identity: string, mode: "shared" | "exclusive"): SeatRole {
  return {
    kind: "rwlock",
    identity: `${identity} ${mode}`,
    mode,
    weight: mode === "exclusive" ? RW_CAPACITY : 1,
    need: (entry) => (isExclusiveEntry(entry) ? RW_CAPACITY : 1),
  };
}

/** The daemon identity of a seat or queue entry of a read-write lock. */
export function untagged(entry: string): string {
  return entry.replace(/ (shared|exclusive)$/, "");
}

export interface PermitRequest {
  /** Lease name, already checked and prefixed. */
  readonly leaseName: string;
  readonly holder: string;
  readonly leaseMs: number;
  /** The semaphore's N as this caller knows it: checked against the Lease's. */
  readonly permits: number;
}

/** Checks a requested N. */
export function checkPermits(permits: number, field: string): number {
  if (!Number.isInteger(permits) || permits < 1 || permits > MAX_PERMITS)
    throw invalidArgument(field, `must be between 1 and ${MAX_PERMITS}, got ${permits}`);
  return permits;
}

/** Checks a hold id: the decimal token of a hold. */
export function checkHoldId(holdId: string, field: string): number {
  if (!/^[1-9][0-9]{0,15}$/.test(holdId) || !Number.isSafeInteger(Number(holdId)))
    throw invalidArgument(field, `must be a hold id from an acquisition, got ${JSON.stringify(holdId.slice(0, 32))}`);
  return Number(holdId);
}

interface Hold {
  readonly claim: Claim;
  /** The grant's token: the hold's id, and its fencing token unless a shared hold of a read-write lock. */
  readonly token: number;
  /** The token the holder fences with: a shared hold's is its lock's latest exclusive token. */
  readonly fencingToken: number;
  readonly acquireTime: Date;
  /** Lease-held (TryAcquirePermit): renewed by its caller, and over when its lease runs out unrenewed. */
  readonly leased: boolean;
  leaseMs: number;
  /** Lease-held: local time its last write (grant or RenewPermit) was sent. */
  sentAt: number;
  /** Local time until which the holder was told it may act. */
  promisedUntil: number;
  /** At shutdown, a session holder told it lost keeps its permit until it closes its stream or this time passes. */
  keepUntil: number | undefined;
  /** ReleasePermit calls waiting for the permit to be given back. */
  readonly releases: Array<{ resolve(): void; reject(error: SyncError): void }>;
}

/** A write of this daemon's seat whose outcome is unknown, and the grant it made if it landed. */
interface Unsettled {
  readonly seat: Seat;
  readonly sentAt: number;
  /** A give-back: once it shows, the holds whose permits it gave back are over (their ReleasePermit callers hear). */
  readonly gaveBack?: true;
  readonly grant?: { readonly claim: Claim; readonly token: number; readonly fencingToken: number; readonly wall: Date };
}

interface RenewCall {
  readonly token: number;
  readonly leaseMs: number | undefined;
  readonly signal: AbortSignal | undefined;
  resolve(validForMs: number): void;
  reject(error: SyncError): void;
}

/** This daemon's seat, as it last wrote it. */
interface SeatState {
  written: LiveSeat;
  /** Local time the last successful write of the seat was sent: session holds may act until then plus the renew deadline. */
  sentAt: number;
  timing: LeaseTiming;
  renewDue: boolean;
  retryMs: number;
  renewTimer: Timer | undefined;
  deadlineTimer: Timer | undefined;
}

export interface PermitHoldView {
  readonly holder: string;
  readonly holderIdentity: string;
  readonly token: number;
  readonly acquireTime: Date | undefined;
  readonly leaseMs: number;
  readonly remainingMs: number;
}

export interface SemaphoreState {
  readonly permits: number;
  readonly holders: readonly PermitHoldView[];
  readonly token: number;
  readonly waitingDaemons: readonly string[];
}

type Step =
  | { readonly do: "wait"; readonly until?: number }
  | { readonly do: "continue" }
  | { readonly do: "create"; readonly claim: Claim }
  | { readonly do: "grant"; readonly claim: Claim; readonly skip: readonly string[] }
  | { readonly do: "give-back"; readonly queueBehind: boolean }
  | { readonly do: "renew"; readonly call: RenewCall | undefined }
  | { readonly do: "announce" }
  | { readonly do: "leave-line" };

export class SemaphoreContender {
  private readonly waiting: Claim[] = [];
  private readonly holds = new Map<number, Hold>();
  private readonly renewCalls: RenewCall[] = [];
  private seat: SeatState | undefined;
  private closing = false;
  private abandoned = false;
  private retired = false;
  private running = false;
  private dirty = false;
  private wakeTimer: Timer | undefined;
  private backoffUntil = 0;
  private backoffMs = MIN_BACKOFF_MS;
  /** Consecutive conflicts of this contender's writes; after one, a waiter announces itself before it tries again. */
  private conflicts = 0;
  /**
   * Writes of this daemon's seat whose outcome is unknown (no answer in time): each may have landed, and the
   * store then shows that seat. The next successful write of the seat makes them moot.
   */
  private unsettled: Unsettled[] = [];
  /** Ends of the promises of lease-held permits lost while their holders may still act: counted in any seat until then. */
  private lingering: number[] = [];
  /** Lease-held permits kept at shutdown: they stay counted in the seat, unrenewed, and run out on their own. */
  private retainedPermits = 0;
  /** Since when a permit has stood free for daemons queued ahead of this one, who have not taken it (see `turn`). */
  private turnWait: { readonly ahead: readonly string[]; readonly since: number } | undefined;
  private readonly unsubscribe: () => void;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly ctx: ContenderContext,
    readonly name: string,
    /** Counts this process's seats, so that a seat taken again is told apart from its tombstone. */
    private readonly nextAcquisition: () => number,
    private readonly role: SeatRole = semaphoreRole(ctx.identity),
  ) {
    this.unsubscribe = ctx.cache.subscribe(name, () => this.kick());
  }

  get kind(): SeatRole["kind"] {
    return this.role.kind;
  }

  /** The engine's key for this contender: a read-write lock has one per mode on a Lease. */
  get key(): string {
    return this.role.identity === this.ctx.identity ? this.name : `${this.name} ${this.role.mode}`;
  }

  /** Queues a claim for one permit; `permits` is the N it asks with. */
  add(claim: Claim): void {
    if (this.closing) return claim.fail(new SyncError("shutting-down", "the daemon is shutting down"));
    if (claim.options.noWait && this.waiting.length > 0) return claim.fail(this.noPermitError());
    claim.wait(this.ctx.clock.now());
    this.waiting.push(claim);
    this.kick();
  }

  /** Ends a claim: a waiting one leaves the line, a holding one gives its permit back. */
  end(claim: Claim): Promise<void> {
    if (claim.state === "waiting") {
      const index = this.waiting.indexOf(claim);
      if (index >= 0) this.waiting.splice(index, 1);
      claim.end();
      claim.markSettled();
    } else if (claim.state === "held") {
      claim.end();
    } else {
      // Told it lost at shutdown, the caller closed its stream: its permit may go back now.
      const hold = [...this.holds.values()].find((h) => h.claim === claim);
      if (hold !== undefined) hold.keepUntil = undefined;
    }
    this.kick();
    return claim.settled;
  }

  /** The hold `token` of this daemon, if it is held. */
  holdOf(token: number): Claim | undefined {
    const hold = this.holds.get(token);
    return hold?.claim.state === "held" ? hold.claim : undefined;
  }

  /** Renews a lease-held permit; resolves with how long its holder may act. */
  renew(token: number, leaseMs: number | undefined, signal?: AbortSignal): Promise<number> {
    return new Promise((resolve, reject) => {
      const hold = this.holds.get(token);
      if (hold === undefined || hold.claim.state !== "held") return reject(this.notHeldError(token));
      if (!hold.leased)
        return reject(
          new SyncError("not-held", `hold ${token} of ${this.name} is held by an AcquirePermit stream; it renews by itself`, "hold_id"),
        );
      this.renewCalls.push({ token, leaseMs, signal, resolve, reject });
      this.kick();
    });
  }

  /** Gives a permit back by its hold; resolves once the store has taken it. */
  release(token: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const hold = this.holds.get(token);
      if (hold === undefined || hold.claim.state !== "held") return reject(this.notHeldError(token));
      hold.releases.push({ resolve, reject });
      hold.claim.end();
      this.kick();
    });
  }

  get counts(): { held: number; waiting: number } {
    let held = 0;
    for (const hold of this.holds.values()) if (hold.claim.state === "held") held += 1;
    return { held, waiting: this.waiting.length };
  }

  /** Holds of this daemon, for GetSemaphore. */
  ownHolds(now: number): PermitHoldView[] {
    const views: PermitHoldView[] = [];
    for (const hold of this.holds.values()) {
      if (hold.claim.state !== "held") continue;
      views.push({
        holder: hold.claim.options.holder,
        holderIdentity: this.ctx.identity,
        token: hold.token,
        acquireTime: hold.acquireTime,
        leaseMs: hold.leaseMs,
        remainingMs: Math.max(0, this.promiseEnd(hold) - now),
      });
    }
    return views;
  }

  /**
   * Stops taking claims, tells session holders they lost, and gives their
   * permits back once they can no longer act; lease-held permits are left to
   * run out, unrenewed.
   */
  shutdown(): Promise<void> {
    this.closing = true;
    for (const claim of this.waiting.splice(0)) claim.fail(new SyncError("shutting-down", "the daemon is shutting down"));
    const now = this.ctx.clock.now();
    for (const hold of this.holds.values()) {
      if (hold.claim.state !== "held") continue;
      if (hold.leased) {
        // Its holder acts until its valid_for runs out: its permit stays counted in the seat, which is left to expire.
        this.retainedPermits += 1;
        this.holds.delete(hold.token);
        hold.claim.end();
        this.settle(hold);
        continue;
      }
      const timing = this.seat?.timing ?? this.ctx.timing(hold.leaseMs);
      const remaining = Math.max(0, this.promiseEnd(hold) - now);
      hold.keepUntil = now + (remaining * timing.leaseMs) / timing.renewDeadlineMs;
      hold.claim.end();
      this.ctx.observer.lost?.(this.kind, "shutdown");
      hold.claim.sink.lost(
        "shutdown",
        "the daemon is shutting down; the permit is given back once this stream is closed or its valid_for has run out",
      );
    }
    this.kick();
    return this.idle();
  }

  abandon(): void {
    this.abandoned = true;
    this.wakeTimer?.cancel();
    this.stopRenewing();
  }

  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

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
        if (await this.pass()) this.dirty = true;
      } while (this.dirty);
    } finally {
      this.running = false;
    }
    if (this.isIdle()) {
      this.retired = true;
      this.wakeTimer?.cancel();
      this.stopRenewing();
      this.unsubscribe();
      for (const resolve of this.idleWaiters.splice(0)) resolve();
      this.ctx.onIdle(this);
    }
  }

  private isIdle(): boolean {
    if (this.running || this.waiting.length > 0 || this.holds.size > 0 || this.renewCalls.length > 0) return false;
    if (this.lingering.some((until) => until > this.ctx.clock.now())) return false;
    if (this.seat !== undefined && !this.closing) return false;
    const record = this.ctx.cache.get(this.name)?.record;
    return this.closing || record === undefined || !line(record).includes(this.role.identity);
  }

  /** Decides and performs until a store call was made (true) or there is nothing to do now (false). */
  private async pass(): Promise<boolean> {
    for (;;) {
      const step = this.decide();
      switch (step.do) {
        case "continue":
          continue;
        case "wait":
          this.wakeTimer?.cancel();
          if (step.until !== undefined) this.wakeTimer = this.ctx.clock.setTimer(step.until - this.ctx.clock.now(), () => this.kick());
          return false;
        case "create":
          await this.createStep(step.claim);
          return true;
        case "grant":
          await this.grantStep(step.claim, step.skip);
          return true;
        case "give-back":
          await this.giveBackStep(step.queueBehind);
          return true;
        case "renew":
          await this.renewStep(step.call);
          return true;
        case "announce":
          await this.markWaitingStep(true);
          return true;
        case "leave-line":
          await this.leaveLineStep();
          return true;
      }
    }
  }

  /** The one next step, from what this daemon holds, waits for and observes. Local changes are made here and answered "continue". */
  private decide(): Step {
    const now = this.ctx.clock.now();
    const obs = this.ctx.cache.get(this.name);
    const record = obs?.record;
    // What was this daemon's seat may have been removed or changed by someone else, or the Lease deleted.
    const stored = record?.seats?.find((seat) => seat.identity === this.role.identity);
    const landed = stored === undefined ? undefined : this.unsettled.find((write) => sameSeat(write.seat, stored));
    if (landed !== undefined) return this.settled(landed, record!);
    if (this.seat !== undefined) {
      if (record === undefined && this.ctx.cache.covers(this.name)) return this.loseAll("deleted", "the semaphore's Lease was deleted");
      if (record !== undefined && (stored === undefined || !sameSeat(stored, this.seat.written)))
        return this.loseAll("taken-over", "this daemon's seat on the semaphore was removed or changed by someone else");
    }
    // Lease-held permits whose lease ran out unrenewed are over.
    for (const hold of this.holds.values()) {
      if (hold.leased && hold.claim.state === "held" && now >= hold.sentAt + hold.leaseMs) {
        hold.claim.end();
        return { do: "continue" };
      }
    }
    // Holds that ended, with no seat left to give their permits back from.
    if (this.seat === undefined) this.dropEnded(now);
    if (now < this.backoffUntil) return { do: "wait", until: this.backoffUntil };
    if (!this.ctx.cache.covers(this.name)) return this.unsynced();
    const head = this.waiting[0];
    const others = record === undefined ? false : line(record).some((id) => id !== this.role.identity);
    if (this.seat !== undefined && record !== undefined) {
      const target = this.liveHolds(now) * this.role.weight;
      if (target < (this.seat.written.permits ?? 0)) {
        // A permit of an ended hold is in the seat: hand it to the next local claim if no other daemon waits. After a
        // lost race it is given back instead, and the claim waits in line: a hand-off that keeps losing to another
        // daemon's writes holds that permit while the other daemon takes the rest (seed 41).
        const handOff = head !== undefined && !this.closing && !others && this.conflicts === 0;
        if (handOff && record.permits === head.options.permits) return { do: "grant", claim: head, skip: [] };
        // (Queued behind the others in the same write, unless such writes lose races: then by a patch, which cannot.)
        return { do: "give-back", queueBehind: head !== undefined && !this.closing && others && this.conflicts === 0 };
      }
      const call = this.renewCalls[0];
      if (call !== undefined) {
        if (call.signal?.aborted || this.holds.get(call.token)?.claim.state !== "held") {
          this.renewCalls.shift();
          call.reject(call.signal?.aborted ? gaveUp(`renew ${this.name}`) : this.notHeldError(call.token));
          return { do: "continue" };
        }
        return { do: "renew", call };
      }
      if (this.seat.renewDue && !this.closing) return { do: "renew", call: undefined };
    }
    if (head === undefined) {
      if (this.seat === undefined && record !== undefined && line(record).includes(this.role.identity)) return { do: "leave-line" };
      return this.wakeForHolds(now);
    }
    if (record === undefined) {
      const goneHoldEnd = this.ctx.cache.deletionUntold(this.name) ? Infinity : this.ctx.cache.holdEnd(this.name);
      if (now >= goneHoldEnd) return { do: "create", claim: head };
      if (head.options.noWait) return this.failHead(this.noPermitError());
      return { do: "wait", until: Number.isFinite(goneHoldEnd) ? goneHoldEnd : undefined };
    }
    if (record.permits !== head.options.permits) return this.failHead(this.mismatchError(record, head.options.permits!));
    const turn = this.turn(obs!, now);
    const inLine = line(record).includes(this.role.identity);
    // Where another daemon holds permits, a waiter announces itself before its first try: that daemon may hand its
    // permits on back to back, each write a race this one loses, until the announcement lands (seed 56: 30 grants to
    // one daemon while a slower one learned of its first lost race and announced itself).
    if (turn.mine && !inLine && !head.options.noWait && record.queue.length < MAX_QUEUE && this.othersSeated(obs!, now))
      return { do: "announce" };
    if (turn.mine && this.conflicts > 0) {
      // A waiter whose write lost a race announces itself before it tries again, as a lock's does (3.4): however often
      // it loses to another daemon's writes, the next of them queues it. One that does not wait gives up after a few.
      if (head.options.noWait && this.conflicts >= MAX_TRY_CONFLICTS) return this.failHead(this.noPermitError());
      if (!head.options.noWait && !inLine && record.queue.length < MAX_QUEUE) return { do: "announce" };
    }
    if (turn.mine) return { do: "grant", claim: head, skip: turn.skip };
    if (head.options.noWait) return this.failHead(this.noPermitError());
    if (!inLine && record.queue.length < MAX_QUEUE) return { do: "announce" };
    return this.wakeForHolds(now, turn.until);
  }

  /**
   * Whether another daemon uses the semaphore, as this daemon observes: it
   * holds permits, or gave its last ones back (its tombstone stays until a
   * grant drops it) and may take more at once.
   */
  private othersSeated(obs: Observation, now: number): boolean {
    for (const { seat, holdEnd } of obs.seats.values()) {
      if (seat?.identity === this.role.identity) continue;
      if (holdEnd > now || seat?.released === true) return true;
    }
    return false;
  }

  /** The permits the seat counts: holds that count, lost holders who may still act, lease-held permits kept at shutdown. */
  private liveHolds(now: number): number {
    this.lingering = this.lingering.filter((until) => until > now);
    let live = this.retainedPermits + this.lingering.length;
    for (const hold of this.holds.values()) if (counts(hold, now)) live++;
    return live;
  }

  /** Waits for the next local deadline: a lease-held permit's end, a shutdown keep, `until`. */
  private wakeForHolds(now: number, until = Infinity): Step {
    let next = until;
    for (const end of this.lingering) if (end > now) next = Math.min(next, end);
    for (const hold of this.holds.values()) {
      if (hold.leased && hold.claim.state === "held") next = Math.min(next, hold.sentAt + hold.leaseMs);
      if (hold.keepUntil !== undefined && hold.keepUntil > now) next = Math.min(next, hold.keepUntil);
    }
    return { do: "wait", until: Number.isFinite(next) ? next : undefined };
  }

  /**
   * Whether this daemon may take a free permit now: a permit is free and no
   * daemon is queued ahead of it. Daemons are served one grant at a time, in
   * the queue's order, as for a lock (3.4): with two daemons entitled at once,
   * the one with the faster connection won every race while the other's
   * writes kept conflicting (seed 17: 319 grants in a row to one daemon). A
   * daemon only announced has no place yet. When a permit has stood free for
   * a turn grace (and a quarter more per daemon between it and the head, up
   * to four) without them taking it, they are skipped.
   */
  private turn(obs: Observation, now: number): { mine: true; skip: readonly string[] } | { mine: false; until: number | undefined } {
    const free = freePermits(obs, now);
    const seats = (obs.record.seats ?? []).filter((seat) => seat.released !== true).length + (obs.record.brokenSeats?.length ?? 0);
    if (free < this.role.weight || (this.seat === undefined && seats >= MAX_SEATS)) return this.untilHoldEnds(obs, now);
    // A read-write lock's announced entries count in their order too: a reader that comes after a writer announced
    // waits behind it, rather than slipping in with the write that would admit the writer into the queue.
    const queue = this.role.kind === "rwlock" ? line(obs.record) : obs.record.queue;
    const position = queue.indexOf(this.role.identity);
    const ahead = position === -1 ? queue : queue.slice(0, position);
    if (ahead.length === 0) {
      this.turnWait = undefined;
      return { mine: true, skip: [] };
    }
    // The grace runs only while the first daemon ahead could take what it waits for: a read-write lock's writer
    // waits for every reader to leave, and is not skipped meanwhile by readers behind it.
    if (free < this.role.need(ahead[0]!)) return this.untilHoldEnds(obs, now);
    // The grace starts again when one ahead has gone (the line moved), not when one joins ahead: announcements are
    // ordered by text, so a daemon that announced itself later may sort ahead, and one that then died restarted the
    // grace of every waiter behind it (seed 3097: 4.4 s free with a reader waiting, bound 4 s).
    if (this.turnWait === undefined || this.turnWait.ahead.some((id) => !ahead.includes(id))) this.turnWait = { ahead, since: now };
    else this.turnWait = { ahead, since: this.turnWait.since };
    const leaseMs = obs.record.leaseDurationSeconds * 1000 || this.waiting[0]!.options.leaseMs;
    // The one just behind a stale head skips it first, after a turn grace; one further back waits a quarter grace more
    // per daemon between (up to four): a live one among them has taken its turn by then (seed 6363: a daemon at the
    // tail skipped a live daemon that was itself waiting out a dead head, and took 29 grants in a row). Dead entries
    // cost the last in line two graces at most (seed 12616: four of them).
    // Counted by daemon: a read-write lock's daemon has two entries, its readers' and its writer's, and one live daemon
    // takes its turn for both.
    const graceMs = this.ctx.timing(leaseMs).turnGraceMs;
    const daemonsAhead = new Set(ahead.map(untagged)).size;
    const until = this.turnWait.since + graceMs * (1 + Math.min(daemonsAhead - 1, MAX_STAGGERS) / 4);
    if (now < until) return { mine: false, until };
    return { mine: true, skip: ahead };
  }

  /** Not this daemon's turn until a hold ends: nothing changes in the store when a seat runs out unrenewed, so wake when the first hold observed ends. */
  private untilHoldEnds(obs: Observation, now: number): { mine: false; until: number | undefined } {
    this.turnWait = undefined;
    let until = obs.holdEnd > now ? obs.holdEnd : Infinity;
    for (const { holdEnd } of obs.seats.values()) if (holdEnd > now) until = Math.min(until, holdEnd);
    return { mine: false, until: Number.isFinite(until) ? until : undefined };
  }

  private unsynced(): Step {
    const error = this.ctx.cache.syncError;
    if (error === undefined) return { do: "wait" };
    const all = error.reason === "forbidden" || error.reason === "foreign";
    const failing = this.waiting.filter((claim) => all || claim.options.noWait);
    if (failing.length === 0) return { do: "wait" };
    for (const claim of failing) {
      this.waiting.splice(this.waiting.indexOf(claim), 1);
      claim.fail(fromStoreError(error, "list the leases"));
    }
    return { do: "continue" };
  }

  private failHead(error: SyncError): Step {
    this.waiting.shift()!.fail(error);
    return { do: "continue" };
  }

  /** Every hold of this daemon's seat is over: its holders are told, and the seat is forgotten. */
  private loseAll(reason: LossReason, message: string): Step {
    this.stopRenewing();
    const now = this.ctx.clock.now();
    for (const [token, hold] of this.holds) {
      this.holds.delete(token);
      const held = hold.claim.state === "held";
      // A holder may act until its valid_for runs out: a lease-held one has no stream to hear of its loss, and a
      // stream's may not be reading it. Any seat this daemon takes meanwhile counts it (seed 143: a seat removed by
      // hand, the next one left a lease-held permit out; seed 1590: a seat lowered by hand, the next one left out a
      // holder that was told but did not read its stream).
      const end = this.promiseEnd(hold);
      if (held && end > now) this.lingering.push(end);
      hold.claim.end();
      this.settle(hold);
      if (held) {
        this.ctx.observer.lost?.(this.kind, reason);
        hold.claim.sink.lost(reason, message);
      }
    }
    this.seat = undefined;
    return { do: "continue" };
  }

  /** A hold gone from the store (given back, or lost): its claim settles and its ReleasePermit callers hear. */
  private settle(hold: Hold): void {
    hold.claim.markSettled();
    for (const release of hold.releases.splice(0)) release.resolve();
  }

  // ---- store calls -------------------------------------------------------

  private async createStep(claim: Claim): Promise<void> {
    const wall = this.ctx.clock.wallTime();
    const sentAt = this.ctx.clock.now();
    const floor = this.ctx.cache.tokenFloor(this.name);
    const seat = this.newSeat(claim, wall, this.role.weight);
    const fields: LeaseFields = {
      name: this.name,
      kind: this.kind,
      holderIdentity: "",
      holder: "",
      leaseDurationSeconds: claim.options.leaseMs / 1000,
      acquireTime: wall,
      renewTime: wall,
      transitions: floor + 1,
      value: "",
      queue: this.waiting.length > 1 ? [this.role.identity] : [],
      permits: claim.options.permits,
      ...this.exclusiveToken(floor + 1, floor),
      seats: [seat],
      seated: [{ identity: seat.identity, acquisition: seat.acquisition }],
    };
    const result = await this.call("create the semaphore", claim.options.leaseMs, "take", (signal) => {
      if (this.ctx.cache.get(this.name) === undefined && this.ctx.cache.tokenFloor(this.name) === floor)
        return this.ctx.store.create(fields, { signal });
      return Promise.reject(new StoreError("conflict", "create the semaphore: not sent, the Lease changed while the call waited"));
    });
    if (result.ok) return this.granted(claim, result.value, sentAt, wall);
    await this.failed(result, "create the semaphore", {
      seat,
      sentAt,
      grant: { claim, token: fields.transitions, fencingToken: this.fencingToken(fields), wall },
    });
  }

  /** Takes a permit for `claim`: the seat's count raised by one, or a permit of an ended hold handed on (count kept). */
  private async grantStep(claim: Claim, skip: readonly string[]): Promise<void> {
    const now = this.ctx.clock.now();
    const obs = this.ctx.cache.get(this.name)!;
    const wall = this.ctx.clock.wallTime();
    const permits = (this.liveHolds(now) + 1) * this.role.weight;
    const seat = this.seat === undefined ? this.newSeat(claim, wall, permits) : this.seatWrite(wall, permits, claim.options.leaseMs);
    const moreWaiting = this.waiting.length > 1;
    const { queue, waiting } = admitted(obs.record, (id) => id !== this.role.identity && !skip.includes(id));
    const token = Math.max(obs.record.transitions, this.ctx.cache.tokenFloor(this.name)) + 1;
    const next: LeaseRecord = {
      ...this.withSeat(obs, seat, now),
      transitions: token,
      ...this.exclusiveToken(token, obs.record.exclusiveToken),
      queue: moreWaiting && queue.length < MAX_QUEUE ? [...queue, this.role.identity] : queue,
      waiting,
    };
    const sentAt = this.ctx.clock.now();
    const result = await this.call("take a permit", claim.options.leaseMs, "take", (signal) => this.ctx.store.update(next, { signal }));
    if (result.ok) return this.granted(claim, result.value, sentAt, wall);
    await this.failed(result, "take a permit", {
      seat,
      sentAt,
      grant: { claim, token: next.transitions, fencingToken: this.fencingToken(next), wall },
    });
  }

  private granted(claim: Claim, record: LeaseRecord, sentAt: number, wall: Date): void {
    this.ctx.cache.remember(record);
    const seat = record.seats?.find((s) => s.identity === this.role.identity);
    if (seat === undefined || seat.released === true) return this.kick();
    this.hold(claim, seat, record.transitions, this.fencingToken(record), wall, sentAt);
  }

  /**
   * A write of this daemon's seat whose outcome was unknown shows in the store: it landed. Its grant is made
   * (its claim was never told; one whose caller gave up is given back by the next pass), and the seat is as it wrote.
   */
  private settled(write: Unsettled, record: LeaseRecord): Step {
    this.unsettled = [];
    if (write.seat.released === true) {
      this.stopRenewing();
      this.seat = undefined;
      this.dropEnded(write.sentAt);
    } else if (write.grant !== undefined && write.grant.claim.state !== "held" && this.waiting.includes(write.grant.claim)) {
      this.hold(write.grant.claim, write.seat, write.grant.token, write.grant.fencingToken, write.grant.wall, write.sentAt);
    } else {
      this.wrote(write.seat, write.sentAt);
      // (Seed 1607: a give-back of one permit of two, its reply lost, left its ReleasePermit unanswered.)
      if (write.gaveBack === true) this.dropEnded(write.sentAt);
    }
    void record;
    return { do: "continue" };
  }

  /** `claim` holds a permit of `seat`, as written at `sentAt` with `token`. */
  private hold(claim: Claim, seat: LiveSeat, token: number, fencingToken: number, wall: Date, sentAt: number): void {
    this.wrote(seat, sentAt);
    // Holds whose permits this write handed on are given back by it.
    this.dropEnded(sentAt);
    const index = this.waiting.indexOf(claim);
    if (index >= 0) this.waiting.splice(index, 1);
    const hold: Hold = {
      claim,
      token,
      fencingToken,
      acquireTime: wall,
      leased: claim.options.mode === "lease",
      leaseMs: claim.options.leaseMs,
      sentAt,
      promisedUntil: 0,
      keepUntil: undefined,
      releases: [],
    };
    this.holds.set(hold.token, hold);
    if (claim.state === "ended") return this.kick(); // Its caller gave up meanwhile: the next pass gives it back.
    claim.hold(hold.token);
    this.ctx.observer.acquired?.(this.kind, undefined);
    const grant: Grant = {
      token: hold.token,
      fencingToken: hold.fencingToken,
      acquireTime: hold.acquireTime,
      leaseMs: hold.leaseMs,
      validForMs: this.validFor(hold),
    };
    claim.sink.granted(grant);
  }

  /** Forgets holds that ended and whose permits the seat no longer counts. */
  private dropEnded(now: number): void {
    for (const [token, hold] of this.holds) {
      if (counts(hold, now)) continue;
      this.holds.delete(token);
      this.settle(hold);
    }
  }

  /**
   * Gives back the permits of ended holds: a patch of the seat (its tombstone
   * when none is left), or, when local claims still wait behind other
   * daemons, a conditional write that also queues this daemon behind them.
   */
  private async giveBackStep(queueBehind: boolean): Promise<void> {
    const now = this.ctx.clock.now();
    const obs = this.ctx.cache.get(this.name)!;
    const seat = this.seat!;
    const live = this.liveHolds(now);
    const wall = this.ctx.clock.wallTime();
    const next: Seat =
      live === 0
        ? { identity: this.role.identity, acquisition: seat.written.acquisition, released: true }
        : this.seatWrite(wall, live * this.role.weight);
    const sentAt = this.ctx.clock.now();
    let result: CallResult<LeaseRecord>;
    if (queueBehind) {
      const { queue, waiting } = admitted(obs.record, (id) => id !== this.role.identity);
      const record: LeaseRecord = {
        ...this.withSeat(obs, next, now),
        queue: queue.length < MAX_QUEUE ? [...queue, this.role.identity] : queue,
        waiting,
      };
      result = await this.call("give a permit back", seat.timing.leaseMs, "keep", (signal) => this.ctx.store.update(record, { signal }));
    } else {
      result = await this.call("give a permit back", seat.timing.leaseMs, "keep", (signal) =>
        this.ctx.store.patchSeat(obs.record, this.role.identity, seat.written, next, { signal }),
      );
    }
    if (!result.ok) return this.failed(result, "give a permit back", { seat: next, sentAt, gaveBack: true });
    this.ctx.cache.remember(result.value);
    if (next.released === true) {
      this.stopRenewing();
      this.seat = undefined;
    } else {
      this.wrote(next, sentAt);
    }
    this.dropEnded(sentAt);
  }

  /** Renews the seat: for every session hold, and for the lease-held hold of `call`, with its new lease. */
  private async renewStep(call: RenewCall | undefined): Promise<void> {
    const seat = this.seat!;
    const obs = this.ctx.cache.get(this.name)!;
    const hold = call === undefined ? undefined : this.holds.get(call.token);
    const sentAt = this.ctx.clock.now();
    const next = this.seatWrite(this.ctx.clock.wallTime(), seat.written.permits ?? 1, call?.leaseMs ?? hold?.leaseMs);
    const deadline = call === undefined ? seat.sentAt + seat.timing.renewDeadlineMs - sentAt : seat.timing.renewDeadlineMs;
    const result = await this.ctx.calls.run(
      this.name,
      "renew the seat",
      deadline,
      (signal) => this.ctx.store.patchSeat(obs.record, this.role.identity, seat.written, next, { signal }),
      "keep",
    );
    if (result.ok) {
      this.ctx.cache.remember(result.value);
      if (this.seat !== seat) return;
      this.wrote(next, sentAt);
      this.unsettled = [];
      this.ctx.observer.renewed?.(this.kind, this.ctx.clock.now() - sentAt);
      if (call !== undefined && hold !== undefined) {
        this.renewCalls.splice(this.renewCalls.indexOf(call), 1);
        hold.leaseMs = call.leaseMs ?? hold.leaseMs;
        hold.sentAt = sentAt;
        call.resolve(this.validFor(hold));
      }
      for (const h of this.holds.values()) if (!h.leased && h.claim.state === "held") h.claim.sink.renewed(this.validFor(h));
      return;
    }
    // It may have landed; the store then shows the seat renewed (see `settled`).
    if (result.failure === "unanswered") this.unsettled.push({ seat: next, sentAt });
    if (call !== undefined) {
      const response = responseTo("holder-call", result.failure);
      if (response === "refresh") return void (await this.refresh());
      this.renewCalls.splice(this.renewCalls.indexOf(call), 1);
      return call.reject(fromStoreError(result.error, `renew ${this.name}`));
    }
    this.ctx.observer.renewFailed?.(this.kind, result.error.reason);
    if (responseTo("renew", result.failure) === "refresh" && (await this.refresh())) return;
    seat.renewDue = false;
    const delay = seat.retryMs;
    seat.retryMs = Math.min(seat.retryMs * 2, seat.timing.maxRetryMs);
    seat.renewTimer?.cancel();
    seat.renewTimer = this.ctx.clock.setTimer(delay, () => {
      seat.renewDue = true;
      this.kick();
    });
  }

  private async markWaitingStep(waiting: boolean): Promise<void> {
    const record = this.ctx.cache.get(this.name)!.record;
    const doing = waiting ? "join the wait queue" : "leave the wait queue";
    const result = await this.call(doing, record.leaseDurationSeconds * 1000, waiting ? "take" : "other", (signal) =>
      this.ctx.store.markWaiting(record, this.role.identity, waiting, { signal }),
    );
    if (result.ok) return this.ctx.cache.remember(result.value);
    if (waiting && isStoreError(result.error, "forbidden")) {
      // Semaphores have no fallback for a Role without `patch` (no older daemon waits on one).
      const error = new SyncError(
        "permission-denied",
        `join the wait queue of ${this.name}: the store refused the patch verb on Leases (${result.error.message}); grant it as deploy/role.yaml does`,
      );
      for (const claim of this.waiting.splice(0)) claim.fail(error);
      return;
    }
    await this.failed(result, doing);
  }

  private async leaveLineStep(): Promise<void> {
    const obs = this.ctx.cache.get(this.name)!;
    if (!obs.record.queue.includes(this.role.identity)) return this.markWaitingStep(false);
    const next: LeaseRecord = { ...obs.record, ...admitted(obs.record, (id) => id !== this.role.identity) };
    const result = await this.call("leave the wait queue", obs.record.leaseDurationSeconds * 1000, "other", (signal) =>
      this.ctx.store.update(next, { signal }),
    );
    if (result.ok) this.ctx.cache.remember(result.value);
    else await this.failed(result, "leave the wait queue");
  }

  private call<T>(doing: string, leaseMs: number, priority: "keep" | "take" | "other", call: (signal: AbortSignal) => Promise<T>) {
    return this.ctx.calls
      .run(this.name, doing, this.ctx.timing(leaseMs || FALLBACK_LEASE_MS).renewDeadlineMs, call, priority)
      .then((result) => {
        if (result.ok) {
          this.backoffMs = MIN_BACKOFF_MS;
          this.conflicts = 0;
        }
        return result;
      });
  }

  /** A failed write: a conflict reads the Lease again; a refusal fails the waiters; anything else backs off. */
  private async failed(result: CallResult<unknown> & { ok: false }, doing: string, unsettled?: Unsettled): Promise<void> {
    if (unsettled !== undefined && result.failure === "unanswered") {
      // It may have landed: a read tells (the seat shows as it wrote, see `settled`), or the watch does.
      this.unsettled.push(unsettled);
      await this.refresh();
    }
    const response = responseTo("write", result.failure);
    if (response === "conflict") {
      this.conflicts += 1;
      await this.refresh();
      return;
    }
    if (response === "fail-waiters") {
      const error = fromStoreError(result.error, doing);
      for (const claim of this.waiting.splice(0)) claim.fail(error);
    } else {
      const head = this.waiting[0];
      if (head?.options.noWait) {
        this.waiting.shift();
        head.fail(fromStoreError(result.error, doing));
      }
    }
    this.backOff();
  }

  private backOff(): void {
    this.backoffUntil = this.ctx.clock.now() + this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, MAX_BACKOFF_MS);
  }

  private async refresh(): Promise<boolean> {
    const seen = this.ctx.cache.get(this.name);
    const result = await this.ctx.calls.run(
      this.name,
      "read the semaphore",
      this.ctx.timing(seen === undefined ? FALLBACK_LEASE_MS : seen.record.leaseDurationSeconds * 1000).renewDeadlineMs,
      (signal) => this.ctx.store.get(this.name, { signal }),
      this.holds.size > 0 ? "keep" : "take",
    );
    if (!result.ok) {
      this.backOff();
      return false;
    }
    if (result.value === undefined) this.ctx.cache.forget(this.name, seen);
    else this.ctx.cache.remember(result.value);
    return true;
  }

  // ---- the seat ------------------------------------------------------------

  private newSeat(claim: Claim, wall: Date, permits: number): LiveSeat {
    return {
      identity: this.role.identity,
      acquisition: this.nextAcquisition(),
      durationSeconds: claim.options.leaseMs / 1000,
      renewMs: wall.getTime(),
      holder: [...claim.options.holder].slice(0, HOLDER_CHARS).join(""),
      riders: permits,
      acquireWallMs: wall.getTime(),
      permits,
    };
  }

  /**
   * The seat this daemon writes next: `permits` held, a renew stamp after the
   * last one, and a lease covering every promise made and `leaseMs` asked for.
   */
  private seatWrite(wall: Date, permits: number, leaseMs?: number): LiveSeat {
    const written = this.seat!.written;
    const now = this.ctx.clock.now();
    let longest = Math.max(leaseMs ?? 0, this.seat!.timing.leaseMs);
    let promised = Math.max(now, ...this.lingering);
    for (const hold of this.holds.values()) {
      if (hold.claim.state === "held" || hold.keepUntil !== undefined) {
        promised = Math.max(promised, hold.promisedUntil, hold.keepUntil ?? 0);
        if (hold.claim.state === "held") longest = Math.max(longest, hold.leaseMs);
      }
    }
    const durationMs = Math.max(longest, this.ctx.leaseCovering(promised - now));
    return {
      ...written,
      durationSeconds: durationMs / 1000,
      renewMs: Math.max(wall.getTime(), written.renewMs + 1),
      riders: permits,
      permits,
    };
  }

  /** `obs`'s record with this daemon's seat as `seat`, and without the seats and broken seats this daemon observed over. */
  private withSeat(obs: Observation, seat: Seat, now: number): LeaseRecord {
    const kept = (key: string) => (obs.seats.get(key)?.holdEnd ?? 0) > now;
    const seats = (obs.record.seats ?? []).filter((s) => s.identity !== this.role.identity && kept(s.identity));
    const broken = (obs.record.brokenSeats ?? []).filter(kept);
    const all = [...seats, seat].sort(bySeatIdentity);
    // What this write leaves, so that a seat removed by hand later shows as removed (LeaseFields.seated); and the seats
    // removed by hand before it that this daemon still counts, for as long as it counts them, so that a daemon that
    // first sees the Lease after this write counts them too (seed 12864). Removed by hand: named by the last daemon
    // write but gone. (A seat another daemon's write left out, having observed its end, is over: seed 174, where
    // carrying it held a read-write lock's writer off.) The time carried is what is left of this daemon's own count,
    // so a seat carried on from write to write is never counted past its first end.
    const seated: SeatId[] = all.map(({ identity, acquisition }) => ({ identity, acquisition }));
    const named = new Set((obs.record.seated ?? []).map(({ identity }) => identity));
    for (const [key, seen] of obs.seats) {
      if (seen.holdEnd <= now || !named.has(key) || broken.includes(key) || all.some((s) => s.identity === key)) continue;
      seated.push({ identity: key, acquisition: seen.seat?.acquisition ?? 0, forMs: Math.ceil(seen.holdEnd - now) });
    }
    return {
      ...obs.record,
      seats: all,
      brokenSeats: broken.length === 0 ? undefined : broken,
      seated,
    };
  }

  /** Records a successful write of this daemon's seat, sent at `sentAt`, and schedules its next renewal and its deadline. */
  private wrote(seat: LiveSeat, sentAt: number): void {
    const timing = this.ctx.timing(seat.durationSeconds * 1000);
    const state: SeatState = this.seat ?? {
      written: seat,
      sentAt,
      timing,
      renewDue: false,
      retryMs: MIN_BACKOFF_MS,
      renewTimer: undefined,
      deadlineTimer: undefined,
    };
    this.seat = state;
    this.unsettled = [];
    state.written = seat;
    state.sentAt = sentAt;
    state.timing = timing;
    state.renewDue = false;
    state.retryMs = Math.min(MIN_BACKOFF_MS, timing.maxRetryMs);
    state.renewTimer?.cancel();
    state.deadlineTimer?.cancel();
    // At shutdown nothing is renewed: holders were told they lost, and what they still hold runs out.
    if (this.closing) return;
    state.renewTimer = this.ctx.clock.setTimer(jittered(timing.renewIntervalMs, this.ctx.random), () => {
      state.renewDue = true;
      this.kick();
    });
    state.deadlineTimer = this.ctx.clock.setTimer(sentAt + timing.renewDeadlineMs - this.ctx.clock.now(), () => {
      if (this.seat !== state) return;
      // No renewal landed within the deadline: session holders must stop now, even while a call is in flight.
      for (const hold of this.holds.values()) {
        if (hold.leased || hold.claim.state !== "held") continue;
        hold.claim.end();
        this.ctx.observer.lost?.(this.kind, "renew-deadline-exceeded");
        hold.claim.sink.lost("renew-deadline-exceeded", `no renewal succeeded within the renew deadline of ${timing.renewDeadlineMs} ms`);
      }
      this.kick();
    });
  }

  private stopRenewing(): void {
    this.seat?.renewTimer?.cancel();
    this.seat?.deadlineTimer?.cancel();
  }

  /**
   * The exclusive token a grant of `token` writes, over `before`: a read-write
   * lock's writer records its own, a reader keeps the last; a semaphore has none.
   */
  private exclusiveToken(token: number, before: number | undefined): { exclusiveToken?: number } {
    if (this.role.kind !== "rwlock") return {};
    const exclusive = this.role.mode === "exclusive" ? token : before;
    return exclusive === undefined ? {} : { exclusiveToken: exclusive };
  }

  /**
   * The fencing token of a hold granted by the write of `record`: its token,
   * or for a reader the lock's latest exclusive one. The write was conditional
   * on the version it read, so no exclusive hold came between.
   */
  private fencingToken(record: LeaseFields): number {
    return this.role.mode === "shared" ? (record.exclusiveToken ?? 0) : record.transitions;
  }

  /** When a hold's promise ends: a session hold's with the seat's last write, a lease-held one's with its own. */
  private promiseEnd(hold: Hold): number {
    if (hold.leased) return hold.sentAt + this.ctx.timing(hold.leaseMs).renewDeadlineMs;
    const seat = this.seat;
    return seat === undefined ? 0 : seat.sentAt + seat.timing.renewDeadlineMs;
  }

  /** How long, from now, the holder may act; remembered as promised. */
  private validFor(hold: Hold): number {
    const until = this.promiseEnd(hold);
    hold.promisedUntil = Math.max(hold.promisedUntil, until);
    return Math.max(0, until - this.ctx.clock.now());
  }

  private notHeldError(token: number): SyncError {
    return new SyncError("not-held", `hold ${token} is not held by this daemon for ${this.name}`, "hold_id");
  }

  private noPermitError(): SyncError {
    const record = this.ctx.cache.get(this.name)?.record;
    return new SyncError(
      "wait-timeout",
      `no permit of ${this.name} is free${record?.permits === undefined ? "" : ` (${record.permits} permits)`}`,
    );
  }

  private mismatchError(record: LeaseRecord, asked: number): SyncError {
    const has = record.permits === undefined ? "has no valid permit count" : `has ${record.permits} permits`;
    return new SyncError("permits-mismatch", `permits: semaphore ${this.name} ${has}; this request asks for ${asked}`, "permits");
  }
}

/**
 * The operations on holds of seated contenders that semaphores and read-write
 * locks share: a session-held acquisition, a lease-held one with its renewals,
 * and release by hold id.
 */
export class SeatHolds {
  /** Where each session hold reports, so that a release by its hold id can end its stream. */
  private readonly sessions = new WeakMap<Claim, { released(): void }>();

  constructor(private readonly clock: Clock) {}

  /** Waits for a hold and keeps it, renewing, until `signal` aborts; with `waitTimeoutMs` (0: do not wait) the wait is bounded. */
  acquire(
    contender: SemaphoreContender,
    options: HoldOptions,
    waitTimeoutMs: number | undefined,
    sink: AcquireSink,
    signal: AbortSignal,
    timedOut: (waitMs: number) => SyncError,
  ): void {
    if (signal.aborted) return;
    const claim = addSessionClaim(
      contender,
      { holder: options.holder, leaseMs: options.leaseMs, permits: options.permits, persistent: false, value: "" },
      waitTimeoutMs,
      sink,
      signal,
      this.clock,
      timedOut,
    );
    this.sessions.set(claim, sink);
  }

  /** One attempt, no waiting; on success the hold lasts `leaseMs` unless renewed. `doing` names the call for a caller that gave up. */
  tryAcquire(
    contender: SemaphoreContender,
    options: HoldOptions,
    doing: string,
    signal?: AbortSignal,
  ): Promise<{ acquired: true; grant: Grant } | { acquired: false }> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(gaveUp(doing));
      const claim = new Claim(
        {
          holder: options.holder,
          leaseMs: options.leaseMs,
          permits: options.permits,
          mode: "lease",
          noWait: true,
          persistent: false,
          value: "",
        },
        {
          granted: (grant) => resolve({ acquired: true, grant }),
          renewed: () => {},
          lost: () => {},
          failed: (error) => (error.code === "wait-timeout" ? resolve({ acquired: false }) : reject(error)),
        },
      );
      signal?.addEventListener(
        "abort",
        () => {
          void contender.end(claim);
          reject(gaveUp(doing));
        },
        { once: true },
      );
      contender.add(claim);
    });
  }

  /** Renews the lease-held hold `token` of `contender`, the one of `leaseName` that has it. */
  renew(contender: SemaphoreContender | undefined, leaseName: string, token: number, leaseMs: number | undefined, signal?: AbortSignal) {
    return heldBy(contender, leaseName, token).renew(token, leaseMs, signal);
  }

  /** Gives a hold back by its id; a session hold's stream then ends without a loss. */
  async release(contender: SemaphoreContender | undefined, leaseName: string, token: number): Promise<void> {
    const holding = heldBy(contender, leaseName, token);
    const claim = holding.holdOf(token)!;
    await holding.release(token);
    this.sessions.get(claim)?.released();
  }
}

/** What a hold is asked with. */
export interface HoldOptions {
  readonly holder: string;
  readonly leaseMs: number;
  /** The N of the semaphore (a read-write lock's: RW_CAPACITY). */
  readonly permits: number;
}

function heldBy(contender: SemaphoreContender | undefined, leaseName: string, token: number): SemaphoreContender {
  if (contender?.holdOf(token) === undefined)
    throw new SyncError("not-held", `hold ${token} is not held by this daemon for ${leaseName}`, "hold_id");
  return contender;
}

/** Semaphore operations on top of the contenders: a session-held AcquirePermit, a lease-held TryAcquirePermit with RenewPermit and ReleasePermit, and reads. */
export class Semaphores {
  private readonly holds: SeatHolds;

  constructor(private readonly engine: SemaphoreEngine) {
    this.holds = new SeatHolds(engine.clock);
  }

  prefix(): string {
    return this.engine.prefix("semaphore");
  }

  /** Waits for a permit and holds it, renewing, until `signal` aborts; with `waitTimeoutMs` (0: do not wait) the wait is bounded. */
  acquire(request: PermitRequest & { readonly waitTimeoutMs: number | undefined }, sink: AcquireSink, signal: AbortSignal): void {
    if (signal.aborted) return;
    this.holds.acquire(
      this.engine.semaphoreContender(request.leaseName),
      request,
      request.waitTimeoutMs,
      sink,
      signal,
      (waitMs) => new SyncError("wait-timeout", `no permit of ${request.leaseName} within the wait timeout of ${waitMs / 1000} s`),
    );
  }

  /** One attempt, no waiting; on success the permit is held for `leaseMs` unless renewed. */
  tryAcquire(request: PermitRequest, signal?: AbortSignal): Promise<{ acquired: true; grant: Grant } | { acquired: false }> {
    if (signal?.aborted) return Promise.reject(gaveUp(`TryAcquirePermit ${request.leaseName}`));
    return this.holds.tryAcquire(
      this.engine.semaphoreContender(request.leaseName),
      request,
      `TryAcquirePermit ${request.leaseName}`,
      signal,
    );
  }

  renew(leaseName: string, token: number, leaseMs: number | undefined, signal?: AbortSignal): Promise<number> {
    return this.holds.renew(this.engine.existingSemaphore(leaseName), leaseName, token, leaseMs, signal);
  }

  /** Gives a permit back by its hold; a session hold's stream then ends without a loss. */
  release(leaseName: string, token: number): Promise<void> {
    return this.holds.release(this.engine.existingSemaphore(leaseName), leaseName, token);
  }

  async get(leaseName: string, fresh: boolean): Promise<SemaphoreState> {
    const obs = await this.engine.observe(leaseName, fresh, `read semaphore ${leaseName}`);
    if (obs === undefined) return { permits: 0, holders: [], token: 0, waitingDaemons: [] };
    const now = this.engine.clock.now();
    const holders: PermitHoldView[] = [];
    for (const [key, { seat, holdEnd }] of obs.seats) {
      if (now >= holdEnd) continue;
      if (seat?.identity === this.engine.identity) {
        holders.push(...(this.engine.existingSemaphore(leaseName)?.ownHolds(now) ?? []));
        continue;
      }
      const live = seat !== undefined && seat.released !== true ? seat : undefined;
      const count = live?.permits ?? 1;
      for (let i = 0; i < count; i++) {
        holders.push({
          holder: live?.holder ?? "",
          holderIdentity: seat?.identity ?? `(unreadable seat ${key})`,
          token: 0,
          acquireTime: live === undefined ? undefined : new Date(live.acquireWallMs),
          leaseMs: (live?.durationSeconds ?? 0) * 1000,
          remainingMs: holdEnd - now,
        });
      }
    }
    return { permits: obs.record.permits ?? 0, holders, token: obs.record.transitions, waitingDaemons: [...line(obs.record)] };
  }
}

/** What Semaphores needs of the engine. */
export interface SemaphoreEngine {
  readonly clock: Clock;
  readonly identity: string;
  prefix(kind: "semaphore"): string;
  semaphoreContender(leaseName: string): SemaphoreContender;
  existingSemaphore(leaseName: string): SemaphoreContender | undefined;
  observe(leaseName: string, fresh: boolean, doing: string): Promise<Observation | undefined>;
}

/** Whether a hold counts in its daemon's seat: held, or told it lost at shutdown and still able to act. */
function counts(hold: Hold, now: number): boolean {
  return hold.claim.state === "held" || (hold.keepUntil !== undefined && now < hold.keepUntil);
}
