// The oracle of reads: every GetLock and GetLeader answer, and every leader an
// Observe stream or a candidate is told, judged against the store's own
// record of the Lease (every version, as the harness's watch saw it commit).
// What the engine promises (docs/design.md 3.10, the proto's field comments):
//
// - an answer is one version of the Lease as it was at some instant of the
//   call: a fresh read's version was current at some instant between the
//   call's send and its reply (it read the store in between, and a newer
//   record it already had is newer still). A cached read's too, since the
//   watch brings each write to the cache at the instant it is made; but while
//   its daemon is frozen its watch events wait, and while it is cut off or its
//   watch is broken or slow they come late or are lost until a relist, so the
//   window then opens at the start of that fault (on the Kubernetes backend,
//   also a get held up on its connection: the watch waits for its own reads;
//   and a hold-up by the API server's backlog, as the harness measured it).
//   A Lease relabelled by hand in that window may read as absent: a daemon
//   whose read of it failed believes it deleted. A leader an Observe stream
//   or a candidate is told is such a cached read, sent when it is received;
// - a token is never above the highest written before the answer;
// - held (a leader) means the version names a holder, with remaining > 0 no
//   longer than the longest lease written for that Lease (remaining is counted
//   on the daemon's clock from when it saw a renewal, never past it), and
//   not held means remaining 0;
// - a fresh read says held whenever a holder's lease certainly runs through
//   the whole call: every version current in the call names a holder, and the
//   reply comes before the first write of that version's renewal stamp plus
//   its lease as the reading daemon's clock counts it (its drift, `skew`): a
//   daemon counts expiry from when it saw that renewal, which is no earlier;
// - the holder (leader) a version shows is its holder name, except when the
//   holderIdentity is not the one the last daemon write left (someone who is
//   not a daemon wrote it): then the holderIdentity, and no value
//   (docs/design.md 3.5).
import type { LeaderState, LockState } from "../../daemon/engine/index.js";
import type { LeaseRecord } from "../../daemon/store/lease-store.js";

export interface ReadAnswer {
  readonly reader: string;
  readonly slot: number;
  readonly kind: "lock" | "election";
  readonly leaseName: string;
  /** A GetLock/GetLeader that read the store first; cached otherwise (Observe and candidates' leader news are cached). */
  readonly fresh: boolean;
  /** What answered: "GetLock", "GetLeader", "Observe", "Campaign". */
  readonly call: string;
  /** Simulated ms: the call sent, and its answer received. */
  readonly sent: number;
  readonly replied: number;
  readonly lock?: LockState;
  readonly leader?: LeaderState;
}

export interface ReadViolation {
  readonly rule: "read-lock" | "read-leader";
  readonly resource: string;
  readonly at: number;
  readonly message: string;
}

/** One state of a Lease: a version, or absent (never created, or deleted), from `at` until the next one. */
interface LeaseState {
  readonly at: number;
  readonly record: LeaseRecord | undefined;
}

/** The holder name a version shows readers (docs/design.md 3.5). */
export function shownHolder(record: LeaseRecord): { holder: string; value: string } {
  const foreign = record.holderIdentity !== "" && (record.writtenHolder ?? record.holderIdentity) !== record.holderIdentity;
  return foreign ? { holder: record.holderIdentity, value: "" } : { holder: record.holder, value: record.value };
}

export class ReadOracle {
  private readonly log = new Map<string, LeaseState[]>();
  private readonly answers: ReadAnswer[] = [];
  /** When each Lease lost its name label by hand. */
  private readonly relabels = new Map<string, number[]>();

  /** The harness's watch saw a version committed (or the Lease deleted: `record` undefined) at `at`. */
  saw(name: string, at: number, record: LeaseRecord | undefined): void {
    let states = this.log.get(name);
    if (states === undefined) this.log.set(name, (states = [{ at: 0, record: undefined }]));
    const last = states.at(-1)!;
    if (record !== undefined && last.record !== undefined && last.record.version === record.version) return;
    states.push({ at, record });
  }

  /**
   * Someone removed the Lease's name label at `at`: it left every watch
   * selected by name, and a daemon whose read of it then failed believes it
   * deleted (docs/design.md 3.10) until it hears of it again.
   */
  relabelled(name: string, at: number): void {
    this.relabels.set(name, [...(this.relabels.get(name) ?? []), at]);
  }

  answered(answer: ReadAnswer): void {
    this.answers.push(answer);
  }

  get count(): number {
    return this.answers.length;
  }

  /**
   * Judges every answer. `cacheSince(slot, sent, replied)` says from when
   * that daemon's cache may be behind for a cached read answered then: the
   * send, or the start of a fault that held up or lost its watch events.
   * `rateOf(slot)`: how fast that daemon's monotonic clock runs against
   * simulated time (`skew`), by which it counts a lease.
   */
  check(cacheSince: (slot: number, sent: number, replied: number) => number, rateOf: (slot: number) => number): ReadViolation[] {
    const violations: ReadViolation[] = [];
    for (const a of this.answers) {
      const message = this.judge(a, cacheSince, rateOf(a.slot));
      if (message === undefined) continue;
      violations.push({
        rule: a.kind === "lock" ? "read-lock" : "read-leader",
        resource: `${a.kind}/${a.leaseName.replace(`msync-${a.kind}-`, "")}`,
        at: a.replied,
        message: `${a.call}${a.fresh ? " (fresh)" : " (cached)"} by ${a.reader} on d${a.slot}, sent at ${sec(a.sent)}, answered at ${sec(
          a.replied,
        )}: ${describeAnswer(a)}; ${message}`,
      });
    }
    return violations;
  }

  private judge(a: ReadAnswer, cacheSince: (slot: number, sent: number, replied: number) => number, rate: number): string | undefined {
    const states = this.log.get(a.leaseName) ?? [{ at: 0, record: undefined }];
    const committed = states.filter((s) => s.at <= a.replied);
    // The states current at some instant of the window (both ends included: writes of one instant have no order here).
    const from = a.fresh ? a.sent : cacheSince(a.slot, a.sent, a.replied);
    const whole = from === a.sent;
    const window = committed.filter((s, i) => (committed[i + 1]?.at ?? Infinity) >= from);
    const highest = Math.max(0, ...committed.map((s) => s.record?.transitions ?? 0));
    const longest = Math.max(0, ...committed.map((s) => (s.record?.leaseDurationSeconds ?? 0) * 1000));
    const token = a.lock?.token ?? a.leader!.term;
    if (token > highest) return `token ${token} is above the highest ever written before the answer (${highest})`;
    const held = a.lock !== undefined ? a.lock.held : a.leader!.leader !== "";
    const remaining = a.lock?.remainingMs ?? a.leader!.remainingMs;
    const counted = a.call === "GetLock" || a.call === "GetLeader";
    if (counted) {
      if (held && !(remaining > 0 && remaining <= longest + 1e-6))
        return `held with remaining ${remaining} ms, outside (0, ${longest}] (the longest lease written)`;
      if (!held && remaining !== 0) return `not held, yet remaining ${remaining} ms`;
    }
    // A cached read may also show a Lease relabelled in the window as absent: its daemon's read of it may have failed
    // (a daemon frozen or cut off when it left the watch), and the deletion is then believed (3.10).
    const believedGone = !a.fresh && (this.relabels.get(a.leaseName) ?? []).some((at) => at >= from && at <= a.replied);
    if (!window.some((s) => matches(a, s.record)) && !(believedGone && matches(a, undefined)))
      return `no version of ${a.leaseName} current ${whole ? "during the call" : `from ${sec(from)} (its daemon's watch was held up) to the answer`} reads so; they were: ${window
        .map((s) => `${sec(s.at)} ${describeRecord(s.record)}`)
        .slice(-6)
        .join("; ")}`;
    if (a.fresh && !held) {
      // Not held, though every version current during the call names a holder whose lease certainly runs past the reply.
      const certain = window.every((s) => {
        const r = s.record;
        if (r === undefined || r.holderIdentity === "") return false;
        // (A lease of L ms on a clock running at `rate` lasts L / rate ms of simulated time; 1 ms for rounding.)
        return a.replied < firstOfStamp(states, r) + (r.leaseDurationSeconds * 1000) / rate - 1;
      });
      if (certain)
        return `not held, yet every version current during the call names a holder whose lease certainly runs past the answer: ${window
          .map((s) => `${sec(s.at)} ${describeRecord(s.record)}`)
          .join("; ")}`;
    }
    return undefined;
  }
}

/** Whether a version (or absence) reads as the answer says. */
function matches(a: ReadAnswer, record: LeaseRecord | undefined): boolean {
  if (a.lock !== undefined) {
    const l = a.lock;
    if (record === undefined) return !l.held && l.token === 0 && l.holder === "" && l.holderIdentity === "" && l.leaseMs === 0;
    return (
      record.transitions === l.token &&
      record.holderIdentity === l.holderIdentity &&
      shownHolder(record).holder === l.holder &&
      record.leaseDurationSeconds * 1000 === l.leaseMs &&
      (!l.held || record.holderIdentity !== "")
    );
  }
  const s = a.leader!;
  if (s.leader === "") return s.value === "" && s.holderIdentity === "" && s.term === (record?.transitions ?? 0);
  if (record === undefined || record.holderIdentity === "") return false;
  const shown = shownHolder(record);
  return (
    record.transitions === s.term && record.holderIdentity === s.holderIdentity && shown.holder === s.leader && shown.value === s.value
  );
}

/** When a version's renewal stamp (what the lease cache counts expiry from) was first written: no daemon saw it sooner. */
function firstOfStamp(states: readonly LeaseState[], record: LeaseRecord): number {
  const stamp = renewalStamp(record);
  return states.find((s) => s.record !== undefined && renewalStamp(s.record) === stamp)!.at;
}

/** The lease cache's renewal stamp (daemon/engine/lease-cache.ts): what changes when a holder acquires or renews. */
function renewalStamp(r: LeaseRecord): string {
  return [r.holderIdentity, r.transitions, r.leaseDurationSeconds, r.renewTime?.getTime() ?? "", r.acquireTime?.getTime() ?? ""].join("|");
}

function sec(ms: number): string {
  return `${(ms / 1000).toFixed(3)} s`;
}

function describeAnswer(a: ReadAnswer): string {
  if (a.lock !== undefined) {
    const l = a.lock;
    return `held=${l.held} holder=${l.holder || "-"} identity=${l.holderIdentity || "-"} token=${l.token} lease=${l.leaseMs} ms remaining=${l.remainingMs.toFixed(1)} ms`;
  }
  const s = a.leader!;
  return `leader=${s.leader || "(nobody)"} value=${s.value || "-"} term=${s.term} identity=${s.holderIdentity || "-"} remaining=${s.remainingMs.toFixed(1)} ms`;
}

function describeRecord(r: LeaseRecord | undefined): string {
  if (r === undefined) return "absent";
  const shown = shownHolder(r);
  return `rv ${r.version} holder ${r.holderIdentity || "-"} (${shown.holder || "-"}) token ${r.transitions} lease ${r.leaseDurationSeconds} s`;
}
