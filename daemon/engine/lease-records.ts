// The records the engine writes, as pure functions of the record it read:
// an acquisition, a renewal, a release, a change of the wait queue. Only
// these decide what goes into a lease.
import type { ClaimOptions } from "./claim.js";
import type { LeaseFields, LeaseKind, LeaseRecord } from "../store/lease-store.js";

/** Longest wait in the cross-daemon queue; beyond it a daemon contends without queueing. */
export const MAX_QUEUE = 64;

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
    queue: record.queue.filter((id) => id !== identity && !skip.includes(id)),
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
  return { ...record, renewTime: after(record.renewTime, wall), leaseDurationSeconds: leaseMs / 1000, writtenDuration: leaseMs / 1000 };
}

/** `wall`, or 1 ms past `previous` when `wall` is not after it. */
function after(previous: Date | undefined, wall: Date): Date {
  if (previous === undefined || wall.getTime() > previous.getTime()) return wall;
  return new Date(previous.getTime() + 1);
}

/**
 * The record a release writes: no holder, the transition count kept so tokens
 * never go back, and this daemon at the end of the queue if it still waits.
 */
export function release(record: LeaseRecord, identity: string, requeue: boolean): LeaseRecord {
  const others = record.queue.filter((id) => id !== identity);
  return {
    ...record,
    holderIdentity: "",
    value: record.kind === "election" ? "" : record.value,
    queue: requeue && others.length < MAX_QUEUE ? [...others, identity] : others,
  };
}

export function enqueued(record: LeaseRecord, identity: string): LeaseRecord {
  return { ...record, queue: [...record.queue, identity] };
}

export function dequeued(record: LeaseRecord, identity: string): LeaseRecord {
  return { ...record, queue: record.queue.filter((id) => id !== identity) };
}
