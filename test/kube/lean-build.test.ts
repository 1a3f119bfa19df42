// The lean build (dist/lean/main.mjs: what `npm start` and the image run) on
// the Kubernetes backend. It is bundled with a trimmed client-node (only the
// Lease API's models) and undici (only Agent, ProxyAgent and fetch), so it is
// exercised here against the real API server: writes, the watch, handoffs.
import { existsSync } from "node:fs";
import { LEAN_MAIN } from "../support/daemon-process.js";
import { type KubeDaemon, kubeSuite, spawnKubeDaemon } from "../support/kube-env.js";

const { controlPlaneTest } = kubeSuite();

/** A Lease's acquireTime and renewTime are MicroTimes: six digits of fraction. */
const MICRO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;

controlPlaneTest(
  "lean build: two daemons hand a lock over through a real Lease, and an observer on one follows the leader on the other",
  async (t) => {
    t.true(existsSync(LEAN_MAIN), `${LEAN_MAIN} exists (npm run build)`);
    const env = t.context.env;
    const cp = env.controlPlane!;
    const namespace = await env.newNamespace("lean");
    const daemons: KubeDaemon[] = [];
    t.teardown(async () => {
      for (const d of daemons) d.client.close();
      await Promise.all(daemons.map((d) => d.stop()));
    });
    for (let i = 0; i < 2; i++) daemons.push(await spawnKubeDaemon(env, namespace, [], env.kubeconfig, { main: LEAN_MAIN }));
    const [a, b] = daemons as [KubeDaemon, KubeDaemon];

    const held = await a.client.lock("lean", { holder: "first" });
    const path = `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases/msync-lock-lean`;
    const lease = await cp.request("GET", path);
    t.is(lease.status, 200);
    t.is(lease.json.spec.leaseTransitions, held.token, "the fencing token is the Lease's transitions");
    t.regex(lease.json.spec.renewTime, MICRO_TIME);
    t.regex(lease.json.spec.acquireTime, MICRO_TIME);

    const waiting = b.client.lock("lean", { holder: "second" });
    await new Promise((resolve) => setTimeout(resolve, 300)); // queued behind the holder
    await held.release();
    const next = await waiting;
    t.is(next.token, held.token + 1, "the waiter on the other daemon took over");
    await next.release();

    const observed = b.client.observe("lean-election")[Symbol.asyncIterator]();
    const campaign = a.client.campaign("lean-election", { candidate: "lean-leader", value: "here" });
    t.teardown(() => campaign.close());
    for (let i = 0; i < 10; i++) {
      const { value } = await observed.next();
      if (value?.leader === "lean-leader") {
        t.is(value.value, "here");
        break;
      }
      if (i === 9) t.fail("the observer never saw the leader");
    }
    await observed.return?.();
    t.deepEqual(
      daemons.flatMap((d) => d.logs.filter((l) => l.level === "warn" || l.level === "error")),
      [],
      "no warnings",
    );
  },
);
