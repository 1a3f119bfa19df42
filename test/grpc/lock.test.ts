// LockService through a real gRPC server and the TypeScript client.
import test from "ava";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { LostError, SyncClient, SyncClientError, status, type Lock } from "metaparticle-sync-client";
import { startTestDaemon } from "../support/test-daemon.js";
import { spawnDaemon } from "../support/daemon-process.js";
import { callError, callOk } from "../support/calls.js";
import { ConnectionStore } from "../support/connection-store.js";
import { MemoryStore } from "../../daemon/store/memory/memory-store.js";
import { Metadata } from "@grpc/grpc-js";

test("mutual exclusion: 20 concurrent clients never hold the lock at the same time", async (t) => {
  const d = await startTestDaemon();
  t.teardown(() => d.stop());
  let inside = 0;
  let overlaps = 0;
  const tokens: number[] = [];
  const worker = async (i: number) => {
    const client = d.newClient();
    for (let round = 0; round < 5; round++) {
      const lock = await client.lock("critical", { holder: `worker-${i}` });
      inside += 1;
      if (inside > 1) overlaps += 1;
      tokens.push(lock.token);
      await sleep(Math.random() * 3);
      inside -= 1;
      await lock.release();
    }
  };
  await Promise.all(Array.from({ length: 20 }, (_, i) => worker(i)));
  t.is(overlaps, 0);
  t.is(tokens.length, 100);
  t.deepEqual(
    tokens,
    [...tokens].sort((a, b) => a - b),
    "tokens increase in the order the lock was held",
  );
  t.is(new Set(tokens).size, 100);
});

test("FIFO handoff on release: waiters acquire in the order they asked", async (t) => {
  const d = await startTestDaemon();
  t.teardown(() => d.stop());
  const first = await d.client.lock("queue", { holder: "first" });
  const order: string[] = [];
  const waiters: Promise<Lock>[] = [];
  for (const holder of ["second", "third", "fourth"]) {
    waiters.push(
      d.client.lock("queue", { holder }).then((lock) => {
        order.push(holder);
        return lock;
      }),
    );
    await sleep(20); // let each Acquire reach the daemon before the next
  }
  await first.release();
  for (const waiter of waiters) await (await waiter).release();
  t.deepEqual(order, ["second", "third", "fourth"]);
});

test("stream close releases: a client process that dies loses its lock at once", async (t) => {
  const d = await startTestDaemon();
  t.teardown(() => d.stop());
  const holder = spawn(
    process.execPath,
    [fileURLToPath(new URL("../support/lock-holder.js", import.meta.url)), d.address, "stream-close"],
    {
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  t.teardown(() => holder.kill("SIGKILL"));
  const [line] = (await once(createInterface({ input: holder.stdout! }), "line")) as [string];
  const heldToken = Number(line.split(" ")[1]);
  const waiting = d.client.lock("stream-close", { holder: "next" });
  await sleep(50);
  holder.kill("SIGKILL"); // the process dies holding the lock; its connection closes
  const next = await waiting;
  t.true(next.token > heldToken);
  t.is((await d.client.getLock("stream-close")).holder, "next");
  await next.release();
});

test("TryAcquire, Renew and Release: stale and foreign tokens get FAILED_PRECONDITION and change nothing", async (t) => {
  const d = await startTestDaemon();
  t.teardown(() => d.stop());
  await (await d.client.tryLock("script", { holder: "earlier" }))!.release();
  const leased = await d.client.tryLock("script", { holder: "cron", leaseDuration: 5_000 });
  if (leased === undefined) return t.fail("not acquired");
  t.is(await d.client.tryLock("script", { holder: "other" }), undefined, "held: no second acquisition");
  const before = await d.client.getLock("script");

  for (const token of [leased.token + 1, leased.token - 1, 999]) {
    const err = await callError((cb) => d.client.locks.renew({ name: "script", fencingToken: token }, cb));
    t.is(err.code, status.FAILED_PRECONDITION, `renew with token ${token}`);
    const released = await callError((cb) => d.client.locks.release({ name: "script", fencingToken: token }, cb));
    t.is(released.code, status.FAILED_PRECONDITION, `release with token ${token}`);
    t.regex(released.message, new RegExp(`token ${token} is not held by this daemon`));
  }
  const after = await d.client.getLock("script");
  t.like(after, { held: true, holder: before.holder, token: before.token });

  t.true((await leased.renew()) > 3_000);
  await leased.release();
  const second = await callError((cb) => d.client.locks.release({ name: "script", fencingToken: leased.token }, cb));
  t.is(second.code, status.FAILED_PRECONDITION, "a second Release is rejected");
  t.false((await d.client.getLock("script")).held);
});

test("Release of a stream-held lock by token is acknowledged: the lock is free when it answers, then the stream ends OK without lost", async (t) => {
  const d = await startTestDaemon();
  t.teardown(() => d.stop());
  const stream = d.client.locks.acquire({ fairness: 0, name: "streamed", holder: "session" });
  const messages: string[] = [];
  const ended = new Promise<{ code: number }>((resolve) => stream.on("status", resolve));
  const acquired = new Promise<number>((resolve) =>
    stream.on("data", (response: { event?: { $case: string; value: { fencingToken?: number } } }) => {
      messages.push(response.event!.$case);
      if (response.event!.$case === "acquired") resolve(response.event!.value.fencingToken!);
    }),
  );
  stream.on("error", () => {});
  const token = await acquired;
  await callOk((cb) => d.client.locks.release({ name: "streamed", fencingToken: token }, cb));
  t.false((await d.client.getLock("streamed", { fresh: true })).held, "free once Release answered");
  t.is((await ended).code, status.OK, "the Acquire stream ends with OK");
  t.false(messages.includes("lost"), "a release is not a loss");
  const again = await callError((cb) => d.client.locks.release({ name: "streamed", fencingToken: token }, cb));
  t.is(again.code, status.FAILED_PRECONDITION, "a second Release of the same token is refused");
  const renew = await callError((cb) => d.client.locks.renew({ name: "streamed", fencingToken: token }, cb));
  t.is(renew.code, status.FAILED_PRECONDITION);
});

test("a lease-held lock expires when not renewed", async (t) => {
  const d = await startTestDaemon();
  t.teardown(() => d.stop());
  const leased = await d.client.tryLock("forgotten", { leaseDuration: 1_000 });
  if (leased === undefined) return t.fail("not acquired");
  const lostReason = new Promise<unknown>((resolve) => leased.signal.addEventListener("abort", () => resolve(leased.signal.reason)));
  const next = await d.client.lock("forgotten", { waitTimeout: 10_000 });
  t.true(next.token > leased.token, "the lock passed on once the lease ran out");
  t.true((await lostReason) instanceof LostError, "the leased lock's own signal fired");
  const renew = await leased.renew().catch((e: SyncClientError) => e);
  t.is((renew as SyncClientError).code, status.FAILED_PRECONDITION);
  await next.release();
});

test("fencing tokens strictly increase across 1000 acquisitions", async (t) => {
  const d = await startTestDaemon();
  t.teardown(() => d.stop());
  let last = 0;
  let increasing = true;
  for (let i = 0; i < 1000; i++) {
    const lock = i % 2 === 0 ? await d.client.lock("tokens") : await d.client.tryLock("tokens");
    if (lock === undefined) return t.fail(`acquisition ${i} failed`);
    if (lock.token <= last) increasing = false;
    last = lock.token;
    await lock.release();
    if (i % 2 === 0) while ((await d.client.getLock("tokens")).held) await sleep(1);
  }
  t.true(increasing);
  t.is(last, 1000);
});

test("wait timeout ends the wait with DEADLINE_EXCEEDED naming the holder", async (t) => {
  const d = await startTestDaemon();
  t.teardown(() => d.stop());
  const held = await d.client.lock("busy", { holder: "long-job" });
  const err = await d.client.lock("busy", { waitTimeout: 200 }).catch((e: SyncClientError) => e);
  t.is((err as SyncClientError).code, status.DEADLINE_EXCEEDED);
  t.regex((err as SyncClientError).message, /long-job/);
  const now = await d.client.lock("busy", { waitTimeout: 0 }).catch((e: SyncClientError) => e);
  t.is((now as SyncClientError).code, status.DEADLINE_EXCEEDED, "zero timeout fails at once");
  t.false(held.lost, "the holder kept its lock");
  await held.release();
});

test("GetLock reports holder, token and remaining lease; an unheld lock is not an error", async (t) => {
  const d = await startTestDaemon(["--lease-duration=15s"]);
  t.teardown(() => d.stop());
  t.like(await d.client.getLock("never"), { held: false, token: 0, holder: "" });
  const lock = await d.client.lock("inspect", { holder: "inspector" });
  const info = await d.client.getLock("inspect", { fresh: true });
  t.like(info, { held: true, holder: "inspector", token: lock.token, leaseDuration: 15_000 });
  t.true(info.remaining > 10_000 && info.remaining <= 15_000);
  t.true(info.acquireTime instanceof Date);
  await lock.release();
  await sleep(20);
  t.like(await d.client.getLock("inspect"), { held: false, token: lock.token, holder: "inspector" });
});

test("client deadline: when the daemon freezes, the wrapper signals lost on its own before the lease could expire", async (t) => {
  const daemon = await spawnDaemon(["--backend=memory", "--lease-duration=3s", "--renew-deadline=2s"]);
  t.teardown(() => daemon.stop());
  const { SyncClient } = await import("metaparticle-sync-client");
  const client = new SyncClient({ address: daemon.address });
  t.teardown(() => client.close());
  const lock = await client.lock("frozen");
  const lost = new Promise<{ reason: LostError; at: number }>((resolve) =>
    lock.signal.addEventListener("abort", () => resolve({ reason: lock.signal.reason as LostError, at: performance.now() })),
  );
  await sleep(1_500); // at least one heartbeat
  daemon.signal("SIGSTOP");
  const stoppedAt = performance.now();
  const { reason, at } = await lost;
  t.is(reason.reason, "heartbeat-timeout");
  t.true(at - stoppedAt < 3_000, "before a 3 s lease measured from the last renewal could run out");
  daemon.signal("SIGCONT");
});

test("release resolves only once the sidecar has released: a try-lock from another client right after it succeeds", async (t) => {
  const daemon = await spawnDaemon(["--backend=memory"]);
  t.teardown(() => daemon.stop());
  const holder = new SyncClient({ address: daemon.address });
  const other = new SyncClient({ address: daemon.address });
  t.teardown(() => [holder, other].forEach((c) => c.close()));
  const refused: number[] = [];
  for (let round = 0; round < 20; round++) {
    const lock = await holder.lock("handback", { holder: "first" });
    await lock.release();
    const next = await other.tryLock("handback", { holder: "second" });
    if (next === undefined) refused.push(round);
    else await next.release();
  }
  t.deepEqual(refused, [], "rounds in which the lock was still held after release() resolved");
});

test("a Renew or TryAcquire whose deadline passed before the daemon could serve it is dropped: nothing is held on for a caller who gave up", async (t) => {
  const conn = new ConnectionStore(new MemoryStore());
  const d = await startTestDaemon([], conn);
  t.teardown(() => d.stop());
  const leased = await d.client.tryLock("slow", { holder: "cron", leaseDuration: 5_000 });
  if (leased === undefined) return t.fail("not acquired");
  // From here every store call of the daemon takes 1 s (an API server that cannot keep up).
  conn.before = () => sleep(1_000);
  const updates = conn.calls.update;
  const first = leased.renew();
  const late = await callError((cb) =>
    d.client.locks.renew(
      { name: "slow", fencingToken: leased.token, leaseDuration: { seconds: 60, nanos: 0 } },
      new Metadata(),
      { deadline: Date.now() + 300 },
      cb,
    ),
  );
  t.is(late.code, status.DEADLINE_EXCEEDED);
  t.true((await first) > 0, "the Renew still awaited is served");
  await sleep(1_500);
  t.is(conn.calls.update - updates, 1, "the Renew given up behind it is not written");

  const tried = await callError((cb) =>
    d.client.locks.tryAcquire(
      { name: "other", holder: "gone", leaseDuration: { seconds: 60, nanos: 0 } },
      new Metadata(),
      { deadline: Date.now() + 300 },
      cb,
    ),
  );
  t.is(tried.code, status.DEADLINE_EXCEEDED);
  await sleep(4_000);
  conn.before = undefined;
  t.false((await d.client.getLock("other")).held, "a lock taken for a TryAcquire given up is given back, not held its 60 s");
});
