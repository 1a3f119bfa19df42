// A daemon whose connection to the API server lost bytes (the one-way
// partition of the fault proxy) must, once the network heals, serve the
// waiter it queued in the Lease before a waiter that came later on another
// daemon (docs/design.md 3.3 and 3.4: handoff follows the watch; daemons are served
// in queue order). Found by the one-way-partition scenario's fairness check.
//
// What went wrong up to 17b65bf: the daemon's watch was an HTTP/2 stream
// (undici negotiated h2 with kube-apiserver). Bytes lost in either direction
// (DATA frames the daemon never read, or the WINDOW_UPDATE frames it sent) are
// flow-control credit the API server never gets back, so the watch stream
// stopped delivering events without any error, and the daemon noticed only
// when @kubernetes/client-node's 30 s idle timer ended the watch. Until then
// its cache was stale: it did not see the lock released, the other daemon
// skipped it after the turn grace, and its waiters were passed over (200
// grants to others in one workload run) although the network was healthy
// again. 1f9f8e0 pools HTTP/1.1 connections instead, and a corrupted watch
// connection now fails at its next byte; this test guards that.
import anyTest, { type TestFn } from "ava";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { type Campaign, type Lock, SyncClient } from "metaparticle-sync-client";
import type { ControlPlane } from "../controlplane/controlplane.js";
import { type DaemonProcess, spawnDaemon } from "../support/daemon-process.js";
import { startFaultEnv } from "./cluster.js";
import { FaultProxy } from "./proxy.js";

const test = anyTest as TestFn<{ cp: ControlPlane }>;

test.before(async (t) => {
  t.context.cp = await startFaultEnv();
});

test.after.always(async (t) => {
  await t.context.cp?.stop();
});

interface Setup {
  readonly a: DaemonProcess;
  readonly b: DaemonProcess;
  readonly proxy: FaultProxy;
  readonly clientA: SyncClient;
  readonly clientB: SyncClient;
  readonly namespace: string;
}

/** Daemon A reaches the API server through a fault proxy, daemon B directly. */
async function setup(t: { context: { cp: ControlPlane }; teardown(fn: () => unknown): void }): Promise<Setup> {
  const cp = t.context.cp;
  const namespace = `stall-${Math.floor(Math.random() * 1e6)}`;
  await cp.createNamespace(namespace);
  const proxy = new FaultProxy("127.0.0.1", Number(new URL(cp.server).port));
  const port = await proxy.listen();
  const dir = mkdtempSync(join(tmpdir(), "msync-stall-"));
  const kubeconfig = join(dir, "kubeconfig.yaml");
  writeFileSync(kubeconfig, readFileSync(cp.kubeconfigPath, "utf8").replace(cp.server, `https://127.0.0.1:${port}`));
  const flags = (id: string, config: string) => [
    "--backend=kubernetes",
    `--kubeconfig=${config}`,
    `--namespace=${namespace}`,
    `--identity=${id}`,
    // A long lease, so that A's own view of B's lease does not run out (which
    // would make A re-read the Lease) while the test runs.
    "--lease-duration=60s",
    "--renew-deadline=40s",
  ];
  const a = await spawnDaemon(flags("da", kubeconfig));
  const b = await spawnDaemon(flags("db", cp.kubeconfigPath));
  const clientA = new SyncClient({ address: a.address });
  const clientB = new SyncClient({ address: b.address });
  t.teardown(async () => {
    clientA.close();
    clientB.close();
    proxy.heal();
    await Promise.all([a.stop(), b.stop()]);
    await proxy.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { a, b, proxy, clientA, clientB, namespace };
}

/**
 * Waits until the Lease of lock `name` has a daemon whose identity starts with
 * `prefix` in line: in its wait queue, or announced as waiting (its own
 * `sync.metaparticle.io/wait.*` annotation, which the next write of any daemon
 * moves into the queue; docs/design.md 3.4).
 */
async function queued(cp: ControlPlane, namespace: string, name: string, prefix: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const lease = await cp.request("GET", `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases/msync-lock-${name}`);
    const annotations = (lease.json?.metadata?.annotations ?? {}) as Record<string, string>;
    const queue = JSON.parse(annotations["sync.metaparticle.io/queue"] ?? "[]") as string[];
    const announced = Object.entries(annotations)
      .filter(([key]) => key.startsWith("sync.metaparticle.io/wait."))
      .map(([, id]) => id);
    if ([...queue, ...announced].some((id) => id.startsWith(prefix))) return;
    await sleep(50);
  }
  throw new Error(`daemon ${prefix} never joined the wait queue of ${name}`);
}

/**
 * The scenario: B holds "w"; A's client waits for it (A is queued in the
 * Lease); Lease traffic flows while, if `partition`, the proxy drops every
 * byte from the API server to A; the network heals; then a second client,
 * on B, starts waiting, and B's holder releases. Resolves with the tokens the
 * first (on A) and the later (on B) waiter got.
 */
async function race(s: Setup, cp: ControlPlane, partition: boolean): Promise<{ first: number; late: number; dropped: number }> {
  const holder = await s.clientB.lock("w", { holder: "holder" });
  const firstWaiter = s.clientA.lock("w", { holder: "first", waitTimeout: 60_000 });
  await queued(cp, s.namespace, "w", "da_");
  // Lease events for A's watch to carry: a leader on B proclaims 4 KiB values.
  const campaign: Campaign = s.clientB.campaign("traffic", { candidate: "traffic" });
  while (!campaign.leading) await sleep(10);
  if (partition) s.proxy.drop("down", true);
  const started = performance.now();
  // Bounded: at most 300 proclaims (1.2 MB of events) or 20 s. With the
  // partition, stop once the API server stops sending to A (nothing more is
  // dropped for 20 proclaims in a row): its HTTP/2 send window is used up.
  let lastDropped = -1;
  let still = 0;
  for (let i = 0; i < 300 && performance.now() - started < 20_000; i++) {
    await campaign.proclaim(`${i}-${"x".repeat(4000)}`);
    if (!partition && i >= 100) break;
    still = s.proxy.bytes.droppedDown === lastDropped ? still + 1 : 0;
    lastDropped = s.proxy.bytes.droppedDown;
    if (partition && still >= 20) break;
  }
  s.proxy.heal();
  campaign.close();
  await sleep(1_000); // the network is healthy again
  const lateWaiter = s.clientB.lock("w", { holder: "late", waitTimeout: 60_000 });
  await sleep(200); // "late" waits on B
  await holder.release();
  // Whoever gets it first releases at once, so the other gets it too.
  const order: Lock[] = [];
  await Promise.all(
    [firstWaiter, lateWaiter].map(async (waiting) => {
      const lock = await waiting;
      order.push(lock);
      await lock.release();
    }),
  );
  return { first: (await firstWaiter).token, late: (await lateWaiter).token, dropped: s.proxy.bytes.droppedDown };
}

test.serial("control: without a partition, the waiter queued first on daemon A gets the lock before a later waiter on B", async (t) => {
  const s = await setup(t);
  const { first, late } = await race(s, t.context.cp, false);
  t.true(first < late, `first (on A) got token ${first}, late (on B) got ${late}`);
});

test.serial(
  "after a one-way partition heals, the waiter queued first on daemon A still gets the lock before a later waiter on B",
  async (t) => {
    const s = await setup(t);
    const { first, late, dropped } = await race(s, t.context.cp, true);
    t.log(`${dropped} bytes from the API server to daemon A were dropped; first (on A) got token ${first}, late (on B) got ${late}`);
    t.true(
      first < late,
      `the later waiter on B was served first: A's watch is still stalled after the network healed (tokens: first ${first}, late ${late})`,
    );
  },
);
