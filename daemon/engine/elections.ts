// Elections on top of the contenders. A campaign is a claim that stays in the
// queue after losing leadership, so a deposed candidate may be elected again.
// Leader changes reach candidates and observers through one tracker per
// election name, which derives the leader from the lease cache and notices
// expiry on a timer.
import { Claim, type LossReason } from "./claim.js";
import type { Timer } from "./clock.js";
import type { Engine } from "./engine.js";
import { SyncError } from "./errors.js";
import { type Observation, expiresAt, isFree } from "./lease-cache.js";

export interface LeaderState {
  /** The leading candidate's name; "" when nobody leads. */
  readonly leader: string;
  readonly value: string;
  /** The leader's term, or the last term when nobody leads; 0 if nobody ever led. */
  readonly term: number;
  /** Until expiry, as observed here; 0 when nobody leads. */
  readonly remainingMs: number;
  /**
   * The daemon process whose write made the leader; "" when nobody leads.
   * With the term it names one grant: a daemon never issues a term at or
   * below one it has issued or seen (docs/design.md 3.2), but another daemon
   * may issue the same number after the Lease was deleted.
   */
  readonly holderIdentity: string;
}

export interface CampaignRequest {
  /** Lease name, already checked and prefixed. */
  readonly leaseName: string;
  readonly candidate: string;
  readonly value: string;
  readonly leaseMs: number;
}

/** Where the events of one campaign are reported. */
export interface CampaignSink {
  elected(term: number, validForMs: number, leaseMs: number): void;
  renewed(validForMs: number): void;
  leaderChanged(state: LeaderState): void;
  deposed(term: number, reason: LossReason, message: string): void;
  /** The campaign is over: resigned (no error) or failed. */
  ended(error?: SyncError): void;
}

export class Elections {
  private readonly trackers = new Map<string, LeaderTracker>();
  /** Live campaigns by Lease name, so Resign can end the right stream. */
  private readonly campaigns = new Map<string, Set<Campaign>>();

  constructor(private readonly engine: Engine) {}

  prefix(): string {
    return this.engine.prefix("election");
  }

  /** Joins the election until `signal` aborts or the candidate resigns. */
  campaign(request: CampaignRequest, sink: CampaignSink, signal: AbortSignal): void {
    if (signal.aborted) return;
    const contender = this.engine.contender(request.leaseName, "election");
    const campaign = new Campaign(sink, this.engine.identity);
    const claim = new Claim(
      { holder: request.candidate, leaseMs: request.leaseMs, mode: "session", noWait: false, persistent: true, value: request.value },
      {
        granted: (grant) => {
          campaign.terms.add(grant.token);
          sink.elected(grant.token, grant.validForMs, grant.leaseMs);
        },
        renewed: (validForMs) => sink.renewed(validForMs),
        lost: (reason, message) => {
          sink.deposed(claim.token, reason, message);
          if (claim.state === "ended" && reason === "shutdown") {
            // The lease is kept until the candidate closes its stream or its
            // promise runs out (docs/design.md 3.7); the campaign ends then.
            void claim.settled.then(() => finish(new SyncError("shutting-down", "the daemon is shutting down")));
          } else if (claim.state === "ended") {
            finish();
          } else {
            // No longer the leader: the candidate hears who is, by the same rule as every change.
            campaign.update();
          }
        },
        failed: (error) => finish(error),
      },
    );
    campaign.claim = claim;
    const set = this.campaigns.get(request.leaseName) ?? new Set();
    this.campaigns.set(request.leaseName, set.add(campaign));
    const tracker = this.tracker(request.leaseName);
    campaign.tracker = tracker;
    const unwatch = tracker.listen(() => campaign.update());
    const finish = (error?: SyncError) => {
      if (campaign.over) return;
      campaign.over = true;
      unwatch();
      set.delete(campaign);
      if (set.size === 0) this.campaigns.delete(request.leaseName);
      signal.removeEventListener("abort", abort);
      sink.ended(error);
    };
    const abort = () => {
      void contender.end(claim);
      finish();
    };
    signal.addEventListener("abort", abort, { once: true });
    campaign.finish = finish;
    contender.add(claim);
  }

  /**
   * The campaign that led `term` steps down and ends; the next candidate is
   * elected. `term` may be an earlier term of that same campaign (deposed
   * when its renewals lapsed, then elected again before this call was
   * served): Resign ends the campaign, whichever of its terms it names.
   */
  async resign(leaseName: string, term: number): Promise<void> {
    const campaign = [...(this.campaigns.get(leaseName) ?? [])].find((c) => c.terms.has(term) && !c.over);
    const contender = this.engine.existingContender(leaseName);
    const claim = campaign?.claim;
    if (campaign === undefined || contender === undefined || claim === undefined) throw this.notLeader(leaseName, term);
    if (claim.state === "held") await contender.release(claim.token, undefined);
    else await contender.end(claim);
    campaign.finish?.();
  }

  /** The leader of `term` publishes `value`. */
  async proclaim(leaseName: string, term: number, value: string, signal?: AbortSignal): Promise<void> {
    const contender = this.engine.existingContender(leaseName);
    if (contender?.claimFor(term) === undefined) throw this.notLeader(leaseName, term);
    await contender.proclaim(term, value, signal);
  }

  async getLeader(leaseName: string, fresh: boolean): Promise<LeaderState> {
    const obs = await this.engine.observe(leaseName, fresh, `read election ${leaseName}`);
    return leaderOf(obs, this.engine.clock.now());
  }

  /** Calls `listener` with the current leader at once and after every change, until `signal` aborts. */
  observe(leaseName: string, listener: (state: LeaderState) => void, signal: AbortSignal): void {
    if (signal.aborted) return;
    const unwatch = this.tracker(leaseName).listen(listener);
    signal.addEventListener("abort", unwatch, { once: true });
  }

  /** Ends every observer's interest; campaigns end through their contenders. */
  shutdown(): void {
    for (const tracker of this.trackers.values()) tracker.close();
    this.trackers.clear();
  }

  private tracker(leaseName: string): LeaderTracker {
    let tracker = this.trackers.get(leaseName);
    if (tracker === undefined) {
      tracker = new LeaderTracker(this.engine, leaseName, () => this.trackers.delete(leaseName));
      this.trackers.set(leaseName, tracker);
    }
    return tracker;
  }

  private notLeader(leaseName: string, term: number): SyncError {
    const state = leaderOf(this.engine.cache.get(leaseName), this.engine.clock.now());
    const now =
      state.leader === "" ? `nobody leads; the last term is ${state.term}` : `the current term is ${state.term}, led by ${state.leader}`;
    return new SyncError("not-held", `term ${term} of ${leaseName} is not led by a candidate on this daemon: ${now}`);
  }
}

/**
 * One candidate's campaign. What it is told about leaders is derived, on
 * every change of the leader or of its claim, from two things it does not
 * copy: the leader its tracker sees and the state of its claim.
 */
class Campaign {
  claim: Claim | undefined;
  tracker: LeaderTracker | undefined;
  /** Terms this candidate has held, so that Resign may name any of them. */
  readonly terms = new Set<number>();
  over = false;
  finish: ((error?: SyncError) => void) | undefined;
  /** The leader last told to the candidate. */
  private last: LeaderState | undefined;

  constructor(
    private readonly sink: CampaignSink,
    /** This daemon process: the holderIdentity of every grant this campaign's claim is given. */
    private readonly identity: string,
  ) {}

  /**
   * Tells the candidate the leader its tracker sees now, unless that leader
   * is this candidate, which hears of its own terms as elected and deposed.
   * Called when the leader changes and when the claim stops holding (the
   * tracker may have seen a new leader while the claim still held).
   */
  update(): void {
    const state = this.tracker?.current;
    if (state === undefined || this.over || this.isSelf(state)) return;
    if (this.last !== undefined && sameLeader(this.last, state)) return;
    this.last = state;
    this.sink.leaderChanged(state);
  }

  /**
   * Whether `state` shows this candidate leading, judged by its claim: the
   * claim holds the lease, or `state` is the claim's latest grant (this
   * daemon's write with the claim's token), which the lease shows after a
   * loss until it runs out. Not by the term alone: after the Lease is
   * deleted and created again by a daemon that never saw it, another
   * candidate's term may repeat one of ours.
   */
  private isSelf(state: LeaderState): boolean {
    const claim = this.claim;
    if (claim === undefined) return false;
    return claim.state === "held" || (state.holderIdentity === this.identity && state.term === claim.token);
  }
}

/** The leader as observed at local time `now`. */
export function leaderOf(obs: Observation | undefined, now: number): LeaderState {
  if (obs === undefined) return { leader: "", value: "", term: 0, remainingMs: 0, holderIdentity: "" };
  if (isFree(obs, now)) return { leader: "", value: "", term: obs.record.transitions, remainingMs: 0, holderIdentity: "" };
  const record = obs.record;
  return {
    leader: record.holder,
    value: record.value,
    term: record.transitions,
    remainingMs: expiresAt(obs) - now,
    holderIdentity: record.holderIdentity,
  };
}

/** The same leader as a client sees it: name, value and term. */
function sameLeader(a: LeaderState, b: LeaderState): boolean {
  return a.leader === b.leader && a.value === b.value && a.term === b.term;
}

/** The same grant: as `sameLeader`, and made by the same daemon process. */
function sameGrant(a: LeaderState, b: LeaderState): boolean {
  return sameLeader(a, b) && a.holderIdentity === b.holderIdentity;
}

/**
 * Follows one election's leader for the candidates and observers on this
 * daemon. It says nothing until the watch covers the election: an empty
 * cache entry before then is not "nobody leads".
 */
class LeaderTracker {
  private readonly listeners = new Set<(state: LeaderState) => void>();
  private state: LeaderState | undefined;
  private expiry: Timer | undefined;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly engine: Engine,
    private readonly leaseName: string,
    private readonly onEmpty: () => void,
  ) {
    this.unsubscribe = engine.cache.subscribe(leaseName, () => this.update());
    this.state = this.evaluate();
  }

  /** The leader as last evaluated; undefined until the watch covers the election. */
  get current(): LeaderState | undefined {
    return this.state;
  }

  /** Adds a listener and calls it with the current leader at once, if known, and after every change. */
  listen(listener: (state: LeaderState) => void): () => void {
    this.listeners.add(listener);
    if (this.state !== undefined) listener(this.state);
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.close();
    };
  }

  close(): void {
    this.listeners.clear();
    this.expiry?.cancel();
    this.unsubscribe();
    this.onEmpty();
  }

  private update(): void {
    const next = this.evaluate();
    if (next === undefined || (this.state !== undefined && sameGrant(next, this.state))) return;
    this.state = next;
    for (const listener of [...this.listeners]) listener(next);
  }

  /** Computes the leader now and wakes up when its lease would run out unrenewed; undefined while not covered. */
  private evaluate(): LeaderState | undefined {
    if (!this.engine.cache.covers(this.leaseName)) return undefined;
    const obs = this.engine.cache.get(this.leaseName);
    const now = this.engine.clock.now();
    const state = leaderOf(obs, now);
    this.expiry?.cancel();
    if (state.leader !== "" && obs !== undefined) {
      this.expiry = this.engine.clock.setTimer(expiresAt(obs) - now, () => this.update());
    }
    return state;
  }
}
