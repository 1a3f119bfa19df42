// docs/design.md 3.4 and 3.5 on a real kube-apiserver: a daemon announces that
// it waits by a JSON merge patch of one annotation of its own, which no other
// write makes fail, and which is refused on a Lease deleted and created again.
import { createLogger } from "../../daemon/log.js";
import { KubernetesStore } from "../../daemon/store/kubernetes/kubernetes-store.js";
import { waitAnnotation } from "../../daemon/store/kubernetes/lease-convert.js";
import type { LeaseFields, StoreError } from "../../daemon/store/lease-store.js";
import { kubeSuite } from "../support/kube-env.js";

const { test } = kubeSuite();

test.serial(
  "a daemon's announcement that it waits is a merge patch that lands after another daemon's write, and the next conditional write admits it into the queue",
  async (t) => {
    const namespace = await t.context.env.newNamespace("msync-wait");
    const store = KubernetesStore.fromConfig({ kubeconfig: t.context.env.kubeconfig, namespace }, createLogger("silent"));
    const fields: LeaseFields = {
      name: "msync-lock-announce",
      kind: "lock",
      holderIdentity: "holder_1",
      holder: "h",
      leaseDurationSeconds: 15,
      acquireTime: new Date(),
      renewTime: new Date(),
      transitions: 3,
      value: "",
      queue: [],
    };
    const created = await store.create(fields);
    // The holder writes again: the waiter's view is out of date, and its patch lands all the same.
    const renewed = await store.update({ ...created, renewTime: new Date(Date.now() + 5) });
    const marked = await store.markWaiting(created, "waiter_2", true);
    t.deepEqual(marked.waiting, ["waiter_2"]);
    t.deepEqual([marked.holderIdentity, marked.transitions, marked.queue], [renewed.holderIdentity, renewed.transitions, []]);
    t.true(store.isNewer(marked.version, renewed.version));
    t.is((await store.markWaiting(created, "waiter_2", true)).version, marked.version, "a patch that changes nothing is no new version");
    const stale = await store.update({ ...renewed, renewTime: new Date(Date.now() + 10) }).catch((err: Error) => err);
    t.is((stale as StoreError).reason, "conflict", "the holder's write from before the patch loses");
    const admitted = await store.update({ ...marked, queue: ["waiter_2"], waiting: undefined });
    t.deepEqual([admitted.queue, admitted.waiting], [["waiter_2"], undefined]);
    const stored = await store.get(fields.name);
    t.false(waitAnnotation("waiter_2") in ((stored?.native as { metadata?: { annotations?: object } }).metadata?.annotations ?? {}));
    // Deleted and created again (by hand here): the patch for the Lease seen before is refused.
    const controlPlane = t.context.env.controlPlane;
    if (controlPlane === undefined) return t.pass("deleting a Lease needs the harness's own API server");
    const deleted = await controlPlane.request("DELETE", `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases/${fields.name}`);
    t.is(deleted.status, 200);
    await store.create(fields);
    const refused = await store.markWaiting(marked, "waiter_2", true).catch((err: Error) => err);
    t.is((refused as StoreError).reason, "conflict");
    t.deepEqual((await store.get(fields.name))?.waiting, undefined, "and changed nothing");
  },
);
