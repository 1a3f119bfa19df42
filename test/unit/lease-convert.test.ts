// The Lease's name label, by which each daemon's watch selects the names its
// clients use (docs/design.md 3.10).
import test from "ava";
import { MANAGED_SELECTOR, NAME_LABEL, nameLabelValue, recordToLease, selectorFor } from "../../daemon/store/kubernetes/lease-convert.js";
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
