// The history checker: given every event of a fault run (history.ts), did
// the locks and elections keep their promises (docs/design.md section 3)?
//
// A hold (of a lock, or a term of an election) begins when the client is told
// Acquired/Elected and ends at the EARLIER of the client's own release or
// resign and the moment its wrapper signalled Lost/Deposed: the daemon's
// Lost, the end of the stream, or the wrapper's own heartbeat deadline. A
// client killed by the harness stops holding when it is killed. A hold never
// ended is open until the end of time. A "raw" client (one without the
// wrapper's watchdog) stops at the latest when its last valid_for runs out.
//
// Rules, per lock or election name:
//   overlap          no two holds overlap in time;
//   permits-exceeded for a semaphore of N permits (`CheckOptions.permitsOf`),
//                    never more than N holds at one instant (instead of
//                    overlap); its tokens need not follow the order in which
//                    its clients heard of their grants (token-order is not
//                    checked), but none is granted twice;
//   rw-overlap       on a read-write lock (`CheckOptions.isRWLock`), an
//                    exclusive hold overlaps no other hold, shared ones
//                    overlap freely (instead of overlap); token-order and
//                    duplicate-token apply to its exclusive holds only;
//   rw-token         a shared hold's token is that of the last exclusive hold
//                    that began before it in its epoch of the Lease (0 before
//                    any) or of a later exclusive grant the Lease shows
//                    (`exclusiveToken`) whose caller never heard of it, and
//                    not below one that ended before it began;
//   token-order      tokens (terms) strictly increase in acquisition order;
//   duplicate-token  no token (term) is granted twice;
//   no-token         nobody is told Acquired/Elected without a positive token;
//   elected-after-resign  a candidate that resigned is not elected again in
//                    that campaign (Resign ends the campaign);
//   no-handover      when a hold ends while others wait, someone is granted
//                    within the handover bound (default 2 x lease + 5 s),
//                    measured from the end of any fault window it overlaps: a
//                    liveness check, not a speed claim;
//   starvation       a waiter sees at most `maxPasses` grants to others while
//                    it waits; grants during a fault of the waiter's own
//                    daemon (or of everything), and for the handover bound
//                    after it, do not count: a frozen daemon cannot serve.
// With the harness's Lease watch in the history, also per Lease:
//   lease-history    leaseTransitions never go back, one holder identity per
//                    token, and no holder writes its token again after
//                    releasing it (a resumed daemon never acts as holder);
//   token-mismatch   a client's token was written by the client's own daemon.
// A deletion of the Lease in that watch (a "lease" event with `deleted`)
// begins a new epoch of its history. The token and Lease rules hold within an
// epoch and across epochs alike; a violation between two events of different
// epochs carries `across` (the two instants), so that a caller who knows a
// deletion nobody could restore lay between them can excuse it, and only it.
import { type HistoryEvent, type ResourceKind, ms } from "./history.js";

export type Rule =
  | "overlap"
  | "permits-exceeded"
  | "rw-overlap"
  | "rw-token"
  | "token-order"
  | "duplicate-token"
  | "no-token"
  | "elected-after-resign"
  | "no-handover"
  | "starvation"
  | "lease-history"
  | "token-mismatch";

export interface Violation {
  readonly rule: Rule;
  /** "lock/NAME" or "election/NAME". */
  readonly resource: string;
  readonly clients: readonly string[];
  readonly at: bigint;
  readonly message: string;
  /**
   * Set when the violation relates two events (grants, or Lease versions)
   * with a deletion of the Lease between them: when each happened (a grant:
   * when the Lease version that issued its token was written). Undefined
   * for a violation within one epoch, which nothing excuses.
   */
  readonly across?: { readonly from: bigint; readonly to: bigint };
}

export interface Hold {
  readonly resource: string;
  readonly client: string;
  readonly daemon: number | undefined;
  readonly token: number;
  readonly start: bigint;
  /** Undefined: never ended. */
  end: bigint | undefined;
  /** What ended it: "release", "resign", "lost:REASON", "deposed:REASON", "killed", "close", "valid-for". */
  endReason: string;
  readonly raw: boolean;
  /** A shared hold of a read-write lock. */
  readonly shared: boolean;
  /** Last heartbeat: arrival + valid_for, for raw clients. */
  validUntil: bigint | undefined;
}

export interface Wait {
  readonly resource: string;
  readonly client: string;
  readonly daemon: number | undefined;
  readonly start: bigint;
  end: bigint | undefined;
  outcome: "granted" | "failed" | "cancelled" | "killed" | "closed" | "open";
}

export interface FaultWindow {
  readonly fault: string;
  readonly start: bigint;
  /** Undefined: lasted to the end of the run. */
  readonly end: bigint | undefined;
  readonly affects: readonly number[] | "all";
}

export interface Handover {
  readonly resource: string;
  readonly from: Hold;
  readonly to: Hold | undefined;
  readonly gapMs: number | undefined;
  /** The handover window overlapped a fault window. */
  readonly duringFault: boolean;
}

export interface CheckOptions {
  readonly leaseMs: number;
  /** Longest time from the end of a hold, while others wait, to the next grant. Default 2 x lease + 5 s. */
  readonly handoverBoundMs?: number;
  /** Most grants to others a waiter may see while it waits. Default: unlimited. */
  readonly maxPasses?: number;
  /** Whose waits count for starvation (default: every client that is not raw). */
  readonly fairnessFor?: (client: string) => boolean;
  /** The start of the holder identity the daemon with this index writes (default `d${index}_`). */
  readonly identityPrefix?: (daemon: number) => string;
  /** Lease name prefix (default "msync-"). */
  readonly leasePrefix?: string;
  /** A semaphore's N, by resource ("semaphore/NAME"). */
  readonly permitsOf?: (resource: string) => number | undefined;
  /** Whether a resource is a read-write lock ("rwlock/NAME"): its holds are shared or exclusive. */
  readonly isRWLock?: (resource: string) => boolean;
}

export interface ResourceStats {
  readonly holds: number;
  readonly firstToken: number;
  readonly lastToken: number;
  readonly maxPasses: number;
}

export interface CheckResult {
  readonly violations: Violation[];
  readonly holds: Hold[];
  readonly waits: Wait[];
  readonly handovers: Handover[];
  readonly faults: FaultWindow[];
  readonly resources: Record<string, ResourceStats>;
  /** Client operations: Acquire and Campaign calls, releases, resigns and closes. */
  readonly operations: number;
  /** Holds still open at the end of the history. */
  readonly openHolds: number;
  /** Client tokens checked against, and not seen in, the Lease history. */
  readonly tokensVerified: number;
  readonly tokensUnverified: number;
  readonly leaseVersions: number;
  readonly observedUntil: bigint;
}

const OPERATIONS = new Set(["acquire-start", "campaign-start", "release", "resign", "campaign-close"]);
/** Election losses after which the candidate keeps campaigning. */
const LEAVING = new Set(["resigned", "stream-ended", "shutdown"]);

interface ClientState {
  wait: Wait | undefined;
  hold: Hold | undefined;
  /** Elections: the candidate is leaving the campaign (resign or close under way). */
  leaving: boolean;
  inCampaign: boolean;
  /** Elections: the candidate asked to resign in this campaign. */
  resigned: boolean;
}

export function check(events: readonly HistoryEvent[], options: CheckOptions): CheckResult {
  const violations: Violation[] = [];
  const holds: Hold[] = [];
  const waits: Wait[] = [];
  const faults: FaultWindow[] = [];
  const openFaults = new Map<string, { start: bigint; affects: readonly number[] | "all" }>();
  const states = new Map<string, ClientState>();
  const leaseEvents: HistoryEvent[] = [];
  let operations = 0;
  let observedUntil: bigint | undefined;
  let lastTs = 0n;

  const stateOf = (client: string, resource: string) => {
    const key = `${client}\u0000${resource}`;
    let state = states.get(key);
    if (state === undefined)
      states.set(key, (state = { wait: undefined, hold: undefined, leaving: false, inCampaign: false, resigned: false }));
    return state;
  };
  const endWait = (state: ClientState, ts: bigint, outcome: Wait["outcome"]) => {
    if (state.wait === undefined) return;
    state.wait.end = ts;
    state.wait.outcome = outcome;
    state.wait = undefined;
  };
  const startWait = (state: ClientState, e: HistoryEvent, resource: string) => {
    if (state.wait !== undefined) return;
    state.wait = { resource, client: e.client, daemon: e.daemon, start: e.ts, end: undefined, outcome: "open" };
    waits.push(state.wait);
  };
  const endHold = (state: ClientState, ts: bigint, reason: string) => {
    const hold = state.hold;
    if (hold === undefined) return;
    hold.end = hold.raw && hold.validUntil !== undefined && hold.validUntil < ts ? hold.validUntil : ts;
    hold.endReason = hold.end === ts ? reason : "valid-for";
    state.hold = undefined;
  };
  const kill = (target: string, ts: bigint) => {
    for (const [key, state] of states) {
      const client = key.slice(0, key.indexOf("\u0000"));
      if (client !== target && !client.startsWith(`${target}/`)) continue;
      endHold(state, ts, "killed");
      endWait(state, ts, "killed");
      state.inCampaign = false;
    }
  };

  for (const e of events) {
    if (e.ts > lastTs) lastTs = e.ts;
    if (OPERATIONS.has(e.ev)) operations += 1;
    switch (e.ev) {
      case "fault-start":
        openFaults.set(e.fault ?? "", { start: e.ts, affects: e.affects ?? "all" });
        continue;
      case "fault-end": {
        const open = openFaults.get(e.fault ?? "");
        if (open !== undefined) {
          faults.push({ fault: e.fault ?? "", start: open.start, end: e.ts, affects: open.affects });
          openFaults.delete(e.fault ?? "");
        }
        continue;
      }
      case "client-killed":
        kill(e.target ?? "", e.ts);
        continue;
      case "workload-end":
        observedUntil ??= e.ts;
        continue;
      case "lease":
        leaseEvents.push(e);
        continue;
    }
    if (e.kind === undefined || e.name === undefined) continue;
    const resource = `${e.kind}/${e.name}`;
    const state = stateOf(e.client, resource);
    switch (e.ev) {
      case "acquire-start":
        startWait(state, e, resource);
        break;
      case "campaign-start":
        state.inCampaign = true;
        state.leaving = false;
        state.resigned = false;
        startWait(state, e, resource);
        break;
      case "acquired":
      case "elected": {
        // (A shared hold before any exclusive one reports 0.)
        if (!(Number.isSafeInteger(e.token) && (e.token! > 0 || (e.shared === true && e.token === 0)))) {
          violations.push({
            rule: "no-token",
            resource,
            clients: [e.client],
            at: e.ts,
            message: `${e.client} was told ${e.ev} with token ${String(e.token)}`,
          });
        }
        if (e.ev === "elected" && state.resigned) {
          violations.push({
            rule: "elected-after-resign",
            resource,
            clients: [e.client],
            at: e.ts,
            message: `${e.client} was elected with term ${String(e.token)} in a campaign it had resigned`,
          });
        }
        endWait(state, e.ts, "granted");
        endHold(state, e.ts, "replaced"); // elected again with a new term
        const raw = e.raw === true;
        state.hold = {
          resource,
          client: e.client,
          daemon: e.daemon,
          token: e.token ?? 0,
          start: e.ts,
          end: undefined,
          endReason: "open",
          raw,
          shared: e.shared === true,
          validUntil: raw && e.validForMs !== undefined ? e.ts + BigInt(Math.round(e.validForMs * 1e6)) : undefined,
        };
        holds.push(state.hold);
        break;
      }
      case "renewed":
        if (state.hold?.raw && e.validForMs !== undefined && (state.hold.validUntil === undefined || state.hold.validUntil > e.ts)) {
          state.hold.validUntil = e.ts + BigInt(Math.round(e.validForMs * 1e6));
        }
        break;
      case "acquire-failed":
        endWait(state, e.ts, "failed");
        break;
      case "acquire-cancelled":
        endWait(state, e.ts, "cancelled");
        break;
      case "release":
        endHold(state, e.ts, "release");
        break;
      case "lost":
        endHold(state, e.ts, `lost:${e.reason ?? "?"}`);
        break;
      case "resign":
        state.leaving = true;
        state.resigned = true;
        endHold(state, e.ts, "resign");
        break;
      case "deposed":
        if (state.hold !== undefined && (e.token === undefined || state.hold.token === e.token)) {
          endHold(state, e.ts, `deposed:${e.reason ?? "?"}`);
        }
        if (LEAVING.has(e.reason ?? "")) state.leaving = true;
        if (state.inCampaign && !state.leaving) startWait(state, e, resource);
        break;
      case "campaign-close":
        state.leaving = true;
        endHold(state, e.ts, "close");
        endWait(state, e.ts, "closed");
        break;
      case "campaign-end":
        endHold(state, e.ts, "campaign-end");
        endWait(state, e.ts, "closed");
        state.inCampaign = false;
        break;
    }
  }
  for (const [fault, open] of openFaults) faults.push({ fault, start: open.start, end: undefined, affects: open.affects });
  const until = observedUntil ?? lastTs;
  // A raw client's hold never outlives its last valid_for, even if it recorded no end.
  for (const hold of holds) {
    if (hold.raw && hold.validUntil !== undefined && (hold.end === undefined || hold.end > hold.validUntil)) {
      hold.end = hold.validUntil;
      hold.endReason = "valid-for";
    }
  }

  const byResource = new Map<string, { holds: Hold[]; waits: Wait[] }>();
  const group = (resource: string) => {
    let g = byResource.get(resource);
    if (g === undefined) byResource.set(resource, (g = { holds: [], waits: [] }));
    return g;
  };
  for (const hold of holds) group(hold.resource).holds.push(hold);
  for (const wait of waits) group(wait.resource).waits.push(wait);

  const handovers: Handover[] = [];
  const resources: Record<string, ResourceStats> = {};
  const boundNs = BigInt(Math.round((options.handoverBoundMs ?? 2 * options.leaseMs + 5_000) * 1e6));
  const deadlineAfter = (from: bigint): { deadline: bigint; faulted: boolean } => {
    let deadline = from + boundNs;
    let faulted = false;
    for (let changed = true; changed;) {
      changed = false;
      for (const f of faults) {
        if (f.affects !== "all" && f.affects.length === 0) continue; // an annotation, not a fault
        const end = f.end ?? until;
        if (f.start < deadline && end > from && end + boundNs > deadline) {
          deadline = end + boundNs;
          faulted = changed = true;
        } else if (f.start < deadline && end > from) faulted = true;
      }
    }
    return { deadline, faulted };
  };
  const fairnessFor = options.fairnessFor ?? (() => true);
  /** Times in messages: seconds since the first event of the history. */
  const origin = events[0]?.ts ?? 0n;
  const at = (ts: bigint) => `${(ms(ts - origin) / 1000).toFixed(3)} s`;

  const lease = checkLeaseHistory(leaseEvents, holds, options);
  for (const [resource, g] of byResource) {
    const ordered = [...g.holds].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
    const endOf = (h: Hold) => h.end ?? BigInt(Number.MAX_SAFE_INTEGER) * 1_000_000n;
    const describe = (h: Hold) =>
      `${h.client} (daemon ${h.daemon ?? "?"}) token ${h.token} from t=${at(h.start)} to ${h.end === undefined ? "never" : `t=${at(h.end)}`} (${h.endReason})`;

    const permits = options.permitsOf?.(resource);
    if (permits !== undefined) {
      // permits-exceeded: the holds running at each hold's start, this one included.
      for (const hold of ordered) {
        const running = ordered.filter((h) => h.start <= hold.start && endOf(h) > hold.start);
        if (running.length <= permits) continue;
        const first = running.find((h) => h !== hold)!;
        violations.push({
          rule: "permits-exceeded",
          resource,
          clients: [first.client, hold.client],
          at: hold.start,
          message: `${running.length} holds of ${permits} permits at t=${at(hold.start)}: ${running.map(describe).join("; ")}`,
        });
      }
    }
    const rw = options.isRWLock?.(resource) === true;
    if (rw) {
      // rw-overlap: at each hold's start, an exclusive hold running with any other.
      for (const [index, hold] of ordered.entries()) {
        // (Holds begun before it in history order: one that ended at the instant this one began does not count.)
        const running = ordered.slice(0, index).filter((h) => endOf(h) > hold.start);
        const other = running.find((h) => !h.shared || !hold.shared);
        if (other === undefined) continue;
        violations.push({
          rule: "rw-overlap",
          resource,
          clients: [other.client, hold.client],
          at: hold.start,
          message: `${hold.shared ? "shared" : "exclusive"} ${describe(hold)} began while ${other.shared ? "shared" : "exclusive"} ${describe(other)} ran`,
        });
      }
      // rw-token: against the exclusive holds of the shared hold's epoch. An exclusive grant whose caller gave up
      // before it heard of it (it is given back at once) still counts as the latest: its token is in the Lease.
      const leaseName = `${options.leasePrefix ?? "msync-"}rwlock-${resource.slice(resource.indexOf("/") + 1)}`;
      const written = new Set(leaseEvents.filter((e) => e.name === leaseName).map((e) => e.exclusiveToken));
      for (const [index, hold] of ordered.entries()) {
        if (!hold.shared || endOf(hold) <= hold.start) continue; // a grant whose promise had run out is no promise
        const epoch = lease.issuedAt(resource, hold).epoch;
        const exclusive = ordered.filter((h) => !h.shared && lease.issuedAt(resource, h).epoch === epoch);
        // (Begun before it in history order, as for rw-overlap.)
        const last = ordered
          .slice(0, index)
          .filter((h) => exclusive.includes(h))
          .at(-1);
        const over = exclusive.filter((h) => h.end !== undefined && h.end <= hold.start && h.token > hold.token);
        const expected = last?.token ?? (epoch === 0 ? 0 : undefined);
        const unheard = expected !== undefined && hold.token > expected && written.has(hold.token);
        if (over.length === 0 && (expected === undefined || hold.token === expected || unheard)) continue;
        violations.push({
          rule: "rw-token",
          resource,
          clients: [last?.client ?? over[0]?.client ?? "", hold.client],
          at: hold.start,
          message:
            over.length > 0
              ? `shared ${describe(hold)} began after exclusive ${describe(over[0]!)} ended, with a lower token`
              : `shared ${describe(hold)} reports token ${hold.token}, but the last exclusive hold before it had ${String(expected)}${last === undefined ? " (none)" : `: ${describe(last)}`}`,
        });
      }
    }
    // overlap
    let latest: Hold | undefined;
    for (const hold of permits === undefined && !rw ? ordered : []) {
      if (latest !== undefined && hold.start < endOf(latest)) {
        violations.push({
          rule: "overlap",
          resource,
          clients: [latest.client, hold.client],
          at: hold.start,
          message: `${describe(hold)} began ${ms(endOf(latest) - hold.start).toFixed(1)} ms before ${describe(latest)} ended`,
        });
      }
      if (latest === undefined || endOf(hold) > endOf(latest)) latest = hold;
    }

    // tokens, by epoch of the Lease (a grant belongs to the epoch in which its token was written)
    const issued = (h: Hold) => lease.issuedAt(resource, h);
    const seen = new Map<number, Hold[]>();
    const highestIn = new Map<number, Hold>();
    for (const hold of ordered) {
      if (!(Number.isSafeInteger(hold.token) && hold.token > 0) || hold.shared) continue;
      const { epoch, ts } = issued(hold);
      const twins = seen.get(hold.token) ?? [];
      const twin = twins.find((h) => issued(h).epoch === epoch) ?? twins[0];
      const highestHere = highestIn.get(epoch);
      // Across epochs: the highest grant of another epoch not below this token.
      let other: Hold | undefined;
      for (const [e, h] of highestIn) if (e !== epoch && h.token >= hold.token && (other === undefined || h.token > other.token)) other = h;
      const pair = (h: Hold) => {
        const a = issued(h).ts;
        return issued(h).epoch === epoch ? undefined : { from: a < ts ? a : ts, to: a < ts ? ts : a };
      };
      if (twin !== undefined) {
        violations.push({
          rule: "duplicate-token",
          resource,
          clients: [twin.client, hold.client],
          at: hold.start,
          message: `token ${hold.token} granted twice: ${describe(twin)} and ${describe(hold)}`,
          across: pair(twin),
        });
      } else if (permits === undefined && highestHere !== undefined && hold.token <= highestHere.token) {
        violations.push({
          rule: "token-order",
          resource,
          clients: [highestHere.client, hold.client],
          at: hold.start,
          message: `${describe(hold)} was acquired after ${describe(highestHere)}, with a token not greater`,
        });
      } else if (permits === undefined && other !== undefined && other.start < hold.start) {
        violations.push({
          rule: "token-order",
          resource,
          clients: [other.client, hold.client],
          at: hold.start,
          message: `${describe(hold)} was acquired after ${describe(other)}, with a token not greater (across a deletion of the Lease)`,
          across: pair(other),
        });
      }
      seen.set(hold.token, [...twins, hold]);
      if (highestHere === undefined || hold.token > highestHere.token) highestIn.set(epoch, hold);
    }

    // handover
    for (const hold of ordered) {
      if (hold.end === undefined || hold.end >= until) continue;
      const e = hold.end;
      const waiting = g.waits.filter((w) => w.client !== hold.client && w.start < e && (w.end === undefined || w.end > e));
      if (waiting.length === 0) continue;
      const next = ordered.find((h) => h !== hold && h.start >= e);
      const { deadline, faulted } = deadlineAfter(e);
      if (next !== undefined && next.start <= deadline) {
        handovers.push({ resource, from: hold, to: next, gapMs: ms(next.start - e), duringFault: faulted });
        continue;
      }
      handovers.push({ resource, from: hold, to: next, gapMs: next === undefined ? undefined : ms(next.start - e), duringFault: faulted });
      if (deadline >= until) continue; // the run ended before the bound passed: cannot tell
      const starving = waiting.filter((w) => (w.end ?? until) > deadline);
      if (starving.length > 0) {
        violations.push({
          rule: "no-handover",
          resource,
          clients: [hold.client, ...starving.map((w) => w.client)],
          at: e,
          message: `${describe(hold)} ended while ${starving.map((w) => w.client).join(", ")} waited, and ${
            next === undefined ? "nobody was granted it afterwards" : `the next grant came ${ms(next.start - e).toFixed(0)} ms later`
          } (bound ${ms(deadline - e).toFixed(0)} ms)`,
        });
      }
    }

    // starvation
    let maxPasses = 0;
    for (const wait of g.waits) {
      if (!fairnessFor(wait.client)) continue;
      const end = wait.end ?? until;
      // Grants while a fault of the waiter's own daemon (or of everything) lasts, and
      // for the handover bound after it, do not count: the daemon may not serve then.
      const excused = (t: bigint) =>
        faults.some(
          (f) =>
            (f.affects === "all" || (wait.daemon !== undefined && f.affects.includes(wait.daemon))) &&
            t >= f.start &&
            t <= (f.end ?? until) + boundNs,
        );
      const passes = ordered.filter((h) => h.client !== wait.client && h.start > wait.start && h.start < end && !excused(h.start)).length;
      maxPasses = Math.max(maxPasses, passes);
      if (options.maxPasses !== undefined && passes > options.maxPasses) {
        violations.push({
          rule: "starvation",
          resource,
          clients: [wait.client],
          at: wait.start,
          message: `${wait.client} (daemon ${wait.daemon ?? "?"}) waited from t=${at(wait.start)} to ${
            wait.end === undefined ? "the end" : `t=${at(wait.end)} (${wait.outcome})`
          } and saw ${passes} grants to others, more than ${options.maxPasses}`,
        });
      }
    }

    const tokens = ordered.map((h) => h.token).filter((t) => t > 0);
    resources[resource] = {
      holds: ordered.length,
      firstToken: tokens[0] ?? 0,
      lastToken: tokens.at(-1) ?? 0,
      maxPasses,
    };
  }

  violations.push(...lease.violations);
  violations.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  return {
    violations,
    holds,
    waits,
    handovers,
    faults,
    resources,
    operations,
    openHolds: holds.filter((h) => h.end === undefined).length,
    tokensVerified: lease.verified,
    tokensUnverified: lease.unverified,
    leaseVersions: leaseEvents.length,
    observedUntil: until,
  };
}

/** A version of a Lease as the harness's watch saw it, or its deletion, with the epoch it belongs to. */
interface LeaseVersion {
  readonly event: HistoryEvent;
  readonly epoch: number;
}

/**
 * The Lease-level rules, over the versions the harness's own watch recorded;
 * and, for the token rules, the epoch of the Lease each grant's token was
 * written in (`issuedAt`).
 */
function checkLeaseHistory(
  leaseEvents: readonly HistoryEvent[],
  holds: readonly Hold[],
  options: CheckOptions,
): {
  violations: Violation[];
  verified: number;
  unverified: number;
  issuedAt: (resource: string, hold: Hold) => { epoch: number; ts: bigint };
} {
  const violations: Violation[] = [];
  const prefix = options.leasePrefix ?? "msync-";
  const identityPrefix = options.identityPrefix ?? ((d: number) => `d${d}_`);
  const leaseNameOf = (resource: string) => {
    const slash = resource.indexOf("/");
    return `${prefix}${resource.slice(0, slash)}-${resource.slice(slash + 1)}`;
  };
  const byLease = new Map<string, HistoryEvent[]>();
  for (const e of leaseEvents) {
    const list = byLease.get(e.name ?? "") ?? [];
    list.push(e);
    byLease.set(e.name ?? "", list);
  }
  /** Lease name -> its versions (deletions included) in resourceVersion order, each with its epoch. */
  const histories = new Map<string, LeaseVersion[]>();
  for (const [name, list] of byLease) {
    const ordered = [...new Map(list.map((e) => [`${e.resourceVersion ?? ""}${e.deleted === true ? "-" : ""}`, e])).values()].sort(
      (a, b) => (BigInt(a.resourceVersion ?? "0") < BigInt(b.resourceVersion ?? "0") ? -1 : 1),
    );
    let epoch = 0;
    const versions: LeaseVersion[] = [];
    for (const e of ordered) {
      if (e.deleted === true) epoch += 1;
      versions.push({ event: e, epoch });
    }
    histories.set(name, versions);
  }
  const across = (a: LeaseVersion, b: LeaseVersion) => (a.epoch === b.epoch ? undefined : { from: a.event.ts, to: b.event.ts });

  for (const [name, versions] of histories) {
    /** token -> the version that first wrote it with a holder, and the version that released it. */
    const holderOf = new Map<number, LeaseVersion>();
    const released = new Map<number, LeaseVersion>();
    let previous: LeaseVersion | undefined;
    for (const version of versions) {
      const v = version.event;
      if (v.deleted === true) continue;
      const t = v.transitions ?? 0;
      const holder = v.holderIdentity ?? "";
      const resource = name;
      if (previous !== undefined && t < (previous.event.transitions ?? 0)) {
        violations.push({
          rule: "lease-history",
          resource,
          clients: [holder],
          at: v.ts,
          message: `Lease ${name} went from leaseTransitions ${previous.event.transitions} (rv ${previous.event.resourceVersion}) back to ${t} (rv ${v.resourceVersion})`,
          across: across(previous, version),
        });
      }
      if (holder !== "") {
        const first = holderOf.get(t);
        if (first !== undefined && first.event.holderIdentity !== holder) {
          violations.push({
            rule: "lease-history",
            resource,
            clients: [first.event.holderIdentity ?? "", holder],
            at: v.ts,
            message: `Lease ${name} token ${t} was written by two holders: ${first.event.holderIdentity} (rv ${first.event.resourceVersion}) and ${holder} (rv ${v.resourceVersion})`,
            across: across(first, version),
          });
        }
        const release = released.get(t);
        if (release !== undefined) {
          violations.push({
            rule: "lease-history",
            resource,
            clients: [holder],
            at: v.ts,
            message: `Lease ${name}: ${holder} wrote token ${t} again after releasing it (rv ${release.event.resourceVersion}, then rv ${v.resourceVersion})`,
            across: across(release, version),
          });
        }
        if (first === undefined || first.epoch !== version.epoch) holderOf.set(t, version);
      } else if (holderOf.has(t) && !released.has(t)) {
        released.set(t, version);
      }
      previous = version;
    }
  }

  /**
   * The version that wrote a grant's token: the last one with that token and a holder written at or before
   * the grant, else (a watch that heard of it after the client did) the first one after it.
   */
  const writerOf = (hold: Hold): LeaseVersion | undefined => {
    const versions = histories.get(leaseNameOf(hold.resource)) ?? [];
    let found: LeaseVersion | undefined;
    for (const version of versions) {
      const e = version.event;
      if (e.deleted === true || e.transitions !== hold.token || (e.holderIdentity ?? "") === "") continue;
      if (e.ts > hold.start) return found ?? version;
      found = version;
    }
    return found;
  };
  /** The epoch of the Lease after the last deletion at or before `ts`. */
  const epochAt = (resource: string, ts: bigint) => {
    let epoch = 0;
    for (const version of histories.get(leaseNameOf(resource)) ?? [])
      if (version.event.deleted === true && version.event.ts <= ts) epoch = version.epoch;
    return epoch;
  };
  const issued = new Map<Hold, { epoch: number; ts: bigint }>();
  const issuedAt = (resource: string, hold: Hold) => {
    let at = issued.get(hold);
    if (at === undefined) {
      const writer = writerOf(hold);
      at = writer !== undefined ? { epoch: writer.epoch, ts: writer.event.ts } : { epoch: epochAt(resource, hold.start), ts: hold.start };
      issued.set(hold, at);
    }
    return at;
  };

  let verified = 0;
  let unverified = 0;
  for (const hold of holds) {
    // A semaphore's grants are written into seats; its holderIdentity names nobody.
    if (options.permitsOf?.(hold.resource) !== undefined || options.isRWLock?.(hold.resource) === true) continue;
    const writer = writerOf(hold);
    if (writer === undefined || hold.daemon === undefined) {
      unverified += 1;
      continue;
    }
    verified += 1;
    const identity = writer.event.holderIdentity ?? "";
    if (!identity.startsWith(identityPrefix(hold.daemon))) {
      const epoch = epochAt(hold.resource, hold.start);
      violations.push({
        rule: "token-mismatch",
        resource: hold.resource,
        clients: [hold.client, identity],
        at: hold.start,
        message: `${hold.client} on daemon ${hold.daemon} was granted token ${hold.token}, but the Lease shows it written by ${identity} (rv ${writer.event.resourceVersion})`,
        across: writer.epoch === epoch ? undefined : { from: writer.event.ts, to: hold.start },
      });
    }
  }
  return { violations, verified, unverified, issuedAt };
}

export type { ResourceKind };
