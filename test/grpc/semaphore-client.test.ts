// The TypeScript client's semaphores against a real daemon: permits held by a
// stream and by a lease, renewed and released by hold id, PERMITS_MISMATCH as
// the client's error. (semaphore.test.ts calls the service with the generated
// stubs; the client's deadlines on a frozen sidecar are in
// client-deadlines.test.ts.)
import test from "ava";
import { setTimeout as sleep } from "node:timers/promises";
import { LostError, type Permit, status } from "metaparticle-sync-client";
import { callError, pendingAfter, rejection } from "../support/calls.js";
import { startTestDaemon } from "../support/test-daemon.js";

test("semaphore N = 2: two hold a permit at once, a third waits and gets one as soon as one is released", async (t) => {
  const d = await startTestDaemon();
  t.teardown(() => d.stop());
  const pool = d.client.semaphore("pool", 2);
  const a = await pool.acquire({ holder: "a" });
  const b = await d.newClient().semaphore("pool", 2).acquire({ holder: "b" });
  t.like(a, { name: "pool", holder: "a", permits: 2 });
  t.true(b.token > a.token, "tokens increase across the semaphore's holders");
  t.not(a.holdId, b.holdId);
  t.false(a.lost || b.lost);
  t.true(a.validForMs > 0 && b.validForMs > 0);

  let third: Permit | undefined;
  const waiting = pool.acquire({ holder: "c" }).then((permit) => (third = permit));
  t.true(await pendingAfter(waiting, 300), "the third waits while both permits are held");
  const info = await pool.get();
  t.is(info.permits, 2);
  t.deepEqual(info.holders.map((h) => [h.holder, h.token]).sort(), [
    ["a", a.token],
    ["b", b.token],
  ]);
  t.is(info.token, b.token, "the last token granted");

  await a.release();
  t.is((a.signal.reason as LostError).reason, "released", "a release is not a loss");
  await waiting;
  t.like(third, { holder: "c", permits: 2 });
  t.true(third!.token > b.token);
  t.false(b.lost, "the other holder kept its permit throughout");
  const after = await pool.get({ fresh: true });
  t.deepEqual(after.holders.map((h) => h.holder).sort(), ["b", "c"]);
  t.true(after.holders.every((h) => h.remainingMs > 0 && h.leaseDurationMs === 15_000 && h.acquireTime instanceof Date));
  await Promise.all([b.release(), third!.release()]);
  t.deepEqual((await pool.get()).holders, [], "free once every release answered");
});

test("semaphore: tryAcquire when every permit is held takes nothing and lists the holders", async (t) => {
  const d = await startTestDaemon();
  t.teardown(() => d.stop());
  const pool = d.client.semaphore("batch", 2);
  const streamed = await pool.acquire({ holder: "streamed" });
  const first = await pool.tryAcquire({ holder: "leased", leaseDurationMs: 5_000 });
  if (first.permit === undefined) return t.fail("the second permit was free");
  t.deepEqual(first.holders, []);
  t.like(first.permit, { holder: "leased", permits: 2 });
  t.true(first.permit.token > streamed.token);
  t.true(first.permit.validForMs > 2_000);

  const full = await pool.tryAcquire({ holder: "late" });
  t.is(full.permit, undefined);
  t.deepEqual(full.holders.map((h) => [h.holder, h.token]).sort(), [
    ["leased", first.permit.token],
    ["streamed", streamed.token],
  ]);
  t.true(full.holders.every((h) => h.holderIdentity !== "" && h.remainingMs > 0));
  t.deepEqual((await pool.get()).holders.map((h) => h.holder).sort(), ["leased", "streamed"], "the refused attempt changed nothing");
  await first.permit.release();
  await streamed.release();
});

test("semaphore: a leased permit is renewed and released by its hold id; after that its hold id is NOT_HELD", async (t) => {
  const d = await startTestDaemon();
  t.teardown(() => d.stop());
  const pool = d.client.semaphore("leases", 3);
  const { permit } = await pool.tryAcquire({ holder: "cron", leaseDurationMs: 3_000 });
  if (permit === undefined) return t.fail("not acquired");
  const before = permit.validForMs;
  await sleep(300);
  t.true((await permit.renew({ leaseDurationMs: 30_000 })) > before, "a longer lease promises longer");
  t.is((await pool.get()).holders[0]?.leaseDurationMs, 30_000);

  const unknown = await callError((cb) => d.client.semaphores.renewPermit({ name: "leases", holdId: "999" }, cb));
  t.like(unknown, { code: status.FAILED_PRECONDITION, reason: "NOT_HELD", field: "hold_id" });
  t.false(permit.lost, "another hold id changed nothing");

  await permit.release();
  t.true(permit.lost);
  t.is((permit.signal.reason as LostError).reason, "released");
  t.deepEqual((await pool.get()).holders, []);
  for (const again of [permit.release(), permit.renew()]) {
    t.like(await rejection(again), { code: status.FAILED_PRECONDITION, reason: "NOT_HELD", field: "hold_id" });
  }
});

test("semaphore: another N is PERMITS_MISMATCH naming permits and holds nothing; N outside 1..32 is INVALID_ARGUMENT", async (t) => {
  const d = await startTestDaemon();
  t.teardown(() => d.stop());
  const held = await d.client.semaphore("fixed", 2).acquire({ holder: "first" });
  const other = d.client.semaphore("fixed", 3);
  for (const attempt of [other.acquire({ holder: "other" }), other.tryAcquire({ holder: "other" })]) {
    const error = await rejection(attempt);
    t.like(error, { code: status.FAILED_PRECONDITION, reason: "PERMITS_MISMATCH", field: "permits" });
  }
  const info = await d.client.getSemaphore("fixed");
  t.is(info.permits, 2, "N stays the first caller's");
  t.deepEqual(
    info.holders.map((h) => h.holder),
    ["first"],
    "nothing held for the refused callers",
  );
  t.false(held.lost);

  for (const permits of [0, 33]) {
    const error = await rejection(d.client.semaphore("range", permits).tryAcquire());
    t.like(error, { code: status.INVALID_ARGUMENT, reason: "INVALID_ARGUMENT", field: "permits" }, `permits ${permits}`);
  }
  t.throws(() => d.client.semaphore("range", 2.5), { instanceOf: RangeError }, "a fraction is refused before anything is sent");
  await held.release();
});

test("semaphore: a wait timeout ends acquire() with DEADLINE_EXCEEDED and reason WAIT_TIMEOUT; a never-used semaphore reads as permits 0", async (t) => {
  const d = await startTestDaemon();
  t.teardown(() => d.stop());
  t.deepEqual(await d.client.getSemaphore("never"), { permits: 0, holders: [], token: 0, waitingDaemons: [] });
  const pool = d.client.semaphore("single", 1);
  const held = await pool.acquire({ holder: "long-job" });
  for (const waitTimeoutMs of [200, 0]) {
    const error = await rejection(pool.acquire({ waitTimeoutMs }));
    t.like(error, { code: status.DEADLINE_EXCEEDED, reason: "WAIT_TIMEOUT" }, `wait timeout ${waitTimeoutMs} ms`);
  }
  t.false(held.lost, "the holder kept its permit");
  t.deepEqual(
    (await pool.get()).holders.map((h) => h.holder),
    ["long-job"],
    "the waits that timed out hold nothing",
  );
  await held.release();
});
