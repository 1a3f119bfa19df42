// The lean build (dist/lean/main.mjs: what `npm start` and the image run) on
// the Kubernetes backend. It is bundled with a trimmed client-node (only the
// Lease API's models) and undici (only Agent, ProxyAgent and fetch), so it is
// exercised here against the real API server: writes, the watch, handoffs.
import { KubeConfig } from "@kubernetes/client-node";
import type { ExecutionContext } from "ava";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { type IncomingMessage, createServer } from "node:http";
import { type AddressInfo, type Socket, connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LEAN_MAIN } from "../support/daemon-process.js";
import { type KubeDaemon, type KubeEnv, kubeSuite, spawnKubeDaemon } from "../support/kube-env.js";

const { controlPlaneTest } = kubeSuite();

/** A Lease's acquireTime and renewTime are MicroTimes: six digits of fraction. */
const MICRO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;

/** Two lean-build daemons on the Kubernetes backend, stopped when the test ends. */
async function twoLeanDaemons(
  t: ExecutionContext<{ env: KubeEnv }>,
  namespace: string,
  kubeconfig: string,
): Promise<[KubeDaemon, KubeDaemon]> {
  const daemons: KubeDaemon[] = [];
  t.teardown(async () => {
    for (const d of daemons) d.client.close();
    await Promise.all(daemons.map((d) => d.stop()));
  });
  for (let i = 0; i < 2; i++) daemons.push(await spawnKubeDaemon(t.context.env, namespace, [], kubeconfig, { main: LEAN_MAIN }));
  return daemons as [KubeDaemon, KubeDaemon];
}

controlPlaneTest(
  "lean build: two daemons hand a lock over through a real Lease, and an observer on one follows the leader on the other",
  async (t) => {
    t.true(existsSync(LEAN_MAIN), `${LEAN_MAIN} exists (npm run build)`);
    const env = t.context.env;
    const cp = env.controlPlane!;
    const namespace = await env.newNamespace("lean");
    const daemons = await twoLeanDaemons(t, namespace, env.kubeconfig);
    const [a, b] = daemons;

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

controlPlaneTest(
  "lean build through an HTTP proxy (the kubeconfig's proxy-url): its calls and watch go by undici, loaded at first use, and a lock is handed over",
  async (t) => {
    const env = t.context.env;
    const namespace = await env.newNamespace("lean-proxy");
    // A CONNECT proxy on loopback that counts the tunnels it opens.
    let tunnels = 0;
    const proxy = createServer();
    proxy.on("connect", (req: IncomingMessage, client: Socket, head: Buffer) => {
      const [host, port] = (req.url ?? "").split(":");
      const upstream = connect(Number(port), host, () => {
        tunnels += 1;
        client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
        upstream.write(head);
        upstream.pipe(client);
        client.pipe(upstream);
      });
      upstream.on("error", () => client.destroy());
      client.on("error", () => upstream.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
    t.teardown(() => new Promise<void>((resolve) => proxy.close(() => resolve())));
    proxy.unref();
    const config = new KubeConfig();
    config.loadFromFile(env.kubeconfig);
    const cluster = config.getCurrentCluster()!;
    config.clusters = config.clusters.map((c) =>
      c.name === cluster.name ? { ...c, proxyUrl: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}` } : c,
    );
    const dir = mkdtempSync(join(tmpdir(), "msync-lean-proxy-"));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const kubeconfig = join(dir, "kubeconfig");
    writeFileSync(kubeconfig, config.exportConfig());

    const daemons = await twoLeanDaemons(t, namespace, kubeconfig);
    const [a, b] = daemons;
    const held = await a.client.lock("lean-proxy", { holder: "first" });
    const waiting = b.client.lock("lean-proxy", { holder: "second" });
    await new Promise((resolve) => setTimeout(resolve, 300)); // queued behind the holder
    await held.release();
    const next = await waiting;
    t.is(next.token, held.token + 1, "the waiter on the other daemon took over");
    await next.release();
    t.true(tunnels >= 2, `both daemons reached the API server through the proxy (${tunnels} tunnels)`);
    t.deepEqual(
      daemons.flatMap((d) => d.logs.filter((l) => l.level === "warn" || l.level === "error")),
      [],
      "no warnings",
    );
  },
);
