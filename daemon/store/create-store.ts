// Chooses the LeaseStore for the configured backend. The Kubernetes store is
// loaded only when used, so the embedded memory backend starts fast.
import type { Config } from "../config.js";
import type { Logger } from "../log.js";
import type { StoreObserver } from "./kubernetes/kubernetes-store.js";
import type { LeaseStore } from "./lease-store.js";
import { MemoryStore } from "./memory/memory-store.js";

export async function createStore(config: Config, log: Logger, observer?: StoreObserver): Promise<LeaseStore> {
  if (config.backend === "memory") return new MemoryStore();
  const { KubernetesStore } = await import("./kubernetes/kubernetes-store.js");
  return KubernetesStore.fromConfig({ kubeconfig: config.kubeconfig, namespace: config.namespace }, log, observer);
}
