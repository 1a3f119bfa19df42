// Edits to managed Leases that no daemon made (kubectl, an administrator,
// another program using the same Lease), against a real kube-apiserver and
// etcd with daemons as separate processes (docs/design.md 3.5 and 3.10).
// The streams are driven through the generated stubs, so what is checked is
// what the sidecar says, whatever a wrapper would make of it.
import { setTimeout as sleep } from "node:timers/promises";
import type { ExecutionContext } from "ava";
import type { SyncClient } from "metaparticle-sync-client";
import { LossReason } from "metaparticle-sync-client/gen/metaparticle/sync/v1/types";
import { type KubeDaemon, type KubeEnv, kubeSuite, spawnKubeDaemon } from "../support/kube-env.js";
import { callOk } from "../support/calls.js";

const { controlPlaneTest } = kubeSuite();

async function daemons(t: { context: { env: KubeEnv }; teardown(fn: () => unknown): void }, count: number) {
  const namespace = await t.context.env.newNamespace();
  const started: KubeDaemon[] = [];
  for (let i = 0; i < count; i++) {
    const daemon = await spawnKubeDaemon(t.context.env, namespace, [`--identity=daemon-${i}`]);
    t.teardown(async () => {
      daemon.client.close();
      await daemon.stop();
    });
    started.push(daemon);
  }
  return { namespace, daemons: started };
}

/** One Acquire stream, as the sidecar reports it. */
function hold(client: SyncClient, name: string, holder: string, leaseSeconds: number, waitSeconds: number) {
  const events: string[] = [];
  const stream = client.locks.acquire({
    fairness: 0,
    name,
    holder,
    leaseDuration: { seconds: leaseSeconds, nanos: 0 },
    waitTimeout: { seconds: waitSeconds, nanos: 0 },
  });
  const acquired = new Promise<number>((resolve, reject) => {
    stream.on("data", (response: { event?: { $case: string; value: { fencingToken?: number } } }) => {
      events.push(response.event!.$case === "lost" ? `lost (${JSON.stringify(response.event!.value)})` : response.event!.$case);
      if (response.event!.$case === "acquired") resolve(response.event!.value.fencingToken!);
    });
    stream.on("error", (err) => reject(err));
  });
  acquired.catch(() => {});
  return { acquired, events, close: () => stream.cancel() };
}

controlPlaneTest(
  "removing the name label by hand is not a deletion: the holder keeps the lock and hands it over promptly on release",
  async (t) => {
    const {
      namespace,
      daemons: [a, b],
    } = await daemons(t, 2);
    const cp = t.context.env.controlPlane!;
    // A one-hour lease: a waiter served within its 60 s wait was handed the lock, not left to wait for expiry.
    const holder = hold(a!.client, "relabel", "a", 3600, 60);
    const token = await holder.acquired;
    const waiter = hold(b!.client, "relabel", "b", 3600, 60);
    await sleep(500);
    const path = `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases/msync-lock-relabel`;
    const patched = await cp.request(
      "PATCH",
      path,
      { metadata: { labels: { "sync.metaparticle.io/name": null } } },
      {
        contentType: "application/merge-patch+json",
      },
    );
    t.is(patched.status, 200, patched.body);
    await sleep(2000);
    t.false(
      holder.events.some((e) => e.startsWith("lost")),
      `the holder was not told it lost the lock: ${holder.events.join(", ")}`,
    );
    t.false(waiter.events.includes("acquired"), "the waiter was not granted while the holder holds");
    const info = await callOk<{ held: boolean; holder: string; fencingToken: number }>((cb) =>
      a!.client.locks.getLock({ name: "relabel", consistency: 0 }, cb),
    );
    t.like(info, { held: true, holder: "a", fencingToken: token }, "the holder's daemon still reports the lock held");
    holder.close();
    t.true((await waiter.acquired) > token, "the waiter is handed the lock when the holder releases");
    waiter.close();
  },
);

controlPlaneTest("a holder that is not a daemon is reported by its holderIdentity, not by the name our annotation kept", async (t) => {
  const {
    namespace,
    daemons: [a],
  } = await daemons(t, 1);
  const cp = t.context.env.controlPlane!;
  const stream = a!.client.elections.campaign({ name: "shared-lease", candidate: "ours", value: "10.0.0.1:80" });
  const term = await new Promise<number>((resolve, reject) => {
    stream.on("data", (r: { event?: { $case: string; value: { term?: number } } }) => {
      if (r.event!.$case === "elected") resolve(r.event!.value.term!);
    });
    stream.on("error", reject);
  });
  stream.on("error", () => {});
  await callOk((cb) => a!.client.elections.resign({ name: "shared-lease", term }, cb));
  // client-go's leader election takes the same Lease: it writes the spec and leaves our annotations.
  const path = `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases/msync-election-shared-lease`;
  const lease = (await cp.request("GET", path)).json;
  const now = new Date().toISOString().replace("Z", "000Z");
  lease.spec = {
    ...lease.spec,
    holderIdentity: "controller-7d9f",
    leaseDurationSeconds: 15,
    leaseTransitions: term + 1,
    acquireTime: now,
    renewTime: now,
  };
  const replaced = await cp.request("PUT", path, lease);
  t.is(replaced.status, 200, replaced.body);
  const leader = await callOk<{ leader: string; value: string; term: number }>((cb) =>
    a!.client.elections.getLeader({ name: "shared-lease", consistency: 2 }, cb),
  );
  t.like(leader, { leader: "controller-7d9f", value: "", term: term + 1 });
});

controlPlaneTest("a Lease deleted by hand is a deletion: its holder is told the lease was deleted", async (t) => {
  const {
    namespace,
    daemons: [a],
  } = await daemons(t, 1);
  const cp = t.context.env.controlPlane!;
  const holder = hold(a!.client, "deleted", "a", 15, 60);
  await holder.acquired;
  const deleted = await cp.request("DELETE", `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases/msync-lock-deleted`);
  t.is(deleted.status, 200, deleted.body);
  for (let i = 0; i < 100 && !holder.events.some((e) => e.startsWith("lost")); i++) await sleep(100);
  t.true(
    holder.events.some((e) => e.startsWith("lost") && e.includes(`"reason":${LossReason.LOSS_REASON_DELETED}`)),
    holder.events.join(", "),
  );
  holder.close();
});

controlPlaneTest(
  "mixed versions: a Lease an older daemon wrote without the name label is seen by a scoped watch, and its leader reported",
  async (t) => {
    const {
      namespace,
      daemons: [a],
    } = await daemons(t, 1);
    const cp = t.context.env.controlPlane!;
    // As a daemon from before the scoped watch writes it: managed, but no sync.metaparticle.io/name label.
    const path = `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases`;
    const now = () => new Date().toISOString().replace("Z", "000Z");
    const created = await cp.request("POST", path, {
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: {
        name: "msync-election-upgrade",
        labels: { "app.kubernetes.io/managed-by": "metaparticle-sync", "sync.metaparticle.io/kind": "election" },
        annotations: { "sync.metaparticle.io/holder": "old-leader", "sync.metaparticle.io/value": "10.0.0.9:80" },
      },
      spec: { holderIdentity: "old-daemon", leaseDurationSeconds: 15, leaseTransitions: 7, acquireTime: now(), renewTime: now() },
    });
    t.is(created.status, 201, created.body);
    const seen: Array<{ leader: string; term: number }> = [];
    const observation = a!.client.elections.observe({ name: "upgrade" });
    observation.on("data", (state: { leader: string; term: number }) => seen.push(state));
    observation.on("error", () => {});
    t.teardown(() => observation.cancel());
    for (let i = 0; i < 100 && !seen.some((s) => s.leader === "old-leader"); i++) await sleep(100);
    t.like(seen.at(-1), { leader: "old-leader", term: 7 }, `observed: ${JSON.stringify(seen)}`);
    // The older daemon renews, still without the label: the observation and a cached read keep the leader.
    const lease = (await cp.request("GET", `${path}/msync-election-upgrade`)).json;
    lease.spec.renewTime = now();
    t.is((await cp.request("PUT", `${path}/msync-election-upgrade`, lease)).status, 200);
    await sleep(1000);
    const leader = await callOk<{ leader: string; term: number }>((cb) =>
      a!.client.elections.getLeader({ name: "upgrade", consistency: 1 }, cb),
    );
    t.like(leader, { leader: "old-leader", term: 7 });
    t.false(
      seen.some((s) => s.leader === "" && seen.indexOf(s) > seen.findIndex((x) => x.leader === "old-leader")),
      "never 'no leader' after the old leader was seen",
    );
  },
);

/** One Acquire stream, with when (test clock) each promise it was given runs out. */
function promisedHold(client: SyncClient, name: string, holder: string, leaseSeconds: number) {
  const state = { grantedAt: undefined as number | undefined, validUntil: 0, lost: undefined as string | undefined, token: 0 };
  const stream = client.locks.acquire({
    fairness: 0,
    name,
    holder,
    leaseDuration: { seconds: leaseSeconds, nanos: 0 },
    waitTimeout: { seconds: 120, nanos: 0 },
  });
  const millis = (d?: { seconds: number; nanos: number }) => (d === undefined ? 0 : d.seconds * 1000 + d.nanos / 1e6);
  stream.on(
    "data",
    (response: { event?: { $case: string; value: { fencingToken?: number; validFor?: { seconds: number; nanos: number } } } }) => {
      const now = performance.now();
      const { $case, value } = response.event!;
      if ($case === "acquired") {
        state.grantedAt = now;
        state.token = value.fencingToken!;
      }
      if ($case === "acquired" || $case === "renewed") state.validUntil = now + millis(value.validFor);
      if ($case === "lost") state.lost ??= JSON.stringify(value);
    },
  );
  stream.on("error", () => {});
  return { state, close: () => stream.cancel() };
}

type Edit = { method: "DELETE" } | { method: "PATCH"; body: unknown };

/** A lock held through daemon 0, a waiter on daemon 1, and `change` made by hand to its Lease. */
async function handEdit(t: ExecutionContext<{ env: KubeEnv }>, change: Edit): Promise<void> {
  const {
    namespace,
    daemons: [a, b],
  } = await daemons(t, 2);
  const cp = t.context.env.controlPlane!;
  const holder = promisedHold(a!.client, "edited", "a", 6);
  for (let i = 0; i < 200 && holder.state.grantedAt === undefined; i++) await sleep(50);
  t.truthy(holder.state.grantedAt, "the holder was granted");
  const waiter = promisedHold(b!.client, "edited", "b", 6);
  await sleep(2_500); // a renewal, so that the promise is the renewed one
  const promised = holder.state.validUntil;
  const path = `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases/msync-lock-edited`;
  const edited =
    change.method === "DELETE"
      ? await cp.request("DELETE", path)
      : await cp.request("PATCH", path, change.body, { contentType: "application/merge-patch+json" });
  t.is(edited.status, 200, edited.body);
  for (let i = 0; i < 200 && waiter.state.grantedAt === undefined; i++) await sleep(100);
  t.truthy(holder.state.lost, "the holder was told");
  t.truthy(waiter.state.grantedAt, "the waiter was granted once the lease observed ran out");
  t.true(
    waiter.state.grantedAt! >= promised,
    `the waiter was granted ${(promised - waiter.state.grantedAt!).toFixed(0)} ms before the holder's valid_for ran out`,
  );
  t.true(waiter.state.token > holder.state.token, `token ${waiter.state.token} after ${holder.state.token}`);
  holder.close();
  waiter.close();
}

controlPlaneTest(
  "a hand edit (kubectl delete) tells the holder at once, and no waiter is granted before the holder's valid_for has run out",
  (t) => handEdit(t, { method: "DELETE" }),
);

controlPlaneTest(
  "a hand edit (holderIdentity cleared) tells the holder at once, and no waiter is granted before the holder's valid_for has run out",
  (t) => handEdit(t, { method: "PATCH", body: { spec: { holderIdentity: null } } }),
);
