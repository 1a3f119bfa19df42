// The contender's decision step, as a pure function: from what the contender
// holds and waits for, what this daemon has observed of the lease, and the
// local time, the one thing to do next. It makes no call and sets no timer;
// contender.ts performs what it returns. Tested as a table in
// test/unit/decide.test.ts, like client-go's leader election tests.
import { type Observation, expiresAt, mayTake } from "./lease-cache.js";
import type { LeaseRecord, StoreError } from "../store/lease-store.js";
import { MAX_QUEUE, line } from "./lease-records.js";

/**
 * Grants in a row to this daemon's claims (handed over locally, or released
 * and taken again) before it leaves the lease free for a while, so that a
 * daemon whose queue write keeps losing to those writes is served: its write
 * cannot land while this daemon writes back to back.
 */
export const MAX_GRANTS_IN_A_ROW = 16;

/** What the contender knows of itself when it decides. */
export interface ContenderView {
  /** Local monotonic time. */
  readonly now: number;
  /** This daemon process's identity, as written in holderIdentity. */
  readonly identity: string;
  /** Whether the lease cache has listed the leases at least once. */
  readonly synced: boolean;
  /** Why the last list failed, until one succeeds. */
  readonly syncError: StoreError | undefined;
  /** The lease as this daemon last observed it; undefined when it does not exist. */
  readonly observation: Observation | undefined;
  /**
   * When the lease does not exist: the local time until which its last holder
   * observed may act (it was deleted by hand), or 0 (see LeaseCache.holdEnd);
   * Infinity while the watch has not yet told of a deletion a call found
   * (LeaseCache.deletionUntold): the watch's news, not a timer, ends that wait.
   */
  readonly goneHoldEnd: number;
  /** The claim holding the lease through this daemon, if any. */
  readonly holding: HoldingView | undefined;
  /** The first waiting claim, if any; `nonFair`: it may be handed the lease ahead of other daemons (see giveBackOf). */
  readonly head: { readonly noWait: boolean; readonly nonFair?: boolean } | undefined;
  /** Whether any waiting claim does not wait (TryAcquire). */
  readonly anyNoWait: boolean;
  /** The daemon is shutting down. */
  readonly closing: boolean;
  /** Token of a lease-held lock kept at shutdown, left to run out. */
  readonly retainedToken: number | undefined;
  /** No store call before this time (after a failure). */
  readonly backoffUntil: number;
  /** This daemon's last write lost to another's (a conflict), and none has succeeded since. */
  readonly conflicted: boolean;
  /** This daemon leaves a free lease to others until this time (after yielding it)... */
  readonly yieldUntil: number;
  /** ...or until another daemon has taken it: a token above this one (the one it gave back). */
  readonly yieldToken: number;
  /** An acquiring write's outcome is unknown: the store may name this daemon holder. */
  readonly uncertain: boolean;
  /** How long the head of the wait queue has to take a free lease before others may (see timing.ts). */
  readonly turnGraceMs: (leaseMs: number) => number;
  /** Grants to this daemon's claims since another daemon last held the lease, or since the last yield. */
  readonly grantsInARow: number;
  /** After a release the contender stays until this time, though idle (so a yield is not forgotten). */
  readonly lingerUntil: number;
}

export interface HoldingView {
  readonly token: number;
  readonly mode: "session" | "lease";
  /** An election claim: it stays a candidate after losing. */
  readonly persistent: boolean;
  /** The caller went away (stream closed, cancelled while acquiring): give the lease back. */
  readonly ended: boolean;
  /** The oldest of the holder's calls waiting to be served (Resign is a release), if any. */
  readonly nextRequest: "renew" | "proclaim" | "release" | undefined;
  /** A renewal is due. */
  readonly renewDue: boolean;
  /** A session hold's renew deadline passed with no renewal (its timer fired): the holder may no longer act. */
  readonly pastRenewDeadline: boolean;
  /** The lease duration this daemon writes for the holding, in ms. */
  readonly leaseMs: number;
  /**
   * Told it lost at shutdown, a session holder that has not closed its stream
   * may act until then: its lease is kept, unrenewed, until this local time.
   */
  readonly keepUntil: number | undefined;
}

/** What becomes of a claim whose holding is over without a give-back. */
export type AfterLoss =
  /** An election candidate stays in: it waits to be elected again. */
  | "wait-again"
  /** The claim is over (or was already: its caller went away). */
  | "end";

/** How a holder that is done gives the lease back; one write each. */
export type GiveBack =
  /**
   * Write the next local claim in as holder: no other daemon waits, or the
   * claim is non-fair and this daemon has had fewer than MAX_GRANTS_IN_A_ROW.
   */
  | "hand-off"
  /** Release the lease and queue this daemon behind the daemons waiting, for its claims that wait. */
  | "release-and-queue"
  /** Release the lease: no claim waits here, or the daemon is shutting down. */
  | "release"
  /**
   * Release without queueing after MAX_GRANTS_IN_A_ROW, and leave the lease to
   * others for a while; a daemon whose claims still wait announces itself in
   * the same write, so whoever takes the lease meanwhile writes it into the
   * queue, and serves it next.
   */
  | "yield";

export type Decision =
  /**
   * The holding is over: no renewal succeeded within the renew deadline, the
   * lease was deleted, or someone else holds it now. `then`: what becomes of
   * its claim (see `afterLoss`).
   */
  | { readonly do: "lose"; readonly reason: "renew-deadline-exceeded" | "deleted" | "taken-over"; readonly then: AfterLoss }
  /** The holding's lease ran out unrenewed (a TryAcquire nobody renewed, or a give-back that kept failing): forget it. */
  | { readonly do: "drop" }
  /** The head claim does not wait and the lease is not free for it. */
  | { readonly do: "fail-head" }
  /** The first list failed: fail the claims that cannot wait for it (all, if waiting cannot fix it). */
  | { readonly do: "fail-unsynced"; readonly all: boolean }
  /** Create the lease for the head claim. */
  | { readonly do: "create" }
  /** Take the lease for the head claim, skipping queued daemons presumed gone. */
  | { readonly do: "acquire"; readonly skip: readonly string[] }
  /** Join the lease's wait queue: announce that this daemon waits (a patch that cannot conflict). */
  | { readonly do: "enqueue" }
  /** Leave the wait queue, or take back the announcement: nothing waits here any more. */
  | { readonly do: "dequeue" }
  /** Give back a lease the store says this daemon holds though no claim does. */
  | { readonly do: "release-stale" }
  /** Give back the lease of a caller that went away (at shutdown: once its holder can no longer act on it). */
  | { readonly do: "give-back"; readonly how: GiveBack }
  /** Serve the holder's oldest call, a Renew or a Proclaim. */
  | { readonly do: "serve-request" }
  /** Serve the holder's oldest call, a Release or Resign: give the lease back. */
  | { readonly do: "serve-release"; readonly how: GiveBack }
  /** Renew the lease. */
  | { readonly do: "renew" }
  /** Write back the lease duration someone else shortened (by hand), without renewing the holder's promise. */
  | { readonly do: "restore-duration" }
  /** Read the lease to learn whether an unanswered acquiring write took effect. */
  | { readonly do: "settle" }
  /** Nothing to do until `until` (or until something changes, when undefined). */
  | { readonly do: "wait"; readonly until?: number };

/** Decides the next step. Pure: the same view always gives the same decision. */
export function decide(view: ContenderView): Decision {
  const { now, observation: obs, holding, head } = view;
  const record = obs?.record;
  if (holding !== undefined) {
    // First: the holder was promised no more than the renew deadline, whatever the lease shows.
    if (holding.pastRenewDeadline) return { do: "lose", reason: "renew-deadline-exceeded", then: afterLoss(view, holding) };
    if (record === undefined || record.holderIdentity !== view.identity || record.transitions !== holding.token) {
      if (record === undefined && !view.synced) return { do: "wait" };
      return { do: "lose", reason: record === undefined ? "deleted" : "taken-over", then: afterLoss(view, holding) };
    }
    const expired = now >= expiresAt(obs!);
    if (holding.ended) {
      if (expired) return { do: "drop" };
      if (holding.keepUntil !== undefined && now < holding.keepUntil) return { do: "wait", until: holding.keepUntil };
      if (now < view.backoffUntil) return { do: "wait", until: view.backoffUntil };
      return { do: "give-back", how: giveBackOf(view, record) };
    }
    if (holding.mode === "lease" && expired) return { do: "drop" };
    // A daemon that first sees the lease now must not count a shorter one than the holder was promised.
    if (record.leaseDurationSeconds * 1000 < holding.leaseMs && now >= view.backoffUntil) return { do: "restore-duration" };
    if (holding.nextRequest === "release") return { do: "serve-release", how: giveBackOf(view, record) };
    if (holding.nextRequest !== undefined) return { do: "serve-request" };
    if (holding.renewDue) return { do: "renew" };
    if (holding.mode === "lease") return { do: "wait", until: expiresAt(obs!) };
    return { do: "wait" };
  }
  if (now < view.backoffUntil) return { do: "wait", until: view.backoffUntil };
  if (view.uncertain) return { do: "settle" };
  if (!view.synced) {
    const error = view.syncError;
    if (error === undefined) return { do: "wait" };
    if (error.reason === "forbidden" || error.reason === "foreign")
      return head === undefined ? { do: "wait" } : { do: "fail-unsynced", all: true };
    return view.anyNoWait ? { do: "fail-unsynced", all: false } : { do: "wait" };
  }
  const mine = record?.holderIdentity === view.identity;
  if (head === undefined) return { do: leftover(view) ?? "wait" };
  if (obs === undefined) {
    if (now >= view.goneHoldEnd) return { do: "create" };
    return head.noWait ? { do: "fail-head" } : { do: "wait", until: Number.isFinite(view.goneHoldEnd) ? view.goneHoldEnd : undefined };
  }
  const queued = line(obs.record).includes(view.identity) || obs.record.queue.length >= MAX_QUEUE;
  if (mine || mayTake(obs, now)) {
    const turn = turnOf(view, obs);
    // A yield is over once another daemon has had its turn, or has written this daemon into the queue (it announced
    // itself as it yielded): waiting on would only starve this daemon's own claims.
    const yielding = now < view.yieldUntil && obs.record.transitions <= view.yieldToken && !obs.record.queue.includes(view.identity);
    if (turn.mine && !mine && yielding && !head.noWait) return { do: "wait", until: view.yieldUntil };
    // A waiter whose write lost a race announces itself before it tries again: however often it loses to the others'
    // writes, the next of them writes it into the queue, and then its turn comes.
    if (turn.mine && !mine && !queued && view.conflicted && !head.noWait) return { do: "enqueue" };
    if (turn.mine) return { do: "acquire", skip: turn.skip };
    if (head.noWait) return { do: "fail-head" };
    if (!queued) return { do: "enqueue" };
    return { do: "wait", until: turn.until };
  }
  if (head.noWait) return { do: "fail-head" };
  if (!queued) return { do: "enqueue" };
  return { do: "wait", until: expiresAt(obs) };
}

/**
 * What becomes of the claim of `holding` when it loses the lease, whatever
 * the reason (also at its renew deadline): an election candidate that still
 * held stays in the queue to be elected again, unless the daemon is shutting
 * down; any other claim is over.
 */
export function afterLoss(view: ContenderView, holding: HoldingView): AfterLoss {
  return holding.persistent && !holding.ended && !view.closing ? "wait-again" : "end";
}

/**
 * Whether a contender with this view has nothing left to do, so that it can
 * be dropped (once its loop has stopped): no claim, nothing to settle or undo
 * in the store, and no linger after a release.
 */
export function isIdle(view: ContenderView): boolean {
  if (view.holding !== undefined || view.head !== undefined || view.uncertain) return false;
  if (!view.closing && view.now < view.lingerUntil) return false;
  return leftover(view) === undefined;
}

/**
 * What is left to undo in the store when no claim holds or waits here: a
 * lease this daemon holds for nobody (not a lease-held lock kept at
 * shutdown, which runs out on its own), or its place in the wait queue.
 */
function leftover(view: ContenderView): "release-stale" | "dequeue" | undefined {
  const record = view.observation?.record;
  if (record === undefined) return undefined;
  if (record.holderIdentity === view.identity)
    return view.closing && record.transitions === view.retainedToken ? undefined : "release-stale";
  return line(record).includes(view.identity) ? "dequeue" : undefined;
}

/**
 * How a holder gives the lease back: straight to the next local claim when no
 * other daemon waits, or else released so that the daemon at the head of the
 * wait queue takes it, this daemon queueing behind the others if its claims
 * still wait. After its budget of grants in a row, when no other daemon is
 * queued, it lets the lease go free without queueing and leaves it to others
 * for a while: time for a daemon that could not get into the queue. A
 * non-fair claim next in line here is handed the lease even while other
 * daemons wait, up to the same budget: so a daemon waiting behind a non-fair
 * one is served after at most MAX_GRANTS_IN_A_ROW grants in a row.
 */
function giveBackOf(view: ContenderView, record: LeaseRecord): GiveBack {
  const othersWaiting = line(record).some((id) => id !== view.identity);
  if (view.grantsInARow >= MAX_GRANTS_IN_A_ROW && !othersWaiting) return "yield";
  if (view.closing || view.head === undefined) return "release";
  if (!othersWaiting) return "hand-off";
  return view.head.nonFair === true && view.grantsInARow < MAX_GRANTS_IN_A_ROW ? "hand-off" : "release-and-queue";
}

/**
 * Whether this daemon may take a free lease now. Daemons queued ahead of it
 * go first; once the lease has been free for the turn grace without them
 * taking it, they are presumed gone and skipped. A daemon that only announced
 * itself has no turn yet: the next write of any daemon (taking the lease
 * among them) queues it, and until then it is as far back as one not waiting.
 * So a daemon yielding the lease can announce itself without holding the
 * others off.
 */
function turnOf(view: ContenderView, obs: Observation): { mine: true; skip: readonly string[] } | { mine: false; until: number } {
  const record = obs.record;
  if (record.holderIdentity === view.identity) return { mine: true, skip: [] };
  const position = record.queue.indexOf(view.identity);
  const ahead = position === -1 ? [...record.queue] : record.queue.slice(0, position);
  if (ahead.length === 0) return { mine: true, skip: [] };
  const freeAt = obs.holdEnd;
  const until = freeAt + view.turnGraceMs(record.leaseDurationSeconds * 1000);
  return view.now >= until ? { mine: true, skip: ahead } : { mine: false, until };
}
