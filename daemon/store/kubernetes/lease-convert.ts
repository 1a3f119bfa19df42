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
import type { LeaseFields, LeaseKind, LeaseRecord, WatchEvent } from "../lease-store.js";

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
  return `${WAIT_ANNOTATION_PREFIX}${createHash("sha256").update(identity).digest("hex").slice(0, 16)}`;
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
    kind: (metadata.labels?.[KIND_LABEL] === "election" ? "election" : "lock") satisfies LeaseKind,
    holderIdentity,
    holder: ours ? (annotations[HOLDER_ANNOTATION] ?? "") : holderIdentity,
    leaseDurationSeconds: spec.leaseDurationSeconds ?? 0,
    acquireTime: toDate(spec.acquireTime),
    renewTime: toDate(spec.renewTime),
    transitions: spec.leaseTransitions ?? 0,
    value: ours ? (annotations[VALUE_ANNOTATION] ?? "") : "",
    queue: parseQueue(annotations[QUEUE_ANNOTATION]),
    ...waitingOf(annotations),
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
  // hand stays so through queue writes). A create may record another (a restored Lease, held off).
  if (previous === undefined) annotations[HOLDER_OF_ANNOTATION] = fields.writtenHolder ?? fields.holderIdentity;
  else if (previous.spec?.holderIdentity !== fields.holderIdentity) annotations[HOLDER_OF_ANNOTATION] = fields.holderIdentity;
  annotations[DURATION_ANNOTATION] = String(fields.writtenDuration ?? fields.leaseDurationSeconds);
  setOrDelete(annotations, VALUE_ANNOTATION, fields.value);
  setOrDelete(annotations, QUEUE_ANNOTATION, fields.queue.length > 0 ? JSON.stringify(fields.queue) : "");
  // The wait keys are exactly the record's: a conditional write removes those the engine moved into the queue.
  for (const key of Object.keys(annotations)) if (key.startsWith(WAIT_ANNOTATION_PREFIX)) delete annotations[key];
  for (const identity of fields.waiting ?? []) annotations[waitAnnotation(identity)] = identity;
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

function parseQueue(text: string | undefined): string[] {
  if (text === undefined || text === "") return [];
  try {
    const parsed: unknown = JSON.parse(text);
    return Array.isArray(parsed) ? parsed.filter((id): id is string => typeof id === "string") : [];
  } catch {
    return []; // a broken queue only costs fairness, never safety
  }
}
