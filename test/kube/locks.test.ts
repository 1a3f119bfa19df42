// docs/design.md section 3 against a real kube-apiserver and etcd, with daemons as
// separate processes. Each test has its own namespace.
import { setTimeout as sleep } from "node:timers/promises";
import { type Lock, LostError, SyncClient, SyncClientError, status } from "metaparticle-sync-client";
import { type KubeDaemon, type KubeEnv, kubeSuite, spawnKubeDaemon } from "../support/kube-env.js";

const { test, controlPlaneTest } = kubeSuite();

async function daemons(t: { context: { env: KubeEnv }; teardown(fn: () => unknown): void }, count: number, flags: string[] = []) {
  const namespace = await t.context.env.newNamespace();
  const started: KubeDaemon[] = [];
  for (let i = 0; i < count; i++) {
    const daemon = await spawnKubeDaemon(t.context.env, namespace, [`--identity=daemon-${i}`, ...flags]);
    t.teardown(async () => {
      daemon.client.close();
      await daemon.stop();
    });
    started.push(daemon);
  }
  return { namespace, daemons: started };
}

function onLost(lock: Lock): Promise<LostError> {
  return new Promise((resolve) => lock.signal.addEventListener("abort", () => resolve(lock.signal.reason as LostError), { once: true }));
}

test.serial("mutual exclusion across daemons: clients on three daemons never overlap, tokens increase", async (t) => {
  const {
    daemons: [a, b, c],
  } = await daemons(t, 3);
  let inside = 0;
  let overlaps = 0;
  const tokens: number[] = [];
  const worker = async (client: SyncClient, rounds: number) => {
    for (let i = 0; i < rounds; i++) {
      const lock = await client.lock("shared", { waitTimeout: 60_000 });
      inside += 1;
      if (inside > 1) overlaps += 1;
      tokens.push(lock.token);
      await sleep(2);
      inside -= 1;
      await lock.release();
    }
  };
  const clients = [a!, b!, c!].flatMap((d) => [d.client, new SyncClient({ address: d.address })]);
  t.teardown(() => clients.forEach((client) => client.close()));
  await Promise.all(clients.map((client) => worker(client, 10)));
  t.is(overlaps, 0);
  t.is(tokens.length, 60);
  t.deepEqual(
    tokens,
    [...tokens].sort((x, y) => x - y),
  );
  t.is(new Set(tokens).size, 60);
});

test.serial("prompt handoff: a waiter on daemon B acquires right after a release on daemon A, not after the lease", async (t) => {
  // With a one-hour lease, acquiring within the 60 s wait proves the handoff did not wait for expiry.
  const {
    daemons: [a, b],
  } = await daemons(t, 2, ["--lease-duration=3600s", "--renew-deadline=2400s"]);
  const held = await a!.client.lock("handoff");
  const waiting = b!.client.lock("handoff", { waitTimeout: 60_000 });
  await sleep(200);
  await held.release();
  const next = await waiting;
  t.true(next.token > held.token);
  await next.release();
});

test.serial("crash: daemon A killed with SIGKILL, B takes over after the lease expires", async (t) => {
  const {
    daemons: [a, b],
  } = await daemons(t, 2, ["--lease-duration=3s", "--renew-deadline=2s"]);
  const held = await a!.client.lock("crash");
  const waiting = b!.client.lock("crash", { waitTimeout: 60_000 });
  await sleep(200);
  a!.signal("SIGKILL");
  const next = await waiting;
  t.true(next.token > held.token);
  const info = await b!.client.getLock("crash", { fresh: true });
  t.like(info, { held: true, token: next.token });
  await next.release();
});

test.serial("graceful: daemon A sent SIGTERM, its holder hears Lost and B takes over at once", async (t) => {
  const {
    daemons: [a, b],
  } = await daemons(t, 2, ["--lease-duration=3600s", "--renew-deadline=2400s"]);
  const held = await a!.client.lock("sigterm");
  const lost = onLost(held);
  const waiting = b!.client.lock("sigterm", { waitTimeout: 60_000 });
  await sleep(200);
  a!.signal("SIGTERM");
  t.is((await lost).reason, "shutdown");
  const next = await waiting;
  t.true(next.token > held.token, "taken over without waiting for the one-hour lease");
  t.is(await a!.exited, 0, "the daemon exited cleanly");
  await next.release();
});

test.serial("fencing tokens strictly increase across daemons and across daemon restarts", async (t) => {
  const {
    namespace,
    daemons: [a, b],
  } = await daemons(t, 2);
  const tokens: number[] = [];
  const take = async (client: SyncClient) => {
    const lock = await client.lock("fenced", { waitTimeout: 30_000 });
    tokens.push(lock.token);
    await lock.release();
  };
  for (let i = 0; i < 10; i++) await take(i % 2 === 0 ? a!.client : b!.client);
  a!.client.close();
  await a!.stop();
  const restarted = await spawnKubeDaemon(t.context.env, namespace, ["--identity=daemon-0"]);
  t.teardown(async () => {
    restarted.client.close();
    await restarted.stop();
  });
  for (let i = 0; i < 10; i++) await take(i % 2 === 0 ? restarted.client : b!.client);
  t.is(tokens.length, 20);
  t.true(
    tokens.every((token, i) => i === 0 || token > tokens[i - 1]!),
    `tokens ${tokens.join(",")}`,
  );
});

controlPlaneTest("only its own Leases: a Lease without the managed label is left untouched, with a clear error", async (t) => {
  const {
    namespace,
    daemons: [a],
  } = await daemons(t, 1);
  const cp = t.context.env.controlPlane!;
  // Written the way client-go's leader election writes its Lease: no labels of ours.
  const path = `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases`;
  const created = await cp.request("POST", path, {
    apiVersion: "coordination.k8s.io/v1",
    kind: "Lease",
    metadata: { name: "msync-lock-controller" },
    spec: { holderIdentity: "controller-7d9f_4b1e", leaseDurationSeconds: 15, leaseTransitions: 3 },
  });
  t.is(created.status, 201);
  const before = created.json.metadata.resourceVersion as string;
  const err = (await a!.client.lock("controller", { waitTimeout: 5_000 }).catch((e: unknown) => e)) as SyncClientError;
  t.is(err.code, status.FAILED_PRECONDITION);
  t.regex(err.message, /not managed by metaparticle-sync/);
  const tried = (await a!.client.tryLock("controller").catch((e: unknown) => e)) as SyncClientError;
  t.is(tried.code, status.FAILED_PRECONDITION);
  const after = await cp.request("GET", `${path}/msync-lock-controller`);
  t.is(after.json.metadata.resourceVersion, before, "the foreign Lease was not modified");
  t.is(after.json.spec.holderIdentity, "controller-7d9f_4b1e");
});

controlPlaneTest("API server stopped: the holder gets Lost before the lease passes, new calls get UNAVAILABLE, all recovers", async (t) => {
  const cp = t.context.env.controlPlane!;
  const {
    daemons: [a],
  } = await daemons(t, 1, ["--lease-duration=6s", "--renew-deadline=4s"]);
  const held = await a!.client.lock("outage");
  const lost = onLost(held);
  await sleep(500);
  await cp.stopApiServer();
  const stoppedAt = performance.now();
  try {
    const reason = await lost;
    const lostAfter = performance.now() - stoppedAt;
    t.true(["renew-deadline-exceeded", "heartbeat-timeout"].includes(reason.reason), reason.message);
    t.true(lostAfter < 6_000, `told after ${Math.round(lostAfter)} ms, before the 6 s lease could pass`);
    const tried = (await a!.client.tryLock("other").catch((e: unknown) => e)) as SyncClientError;
    t.is(tried.code, status.UNAVAILABLE, tried.message);
    const read = (await a!.client.getLock("outage", { fresh: true }).catch((e: unknown) => e)) as SyncClientError;
    t.is(read.code, status.UNAVAILABLE);
  } finally {
    await cp.startApiServer();
  }
  const again = await a!.client.lock("outage", { waitTimeout: 60_000 });
  t.true(again.token > held.token, "acquired again once the API server is back");
  await again.release();
});

controlPlaneTest("410 Gone: a daemon whose watch resource version was compacted away relists and keeps working", async (t) => {
  const cp = t.context.env.controlPlane!;
  const {
    namespace,
    daemons: [a, b],
  } = await daemons(t, 2);
  const held = await a!.client.lock("gone");
  const waiting = b!.client.lock("gone", { waitTimeout: 120_000 });
  await sleep(200);
  await cp.stopApiServer();
  // Advance etcd past B's last resource version and compact, while no watch can follow.
  // A watch from revision r is refused only once two or more writes followed r.
  for (let i = 0; i < 3; i++) await etcdPut(cp.etcdEndpoint, `/msync-test/${namespace}/${i}`, "x");
  await cp.compactEtcd();
  await cp.startApiServer();
  await b!.waitForLog("relisting", 60_000);
  await held.release();
  const next = await waiting;
  t.true(next.token > held.token, "B's waiter got the lock after the relist");
  await next.release();
});

controlPlaneTest("no polling while waiting: ten waiters cost the API server no requests beyond the holder's renewals", async (t) => {
  const cp = t.context.env.controlPlane!;
  const {
    daemons: [a, b],
  } = await daemons(t, 2, ["--lease-duration=6s", "--renew-deadline=4s"]);
  const held = await a!.client.lock("idle");
  let renewals = 0;
  // Count the holder's successful renewals: each Renewed is one PUT.
  const renewedStream = a!.client.locks.acquire({ fairness: 0, name: "idle-counter", holder: "counter" });
  renewedStream.on("data", (m: { event?: { $case: string } }) => {
    if (m.event?.$case === "renewed") renewals += 1;
  });
  renewedStream.on("error", () => {}); // cancelled at teardown
  t.teardown(() => renewedStream.cancel());
  const waiters = Array.from({ length: 10 }, (_, i) => b!.client.lock("idle", { holder: `waiter-${i}`, waitTimeout: 120_000 }));
  await sleep(1_000); // let the waiters join the queue
  const verbs = ["GET", "LIST", "POST", "PUT"] as const;
  const count = async () =>
    Object.fromEntries(await Promise.all(verbs.map(async (verb) => [verb, await cp.requestTotal({ resource: "leases", verb })])));
  const before = await count();
  const renewalsBefore = renewals;
  await sleep(10_000);
  const after = await count();
  const counterRenewals = renewals - renewalsBefore;
  t.is(after.GET - before.GET, 0, "no GET");
  t.is(after.LIST - before.LIST, 0, "no LIST");
  t.is(after.POST - before.POST, 0, "no create");
  // Two held locks renew at the same rate: "idle" (held) and "idle-counter" (counted).
  t.true(
    after.PUT - before.PUT <= 2 * (counterRenewals + 1),
    `PUT grew by ${after.PUT - before.PUT} with ${counterRenewals} renewals of each lock`,
  );
  t.log(
    `over 10 s: ${JSON.stringify(Object.fromEntries(verbs.map((v) => [v, after[v] - before[v]])))}, renewals per lock ${counterRenewals}`,
  );
  await held.release();
  const first = await Promise.race(waiters);
  t.is(first.holder, "waiter-0", "the first waiter got it");
  await first.release();
  for (const waiter of waiters.slice(1)) await (await waiter).release();
});

async function etcdPut(endpoint: string, key: string, value: string): Promise<void> {
  const response = await fetch(`${endpoint}/v3/kv/put`, {
    method: "POST",
    body: JSON.stringify({ key: Buffer.from(key).toString("base64"), value: Buffer.from(value).toString("base64") }),
  });
  if (!response.ok) throw new Error(`etcd put: ${response.status} ${await response.text()}`);
}
