// The records the engine writes, as pure functions of the record it read:
// an acquisition, a renewal, a release, a change of the wait queue. Only
// these decide what goes into a lease.
//
// Each of them also admits the daemons that announced they wait (the
// record's `waiting`, set by a patch that cannot conflict): they join the
// queue behind it, in the order `line` gives, and their announcements go.
import type { ClaimOptions } from "./claim.js";
import type { LeaseFields, LeaseKind, LeaseRecord } from "../store/lease-store.js";

/** Longest wait in the cross-daemon queue; beyond it a daemon contends without queueing. */
export const MAX_QUEUE = 64;

/**
 * The daemons waiting for the lease, in the order they are served: the queue,
 * then those that announced they wait and are not in it yet, sorted by
 * identity so that every daemon sees the same order.
 */
export function line(record: LeaseFields): readonly string[] {
  const waiting = record.waiting ?? [];
  if (waiting.length === 0) return record.queue;
  return [...record.queue, ...[...new Set(waiting)].filter((id) => !record.queue.includes(id)).sort()];
}

/**
 * `record` with its announced waiters moved into the queue, as far as
 * MAX_QUEUE allows (the others stay announced, and wait behind it), then
 * `keep` applied to the result: the one queue a write stores.
 */
export function admitted(record: LeaseRecord, keep: (id: string) => boolean = () => true): { queue: string[]; waiting?: string[] } {
  const all = line(record);
  const queued = all.slice(0, Math.max(record.queue.length, MAX_QUEUE)).filter(keep);
  const left = all.slice(Math.max(record.queue.length, MAX_QUEUE)).filter(keep);
  return left.length === 0 ? { queue: queued, waiting: undefined } : { queue: queued, waiting: left };
}

/** The fields of a lease this daemon creates for `claim`; `floor` is the highest token it has seen for the name. */
export function newLease(name: string, kind: LeaseKind, identity: string, claim: ClaimOptions, wall: Date, floor: number): LeaseFields {
  return {
    name,
    kind,
    holderIdentity: identity,
    holder: claim.holder,
    leaseDurationSeconds: claim.leaseMs / 1000,
    writtenDuration: claim.leaseMs / 1000,
    acquireTime: wall,
    renewTime: wall,
    transitions: floor + 1,
    value: kind === "election" ? claim.value : "",
    queue: [],
  };
}

/**
 * The record an acquisition by `claim` writes over `record`: the next token
 * above both the record's and anything this daemon has seen (`floor`), and
 * the queue without this daemon and the daemons `skip`ped.
 */
export function acquisition(
  record: LeaseRecord,
  identity: string,
  claim: ClaimOptions,
  wall: Date,
  floor: number,
  skip: readonly string[] = [],
): LeaseRecord {
  return {
    ...record,
    holderIdentity: identity,
    holder: claim.holder,
    leaseDurationSeconds: claim.leaseMs / 1000,
    writtenDuration: claim.leaseMs / 1000,
    acquireTime: wall,
    renewTime: wall,
    transitions: Math.max(record.transitions, floor) + 1,
    value: record.kind === "election" ? claim.value : "",
    ...admitted(record, (id) => id !== identity && !skip.includes(id)),
  };
}

/**
 * The record a renewal writes: a new renewal stamp and the lease duration
 * others will count. Other daemons see a renewal only as a change of the
 * stored record (on Kubernetes an update that changes nothing is not even a
 * new version, and sends no watch event), so its renewTime is always after
 * the one it replaces: the wall clock, or 1 ms past the previous renewTime
 * when the wall clock has not moved past it (stuck, or stepped back).
 */
export function renewal(record: LeaseRecord, wall: Date, leaseMs: number): LeaseRecord {
  return {
    ...record,
    ...admitted(record),
    renewTime: after(record.renewTime, wall),
    leaseDurationSeconds: leaseMs / 1000,
    writtenDuration: leaseMs / 1000,
  };
}

/** The record a Proclaim writes: the election's new value. */
export function proclaimed(record: LeaseRecord, value: string): LeaseRecord {
  return { ...record, ...admitted(record), value };
}

/** `wall`, or 1 ms past `previous` when `wall` is not after it. */
function after(previous: Date | undefined, wall: Date): Date {
  if (previous === undefined || wall.getTime() > previous.getTime()) return wall;
  return new Date(previous.getTime() + 1);
}

/**
 * The record a release writes: no holder, the transition count kept so tokens
 * never go back, and this daemon, if it still waits, at the end of the queue
 * (`then` "queue") or announced as waiting ("announce": it yields, and takes
 * no turn ahead of anyone).
 */
export function release(record: LeaseRecord, identity: string, then: "leave" | "queue" | "announce"): LeaseRecord {
  const { queue: others, waiting } = admitted(record, (id) => id !== identity);
  return {
    ...record,
    holderIdentity: "",
    value: record.kind === "election" ? "" : record.value,
    queue: then === "queue" && others.length < MAX_QUEUE ? [...others, identity] : others,
    waiting: then === "announce" ? [...(waiting ?? []), identity] : waiting,
  };
}

/** The record that puts this daemon at the end of the queue: how a daemon joins when it may not patch. */
export function enqueued(record: LeaseRecord, identity: string): LeaseRecord {
  const { queue, waiting } = admitted(record, (id) => id !== identity);
  return { ...record, queue: [...queue, identity], waiting };
}

/** The record that takes this daemon out of the queue (and its announcement, if any). */
export function dequeued(record: LeaseRecord, identity: string): LeaseRecord {
  return { ...record, ...admitted(record, (id) => id !== identity) };
}
