// The only module that knows the shape of a coordination.k8s.io/v1 Lease:
// a pair of pure functions between Lease objects and lease records, and the
// label that marks a Lease as managed by metaparticle-sync.
//
// Spec fields are used as client-go uses them: holderIdentity names the
// holder (the daemon process), leaseDurationSeconds how long it holds without
// renewing, acquireTime/renewTime are MicroTimes for people to read, and
// leaseTransitions counts acquisitions; it is the fencing token. What
// client-go's Lease has no field for lives in annotations.
import { createHash } from "node:crypto";
import type { V1Lease } from "@kubernetes/client-node";
import { V1MicroTime } from "@kubernetes/client-node/dist/types.js";
import {
  LEASE_KINDS,
  type LeaseFields,
  type LeaseKind,
  type LeaseRecord,
  type Seat,
  type SeatId,
  type WatchEvent,
  bySeatIdentity,
  isSeated,
} from "../lease-store.js";
import type { JsonPatchOperation } from "./lease-api.js";

export const MANAGED_BY_LABEL = "app.kubernetes.io/managed-by";
export const MANAGED_BY = "metaparticle-sync";
/** The label selector of the daemon's one watch. */
export const MANAGED_SELECTOR = `${MANAGED_BY_LABEL}=${MANAGED_BY}`;
export const KIND_LABEL = "sync.metaparticle.io/kind";
/**
 * The Lease's own name as a label value, so a watch can select the names a
 * daemon uses (`name in (...)`): field selectors have no set operator.
 */
export const NAME_LABEL = "sync.metaparticle.io/name";

/**
 * The NAME_LABEL value of a Lease name: the name itself when it fits a label
 * value (63 characters), else its first 46 characters and 16 hex digits of its
 * SHA-256. Two long names may share a value; the watcher drops events for
 * names it did not ask for.
 */
export function nameLabelValue(name: string): string {
  if (name.length <= 63) return name;
  return `${name.slice(0, 46)}-${createHash("sha256").update(name).digest("hex").slice(0, 16)}`;
}

/** The label selector of a watch on `names` (at least one). */
export function selectorFor(names: Iterable<string>): string {
  const values = [...new Set([...names].map(nameLabelValue))].sort();
  return `${MANAGED_SELECTOR},${NAME_LABEL} in (${values.join(",")})`;
}
/** Caller-supplied holder or candidate name. */
export const HOLDER_ANNOTATION = "sync.metaparticle.io/holder";
/**
 * The holderIdentity the holder annotation was written for. When the spec's
 * holderIdentity differs, someone who is not a daemon (an administrator,
 * client-go's leader election on the same Lease) took the Lease and left the
 * annotation behind: the holder is then reported by its holderIdentity.
 */
export const HOLDER_OF_ANNOTATION = "sync.metaparticle.io/holder-identity";
/**
 * The leaseDurationSeconds the last daemon acquisition or renewal wrote: a
 * duration edited by hand differs from it, and the longer of the two counts.
 */
export const DURATION_ANNOTATION = "sync.metaparticle.io/lease-duration";
/** Proclaimed election value; at most 4096 bytes (checked before it gets here). */
export const VALUE_ANNOTATION = "sync.metaparticle.io/value";
/** JSON array of daemon process identities waiting, in arrival order. */
export const QUEUE_ANNOTATION = "sync.metaparticle.io/queue";
/**
 * A daemon that waits and is not in the queue announces itself under a key of
 * its own, this prefix and 16 hex digits of its identity's SHA-256 (an
 * annotation key's name part is at most 63 characters; an identity may be
 * longer), with its identity as the value. A merge patch of that one key
 * cannot conflict with any other write; the engine's conditional writes move
 * the identities into the queue and remove the keys.
 */
export const WAIT_ANNOTATION_PREFIX = "sync.metaparticle.io/wait.";

/** The annotation key under which `identity` announces that it waits. */
export function waitAnnotation(identity: string): string {
  return `${WAIT_ANNOTATION_PREFIX}${keyHash(identity)}`;
}

/** A semaphore's number of permits, a whole number, written when its Lease is created. */
export const PERMITS_ANNOTATION = "sync.metaparticle.io/permits";
/** A read-write lock's token of its latest exclusive hold (`LeaseFields.exclusiveToken`). */
export const EXCLUSIVE_TOKEN_ANNOTATION = "sync.metaparticle.io/exclusive-token";
/**
 * The seats a daemon's last conditional write left (`LeaseFields.seated`): JSON `[[identity, acquisition], ...]`,
 * and the removed seats it still counted as `[identity, acquisition, forMs]`.
 */
export const SEATED_ANNOTATION = "sync.metaparticle.io/seated";
/**
 * Each daemon's seat on a semaphore or read-write lock is an annotation of
 * its own, this prefix and 16 hex digits of its identity's SHA-256 (as a wait
 * key, and for the same reason), with the seat as JSON (`seatText`). The
 * prefix differs from the wait keys' so that a patch of one never touches the
 * other.
 */
export const SEAT_ANNOTATION_PREFIX = "sync.metaparticle.io/seat.";

/** The annotation key of `identity`'s seat. */
export function seatAnnotation(identity: string): string {
  return `${SEAT_ANNOTATION_PREFIX}${keyHash(identity)}`;
}

function keyHash(identity: string): string {
  return createHash("sha256").update(identity).digest("hex").slice(0, 16);
}

/**
 * A seat as its annotation's value: JSON with short keys in a fixed order,
 * `{"i":identity,"a":acquisition,"d":durationSeconds,"r":renewMs,"h":holder,
 * "n":riders,"w":acquireWallMs}` and `"p":permits` on a semaphore's; a
 * tombstone `{"i":identity,"a":acquisition,"released":true}`. One seat has one
 * text: a patch tests the stored text against it.
 */
export function seatText(seat: Seat): string {
  if (seat.released === true) return JSON.stringify({ i: seat.identity, a: seat.acquisition, released: true });
  return JSON.stringify({
    i: seat.identity,
    a: seat.acquisition,
    d: seat.durationSeconds,
    r: seat.renewMs,
    h: seat.holder,
    n: seat.riders,
    w: seat.acquireWallMs,
    ...(seat.permits === undefined ? {} : { p: seat.permits }),
  });
}

/** The seat stored under `key` as `text`; undefined when it is not one (broken JSON, a field missing or of the wrong type, another identity's). */
export function parseSeat(key: string, text: string): Seat | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return undefined;
  const { i, a, d, r, h, n, w, p, released } = parsed as Record<string, unknown>;
  if (typeof i !== "string" || seatAnnotation(i) !== key || !count(a)) return undefined;
  if (released === true) return { identity: i, acquisition: a, released: true };
  if (released !== undefined || !count(d) || d === 0 || !count(r) || typeof h !== "string" || !count(n) || !count(w)) return undefined;
  if (p !== undefined && (!count(p) || p === 0)) return undefined;
  return {
    identity: i,
    acquisition: a,
    durationSeconds: d,
    renewMs: r,
    holder: h,
    riders: n,
    acquireWallMs: w,
    ...(p === undefined ? {} : { permits: p }),
  };
}

function count(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

/**
 * The JSON patch (RFC 6902) that replaces `identity`'s seat, `expected`, with
 * `next` on the Lease `lease` was read from: it tests that the uid is that
 * Lease's and that the seat's annotation holds exactly `expected`, so the API
 * server applies it only if both hold (else 422, writing nothing), whatever
 * other writes came in between. Undefined when `lease` has no uid (it was not
 * read from a Lease): there is then no Lease to bind the patch to.
 */
export function seatPatch(lease: LeaseRecord, identity: string, expected: Seat, next: Seat): JsonPatchOperation[] | undefined {
  const uid = (lease.native as V1Lease | undefined)?.metadata?.uid;
  if (uid === undefined) return undefined;
  const path = `/metadata/annotations/${pointerToken(seatAnnotation(identity))}`;
  return [
    { op: "test", path: "/metadata/uid", value: uid },
    { op: "test", path, value: seatText(expected) },
    { op: "replace", path, value: seatText(next) },
  ];
}

/** A key as one token of a JSON pointer (RFC 6901). */
function pointerToken(key: string): string {
  return key.replaceAll("~", "~0").replaceAll("/", "~1");
}

/**
 * The JSON merge patch (RFC 7386) that sets or removes `identity`'s wait key on
 * the Lease `lease` was read from. Its uid binds the patch to that object: the
 * API server refuses a patch whose uid is not the stored object's (the Lease
 * was deleted and created again, maybe by someone else), so a daemon never
 * annotates a Lease it has not seen as managed.
 */
export function waitPatch(lease: LeaseRecord, identity: string, waiting: boolean): object {
  const uid = (lease.native as V1Lease | undefined)?.metadata?.uid;
  return { metadata: { ...(uid === undefined ? {} : { uid }), annotations: { [waitAnnotation(identity)]: waiting ? identity : null } } };
}

export function isManaged(lease: V1Lease): boolean {
  return lease.metadata?.labels?.[MANAGED_BY_LABEL] === MANAGED_BY;
}

/**
 * What one watch event on a managed Lease says happened to it. Through a
 * label selector, the API server also sends DELETED for an object that stops
 * matching (its name label removed or changed by hand), with the object as it
 * was before and the new resourceVersion: on a watch `selected` by name a
 * DELETED says only that the Lease left the watch, and a read must tell
 * whether it is gone. An object without the managed-by label is no longer ours.
 */
export function watchedChange(
  phase: "ADDED" | "MODIFIED" | "DELETED",
  lease: V1Lease,
  selected: "names" | "all",
): Extract<WatchEvent, { type: "upsert" | "delete" }> | { readonly type: "read"; readonly name: string; readonly version: string } {
  const name = lease.metadata?.name ?? "";
  const version = lease.metadata?.resourceVersion ?? "";
  if (phase === "DELETED") return selected === "names" ? { type: "read", name, version } : { type: "delete", name, version };
  return isManaged(lease) ? { type: "upsert", lease: leaseToRecord(lease) } : { type: "delete", name, version };
}

/** Reads a managed Lease as a record. Tolerates what people may have left out or broken. */
export function leaseToRecord(lease: V1Lease): LeaseRecord {
  const metadata = lease.metadata ?? {};
  const annotations = metadata.annotations ?? {};
  const spec = lease.spec ?? {};
  const holderIdentity = spec.holderIdentity ?? "";
  // A Lease an older daemon wrote has no HOLDER_OF_ANNOTATION: its annotation is trusted, as it was then, when it
  // names someone. A holderIdentity beside none (an older daemon's release removed it) is no daemon's: a daemon
  // always names its holder.
  const named = (annotations[HOLDER_ANNOTATION] ?? "") !== "";
  const annotated = annotations[HOLDER_OF_ANNOTATION] ?? (named ? holderIdentity : "");
  const ours = annotated === holderIdentity;
  return {
    name: metadata.name ?? "",
    kind: kindOf(metadata.labels?.[KIND_LABEL]),
    holderIdentity,
    holder: ours ? (annotations[HOLDER_ANNOTATION] ?? "") : holderIdentity,
    leaseDurationSeconds: spec.leaseDurationSeconds ?? 0,
    acquireTime: toDate(spec.acquireTime),
    renewTime: toDate(spec.renewTime),
    transitions: spec.leaseTransitions ?? 0,
    value: ours ? (annotations[VALUE_ANNOTATION] ?? "") : "",
    queue: parseQueue(annotations[QUEUE_ANNOTATION]),
    ...waitingOf(annotations),
    ...permitsOf(annotations),
    ...exclusiveTokenOf(annotations),
    ...seatsOf(annotations),
    ...seatedOf(annotations),
    version: metadata.resourceVersion ?? "",
    native: lease,
    writtenHolder: annotated,
    writtenDuration: wholeSeconds(annotations[DURATION_ANNOTATION]),
  };
}

/**
 * The Lease to write for `fields` in `namespace`. An update passes the record
 * it read, whose resourceVersion makes the write conditional and whose native
 * object keeps labels, annotations and spec fields the engine does not know.
 */
export function recordToLease(fields: LeaseFields | LeaseRecord, namespace: string): V1Lease {
  const previous = "native" in fields ? (fields.native as V1Lease | undefined) : undefined;
  const annotations: Record<string, string> = { ...previous?.metadata?.annotations };
  annotations[HOLDER_ANNOTATION] = fields.holder;
  // A write that changes the holder records it; any other leaves the annotation as it was (a holder cleared by
  // hand stays so through queue writes). A create may record another (a restored Lease, held off). A semaphore has no
  // holder: its grants (a new token) record it, so that a restored semaphore is held off until its first grant only,
  // which its daemon writes once that hold-off is over as it observes.
  const grant = isSeated(fields.kind) && fields.transitions > (previous?.spec?.leaseTransitions ?? 0);
  if (previous === undefined) annotations[HOLDER_OF_ANNOTATION] = fields.writtenHolder ?? fields.holderIdentity;
  else if (previous.spec?.holderIdentity !== fields.holderIdentity || grant) annotations[HOLDER_OF_ANNOTATION] = fields.holderIdentity;
  annotations[DURATION_ANNOTATION] = String(fields.writtenDuration ?? fields.leaseDurationSeconds);
  setOrDelete(annotations, VALUE_ANNOTATION, fields.value);
  setOrDelete(annotations, QUEUE_ANNOTATION, fields.queue.length > 0 ? JSON.stringify(fields.queue) : "");
  // The wait keys are exactly the record's: a conditional write removes those the engine moved into the queue.
  for (const key of Object.keys(annotations)) if (key.startsWith(WAIT_ANNOTATION_PREFIX)) delete annotations[key];
  for (const identity of fields.waiting ?? []) annotations[waitAnnotation(identity)] = identity;
  setOrDelete(annotations, PERMITS_ANNOTATION, fields.permits === undefined ? "" : String(fields.permits));
  setOrDelete(annotations, EXCLUSIVE_TOKEN_ANNOTATION, fields.exclusiveToken === undefined ? "" : String(fields.exclusiveToken));
  setOrDelete(
    annotations,
    SEATED_ANNOTATION,
    fields.seated === undefined
      ? ""
      : JSON.stringify(
          fields.seated.map((seat) =>
            seat.forMs === undefined ? [seat.identity, seat.acquisition] : [seat.identity, seat.acquisition, seat.forMs],
          ),
        ),
  );
  // So are the seats: the writes that end seats (an exclusive acquisition, a dropped tombstone) leave them out. A
  // broken seat stays as it was while the record names it.
  const broken = new Set(fields.brokenSeats ?? []);
  for (const key of Object.keys(annotations)) if (key.startsWith(SEAT_ANNOTATION_PREFIX) && !broken.has(key)) delete annotations[key];
  for (const seat of fields.seats ?? []) annotations[seatAnnotation(seat.identity)] = seatText(seat);
  return {
    apiVersion: "coordination.k8s.io/v1",
    kind: "Lease",
    metadata: {
      ...previous?.metadata,
      name: fields.name,
      namespace,
      resourceVersion: "version" in fields ? fields.version : undefined,
      labels: {
        ...previous?.metadata?.labels,
        [MANAGED_BY_LABEL]: MANAGED_BY,
        [KIND_LABEL]: fields.kind,
        [NAME_LABEL]: nameLabelValue(fields.name),
      },
      annotations,
      managedFields: undefined,
    },
    spec: {
      ...previous?.spec,
      holderIdentity: fields.holderIdentity,
      leaseDurationSeconds: fields.leaseDurationSeconds,
      acquireTime: fields.acquireTime === undefined ? undefined : new V1MicroTime(fields.acquireTime.getTime()),
      renewTime: fields.renewTime === undefined ? undefined : new V1MicroTime(fields.renewTime.getTime()),
      leaseTransitions: fields.transitions,
    },
  };
}

function setOrDelete(annotations: Record<string, string>, key: string, value: string): void {
  if (value === "") delete annotations[key];
  else annotations[key] = value;
}

/** MicroTimes arrive as Date objects from typed calls and as strings from watch events. */
function toDate(value: unknown): Date | undefined {
  if (value instanceof Date) return new Date(value.getTime());
  if (typeof value === "string" && value !== "") {
    const date = new Date(value);
    return Number.isNaN(date.getTime()) ? undefined : date;
  }
  return undefined;
}

/** A whole number of seconds, or undefined (absent: an older daemon wrote the Lease; broken: as if absent). */
function wholeSeconds(text: string | undefined): number | undefined {
  const seconds = Number(text);
  return text !== undefined && Number.isSafeInteger(seconds) && seconds > 0 ? seconds : undefined;
}

/** The identities of the wait keys, sorted (annotations have no order); none: no `waiting` field. */
function waitingOf(annotations: Record<string, string>): { waiting?: string[] } {
  const waiting = Object.entries(annotations)
    .filter(([key, identity]) => key.startsWith(WAIT_ANNOTATION_PREFIX) && identity !== "")
    .map(([, identity]) => identity)
    .sort();
  return waiting.length === 0 ? {} : { waiting };
}

/** The kind a Lease's label names; a kind this version does not know (a later one's) reads as a lock. */
function kindOf(label: string | undefined): LeaseKind {
  return LEASE_KINDS.find((kind) => kind === label) ?? "lock";
}

/** A read-write lock's exclusive token; none, or not a whole number: no `exclusiveToken` field. */
function exclusiveTokenOf(annotations: Record<string, string>): { exclusiveToken?: number } {
  const text = annotations[EXCLUSIVE_TOKEN_ANNOTATION];
  const token = Number(text);
  return text !== undefined && /^[0-9]+$/.test(text) && Number.isSafeInteger(token) ? { exclusiveToken: token } : {};
}

/** The number of permits; none, or not a whole number above 0: no `permits` field. */
function permitsOf(annotations: Record<string, string>): { permits?: number } {
  const text = annotations[PERMITS_ANNOTATION];
  const permits = Number(text);
  return text !== undefined && /^[0-9]+$/.test(text) && Number.isSafeInteger(permits) && permits > 0 ? { permits } : {};
}

/** The seats a daemon's last conditional write left; unreadable (edited by hand): as if none was recorded. */
function seatedOf(annotations: Record<string, string>): { seated?: SeatId[] } {
  const text = annotations[SEATED_ANNOTATION];
  if (text === undefined) return {};
  try {
    const parsed: unknown = JSON.parse(text);
    if (!Array.isArray(parsed)) return {};
    const seated: SeatId[] = [];
    for (const entry of parsed) {
      if (!Array.isArray(entry) || typeof entry[0] !== "string" || !Number.isSafeInteger(entry[1])) return {};
      // A carried seat's time (a third element); one that is not a time counts as unknown: the longest lease seen.
      const forMs = entry[2] as unknown;
      const carried = typeof forMs === "number" && Number.isSafeInteger(forMs) && forMs >= 0 ? { forMs } : {};
      seated.push({ identity: entry[0], acquisition: entry[1] as number, ...carried });
    }
    return { seated };
  } catch {
    return {};
  }
}

/** The seat keys' seats, in identity order, and those that are not seats; none: no such field. */
function seatsOf(annotations: Record<string, string>): { seats?: Seat[]; brokenSeats?: string[] } {
  const seats: Seat[] = [];
  const brokenSeats: string[] = [];
  for (const [key, text] of Object.entries(annotations)) {
    if (!key.startsWith(SEAT_ANNOTATION_PREFIX)) continue;
    const seat = parseSeat(key, text);
    if (seat === undefined) brokenSeats.push(key);
    else seats.push(seat);
  }
  seats.sort(bySeatIdentity);
  brokenSeats.sort();
  return { ...(seats.length === 0 ? {} : { seats }), ...(brokenSeats.length === 0 ? {} : { brokenSeats }) };
}

function parseQueue(text: string | undefined): string[] {
  if (text === undefined || text === "") return [];
  try {
    const parsed: unknown = JSON.parse(text);
    return Array.isArray(parsed) ? parsed.filter((id): id is string => typeof id === "string") : [];
  } catch {
    return []; // a broken queue only costs fairness, never safety
  }
}
