// Engine semaphore semantics on the memory store with a fake clock: no test sleeps.
import test from "ava";
import { SimCluster, type LockHandle } from "../support/sim.js";

const DEADLINE = 10_000;

function holding(handles: LockHandle[]): LockHandle[] {
  return handles.filter((h) => h.grant !== undefined && h.loss === undefined && !h.controller.signal.aborted);
}

test("semaphore: never more than N holders with a valid promise among many clients on three daemons", async (t) => {
  const sim = new SimCluster();
  const daemons = [await sim.daemon("a"), await sim.daemon("b"), await sim.daemon("c")];
  const handles: LockHandle[] = [];
  for (let i = 0; i < 24; i++) handles.push(daemons[i % 3]!.acquirePermit("export", 3, { holder: `client-${i}` }));
  const tokens: number[] = [];
  for (let round = 0; round < 30; round++) {
    await sim.advance(50);
    const current = holding(handles);
    t.true(current.length <= 3, `round ${round}: ${current.length} holders of 3 permits`);
    if (round < 7) t.is(current.length, 3, `round ${round}: every permit is used while clients wait`);
    for (const h of current) if (!tokens.includes(h.grant!.token)) tokens.push(h.grant!.token);
    current[0]?.close();
  }
  t.is(new Set(tokens).size, 24, "every hold has its own token");
  t.true(
    handles.every((h) => h.grant !== undefined),
    "every client eventually held a permit",
  );
  t.true(
    handles.every((h) => h.loss === undefined),
    "nobody lost a permit",
  );
});

test("semaphore: tokens strictly increase across every holder of the semaphore", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  const kept = a.acquirePermit("seq", 2, { holder: "kept" });
  await sim.advance(20);
  const grants: number[] = [kept.grant!.token];
  for (let i = 0; i < 6; i++) {
    const h = (i % 2 === 0 ? a : b).acquirePermit("seq", 2, { holder: `h${i}` });
    await sim.advance(20);
    grants.push(h.grant!.token);
    h.close();
    await sim.advance(20);
  }
  t.deepEqual(
    grants,
    [...grants].sort((x, y) => x - y),
  );
  t.is(new Set(grants).size, grants.length);
});

test("semaphore: a request whose permits differ from the semaphore's fails with FAILED_PRECONDITION naming permits, and changes nothing", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  const holder = a.acquirePermit("export", 3);
  await sim.advance(20);
  t.truthy(holder.grant);
  const before = sim.store.peek(a.semaphoreName("export"));
  const wrong = b.acquirePermit("export", 5);
  await sim.advance(20);
  t.is(wrong.grant, undefined);
  t.is(wrong.failure?.code, "permits-mismatch");
  t.is(wrong.failure?.field, "permits");
  t.regex(wrong.failure!.message, /has 3 permits; this request asks for 5/);
  const tried = await b.tryAcquirePermit("export", 2).catch((err: unknown) => err);
  t.is((tried as { code?: string }).code, "permits-mismatch");
  t.is(sim.store.peek(a.semaphoreName("export"))!.version, before!.version, "nothing was written");
  t.is(holding([holder]).length, 1, "the holder keeps its permit");
});

test("semaphore: stream close releases a permit and a waiter on another daemon takes it at once, without waiting for expiry", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  const held = [a.acquirePermit("pool", 2, { holder: "a1" }), a.acquirePermit("pool", 2, { holder: "a2" })];
  await sim.advance(20);
  t.is(holding(held).length, 2);
  const waiter = b.acquirePermit("pool", 2, { holder: "b1" });
  await sim.advance(100);
  t.is(waiter.grant, undefined, "no permit is free");
  held[0]!.close();
  await sim.advance(20);
  t.truthy(waiter.grant, "the waiter took the permit given back");
  t.true(waiter.grant!.at - held[0]!.grant!.at < 1000);
  t.true(waiter.grant!.token > held[1]!.grant!.token);
});

test("semaphore: FIFO across daemons: a waiting daemon is served before the releasing daemon's next client", async (t) => {
  for (const permits of [1, 2]) {
    const sim = new SimCluster();
    const a = await sim.daemon("a");
    const b = await sim.daemon("b");
    const first = Array.from({ length: permits }, (_, i) => a.acquirePermit("fair", permits, { holder: `a${i}` }));
    await sim.advance(20);
    const b1 = b.acquirePermit("fair", permits, { holder: "b1" });
    await sim.advance(20);
    const aNext = a.acquirePermit("fair", permits, { holder: "a-next" });
    await sim.advance(20);
    first[0]!.close();
    await sim.advance(20);
    t.truthy(b1.grant, `N=${permits}: b, which waited first, holds a permit`);
    t.is(aNext.grant, undefined, `N=${permits}: a's next client waits`);
    b1.close();
    await sim.advance(20);
    t.truthy(aNext.grant, `N=${permits}: then a's next client`);
  }
});

test("semaphore: TryAcquirePermit takes a permit for a lease, renews and releases it by its hold, and says when none is free", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  const first = await a.tryAcquirePermit("lease", 1, { leaseMs: 5_000 });
  t.true(first.acquired);
  const token = first.acquired ? first.grant.token : 0;
  const none = await b.tryAcquirePermit("lease", 1);
  t.false(none.acquired);
  await sim.advance(3_000);
  const validFor = await a.engine.semaphores.renew(a.semaphoreName("lease"), token, undefined);
  t.true(validFor > 3_000);
  await sim.advance(3_000);
  t.false((await b.tryAcquirePermit("lease", 1)).acquired, "renewed: still held after the first lease would have run out");
  await a.engine.semaphores.release(a.semaphoreName("lease"), token);
  await sim.advance(20);
  t.true((await b.tryAcquirePermit("lease", 1)).acquired, "free at once after the release");
  await t.throwsAsync(a.engine.semaphores.release(a.semaphoreName("lease"), token), { message: /not held/ });
});

test("semaphore: a lease-held permit nobody renews runs out and is given back", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  t.true((await a.tryAcquirePermit("expire", 1, { leaseMs: 3_000 })).acquired);
  const waiter = b.acquirePermit("expire", 1);
  await sim.advance(2_000);
  t.is(waiter.grant, undefined);
  await sim.advance(1_500);
  t.truthy(waiter.grant, "taken once the lease ran out and a gave the permit back");
});

test("semaphore: a permit holder that cannot renew is told before anyone else may take its permit", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  const holder = a.acquirePermit("cut", 1);
  await sim.advance(20);
  t.truthy(holder.grant);
  const waiter = b.acquirePermit("cut", 1);
  await sim.advance(20);
  a.conn.partition();
  await sim.advance(30_000);
  t.is(holder.loss?.reason, "renew-deadline-exceeded");
  t.truthy(waiter.grant, "b takes the permit once a's seat ran out");
  t.true(holder.loss!.at < waiter.grant!.at, "the holder was told first");
  t.true(holder.loss!.at <= holder.grant!.at + DEADLINE + 1);
});

test("semaphore: a permit Lease deleted by hand tells its holders at once, and is restored with its N and its tokens going on", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  const holder = a.acquirePermit("gone", 2);
  await sim.advance(20);
  const token = holder.grant!.token;
  sim.store.delete(a.semaphoreName("gone"));
  await sim.advance(20);
  t.is(holder.loss?.reason, "deleted");
  const restored = sim.store.peek(a.semaphoreName("gone"));
  t.is(restored?.permits, 2, "restored with its N");
  const next = b.acquirePermit("gone", 2);
  await sim.advance(20_000);
  t.truthy(next.grant);
  t.true(next.grant!.token > token);
  t.true(next.grant!.at >= holder.grant!.at + DEADLINE, "not before the deleted seat's hold ended");
});

test("semaphore: a seat removed by hand tells its holders at once, and its permits are not taken before the seat's observed end", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  const holder = a.acquirePermit("edit", 1);
  await sim.advance(20);
  const waiter = b.acquirePermit("edit", 1);
  await sim.advance(20);
  sim.store.edit(a.semaphoreName("edit"), (record) => ({ ...record, seats: [] }));
  await sim.advance(20);
  t.is(holder.loss?.reason, "taken-over");
  t.is(waiter.grant, undefined, "the seat's hold stands until its observed end");
  await sim.advance(20_000);
  t.truthy(waiter.grant);
  t.true(waiter.grant!.at >= holder.grant!.at + 15_000, "taken after the seat's lease");
});

test("semaphore: waiting costs no store calls beyond announcing", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  a.acquirePermit("quiet", 1);
  await sim.advance(20);
  const waiter = b.acquirePermit("quiet", 1);
  await sim.advance(20);
  const calls = { ...b.conn.calls };
  await sim.advance(60_000);
  t.is(waiter.grant, undefined);
  t.deepEqual(b.conn.calls, calls, "no call while waiting");
});

test("semaphore: a Lease restored after a deletion by hand is held off until the seats' observed end only, not again after each grant", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  const first = a.acquirePermit("restored", 2);
  await sim.advance(20);
  sim.store.delete(a.semaphoreName("restored"));
  await sim.advance(20);
  t.is(first.loss?.reason, "deleted");
  const next = a.acquirePermit("restored", 2);
  await sim.advance(20_000);
  t.truthy(next.grant, "granted once the deleted seat's hold ended");
  const other = b.acquirePermit("restored", 2);
  await sim.advance(100);
  t.truthy(other.grant, "the second permit is free at once: the grant did not hold the Lease off again");
});

test("semaphore: a lease-held permit whose seat was removed by hand stays counted until its valid_for runs out, also in the daemon's next seat", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const leased = await a.tryAcquirePermit("lingering", 2, { leaseMs: 15_000 });
  t.true(leased.acquired);
  sim.store.edit(a.semaphoreName("lingering"), (record) => ({ ...record, seats: [] }));
  await sim.advance(20);
  const sessions = [a.acquirePermit("lingering", 2, { holder: "s1" }), a.acquirePermit("lingering", 2, { holder: "s2" })];
  await sim.advance(1_000);
  t.is(sessions.filter((h) => h.grant !== undefined).length, 1, "one permit is free: the other is the lease-held one's, still promised");
  t.is(
    (sim.store.peek(a.semaphoreName("lingering"))!.seats?.[0] as { permits?: number } | undefined)?.permits,
    2,
    "the new seat counts the lost lease-held permit",
  );
  await sim.advance(7_500);
  t.is(sessions.filter((h) => h.grant !== undefined).length, 1, "still one while the lease-held holder may act");
  await sim.advance(3_000);
  t.true(
    sessions.every((h) => h.grant !== undefined),
    "the second is granted once that holder's valid_for has run out",
  );
});

test("semaphore: a daemon queued behind another does not take a freed permit before the one ahead has had its turn", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  const c = await sim.daemon("c");
  const first = a.acquirePermit("turns", 1, { holder: "a1" });
  await sim.advance(20);
  const bWaits = b.acquirePermit("turns", 1, { holder: "b1" });
  await sim.advance(20);
  const cWaits = c.acquirePermit("turns", 1, { holder: "c1" });
  await sim.advance(20);
  a.acquirePermit("turns", 1, { holder: "a2" });
  await sim.advance(20);
  // b is slow to hear: it learns of the permit given back only later.
  b.conn.holdEvents();
  first.close();
  await sim.advance(20);
  t.deepEqual(
    sim.store.peek(a.semaphoreName("turns"))!.queue.slice(0, 2),
    [b.engine.identity, c.engine.identity],
    "b is queued ahead of c",
  );
  await sim.advance(500);
  t.is(cWaits.grant, undefined, "c does not take the permit while it is b's turn");
  b.conn.releaseEvents();
  await sim.advance(20);
  t.truthy(bWaits.grant, "b takes it once it hears");
  t.is(cWaits.grant, undefined);
});

test("semaphore: a daemon that first sees the Lease after a seat was removed by hand holds that seat's permits off, for the longest lease seen", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  t.true((await a.tryAcquirePermit("unseen", 1, { leaseMs: 15_000 })).acquired);
  sim.store.edit(a.semaphoreName("unseen"), (record) => ({ ...record, seats: [] }));
  await sim.advance(20);
  const c = await sim.daemon("c");
  t.false((await c.tryAcquirePermit("unseen", 1)).acquired, "the removed seat may still hold the permit");
  const waiter = c.acquirePermit("unseen", 1);
  await sim.advance(10_000);
  t.is(waiter.grant, undefined, "not while the lease-held holder may act");
  await sim.advance(6_000);
  t.truthy(waiter.grant, "once the longest lease seen has run out");
});

test("semaphore: a daemon that first sees the Lease after another daemon's grant still counts a seat removed by hand before that grant", async (t) => {
  // Seed 12864: b's grant, written after a's seat was removed by hand, left out the removed seat; c, seeing the Lease
  // for the first time after it, did not count a's lease-held permit, whose holder could still act.
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  t.true((await a.tryAcquirePermit("carried", 3, { leaseMs: 15_000 })).acquired);
  const first = b.acquirePermit("carried", 3, { holder: "b1" });
  await sim.advance(20);
  t.truthy(first.grant);
  sim.store.edit(a.semaphoreName("carried"), (record) => ({
    ...record,
    seats: record.seats!.filter((seat) => seat.identity !== a.engine.identity),
  }));
  await sim.advance(20);
  const second = b.acquirePermit("carried", 3, { holder: "b2" });
  await sim.advance(20);
  t.truthy(second.grant, "b counts a's removed seat and the third permit is free");
  const c = await sim.daemon("c");
  t.false((await c.tryAcquirePermit("carried", 3)).acquired, "a's lease-held permit may still be used: no permit is free");
  const waiter = c.acquirePermit("carried", 3, { holder: "c1" });
  await sim.advance(10_000);
  t.is(waiter.grant, undefined, "not while a's lease-held holder may act");
  await sim.advance(6_000);
  t.truthy(waiter.grant, "once that holder's lease, as b observed it, has run out");
});

test("semaphore: a daemon that first sees the Lease after a seat's count was lowered by hand counts the higher", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  t.true((await a.tryAcquirePermit("lowered", 2, { leaseMs: 15_000 })).acquired);
  t.true((await a.tryAcquirePermit("lowered", 2, { leaseMs: 15_000 })).acquired);
  sim.store.edit(a.semaphoreName("lowered"), (record) => ({
    ...record,
    seats: record.seats!.map((seat) => (seat.released === true ? seat : { ...seat, permits: 0 })),
  }));
  await sim.advance(20);
  const c = await sim.daemon("c");
  t.false((await c.tryAcquirePermit("lowered", 2)).acquired, "both permits are still held");
});

test("semaphore: a stream holder told it lost when its seat was changed by hand stays counted until its valid_for runs out: it may not be reading its stream", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const first = a.acquirePermit("unread", 2, { holder: "first" });
  await sim.advance(20);
  t.truthy(first.grant);
  sim.store.edit(a.semaphoreName("unread"), (record) => ({
    ...record,
    seats: record.seats!.map((seat) => (seat.released === true ? seat : { ...seat, permits: 0 })),
  }));
  await sim.advance(20);
  t.is(first.loss?.reason, "taken-over");
  const next = [a.acquirePermit("unread", 2, { holder: "n1" }), a.acquirePermit("unread", 2, { holder: "n2" })];
  await sim.advance(1_000);
  t.is(next.filter((h) => h.grant !== undefined).length, 1, "the first holder's permit is still counted");
  await sim.advance(10_000);
  t.true(
    next.every((h) => h.grant !== undefined),
    "and freed once its valid_for has run out",
  );
});

test("semaphore: a daemon queued behind two others skips them later than the one just behind a stale head does: that one goes first", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const [b, c, d] = [await sim.daemon("b"), await sim.daemon("c"), await sim.daemon("d")];
  const first = a.acquirePermit("graces", 1, { holder: "a1" });
  await sim.advance(20);
  for (const daemon of [b, c, d]) {
    daemon.acquirePermit("graces", 1, { holder: daemon.name });
    await sim.advance(20);
  }
  a.acquirePermit("graces", 1, { holder: "a2" });
  await sim.advance(20);
  b.conn.holdEvents(); // b, at the head, hears nothing more: its turn passes
  first.close();
  await sim.advance(20);
  const queue = sim.store.peek(a.semaphoreName("graces"))!.queue;
  t.deepEqual(queue.slice(0, 3), [b.engine.identity, c.engine.identity, d.engine.identity]);
  let firstAfter: string | undefined;
  for (let i = 0; i < 100 && firstAfter === undefined; i++) {
    await sim.advance(100);
    const record = sim.store.peek(a.semaphoreName("graces"))!;
    const seated = (record.seats ?? []).find((seat) => seat.released !== true && seat.identity !== a.engine.identity);
    firstAfter = seated?.identity;
  }
  t.is(firstAfter, c.engine.identity, "c, just behind the stale head, takes the permit, not d");
});

test("semaphore: a ReleasePermit whose give-back patch landed but whose reply was lost answers once the store shows it, while another hold stays", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const kept = await a.tryAcquirePermit("lost-reply", 3, { holder: "kept" });
  const given = await a.tryAcquirePermit("lost-reply", 3, { holder: "given" });
  if (!kept.acquired || !given.acquired) return t.fail("two permits of 3 are free");
  let lose = 1;
  a.conn.loseReply = (operation) => operation === "patch" && lose-- > 0;
  let answered = false;
  const release = a.engine.semaphores.release(a.semaphoreName("lost-reply"), given.grant.token).then(() => (answered = true));
  await sim.advance(1_000);
  a.conn.loseReply = undefined;
  const seat = sim.store.peek(a.semaphoreName("lost-reply"))!.seats!.find((s) => s.identity === a.engine.identity);
  t.is(seat?.released === true ? 0 : seat?.permits, 1, "the give-back landed: one permit left in the seat");
  t.true(answered, "ReleasePermit answered within a second of the give-back landing");
  await release;
  const renewed = await a.engine.semaphores.renew(a.semaphoreName("lost-reply"), kept.grant.token, undefined);
  t.true(renewed > 0, "the other hold is still held");
});
