// A lease record for tests: a free lock lease, with any field overridden.
import type { LeaseRecord } from "../../daemon/store/lease-store.js";

export function leaseRecord(fields: Partial<LeaseRecord> = {}): LeaseRecord {
  return {
    name: "msync-lock-x",
    kind: "lock",
    holderIdentity: "",
    holder: "",
    leaseDurationSeconds: 15,
    acquireTime: undefined,
    renewTime: undefined,
    transitions: 1,
    value: "",
    queue: [],
    version: "1",
    ...fields,
  };
}
