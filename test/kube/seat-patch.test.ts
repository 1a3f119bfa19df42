// The seat patches of the Kubernetes store (docs/design.md 6) on a real
// kube-apiserver: the same answers as on the memory store and the simulated
// API server, through client-node's JSON patch.
import { createLogger } from "../../daemon/log.js";
import { KubernetesStore } from "../../daemon/store/kubernetes/kubernetes-store.js";
import { kubeSuite } from "../support/kube-env.js";
import { SEAT_STORY, seatStory } from "../support/seat-story.js";

const { controlPlaneTest } = kubeSuite();

controlPlaneTest(
  "a seat is patched on a real kube-apiserver as on the memory store: whatever the version while it holds exactly the seat expected; a seat changed or removed since, or a Lease deleted and created again, is a conflict, and one gone not-found",
  async (t) => {
    const namespace = await t.context.env.newNamespace("msync-seat");
    const store = KubernetesStore.fromConfig({ kubeconfig: t.context.env.kubeconfig, namespace }, createLogger("silent"));
    const controlPlane = t.context.env.controlPlane!;
    const seen = await seatStory(store, async (name) => {
      const deleted = await controlPlane.request("DELETE", `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases/${name}`);
      t.is(deleted.status, 200);
    });
    t.deepEqual(seen, SEAT_STORY);
  },
);
