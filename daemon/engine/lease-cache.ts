// What this daemon has observed of the managed leases its clients use, fed by
// the store's one watch and by the replies to this daemon's own calls. The
// watch covers only the names somebody here subscribed to (a contender, a
// leader tracker): a daemon hears nothing of other leases. Besides the record it
// keeps WHEN the holder's renewal stamp was last seen to change, on the local
// monotonic clock: expiry of another holder's lease is measured from that
// moment, never from the renewTime written in the lease. A semaphore's or
// read-write lock's seats are timed the same way, each on its own.
import {
  type LeaseRecord,
  type LeaseStore,
  type Seat,
  type StoreError,
  type WatchEvent,
  type WatchHandle,
  type WatchScope,
  inScope,
  isSeated,
} from "../store/lease-store.js";
import type { Clock } from "./clock.js";

export interface Observation {
  readonly record: LeaseRecord;
  /** Local time at which the holder's renewal stamp last changed. */
  readonly changedAt: number;
  /**
   * Local time until which the last holder this daemon observed may act, and
   * before which nobody may take the lease. A renewal moves it on; only a
   * release its holder's daemon wrote brings it forward: an edit by someone
   * else (a Lease deleted by hand, its holder cleared, its lease shortened)
   * leaves it where it was, so it never shortens what was promised. For a
   * lease free since this daemon first saw it, the local time it saw so.
   */
  readonly holdEnd: number;
  /**
   * The seats of a semaphore or read-write lock, by identity (a broken seat by
   * its annotation key), each timed like the holder above (`seatObservation`).
   * A seat removed by someone who is not a daemon stays here until its end.
   * Empty for locks and elections. No claim uses them yet
   * (docs/proposals/22-semaphores-rwlocks.md 3.2).
   */
  readonly seats: ReadonlyMap<string, SeatObservation>;
}

/** What this daemon observed of one seat of a semaphore or read-write lock. */
export interface SeatObservation {
  /**
   * seat is the seat as last observed: held, or given back (a tombstone). For
   * a seat kept past its removal by hand, the last one seen. Undefined for a
   * broken seat (`LeaseFields.brokenSeats`): its holder and lease are unknown.
   */
  readonly seat: Seat | undefined;
  /** changedAt is the local time at which the seat's stamp (`seatStamp`) last changed. */
  readonly changedAt: number;
  /**
   * holdEnd is the local time until which the seat's holders may act, and
   * before which no exclusive holder may take the lease: `Observation.holdEnd`
   * for one seat. A renewal moves it on, and only the seat's own daemon (its
   * tombstone) or an exclusive acquisition that removed the seat (a new token)
   * brings it forward.
   */
  readonly holdEnd: number;
}

/** A lock's or election's seats: none. Shared, so that a lock's observation allocates nothing for them. */
const NO_SEATS: ReadonlyMap<string, SeatObservation> = new Map();

/**
 * The parts of a record that change when a holder acquires or renews, and
 * only then. The duration counted is the longer of the one written and the one
 * a daemon last wrote: shortening it by hand is no renewal.
 */
function renewalStamp(r: LeaseRecord): string {
  const seconds = Math.max(r.leaseDurationSeconds, r.writtenDuration ?? 0);
  // A semaphore's token counts its grants, which are its seats' business: no hold of the Lease as a whole is renewed
  // by one (a restored semaphore held off as a whole would be held off again at every grant).
  const token = isSeated(r.kind) ? "" : r.transitions;
  return [r.holderIdentity, token, seconds, r.renewTime?.getTime() ?? "", r.acquireTime?.getTime() ?? ""].join("|");
}

/**
 * The parts of a seat that change when its daemon takes or renews it, and only
 * then: `renewalStamp` for one seat. A tombstone's is its own.
 */
function seatStamp(seat: Seat): string {
  if (seat.released === true) return [seat.identity, seat.acquisition, "released"].join("|");
  return [seat.identity, seat.acquisition, seat.durationSeconds, seat.renewMs].join("|");
}

/**
 * `seat` as observed at local time `now`, `seen` being what was observed of
 * that identity's seat before (undefined: first sight).
 */
function seatObservation(seat: Seat, seen: SeatObservation | undefined, now: number): SeatObservation {
  // Riders, the holder's name or the count changed, no renewal: the hold stands as it was. The seat's daemon moves the
  // renew stamp in every write of its seat, so a count lowered without it was lowered by someone else (by hand): it
  // frees no permit before the seat's observed end, and the higher count stands (proposal 22, 1B).
  if (seen?.seat !== undefined && seatStamp(seen.seat) === seatStamp(seat)) {
    const before = seen.seat.released === true ? undefined : seen.seat.permits;
    const lowered = seat.released !== true && before !== undefined && (seat.permits === undefined || seat.permits < before);
    return { ...seen, seat: lowered ? { ...seat, permits: before } : seat };
  }
  if (seat.released === true) {
    // Given back by the seat's own daemon, which does so only once no rider of it can act: over at once, also when
    // versions were missed since the seat observed (its acquisition, or a later one of that daemon's taken and given
    // back unseen). A tombstone of an earlier acquisition than the seat observed gives nothing back.
    if (seen?.seat !== undefined && seat.acquisition < seen.seat.acquisition) return seen;
    return { seat, changedAt: now, holdEnd: now };
  }
  // Taken or renewed. A new acquisition does not start the seat afresh (unlike a lock's new token): the daemon takes a
  // seat again only after its tombstone, which an observer that saw it has acted on already; one that missed it
  // keeps the later end, which costs time, never safety. Nor does a shorter lease, whoever wrote it.
  return { seat, changedAt: now, holdEnd: Math.max(seen?.holdEnd ?? 0, now + seat.durationSeconds * 1000) };
}

/** True when the lease names no holder whose lease is still running, as of local time `now`: what GetLock and GetLeader report. */
export function isFree(obs: Observation | undefined, now: number): boolean {
  return obs === undefined || obs.record.holderIdentity === "" || now >= expiresAt(obs);
}

/** True when this daemon may take the lease at local time `now`: no holder it observed may still act. */
export function mayTake(obs: Observation, now: number): boolean {
  return now >= obs.holdEnd;
}

/**
 * True when a reader (a shared hold) may take a seat at local time `now`: no
 * exclusive holder it observed may still act. Seats do not matter: they share.
 */
export function mayTakeShared(obs: Observation, now: number): boolean {
  return mayTake(obs, now);
}

/**
 * True when the daemon `self` may take the exclusive hold of a read-write
 * lock at local time `now`: no exclusive holder, and no seat of another
 * daemon, it observed may still act. Its own seat is its own business (no
 * upgrade while it holds one is the decision table's rule); a broken seat is
 * nobody's, so it counts.
 */
export function mayTakeExclusive(obs: Observation, now: number, self: string): boolean {
  if (!mayTake(obs, now)) return false;
  for (const { seat, holdEnd } of obs.seats.values()) if (now < holdEnd && seat?.identity !== self) return false;
  return true;
}

/**
 * How many of a semaphore's N permits (`LeaseFields.permits`) are held at
 * local time `now` as this daemon observes: the sum of the `permits` of every
 * seat whose hold has not ended, `self`'s own seat left out when given. A seat
 * whose count is unknown (broken, or held without `permits`) holds all N, and
 * so does the Lease while held off as a whole (restored after a deletion, a
 * holder named by hand: `mayTake` false): nothing counts as free before the
 * hold observed ends. All N is Infinity when the Lease names no N. May exceed
 * N (seats edited by hand).
 */
export function permitsInUse(obs: Observation, now: number, self?: string): number {
  const all = obs.record.permits ?? Infinity;
  let inUse = mayTake(obs, now) ? 0 : all;
  for (const { seat, holdEnd } of obs.seats.values()) {
    if (now >= holdEnd || (self !== undefined && seat?.identity === self)) continue;
    // A semaphore seat's daemon writes its riders equal to its permits: one lowered without the other was lowered by
    // hand, and the higher counts (seed 1486: lowered before this daemon first saw it).
    inUse += seat === undefined || seat.released === true || seat.permits === undefined ? all : Math.max(seat.permits, seat.riders);
  }
  return inUse;
}

/** How many of a semaphore's N permits are free at local time `now` as this daemon observes (`permitsInUse`); none when the Lease names no N. */
export function freePermits(obs: Observation, now: number): number {
  const permits = obs.record.permits;
  return permits === undefined ? 0 : Math.max(0, permits - permitsInUse(obs, now));
}

/** Local time at which the current holder's lease runs out unless renewed. */
export function expiresAt(obs: Observation): number {
  return obs.holdEnd;
}

/** Most of this daemon's own writes of one name kept while waiting for the watch to tell of them (see `watchLagMs`). */
const MAX_UNHEARD = 64;

export class LeaseCache {
  private readonly entries = new Map<string, Observation>();
  private readonly listeners = new Map<string, Set<() => void>>();
  /** Names with at least one listener: what the watch is asked to cover. */
  private readonly wanted = new Set<string>();
  /** What the watch's last list covered. */
  private scope: WatchScope = new Set();
  /**
   * The highest transition count this daemon has seen for each lease, kept
   * for the life of the process: it outlives a deleted Lease, so a re-created
   * one never makes this daemon issue a token it has issued or seen before.
   */
  private readonly highWater = new Map<string, number>();
  /**
   * Each name's last `Observation.holdEnd`, or the latest of it and its seats'
   * ends, with the token of the record it was seen on. It outlives the entry:
   * a deletion by hand does not end a hold, nor a seat.
   */
  private readonly holdEnds = new Map<string, { readonly end: number; readonly token: number }>();
  /**
   * Leases a call of this daemon found gone before its watch told of the deletion, with what was last observed of
   * them. The watch tells every version before the deletion first, and only then is the highest token known: a
   * restore (or a create) waits for it (docs/design.md 3.2).
   */
  private readonly untoldDeletions = new Map<string, Observation>();
  /** The longest lease this daemon has seen written for each name (ms), a seat's included, kept like `highWater`. */
  private readonly longestLease = new Map<string, number>();
  /** Names whose deletion, learned other than from the watch, holds them off already (until the Lease is seen again). */
  private readonly heldOffForDeletion = new Set<string>();
  /** Versions this daemon wrote (or read) before its watch told of them, oldest first, with when each reply came. */
  private readonly unheard = new Map<string, Array<{ readonly version: string; readonly at: number }>>();
  /**
   * How far behind the store the watch runs, measured from this daemon's own
   * writes: from a write's reply to its event. It rises at once with a longer
   * delay and falls slowly, so it stays near the longest recent one.
   */
  private heardLagMs: number | undefined;
  private watchHandle: WatchHandle | undefined;
  private syncedOnce = false;
  private readonly syncWaiters: Array<() => void> = [];
  /** Counts relists after the first, for metrics and tests. */
  resyncs = 0;
  /** Why the last list failed, until a list succeeds: what callers hear while the cache cannot sync. */
  syncError: StoreError | undefined;

  /**
   * Told when the watch shows that a Lease it covers was deleted (never by a
   * daemon: by hand), with what was last observed of it, and how: from the
   * watch's event, which comes after every version before the deletion, or
   * from a list, which knows only what this daemon had heard before it.
   */
  onDeleted: (name: string, last: Observation, toldBy: "event" | "list") => void = () => {};

  /** Told when a deletion learned other than from the watch holds `name` off until `end` (see `forget`); for tests. */
  onUnseenRenewals: (name: string, end: number) => void = () => {};

  constructor(
    private readonly store: LeaseStore,
    private readonly clock: Clock,
    /**
     * The shortest hold after a deletion learned other than from the watch: the
     * daemon's default lease. A renewal this daemon never saw may have asked for
     * a longer lease than any it has seen.
     */
    private readonly defaultLeaseMs = 0,
    /** See WatchOptions.checkUnlabelled: whether a name not listed may be an older daemon's Lease without the name label. */
    private readonly checkUnlabelled?: (name: string) => boolean,
  ) {}

  /** Starts the watch. `ready()` resolves once the first full list arrived. */
  start(): void {
    this.watchHandle ??= this.store.watch((event) => this.apply(event), this.wanted, { checkUnlabelled: this.checkUnlabelled });
  }

  async stop(): Promise<void> {
    await this.watchHandle?.stop();
    this.watchHandle = undefined;
  }

  get synced(): boolean {
    return this.syncedOnce;
  }

  ready(): Promise<void> {
    if (this.syncedOnce) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  /**
   * True once the watch covers `name`: its entry (or its absence) is then
   * kept up to date. Until then `get(name)` may be missing or stale.
   */
  covers(name: string): boolean {
    return this.syncedOnce && inScope(this.scope, name);
  }

  get(name: string): Observation | undefined {
    return this.entries.get(name);
  }

  /**
   * Calls `listener` after every change to `name`, and once the watch covers
   * it. The first subscriber of a name adds it to the watch's scope. Returns
   * the unsubscribe function.
   */
  subscribe(name: string, listener: () => void): () => void {
    let set = this.listeners.get(name);
    if (set === undefined) {
      this.listeners.set(name, (set = new Set()));
      this.wanted.add(name);
      this.watchHandle?.rescope();
    }
    set.add(listener);
    return () => {
      set.delete(listener);
      // Only the set this subscription belongs to: a stale unsubscribe (a
      // dropped contender going idle again) must not take a newer one's.
      if (set.size === 0 && this.listeners.get(name) === set) {
        this.listeners.delete(name);
        this.wanted.delete(name);
        this.watchHandle?.rescope();
      }
    };
  }

  /** Records a lease this daemon just read or wrote; it is at least as new as anything watched. */
  remember(record: LeaseRecord): void {
    if (!this.put(record)) return;
    this.notify(record.name);
    // Only what the watch covers will be told.
    if (!inScope(this.scope, record.name)) return;
    const versions = this.unheard.get(record.name) ?? [];
    versions.push({ version: record.version, at: this.clock.now() });
    if (versions.length > MAX_UNHEARD) versions.shift();
    this.unheard.set(record.name, versions);
  }

  /**
   * Records that a lease this daemon just looked up does not exist. One it
   * had observed was deleted (daemons never delete): `onDeleted` waits for the
   * watch (or a list) to tell of it, which may come only later, after the
   * entry is gone (`deletionUntold`). The watch may not have told of the
   * writes before the deletion either: a renewal, perhaps with a longer lease,
   * that this daemon never saw. So the hold observed lasts at least the
   * longest lease seen for the name, from now.
   */
  forget(name: string, seen: Observation | undefined): void {
    const last = this.entries.get(name);
    // `seen`: what this daemon held when its call began, undefined for nothing (no default: a default parameter would
    // turn that undefined into the entry held now, seed 377848). A newer record since (a Lease restored, or created
    // by this daemon's own call whose reply hangs, which the watch told while the call waited) outdates the answer.
    if (last !== seen) return;
    // A Lease this daemon saw once (a token) and that is gone now, also one whose entry it had dropped since (a
    // name it read once, not watched): the first call to find it gone holds it off.
    if (this.tokenFloor(name) > 0 && !this.heldOffForDeletion.has(name)) this.unseenRenewals(name);
    if (!this.drop(name)) return;
    // Its watch may not have told yet of tokens written between what it last heard and the deletion (seed 180).
    if (last !== undefined && inScope(this.scope, name)) this.untoldDeletions.set(name, last);
    this.notify(name);
  }

  /**
   * True while a deletion this daemon learned of from its own call is not yet
   * told by its watch: until then nobody here creates the Lease again, since
   * tokens issued before the deletion may still be on their way.
   */
  deletionUntold(name: string): boolean {
    return this.untoldDeletions.has(name);
  }

  /**
   * The highest transition count this daemon has seen for `name`, whatever
   * happened to the Lease since (deleted, re-created by a daemon that never
   * saw it). An acquisition writes more than this, so tokens never go back.
   */
  tokenFloor(name: string): number {
    return this.highWater.get(name) ?? 0;
  }

  /**
   * When `name` has no lease: the local time until which its last holder this
   * daemon observed, or any of its seats, may act (it was deleted by hand
   * while held), or 0.
   */
  holdEnd(name: string): number {
    const held = this.holdEnds.get(name);
    if (held === undefined || held.end > this.clock.now()) return held?.end ?? 0;
    this.holdEnds.delete(name);
    return 0;
  }

  private drop(name: string): boolean {
    // Nothing more is told of it (deleted, or no longer watched).
    this.unheard.delete(name);
    this.untoldDeletions.delete(name);
    return this.entries.delete(name);
  }

  private apply(event: WatchEvent): void {
    switch (event.type) {
      case "upsert":
        this.heardBack(event.lease);
        if (!inScope(this.scope, event.lease.name)) return;
        if (this.put(event.lease)) this.notify(event.lease.name);
        return;
      case "delete": {
        // A deletion older than the record held (this daemon created the lease again, and heard of that first) is past.
        if (this.heldNewerThan(event.name, event.version)) return;
        this.deleted(event.name);
        return;
      }
      case "error":
        this.syncError = event.error;
        for (const name of this.listeners.keys()) this.notify(name);
        return;
      case "synced": {
        // What the list covers is told: writes before it are never told one by one.
        for (const [name, versions] of [...this.unheard]) {
          const untold = versions.filter((v) => event.version !== "" && this.store.isNewer(v.version, event.version));
          if (untold.length === 0) this.unheard.delete(name);
          else this.unheard.set(name, untold);
        }
        const changed = new Set<string>();
        // Names the watch covers from now on are news to their listeners even when nothing is listed for them.
        for (const name of this.wanted) if (!this.covers(name) && inScope(event.scope, name)) changed.add(name);
        const previousScope = this.syncedOnce ? this.scope : new Set<string>();
        this.scope = event.scope;
        const seen = new Set<string>();
        for (const lease of event.leases) {
          seen.add(lease.name);
          if (this.put(lease)) changed.add(lease.name);
        }
        // What is not listed is gone, or no longer watched (an entry nobody keeps up to date is dropped);
        // but a record newer than the list (this daemon's own write, answered before the list arrived) stays,
        // also when the list does not cover its name (a late one), while the name is wanted: a later list taken
        // before that write must not bring back an older record.
        const deleted: Array<[string, Observation]> = [];
        for (const [name, last] of [...this.entries]) {
          const newer = this.heldNewerThan(name, event.version);
          if (seen.has(name) || (newer && (inScope(event.scope, name) || this.wanted.has(name)))) continue;
          if (inScope(event.scope, name) && inScope(previousScope, name)) deleted.push([name, last]);
          if (this.drop(name)) changed.add(name);
        }
        // A deletion a call found and the watch did not tell: the list settles it (gone still, or created again), though
        // the tokens written between what the watch told and the deletion stay unknown here (docs/design.md 3.2).
        for (const [name, last] of [...this.untoldDeletions]) {
          this.untoldDeletions.delete(name);
          if (!this.entries.has(name) && inScope(event.scope, name)) deleted.push([name, last]);
          changed.add(name);
        }
        if (this.syncedOnce) this.resyncs += 1;
        this.syncedOnce = true;
        this.syncError = undefined;
        for (const resolve of this.syncWaiters.splice(0)) resolve();
        // A name this daemon saw (a deletion the relist shows, or a token it read once), covered now and not listed,
        // was deleted, perhaps after renewals it never saw: a relist follows a watch that broke or fell behind (seed
        // 241236: a one-off read of a 5 s lease, renewed to 15 s unseen, then deleted). Held off as after any deletion
        // learned other than from the watch (see `forget`), before anyone hears of the change.
        const gone = new Set([...deleted.map(([name]) => name), ...this.highWater.keys()]);
        for (const name of gone)
          if (inScope(event.scope, name) && !seen.has(name) && !this.heldOffForDeletion.has(name)) this.unseenRenewals(name);
        for (const name of changed) this.notify(name);
        for (const [name, last] of deleted) this.onDeleted(name, last, "list");
        return;
      }
    }
  }

  /**
   * How far behind the store the watch runs: the lag measured, or longer while
   * a version this daemon has had for that long is still untold. Unknown
   * (Infinity) until the watch has told of one of them.
   */
  get watchLagMs(): number {
    if (this.heardLagMs === undefined) return Infinity;
    const now = this.clock.now();
    let lag = this.heardLagMs;
    for (const versions of this.unheard.values()) lag = Math.max(lag, now - versions[0]!.at);
    return lag;
  }

  /** Measures the watch's lag when it tells of a version this daemon already had; the versions before it are told no more. */
  private heardBack(lease: LeaseRecord): void {
    const versions = this.unheard.get(lease.name);
    if (versions === undefined) return;
    const told = versions.findIndex((v) => !this.store.isNewer(lease.version, v.version));
    const last = told === -1 ? versions.length - 1 : versions[told]!.version === lease.version ? told : told - 1;
    if (last >= 0 && versions[last]!.version === lease.version) {
      const lag = this.clock.now() - versions[last]!.at;
      const heard = this.heardLagMs ?? 0;
      this.heardLagMs = lag > heard ? lag : heard + (lag - heard) / 8;
    }
    versions.splice(0, last + 1);
    if (versions.length === 0) this.unheard.delete(lease.name);
  }

  /** A Lease the watch covers is gone: its listeners hear it, then `onDeleted`. */
  private deleted(name: string): void {
    // Also when a call of this daemon found it gone first: the watch has now told every token before the deletion.
    const last = this.entries.get(name) ?? this.untoldDeletions.get(name);
    this.drop(name);
    if (last === undefined) return;
    this.notify(name);
    this.onDeleted(name, last, "event");
  }

  /** See `forget`: a deletion learned other than from the watch's event may hide renewals made before it. */
  private unseenRenewals(name: string): void {
    this.heldOffForDeletion.add(name);
    const held = this.holdEnds.get(name);
    const end = this.clock.now() + Math.max(this.longestLease.get(name) ?? 0, this.defaultLeaseMs);
    if (held === undefined || held.end < end) this.holdEnds.set(name, { end, token: held?.token ?? this.tokenFloor(name) });
    this.onUnseenRenewals(name, Math.max(end, held?.end ?? 0));
  }

  /** True when the record held for `name` is newer than the store's `version` (of a list or a deletion). */
  private heldNewerThan(name: string, version: string): boolean {
    const held = this.entries.get(name);
    return held !== undefined && version !== "" && this.store.isNewer(held.record.version, version);
  }

  /** Stores `record` unless an equal or newer version is known. Returns whether it changed. */
  private put(record: LeaseRecord): boolean {
    const previous = this.entries.get(record.name);
    if (record.transitions > this.tokenFloor(record.name)) this.highWater.set(record.name, record.transitions);
    let leaseMs = Math.max(record.leaseDurationSeconds, record.writtenDuration ?? 0) * 1000;
    for (const seat of record.seats ?? []) if (seat.released !== true) leaseMs = Math.max(leaseMs, seat.durationSeconds * 1000);
    if (leaseMs > (this.longestLease.get(record.name) ?? 0)) this.longestLease.set(record.name, leaseMs);
    this.heldOffForDeletion.delete(record.name);
    if (previous !== undefined && !this.store.isNewer(record.version, previous.record.version)) return false;
    const renewed = previous === undefined || renewalStamp(previous.record) !== renewalStamp(record);
    const changedAt = renewed ? this.clock.now() : previous.changedAt;
    const holdEnd = this.holdEndOf(record, previous, changedAt, renewed);
    const seats = this.seatsOf(record, previous);
    this.entries.set(record.name, { record, changedAt, holdEnd, seats });
    // A deletion by hand ends no hold, neither the writer's nor any seat's.
    let end = holdEnd;
    for (const seat of seats.values()) end = Math.max(end, seat.holdEnd);
    this.holdEnds.set(record.name, { end, token: record.transitions });
    return true;
  }

  /** See `Observation.seats`: `seatObservation` per seat in the record, and what becomes of the seats gone from it. */
  private seatsOf(record: LeaseRecord, previous: Observation | undefined): ReadonlyMap<string, SeatObservation> {
    const before = previous?.seats ?? NO_SEATS;
    if (record.seats === undefined && record.brokenSeats === undefined && record.seated === undefined && before.size === 0) return NO_SEATS;
    const now = this.clock.now();
    const seats = new Map<string, SeatObservation>();
    for (const seat of record.seats ?? []) seats.set(seat.identity, seatObservation(seat, before.get(seat.identity), now));
    // A broken seat counts as one renewed when first seen, by a holder unknown with the longest lease seen for the
    // name (at least the daemon's default: its holder may have asked for more), and never renewed after: held off
    // for that long, never freed early, since no tombstone can name it.
    const unknownLeaseMs = Math.max(this.longestLease.get(record.name) ?? 0, this.defaultLeaseMs);
    for (const key of record.brokenSeats ?? []) {
      const seen = before.get(key);
      seats.set(
        key,
        seen !== undefined && seen.seat === undefined ? seen : { seat: undefined, changedAt: now, holdEnd: now + unknownLeaseMs },
      );
    }
    // Named by the last daemon write but gone, never observed here: removed by hand before this daemon first saw the
    // Lease. What it held is unknown: all N, for the longest lease seen, as a broken seat (seed 1599: a lease-held
    // permit's seat removed, a daemon that saw the Lease afresh took that permit while its holder still acted). A seat
    // that the write carried, removed before it, counts as long as its writer still counted it from then (seed
    // 12864: a grant written after a seat's removal, a daemon that first saw the Lease after that grant).
    for (const { identity, forMs } of record.seated ?? []) {
      if (seats.has(identity) || before.has(identity)) continue;
      seats.set(identity, { seat: undefined, changedAt: now, holdEnd: now + (forMs ?? unknownLeaseMs) });
    }
    // Gone from the record. An exclusive acquisition (a new token) removes the seats its daemon observed over, so a seat
    // the record before it had is over. Otherwise someone who is not a daemon removed it (a hand edit), which ends
    // nothing: it is kept until its end, also through a later acquisition, which did not remove it.
    const removed =
      previous !== undefined && record.transitions > previous.record.transitions
        ? new Set([...(previous.record.seats ?? []).map((seat) => seat.identity), ...(previous.record.brokenSeats ?? [])])
        : undefined;
    for (const [key, seen] of before) if (!seats.has(key) && !removed?.has(key) && seen.holdEnd > now) seats.set(key, seen);
    return seats.size === 0 ? NO_SEATS : seats;
  }

  /** See `Observation.holdEnd`. */
  private holdEndOf(record: LeaseRecord, previous: Observation | undefined, changedAt: number, renewed: boolean): number {
    // Unobserved meanwhile (deleted, or no longer watched): a hold remembered ends later than now only if nothing
    // newer was taken since (a later token means someone took the lease after it, by these rules, or after it ran out).
    const remembered = this.holdEnds.get(record.name);
    const before =
      previous?.holdEnd ?? (remembered !== undefined && record.transitions <= remembered.token ? this.holdEnd(record.name) : 0);
    const written = record.writtenHolder ?? record.holderIdentity;
    // A duration edited by hand never shortens: the longer of it and the one a daemon last wrote counts.
    const writtenSeconds = record.writtenDuration ?? record.leaseDurationSeconds;
    const leaseMs = Math.max(record.leaseDurationSeconds, writtenSeconds) * 1000;
    if (record.holderIdentity !== "") {
      // An acquisition or renewal its holder's daemon wrote counts on its own: that daemon writes a lease that
      // covers every promise it has made (leaseCovering), and takes a new token only once the hold before it
      // has ended (released to it, or run out as it observed). An edit by hand ends no hold and shortens none.
      const byDaemon = written === record.holderIdentity && writtenSeconds === record.leaseDurationSeconds;
      if (byDaemon && renewed) return changedAt + leaseMs;
      return Math.max(before, changedAt + leaseMs);
    }
    // Freed by someone else (a holder cleared by hand, a Lease restored after a deletion): counted as a renewal seen
    // now, since the holder may have renewed where this daemon did not see it (partitioned, or not watching then).
    if (written !== "") return Math.max(before, changedAt, renewed ? changedAt + leaseMs : 0);
    // Released by its holder's daemon, which gives a lease back only once its holder can no longer act on it.
    // (A later token released: its daemon took the lease only once the hold observed before had ended, also when
    // this daemon saw the lease free but held off before and missed that acquisition (seed 290). Unobserved
    // meanwhile, the last change of holder was a daemon's release all the same: a hold remembered is over.)
    // The same token on a lease seen free is no release: a queue write on a lease held off ends no hold.
    const released =
      previous === undefined ||
      record.transitions > previous.record.transitions ||
      (previous.record.holderIdentity !== "" && record.transitions === previous.record.transitions);
    return released ? changedAt : Math.max(before, changedAt);
  }

  private notify(name: string): void {
    for (const listener of [...(this.listeners.get(name) ?? [])]) listener();
  }
}
