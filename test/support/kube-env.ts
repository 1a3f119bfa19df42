// The Kubernetes side of integration tests: by default a real kube-apiserver
// and etcd started on loopback by the test harness; with
// MSYNC_TEST_KUBECONFIG set, the user's own cluster instead (tests that must
// stop or inspect the control plane are then skipped, and say so).
import anyTest, { type TestFn } from "ava";
import { randomBytes } from "node:crypto";
import { type ControlPlane, startControlPlane } from "../controlplane/controlplane.js";
import { type DaemonProcess, type SpawnOptions, spawnDaemon } from "./daemon-process.js";
import { SyncClient } from "metaparticle-sync-client";

export interface KubeEnv {
  readonly kubeconfig: string;
  /** The harness's control plane; undefined against a user's cluster. */
  readonly controlPlane: ControlPlane | undefined;
  /** Creates a fresh namespace, so tests sharing one API server never see each other's Leases. */
  newNamespace(prefix?: string): Promise<string>;
  stop(): Promise<void>;
}

export async function startKubeEnv(): Promise<KubeEnv> {
  const external = process.env.MSYNC_TEST_KUBECONFIG;
  if (external) {
    const { execFileSync } = await import("node:child_process");
    return {
      kubeconfig: external,
      controlPlane: undefined,
      async newNamespace(prefix = "msync-test") {
        const name = `${prefix}-${randomBytes(3).toString("hex")}`;
        execFileSync("kubectl", ["--kubeconfig", external, "create", "namespace", name], { stdio: "ignore" });
        return name;
      },
      async stop() {},
    };
  }
  const controlPlane = await startControlPlane();
  return {
    kubeconfig: controlPlane.kubeconfigPath,
    controlPlane,
    async newNamespace(prefix = "msync-test") {
      const name = `${prefix}-${randomBytes(3).toString("hex")}`;
      await controlPlane.createNamespace(name);
      return name;
    },
    stop: () => controlPlane.stop(),
  };
}

/**
 * The ava `test` of one kube suite file, with a KubeEnv started before its
 * tests and stopped after them, and `controlPlaneTest` for the tests that stop,
 * meter or administer the harness's own control plane (skipped against a
 * user's cluster).
 */
export function kubeSuite() {
  const test = anyTest as TestFn<{ env: KubeEnv }>;
  test.before(async (t) => {
    t.context.env = await startKubeEnv();
  });
  test.after.always(async (t) => {
    await t.context.env?.stop();
  });
  const controlPlaneTest = process.env.MSYNC_TEST_KUBECONFIG ? test.serial.skip : test.serial;
  return { test, controlPlaneTest };
}

export interface KubeDaemon extends DaemonProcess {
  readonly client: SyncClient;
}

/** A daemon process on the Kubernetes backend in `namespace`, with a client. */
export async function spawnKubeDaemon(
  env: KubeEnv,
  namespace: string,
  flags: string[] = [],
  kubeconfig = env.kubeconfig,
  options: SpawnOptions = {},
): Promise<KubeDaemon> {
  const daemon = await spawnDaemon(
    ["--backend=kubernetes", `--kubeconfig=${kubeconfig}`, `--namespace=${namespace}`, ...flags],
    {},
    options,
  );
  const client = new SyncClient({ address: daemon.address });
  return Object.assign(daemon, { client });
}
