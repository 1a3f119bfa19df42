// Operating the daemon on the Kubernetes backend: its metrics, its probes,
// and a second signal when a graceful shutdown cannot finish.
import { credentials, loadPackageDefinition, type Client } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { protoPath as healthProtoPath } from "grpc-health-check";
import { type KubeEnv, kubeSuite, spawnKubeDaemon } from "../support/kube-env.js";

const { test, controlPlaneTest } = kubeSuite();

/** The value of one sample in Prometheus text format, e.g. metric('msync_locks_held'). */
function metric(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const match = /^([a-z_]+)(\{([^}]*)\})? (\S+)$/.exec(line);
    if (match === null || match[1] !== name) continue;
    const present = Object.fromEntries(
      (match[3] ?? "")
        .split(",")
        .filter(Boolean)
        .map((pair) => pair.split("=").map((p) => p.replace(/"/g, "")) as [string, string]),
    );
    if (Object.entries(labels).every(([k, v]) => present[k] === v)) return Number(match[4]);
  }
  return undefined;
}

test.serial("metrics: a scrape shows locks held, waiters, acquisitions, handoffs, renewals and API requests", async (t) => {
  const namespace = await t.context.env.newNamespace("metrics");
  const a = await spawnKubeDaemon(t.context.env, namespace, ["--metrics-listen=127.0.0.1:0", "--lease-duration=3s", "--renew-deadline=2s"]);
  t.teardown(async () => {
    a.client.close();
    await a.stop();
  });
  const metricsAddress = String((await a.waitForLog("metrics listening")).address);
  const scrape = async () => (await fetch(`http://${metricsAddress}/metrics`)).text();

  const held = await a.client.lock("scraped");
  const waiting = a.client.lock("scraped", { holder: "second" });
  waiting.catch(() => {}); // awaited below; a failure above must not be reported twice
  const campaign = a.client.campaign("scraped", { candidate: "leader" });
  t.teardown(() => campaign.close());
  const events = campaign[Symbol.asyncIterator]();
  while ((await events.next()).value?.type !== "elected");
  await new Promise((resolve) => setTimeout(resolve, 1_500)); // a renewal or two
  let text = await scrape();
  t.is(metric(text, "msync_locks_held"), 1);
  t.is(metric(text, "msync_elections_led"), 1);
  t.is(metric(text, "msync_waiters", { kind: "lock" }), 1);
  t.is(metric(text, "msync_acquisitions_total", { kind: "lock" }), 1);
  t.true((metric(text, "msync_renew_seconds_count", { kind: "lock" }) ?? 0) >= 1, "renewals are timed");
  t.true((metric(text, "msync_api_requests_total", { verb: "list", code: "200" }) ?? 0) >= 1, "the watch's list is counted");
  t.true((metric(text, "msync_api_requests_total", { verb: "update", code: "200" }) ?? 0) >= 2, "writes are counted");
  t.true(
    (metric(text, "msync_watch_events_total", { type: "MODIFIED" }) ?? 0) >= 1,
    "the renewals came back on the watch and were counted",
  );
  t.truthy(metric(text, "process_resident_memory_bytes"), "process metrics too");

  await held.release();
  await (await waiting).release();
  text = await scrape();
  t.is(metric(text, "msync_acquisitions_total", { kind: "lock" }), 2);
  t.is(metric(text, "msync_handoff_seconds_count", { kind: "lock" }), 1, "the local handoff was measured");
  t.is(metric(text, "msync_waiters", { kind: "lock" }), 0);
  const notFound = await fetch(`http://${metricsAddress}/other`);
  t.is(notFound.status, 404);
});

test.serial(
  "scoped watch: a daemon hears nothing of leases its clients do not use, reads them on request, and follows them once used",
  async (t) => {
    const namespace = await t.context.env.newNamespace("scoped");
    const flags = ["--metrics-listen=127.0.0.1:0", "--lease-duration=3s", "--renew-deadline=2s"];
    const [a, b] = await Promise.all([spawnKubeDaemon(t.context.env, namespace, flags), spawnKubeDaemon(t.context.env, namespace, flags)]);
    t.teardown(async () => {
      a.client.close();
      b.client.close();
      await Promise.all([a.stop(), b.stop()]);
    });
    const scrape = async (d: typeof a) =>
      (await fetch(`http://${String((await d.waitForLog("metrics listening")).address)}/metrics`)).text();
    const leaseEvents = (text: string) =>
      ["ADDED", "MODIFIED", "DELETED"].reduce((sum, type) => sum + (metric(text, "msync_watch_events_total", { type }) ?? 0), 0);

    const held = await a.client.lock("busy", { holder: "a-client" });
    await new Promise((resolve) => setTimeout(resolve, 2_500)); // a renews its lease a few times
    t.true(leaseEvents(await scrape(a)) >= 2, "a hears its own lease's renewals");
    t.is(leaseEvents(await scrape(b)), 0, "b, whose clients use nothing, hears none of them");

    const state = await b.client.getLock("busy");
    t.like(state, { held: true, holder: "a-client" }, "b reads a lease it does not watch from the API server");

    const waiting = b.client.lock("busy", { holder: "b-client" });
    await new Promise((resolve) => setTimeout(resolve, 500)); // b's watch now covers the name
    await held.release();
    const next = await waiting;
    t.is(next.token, held.token + 1, "b's waiter is served at the release");
    t.true(leaseEvents(await scrape(b)) >= 1, "b heard the release on its watch");
    await next.release();

    // A name too long for a label value is selected by its hashed value; the API server accepts it.
    const long = `report-${"x".repeat(80)}.${"y".repeat(100)}`;
    const first = await b.client.lock(long, { holder: "b-client" });
    const second = a.client.lock(long, { holder: "a-client" });
    await new Promise((resolve) => setTimeout(resolve, 500));
    await first.release();
    const secondHeld = await second;
    t.is(secondHeld.token, first.token + 1, "a waiter on a long name is served too");
    await secondHeld.release();
  },
);

test.serial("probes: the health-only port reports readiness once synced, and liveness", async (t) => {
  const namespace = await t.context.env.newNamespace("probes");
  const a = await spawnKubeDaemon(t.context.env, namespace, ["--health-listen=127.0.0.1:0"]);
  t.teardown(async () => {
    a.client.close();
    await a.stop();
  });
  const address = String((await a.waitForLog("health probes listening")).address);
  const pkg = loadPackageDefinition(loadSync(healthProtoPath, { enums: String })) as unknown as {
    grpc: {
      health: {
        v1: {
          Health: new (a: string, c: unknown) => Client & { check(r: object, cb: (e: Error | null, r: { status: string }) => void): void };
        };
      };
    };
  };
  const health = new pkg.grpc.health.v1.Health(address, credentials.createInsecure());
  t.teardown(() => health.close());
  const check = (service: string) =>
    new Promise<string>((resolve, reject) => health.check({ service }, (err, r) => (err ? reject(err) : resolve(r.status))));
  t.is(await check("readiness"), "SERVING");
  t.is(await check("liveness"), "SERVING");
  t.is(await check(""), "SERVING");
});

controlPlaneTest("a second SIGTERM exits at once when the graceful shutdown cannot reach the API server", async (t) => {
  const cp = t.context.env.controlPlane!;
  const namespace = await t.context.env.newNamespace("signals");
  const a = await spawnKubeDaemon(t.context.env, namespace, ["--shutdown-timeout=120s"]);
  t.teardown(async () => {
    a.client.close();
    await a.stop();
  });
  await a.client.lock("stuck");
  await cp.stopApiServer();
  try {
    a.signal("SIGTERM");
    await a.waitForLog("shutting down");
    await new Promise((resolve) => setTimeout(resolve, 500)); // the release is now retrying against a stopped API server
    t.is(a.child.exitCode, null, "still trying to release gracefully");
    a.signal("SIGTERM");
    t.is(await a.exited, 1, "the second signal exits at once, without waiting out the 120 s shutdown timeout");
    t.truthy(a.logs.find((l) => String(l.msg).includes("second signal")));
  } finally {
    await cp.startApiServer();
  }
});
