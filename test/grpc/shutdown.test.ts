// Graceful shutdown (docs/design.md 3.7) of a daemon process: SIGTERM stops new
// calls, tells holders and leaders, ends every stream with UNAVAILABLE and a
// reason, and exits.
import test from "ava";
import { once } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { LostError, SyncClient, type SyncClientError, status } from "metaparticle-sync-client";
import { spawnDaemon } from "../support/daemon-process.js";

test("SIGTERM: the holder hears Lost(shutdown), waiters and observers get UNAVAILABLE, the leader is deposed, the daemon exits 0", async (t) => {
  const daemon = await spawnDaemon(["--backend=memory"]);
  t.teardown(() => daemon.stop());
  const client = new SyncClient({ address: daemon.address });
  t.teardown(() => client.close());

  const held = await client.lock("drain", { holder: "holder" });
  const lost = new Promise<LostError>((resolve) => held.signal.addEventListener("abort", () => resolve(held.signal.reason as LostError)));
  const waiter = client.lock("drain", { holder: "waiter" }).catch((err: SyncClientError) => err);

  const campaign = client.campaign("drain", { candidate: "leader" });
  const events: string[] = [];
  const campaignDone = (async () => {
    for await (const event of campaign) events.push(event.type === "deposed" ? `deposed:${event.reason}` : event.type);
  })().catch((err: SyncClientError) => err);

  const observer = client.observe("drain");
  const observed = (async () => {
    for await (const state of observer) void state;
  })().catch((err: SyncClientError) => err);
  await sleep(200);

  daemon.signal("SIGTERM");
  t.is((await lost).reason, "shutdown", "the holder was told before the daemon went away");
  const waited = await waiter;
  t.is((waited as SyncClientError).code, status.UNAVAILABLE, "a waiter's stream ends with UNAVAILABLE");
  t.regex((waited as SyncClientError).message, /shutting down/);
  const observerEnd = (await observed) as SyncClientError;
  t.is(observerEnd.code, status.UNAVAILABLE, "an Observe stream ends with UNAVAILABLE");
  t.regex(observerEnd.message, /shutting down/);
  const campaignEnd = (await campaignDone) as SyncClientError;
  t.is(campaignEnd.code, status.UNAVAILABLE);
  t.true(events.indexOf("elected") < events.indexOf("deposed:shutdown"), `campaign events: ${events.join(", ")}`);
  t.true(events.includes("elected"));
  t.is(await daemon.exited, 0);
  t.truthy(
    daemon.logs.find((l) => String(l.msg).startsWith("stopped")),
    "logged that everything was released",
  );
});

test("SIGTERM: calls made during shutdown are refused", async (t) => {
  const daemon = await spawnDaemon(["--backend=memory"]);
  t.teardown(() => daemon.stop());
  const client = new SyncClient({ address: daemon.address });
  t.teardown(() => client.close());
  await client.lock("busy");
  daemon.signal("SIGTERM");
  await once(daemon.child, "exit");
  const err = (await client.tryLock("after").catch((e: unknown) => e)) as SyncClientError;
  t.is(err.code, status.UNAVAILABLE);
});
