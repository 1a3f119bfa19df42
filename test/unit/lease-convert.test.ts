// Conversion between Leases and lease records: the Lease's name label, by
// which each daemon's watch selects the names its clients use (docs/design.md
// 3.10), the holder annotations, and the seats of semaphores and read-write
// locks (docs/design.md 6).
import type { V1Lease } from "@kubernetes/client-node";
import test from "ava";
import {
  HOLDER_ANNOTATION,
  KIND_LABEL,
  MANAGED_BY,
  MANAGED_BY_LABEL,
  MANAGED_SELECTOR,
  NAME_LABEL,
  PERMITS_ANNOTATION,
  SEATED_ANNOTATION,
  SEAT_ANNOTATION_PREFIX,
  WAIT_ANNOTATION_PREFIX,
  leaseToRecord,
  nameLabelValue,
  recordToLease,
  seatAnnotation,
  selectorFor,
  waitAnnotation,
  watchedChange,
} from "../../daemon/store/kubernetes/lease-convert.js";
import type { Seat } from "../../daemon/store/lease-store.js";
import { leaseRecord } from "../support/lease-record.js";

/** A Kubernetes label value: at most 63 characters, alphanumeric at both ends, '-', '_' and '.' between. */
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

test("the name label is the Lease name when it fits, else a prefix and a hash; always a valid label value", (t) => {
  t.is(nameLabelValue("msync-lock-nightly-report"), "msync-lock-nightly-report");
  const long = `msync-lock-${"a".repeat(40)}.-${"b".repeat(150)}`;
  const other = `msync-lock-${"a".repeat(40)}.-${"c".repeat(150)}`;
  for (const name of ["msync-lock-x", "m".repeat(63), "m".repeat(64), long, other, `msync-lock-${"a".repeat(34)}--${"z".repeat(30)}`]) {
    const value = nameLabelValue(name);
    t.true(value.length <= 63 && LABEL_VALUE.test(value), `${JSON.stringify(value)} is a label value`);
  }
  t.not(nameLabelValue(long), nameLabelValue(other), "long names with one prefix get different values");
  t.is(nameLabelValue(long), nameLabelValue(long), "the same name always gets the same value");
});

test("a watch selects managed Leases by name, each value once, in a stable order", (t) => {
  t.is(selectorFor(["msync-lock-b", "msync-lock-a", "msync-lock-b"]), `${MANAGED_SELECTOR},${NAME_LABEL} in (msync-lock-a,msync-lock-b)`);
});

test("every write labels the Lease with its name and keeps labels people added", (t) => {
  const record = leaseRecord({
    transitions: 3,
    version: "7",
    native: { metadata: { name: "msync-lock-x", labels: { team: "data", "app.kubernetes.io/managed-by": "metaparticle-sync" } } },
  });
  const labels = recordToLease(record, "default").metadata?.labels;
  t.like(labels, { team: "data", [NAME_LABEL]: "msync-lock-x", "app.kubernetes.io/managed-by": "metaparticle-sync" });
});

test("a holder that is not a daemon is reported by its holderIdentity, not by the name a daemon left in the annotation", (t) => {
  const written = recordToLease(
    leaseRecord({ holderIdentity: "daemon-a", holder: "scheduler-0", value: "10.0.0.1:80", transitions: 2 }),
    "default",
  );
  t.like(leaseToRecord(written), { holder: "scheduler-0", value: "10.0.0.1:80" }, "a daemon's own write reads back as written");
  // client-go's leader election (or an administrator) takes the Lease: it writes the spec and leaves our annotations.
  const takenOver = { ...written, spec: { ...written.spec, holderIdentity: "controller-7d9f", leaseTransitions: 3 } };
  t.like(leaseToRecord(takenOver), { holder: "controller-7d9f", holderIdentity: "controller-7d9f", value: "", transitions: 3 });
  const cleared = { ...written, spec: { ...written.spec, holderIdentity: "" } };
  t.like(leaseToRecord(cleared), { holder: "", holderIdentity: "" }, "a holder cleared by hand is nobody");
  // A Lease an older daemon wrote has no record of whom its annotation names: it is trusted as before.
  const older = { ...written, metadata: { ...written.metadata, annotations: { [HOLDER_ANNOTATION]: "scheduler-0" } } };
  t.like(leaseToRecord(older), { holder: "scheduler-0" });
});

test("a holder of a Lease an older daemon gave back (no holder annotation left) is reported by its holderIdentity, as one that is not a daemon", (t) => {
  // An older daemon's release removed its holder annotation; it never wrote the holder-identity one.
  const released = {
    metadata: { name: "msync-election-e0", labels: { [MANAGED_BY_LABEL]: MANAGED_BY }, annotations: {} },
    spec: { holderIdentity: "", leaseDurationSeconds: 15, leaseTransitions: 1 },
  };
  t.like(leaseToRecord(released), { holder: "", holderIdentity: "", transitions: 1 });
  // Then client-go's leader election takes it: nobody left a name for this holderIdentity.
  const takenOver = { ...released, spec: { ...released.spec, holderIdentity: "controller-7d9f", leaseTransitions: 2 } };
  t.like(leaseToRecord(takenOver), { holder: "controller-7d9f", holderIdentity: "controller-7d9f", value: "", transitions: 2 });
  t.not(leaseToRecord(takenOver).writtenHolder, "controller-7d9f", "no daemon wrote this holder: its lease is counted as a hand edit's");
  const emptied = { ...takenOver, metadata: { ...takenOver.metadata, annotations: { [HOLDER_ANNOTATION]: "" } } };
  t.like(leaseToRecord(emptied), { holder: "controller-7d9f" }, "an empty holder annotation names nobody either");
});

test("on a watch selected by name a DELETED only says the Lease left the watch: a read tells whether it is gone", (t) => {
  const lease = recordToLease(leaseRecord({ holderIdentity: "daemon-a", holder: "job", transitions: 4, version: "41" }), "default");
  const name = lease.metadata!.name!;
  // The API server sends DELETED with the object as it was, and the new resourceVersion, when its labels stop matching.
  const left = { ...lease, metadata: { ...lease.metadata, resourceVersion: "42" } };
  t.deepEqual(watchedChange("DELETED", left, "names"), { type: "read", name, version: "42" });
  t.deepEqual(
    watchedChange("DELETED", left, "all"),
    { type: "delete", name, version: "42" },
    "watching every managed Lease, DELETED is a deletion",
  );
  const unmanaged = { ...lease, metadata: { ...lease.metadata, labels: {} } };
  t.deepEqual(
    watchedChange("MODIFIED", unmanaged, "all"),
    { type: "delete", name, version: "41" },
    "without the managed-by label it is no longer ours",
  );
  t.like(watchedChange("MODIFIED", lease, "names"), {
    type: "upsert",
    lease: { name, holderIdentity: "daemon-a", transitions: 4, version: "41" },
  });
});

/** A lock Lease as a daemon of the previous version wrote it, with a label and an annotation people added. */
function olderLockLease(): V1Lease {
  return {
    apiVersion: "coordination.k8s.io/v1",
    kind: "Lease",
    metadata: {
      name: "msync-lock-report",
      namespace: "default",
      uid: "6f1c0a52-1111-4222-8333-944455556666",
      resourceVersion: "41",
      labels: {
        [MANAGED_BY_LABEL]: MANAGED_BY,
        [KIND_LABEL]: "lock",
        [NAME_LABEL]: "msync-lock-report",
        team: "data",
      },
      annotations: {
        [HOLDER_ANNOTATION]: "nightly",
        "sync.metaparticle.io/holder-identity": "d-a_1",
        "sync.metaparticle.io/lease-duration": "15",
        "sync.metaparticle.io/queue": '["d-b_2"]',
        [`${WAIT_ANNOTATION_PREFIX}0123456789abcdef`]: "d-c_3",
        note: "kept",
      },
    },
    spec: {
      holderIdentity: "d-a_1",
      leaseDurationSeconds: 15,
      acquireTime: "2026-12-01T10:00:00.000000Z" as unknown as Date,
      renewTime: "2026-12-01T10:00:05.000000Z" as unknown as Date,
      leaseTransitions: 7,
    },
  };
}

test("a lock Lease converts exactly as before seats existed, both ways", (t) => {
  // The expected texts are what the conversion of main at 7328d5d gave for the same Lease and write.
  const record = leaseToRecord(olderLockLease());
  const { native: _native, ...fields } = record;
  t.deepEqual(Object.keys(fields), [
    "name",
    "kind",
    "holderIdentity",
    "holder",
    "leaseDurationSeconds",
    "acquireTime",
    "renewTime",
    "transitions",
    "value",
    "queue",
    "waiting",
    "version",
    "writtenHolder",
    "writtenDuration",
  ]);
  t.is(
    JSON.stringify(fields),
    '{"name":"msync-lock-report","kind":"lock","holderIdentity":"d-a_1","holder":"nightly","leaseDurationSeconds":15,"acquireTime":"2026-12-01T10:00:00.000Z","renewTime":"2026-12-01T10:00:05.000Z","transitions":7,"value":"","queue":["d-b_2"],"waiting":["d-c_3"],"version":"41","writtenHolder":"d-a_1","writtenDuration":15}',
  );
  const renewed = { ...record, renewTime: new Date(Date.UTC(2026, 11, 1, 10, 0, 10)), queue: ["d-b_2", "d-c_3"], waiting: undefined };
  t.is(
    JSON.stringify(recordToLease(renewed, "default")),
    '{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"msync-lock-report","namespace":"default","uid":"6f1c0a52-1111-4222-8333-944455556666","resourceVersion":"41","labels":{"app.kubernetes.io/managed-by":"metaparticle-sync","sync.metaparticle.io/kind":"lock","sync.metaparticle.io/name":"msync-lock-report","team":"data"},"annotations":{"sync.metaparticle.io/holder":"nightly","sync.metaparticle.io/holder-identity":"d-a_1","sync.metaparticle.io/lease-duration":"15","sync.metaparticle.io/queue":"[\\"d-b_2\\",\\"d-c_3\\"]","note":"kept"}},"spec":{"holderIdentity":"d-a_1","leaseDurationSeconds":15,"acquireTime":"2026-12-01T10:00:00.000000Z","renewTime":"2026-12-01T10:00:10.000000Z","leaseTransitions":7}}',
  );
});

test("the kind is read from its label; a kind this version does not know reads as a lock", (t) => {
  const labelled = (kind: string) => {
    const lease = olderLockLease();
    return leaseToRecord({ ...lease, metadata: { ...lease.metadata, labels: { ...lease.metadata!.labels, [KIND_LABEL]: kind } } }).kind;
  };
  t.deepEqual(["lock", "election", "semaphore", "rwlock", "permit", ""].map(labelled), [
    "lock",
    "election",
    "semaphore",
    "rwlock",
    "lock",
    "lock",
  ]);
  const written = recordToLease(leaseRecord({ name: "msync-semaphore-s", kind: "semaphore", permits: 3 }), "default");
  t.is(written.metadata!.labels![KIND_LABEL], "semaphore");
});

const reader: Seat = {
  identity: "d-a_1",
  acquisition: 4,
  durationSeconds: 15,
  renewMs: 1_000_500,
  holder: "report-reader",
  riders: 2,
  acquireWallMs: 1_000_000,
};
const semaphoreSeat: Seat = { ...reader, identity: "d-c_3", permits: 2 };
const tombstone: Seat = { identity: "d-b_2", acquisition: 9, released: true };

test("seats, tombstones and a semaphore's permits round-trip through the Lease: each seat an annotation of its own, JSON with short keys", (t) => {
  const record = leaseRecord({ name: "msync-semaphore-s", kind: "semaphore", permits: 3, seats: [semaphoreSeat, tombstone, reader] });
  const lease = recordToLease(record, "default");
  const annotations = lease.metadata!.annotations!;
  t.is(annotations[PERMITS_ANNOTATION], "3");
  t.is(
    annotations[seatAnnotation("d-a_1")],
    '{"i":"d-a_1","a":4,"d":15,"r":1000500,"h":"report-reader","n":2,"w":1000000}',
    "a read-write lock's seat has no p",
  );
  t.is(annotations[seatAnnotation("d-c_3")], '{"i":"d-c_3","a":4,"d":15,"r":1000500,"h":"report-reader","n":2,"w":1000000,"p":2}');
  t.is(annotations[seatAnnotation("d-b_2")], '{"i":"d-b_2","a":9,"released":true}');
  // An annotation key: a DNS-subdomain prefix, and a name of at most 63 characters that begins and ends alphanumeric.
  const [prefix, keyName] = seatAnnotation("d".repeat(300)).split("/") as [string, string];
  t.is(prefix, "sync.metaparticle.io");
  t.true(keyName.length <= 63 && /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(keyName), keyName);
  t.false(seatAnnotation("d-a_1").startsWith(WAIT_ANNOTATION_PREFIX), "a seat key is never a wait key");
  t.false(waitAnnotation("d-a_1").startsWith(SEAT_ANNOTATION_PREFIX), "nor a wait key a seat key");
  const read = leaseToRecord({ ...lease, metadata: { ...lease.metadata, uid: "u1", resourceVersion: "5" } });
  t.like(read, { kind: "semaphore", permits: 3 });
  t.deepEqual(read.seats, [reader, tombstone, semaphoreSeat], "in identity order");
  t.false("brokenSeats" in read);
  const plain = leaseToRecord(recordToLease(leaseRecord(), "default"));
  t.false("seats" in plain || "permits" in plain || "brokenSeats" in plain, "a Lease without seats has no seat fields");
});

test("the seats a write left, and the removed seats it still counted with their time, round-trip through the seated annotation; an unreadable time counts as unknown", (t) => {
  const seated = [
    { identity: "d-a_1", acquisition: 4 },
    { identity: "d-z_9", acquisition: 2, forMs: 12_345 },
  ];
  const lease = recordToLease(leaseRecord({ name: "msync-semaphore-s", kind: "semaphore", permits: 3, seated }), "default");
  t.is(lease.metadata!.annotations![SEATED_ANNOTATION], '[["d-a_1",4],["d-z_9",2,12345]]');
  const read = leaseToRecord({ ...lease, metadata: { ...lease.metadata, uid: "u1", resourceVersion: "5" } });
  t.deepEqual(read.seated, seated);
  const edited = { ...lease.metadata!.annotations!, [SEATED_ANNOTATION]: '[["d-a_1",4],["d-z_9",2,-1],["d-y_8",3,"soon"]]' };
  t.deepEqual(leaseToRecord({ ...lease, metadata: { ...lease.metadata, uid: "u1", resourceVersion: "6", annotations: edited } }).seated, [
    { identity: "d-a_1", acquisition: 4 },
    { identity: "d-z_9", acquisition: 2 },
    { identity: "d-y_8", acquisition: 3 },
  ]);
});

test("a write keeps exactly the record's seats: other seat keys go, a broken one only unless the record names it, and wait keys are untouched", (t) => {
  const brokenKey = `${SEAT_ANNOTATION_PREFIX}00000000000000ff`;
  const native = recordToLease(
    leaseRecord({ name: "msync-rwlock-r", kind: "rwlock", seats: [reader, tombstone], waiting: ["d-w_9"] }),
    "default",
  );
  native.metadata!.annotations![brokenKey] = "{not json";
  const read = leaseToRecord(native);
  t.deepEqual(read.brokenSeats, [brokenKey]);
  // A writer that observed d-a_1's seat over, and drops the tombstone: only the seat it keeps stays.
  const kept = recordToLease({ ...read, seats: [{ ...reader, identity: "d-e_5" }] }, "default").metadata!.annotations!;
  t.deepEqual(
    Object.keys(kept)
      .filter((key) => key.startsWith(SEAT_ANNOTATION_PREFIX))
      .sort(),
    [seatAnnotation("d-e_5"), brokenKey].sort(),
    "the broken seat stays while the record names it",
  );
  t.is(kept[brokenKey], "{not json", "as it was");
  t.is(kept[waitAnnotation("d-w_9")], "d-w_9");
  const dropped = recordToLease({ ...read, seats: undefined, brokenSeats: undefined }, "default").metadata!.annotations!;
  t.deepEqual(
    Object.keys(dropped).filter((key) => key.startsWith(SEAT_ANNOTATION_PREFIX)),
    [],
  );
  t.is(dropped[waitAnnotation("d-w_9")], "d-w_9", "seat writes leave the wait keys alone");
});

test("a seat key whose value is not a seat (broken JSON, a field missing or wrong, another identity's) is read as broken, by its key; a broken permits annotation as none", (t) => {
  const native = recordToLease(leaseRecord({ name: "msync-rwlock-r", kind: "rwlock", seats: [reader] }), "default");
  const keyOf = (identity: string) => seatAnnotation(identity);
  const broken: Record<string, string> = {
    [keyOf("x1")]: "{not json",
    [keyOf("x2")]: '{"i":"x2","a":1,"r":5,"h":"h","n":1,"w":1}',
    [keyOf("x3")]: '{"i":"someone-else","a":1,"d":15,"r":5,"h":"h","n":1,"w":1}',
    [keyOf("x4")]: '{"i":"x4","a":1,"d":15,"r":5,"h":"h","n":1,"w":1,"p":0}',
    [keyOf("x5")]: '{"i":"x5","a":1,"released":false}',
    [keyOf("x6")]: '["x6"]',
  };
  const read = leaseToRecord({
    ...native,
    metadata: { ...native.metadata, annotations: { ...native.metadata!.annotations, ...broken, [PERMITS_ANNOTATION]: "three" } },
  });
  t.deepEqual(read.seats, [reader]);
  t.deepEqual(read.brokenSeats, Object.keys(broken).sort());
  t.false("permits" in read);
});
