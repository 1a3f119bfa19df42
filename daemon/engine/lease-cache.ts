// What this daemon has observed of the managed leases its clients use, fed by
// the store's one watch and by the replies to this daemon's own calls. The
// watch covers only the names somebody here subscribed to (a contender, a
// leader tracker): a daemon hears nothing of other leases. Besides the record it
// keeps WHEN the holder's renewal stamp was last seen to change, on the local
// monotonic clock: expiry of another holder's lease is measured from that
// moment, never from the renewTime written in the lease.
import {
  type LeaseRecord,
  type LeaseStore,
  type StoreError,
  type WatchEvent,
  type WatchHandle,
  type WatchScope,
  inScope,
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
}

/**
 * The parts of a record that change when a holder acquires or renews, and
 * only then. The duration counted is the longer of the one written and the one
 * a daemon last wrote: shortening it by hand is no renewal.
 */
function renewalStamp(r: LeaseRecord): string {
  const seconds = Math.max(r.leaseDurationSeconds, r.writtenDuration ?? 0);
  return [r.holderIdentity, r.transitions, seconds, r.renewTime?.getTime() ?? "", r.acquireTime?.getTime() ?? ""].join("|");
}

/** True when the lease names no holder whose lease is still running, as of local time `now`: what GetLock and GetLeader report. */
export function isFree(obs: Observation | undefined, now: number): boolean {
  return obs === undefined || obs.record.holderIdentity === "" || now >= expiresAt(obs);
}

/** True when this daemon may take the lease at local time `now`: no holder it observed may still act. */
export function mayTake(obs: Observation, now: number): boolean {
  return now >= obs.holdEnd;
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
   * Each name's last `Observation.holdEnd`, with the token of the record it
   * was seen on. It outlives the entry: a deletion by hand does not end a hold.
   */
  private readonly holdEnds = new Map<string, { readonly end: number; readonly token: number }>();
  /**
   * Leases a call of this daemon found gone before its watch told of the deletion, with what was last observed of
   * them. The watch tells every version before the deletion first, and only then is the highest token known: a
   * restore (or a create) waits for it (docs/design.md 3.2).
   */
  private readonly untoldDeletions = new Map<string, Observation>();
  /** The longest lease this daemon has seen written for each name (ms), kept like `highWater`. */
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
  ) {}

  /** Starts the watch. `ready()` resolves once the first full list arrived. */
  start(): void {
    this.watchHandle ??= this.store.watch((event) => this.apply(event), this.wanted);
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
   * daemon observed may act (it was deleted by hand while held), or 0.
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
    const leaseMs = Math.max(record.leaseDurationSeconds, record.writtenDuration ?? 0) * 1000;
    if (leaseMs > (this.longestLease.get(record.name) ?? 0)) this.longestLease.set(record.name, leaseMs);
    this.heldOffForDeletion.delete(record.name);
    if (previous !== undefined && !this.store.isNewer(record.version, previous.record.version)) return false;
    const renewed = previous === undefined || renewalStamp(previous.record) !== renewalStamp(record);
    const changedAt = renewed ? this.clock.now() : previous.changedAt;
    const holdEnd = this.holdEndOf(record, previous, changedAt, renewed);
    this.entries.set(record.name, { record, changedAt, holdEnd });
    this.holdEnds.set(record.name, { end: holdEnd, token: record.transitions });
    return true;
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
