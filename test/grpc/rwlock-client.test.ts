// The TypeScript client's read-write locks against a real daemon: shared and
// exclusive holds by a stream and by a lease, renewed and released by hold
// id, the lock's state when an attempt fails, a bad mode refused before
// anything is sent, and a shared hold's own deadline on a frozen sidecar.
// (rwlock.test.ts calls the service with the generated stubs; the deadlines
// every stream hold shares are in client-deadlines.test.ts.)
import test from "ava";
import { setTimeout as sleep } from "node:timers/promises";
import { LostError, type RWLockHold, type RWLockMode, SyncClient, status } from "metaparticle-sync-client";
import { callError, pendingAfter, rejection } from "../support/calls.js";
import { spawnDaemon } from "../support/daemon-process.js";
import { startTestDaemon } from "../support/test-daemon.js";

test("rwlock: two readers share it with token 0, a writer waits for both and holds alone with a token, which a later reader reports", async (t) => {
  const d = await startTestDaemon();
  t.teardown(() => d.stop());
  const catalog = d.client.rwlock("catalog");
  const r1 = await catalog.acquire("shared", { holder: "r1" });
  const r2 = await d.newClient().rwlock("catalog").acquire("shared", { holder: "r2" });
  t.like(r1, { name: "catalog", holder: "r1", mode: "shared", token: 0 });
  t.like(r2, { holder: "r2", mode: "shared", token: 0 }, "no writer yet: a reader's token is 0");
  t.not(r1.holdId, r2.holdId, "two shared holds, two hold ids");
  t.true(r1.validForMs > 0 && !r1.lost);

  let writer: RWLockHold | undefined;
  const waiting = catalog.acquire("exclusive", { holder: "w" }).then((hold) => (writer = hold));
  t.true(await pendingAfter(waiting, 300), "the writer waits while readers hold");
  const shared = await catalog.get({ fresh: true });
  t.like(shared, { held: true, mode: "shared", holder: "", token: 0 });
  t.is(
    shared.readers.reduce((sum, seat) => sum + seat.readers, 0),
    2,
  );
  t.true(shared.readers.every((seat) => seat.holderIdentity !== "" && seat.remainingMs > 0));
  t.is(shared.waitingDaemons.length, 1, "the writer's daemon waits");

  await r1.release();
  t.is((r1.signal.reason as LostError).reason, "released", "a release is not a loss");
  t.true(await pendingAfter(waiting, 200), "one reader still holds");
  await r2.release();
  await waiting;
  t.like(writer, { holder: "w", mode: "exclusive" });
  t.true(writer!.token > 0, "an exclusive hold has a token of its own");
  const exclusive = await catalog.get();
  t.like(exclusive, { held: true, mode: "exclusive", holder: "w", token: writer!.token, readers: [] });
  t.true(exclusive.acquireTime instanceof Date && exclusive.remainingMs > 0);

  let late: RWLockHold | undefined;
  const reading = catalog.acquire("shared", { holder: "late" }).then((hold) => (late = hold));
  t.true(await pendingAfter(reading, 300), "a reader waits while the writer holds");
  await writer!.release();
  await reading;
  t.like(late, { mode: "shared", token: writer!.token }, "a reader reports the last writer's token");
  await late!.release();
  t.like(await catalog.get({ fresh: true }), { held: false, mode: undefined, token: writer!.token });
});

test("rwlock: a reader that asks while a writer waits queues behind the writer", async (t) => {
  const d = await startTestDaemon();
  t.teardown(() => d.stop());
  const rw = d.client.rwlock("queue");
  const first = await rw.acquire("shared", { holder: "first" });
  const order: string[] = [];
  const writer = rw.acquire("exclusive", { holder: "writer" }).then((hold) => (order.push("writer"), hold));
  await sleep(200); // the writer is in the line
  const reader = rw.acquire("shared", { holder: "after" }).then((hold) => (order.push("reader"), hold));
  t.true(await pendingAfter(reader, 300), "the later reader does not join the first while a writer waits");
  await first.release();
  const w = await writer;
  t.true(await pendingAfter(reader, 200), "the reader waits for the writer's turn to end");
  await w.release();
  const r = await reader;
  t.deepEqual(order, ["writer", "reader"]);
  t.is(r.token, w.token);
  await r.release();
});

test("rwlock: tryAcquire is refused with the lock's state; leased shared holds are renewed and released each by its hold id, then NOT_HELD", async (t) => {
  const d = await startTestDaemon();
  t.teardown(() => d.stop());
  const rw = d.client.rwlock("leased");
  const write = await rw.tryAcquire("exclusive", { holder: "writer", leaseDurationMs: 5_000 });
  if (write.hold === undefined) return t.fail("the free lock was not taken");
  t.is(write.state, undefined);
  t.like(write.hold, { mode: "exclusive", holder: "writer" });
  t.true(write.hold.token > 0 && write.hold.validForMs > 2_000);
  const refusedRead = await rw.tryAcquire("shared", { holder: "reader" });
  t.is(refusedRead.hold, undefined);
  t.like(refusedRead.state, { held: true, mode: "exclusive", holder: "writer", token: write.hold.token });
  await write.hold.release();

  const a = (await rw.tryAcquire("shared", { holder: "reader", leaseDurationMs: 3_000 })).hold;
  const b = (await rw.tryAcquire("shared", { holder: "reader", leaseDurationMs: 3_000 })).hold;
  if (a === undefined || b === undefined) return t.fail("two shared holds were not both taken");
  t.is(a.token, write.hold.token, "a reader's token is the last writer's");
  t.is(b.token, a.token, "two readers may share a token");
  t.not(a.holdId, b.holdId);
  const refusedWrite = await rw.tryAcquire("exclusive", { holder: "writer" });
  t.is(refusedWrite.hold, undefined);
  t.like(refusedWrite.state, { held: true, mode: "shared", holder: "" });
  t.is(
    refusedWrite.state?.readers.reduce((sum, seat) => sum + seat.readers, 0),
    2,
  );

  const before = a.validForMs;
  await sleep(300);
  t.true((await a.renew({ leaseDurationMs: 30_000 })) > before, "a longer lease promises longer");
  await a.release();
  t.true(a.lost);
  t.is((a.signal.reason as LostError).reason, "released");
  t.false(b.lost, "releasing one hold left the other alone");
  const one = await rw.get({ fresh: true });
  t.is(
    one.readers.reduce((sum, seat) => sum + seat.readers, 0),
    1,
    "released by its own hold id, not by the token both share",
  );
  for (const again of [a.renew(), a.release()])
    t.like(await rejection(again), { code: status.FAILED_PRECONDITION, reason: "NOT_HELD", field: "hold_id" });
  const unknown = await callError((cb) => d.client.rwlocks.releaseRwLock({ name: "leased", holdId: "999" }, cb));
  t.like(unknown, { code: status.FAILED_PRECONDITION, reason: "NOT_HELD", field: "hold_id" });
  t.true((await b.renew()) > 0, "the other hold still renews");
  await b.release();
  t.like(await rw.get({ fresh: true }), { held: false, readers: [] });
});

test("rwlock: a bad mode is a RangeError before anything is sent; a bad name is INVALID_ARGUMENT; a wait timeout is WAIT_TIMEOUT", async (t) => {
  const d = await startTestDaemon();
  t.teardown(() => d.stop());
  const rw = d.client.rwlock("modes");
  for (const mode of ["read", "", "SHARED"]) {
    await t.throwsAsync(rw.acquire(mode as RWLockMode), { instanceOf: RangeError, message: /mode must be "shared" or "exclusive"/ });
    await t.throwsAsync(rw.tryAcquire(mode as RWLockMode), { instanceOf: RangeError });
  }
  t.like(await rw.get({ fresh: true }), { held: false, waitingDaemons: [] }, "nothing was asked of the sidecar");

  for (const attempt of [d.client.rwlock("Not A Name").acquire("shared"), d.client.rwlock("Not A Name").tryAcquire("exclusive")])
    t.like(await rejection(attempt), { code: status.INVALID_ARGUMENT, field: "name" });

  const writer = await rw.acquire("exclusive", { holder: "long-job" });
  for (const [mode, waitTimeoutMs] of [
    ["shared", 200],
    ["exclusive", 0],
  ] as const) {
    const error = await rejection(rw.acquire(mode, { waitTimeoutMs }));
    t.like(error, { code: status.DEADLINE_EXCEEDED, reason: "WAIT_TIMEOUT" }, `${mode}, wait timeout ${waitTimeoutMs} ms`);
  }
  t.false(writer.lost, "the writer kept its hold");
  t.like(await rw.get(), { mode: "exclusive", holder: "long-job", readers: [] }, "the waits that timed out hold nothing");
  await writer.release();
  t.deepEqual(await d.client.rwlock("never").get(), {
    held: false,
    mode: undefined,
    holder: "",
    holderIdentity: "",
    token: 0,
    acquireTime: undefined,
    remainingMs: 0,
    readers: [],
    waitingDaemons: [],
  });
});

test("rwlock: the read-write lock NAME is not the lock NAME", async (t) => {
  const d = await startTestDaemon();
  t.teardown(() => d.stop());
  await using lock = await d.client.lock("same-name", { holder: "plain" });
  await using hold = await d.client.rwlock("same-name").acquire("exclusive", { waitTimeoutMs: 2_000 });
  t.false(lock.lost || hold.lost, "both held at once");
  t.like(await d.client.getLock("same-name"), { held: true, holder: "plain" });
});

test("RWLockHold: when the daemon freezes, a shared hold's signal aborts on the client's own deadline, inside the lease", async (t) => {
  // A 3 s lease promises 2 s at a time: the signal must abort within 2 s of the last heartbeat.
  const daemon = await spawnDaemon(["--backend=memory", "--lease-duration=3s", "--renew-deadline=2s"]);
  t.teardown(() => daemon.stop());
  const client = new SyncClient({ address: daemon.address });
  t.teardown(() => client.close());
  const hold = await client.rwlock("frozen").acquire("shared");
  const lost = new Promise<number>((resolve) => hold.signal.addEventListener("abort", () => resolve(performance.now())));
  await sleep(1_500); // at least one heartbeat
  t.false(hold.lost);
  daemon.signal("SIGSTOP");
  t.teardown(() => daemon.signal("SIGCONT"));
  const frozenAt = performance.now();
  const lostAt = await lost;
  const reason = hold.signal.reason as LostError;
  t.is(reason.reason, "heartbeat-timeout");
  t.regex(reason.message, /a shared hold of read-write lock frozen \(token 0\)/);
  t.true(lostAt - frozenAt < 3_000, `lost ${Math.round(lostAt - frozenAt)} ms after the freeze`);
  t.is(hold.validForMs, 0);
});
