// The Lease's name label, by which each daemon's watch selects the names its
// clients use (docs/design.md 3.10).
import test from "ava";
import {
  HOLDER_ANNOTATION,
  MANAGED_BY,
  MANAGED_BY_LABEL,
  MANAGED_SELECTOR,
  NAME_LABEL,
  leaseToRecord,
  nameLabelValue,
  recordToLease,
  selectorFor,
  watchedChange,
} from "../../daemon/store/kubernetes/lease-convert.js";
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
