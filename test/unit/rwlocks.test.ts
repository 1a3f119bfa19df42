// Engine read-write lock semantics on the memory store with a fake clock: no test sleeps.
import test from "ava";
import { line } from "../../daemon/engine/lease-records.js";
import { SimCluster, type LockHandle } from "../support/sim.js";

function holding(handles: LockHandle[]): LockHandle[] {
  return handles.filter((h) => h.grant !== undefined && h.loss === undefined && !h.controller.signal.aborted);
}

test("rwlock: never a shared and an exclusive promise at once, nor two exclusive ones, among readers and writers on three daemons", async (t) => {
  const sim = new SimCluster();
  const daemons = [await sim.daemon("a"), await sim.daemon("b"), await sim.daemon("c")];
  const handles: Array<{ h: LockHandle; mode: "shared" | "exclusive" }> = [];
  for (let i = 0; i < 30; i++) {
    const mode = i % 3 === 0 ? "exclusive" : "shared";
    handles.push({ h: daemons[i % 3]!.acquireRW("doc", mode, { holder: `client-${i}` }), mode });
  }
  let sawReaders = 0;
  for (let round = 0; round < 80; round++) {
    await sim.advance(40);
    const current = handles.filter(({ h }) => holding([h]).length === 1);
    const writers = current.filter(({ mode }) => mode === "exclusive");
    t.true(writers.length <= 1, `round ${round}: ${writers.length} writers`);
    if (writers.length === 1) t.is(current.length, 1, `round ${round}: a writer holds with ${current.length - 1} others`);
    sawReaders = Math.max(sawReaders, current.length - writers.length);
    // Each round the oldest holder lets go.
    current.sort((x, y) => x.h.grant!.at - y.h.grant!.at)[0]?.h.close();
  }
  t.true(sawReaders >= 2, `readers shared the lock (at most ${sawReaders} at once)`);
  t.true(
    handles.every(({ h }) => h.grant !== undefined),
    "every client eventually held the lock",
  );
  t.true(
    handles.every(({ h }) => h.loss === undefined),
    "nobody lost a hold",
  );
});

test("rwlock: exclusive tokens strictly increase, and a shared hold reports the token of the last exclusive hold before it", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  const first = a.acquireRW("seq", "shared");
  await sim.advance(20);
  t.is(first.grant!.fencingToken, 0, "no exclusive hold yet");
  first.close();
  await sim.advance(20);
  let lastExclusive = 0;
  for (let i = 0; i < 6; i++) {
    const daemon = i % 2 === 0 ? a : b;
    const writer = daemon.acquireRW("seq", "exclusive");
    await sim.advance(20);
    t.true(writer.grant!.token > lastExclusive, `writer ${i}: ${writer.grant!.token} > ${lastExclusive}`);
    t.is(writer.grant!.fencingToken, writer.grant!.token);
    lastExclusive = writer.grant!.token;
    writer.close();
    await sim.advance(20);
    const readers = [a.acquireRW("seq", "shared"), b.acquireRW("seq", "shared")];
    await sim.advance(40);
    for (const r of readers) t.is(r.grant?.fencingToken, lastExclusive, `reader after writer ${i}`);
    t.not(readers[0]!.grant!.token, readers[1]!.grant!.token, "each hold has its own id");
    for (const r of readers) r.close();
    await sim.advance(20);
  }
  const state = await a.engine.rwlocks.get(a.rwlockName("seq"), true);
  t.is(state.fencingToken, lastExclusive);
  t.is(state.mode, undefined);
});

test("rwlock: a waiting writer is served while readers on two daemons keep arriving", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  const c = await sim.daemon("c");
  const readers: LockHandle[] = [a.acquireRW("hot", "shared"), b.acquireRW("hot", "shared")];
  await sim.advance(20);
  t.is(holding(readers).length, 2);
  const writer = c.acquireRW("hot", "exclusive", { holder: "writer" });
  // Readers keep arriving on both daemons, each held 2.5 s, for up to 10 s: past the turn grace (2 s) after which those
  // behind a daemon that does not take its turn skip it.
  for (let i = 0; i < 200 && writer.grant === undefined; i++) {
    await sim.advance(50);
    readers.push((i % 2 === 0 ? a : b).acquireRW("hot", "shared", { holder: `late-${i}` }));
    for (const r of holding(readers)) if (a.engine.clock.now() - r.grant!.at >= 2_500) r.close();
  }
  t.truthy(writer.grant, "the writer was served");
  t.is(holding(readers).length, 0, "no reader holds with the writer");
  const waitingReaders = readers.filter((r) => r.grant === undefined && !r.controller.signal.aborted);
  t.true(waitingReaders.length > 0, "readers that came after the writer wait behind it");
  writer.close();
  // Each grant is one write: the readers that waited are served one after another.
  await sim.advance(2_000);
  t.true(
    waitingReaders.every((r) => r.grant !== undefined),
    "then they share the lock",
  );
  t.true(waitingReaders.every((r) => r.grant!.fencingToken === writer.grant!.token));
});

test("rwlock: a reader that closes its stream hands over to a waiting writer on another daemon at once, without waiting for expiry", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  const reader = a.acquireRW("door", "shared");
  await sim.advance(20);
  const writer = b.acquireRW("door", "exclusive");
  await sim.advance(200);
  t.is(writer.grant, undefined, "the writer waits for the reader");
  const closedAt = a.engine.clock.now();
  reader.close();
  await sim.advance(30);
  t.truthy(writer.grant, "the writer holds");
  t.true(writer.grant!.at - closedAt <= 30, `handed over ${writer.grant!.at - closedAt} ms after the close (lease 15 s)`);
});

test("rwlock: TryAcquireRWLock takes a shared or exclusive hold for a lease, renews and releases it by its hold, and says when the lock is taken", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  const r1 = await a.tryAcquireRW("lease", "shared", { leaseMs: 5_000 });
  const r2 = await b.tryAcquireRW("lease", "shared", { leaseMs: 5_000 });
  t.true(r1.acquired && r2.acquired, "two readers at once");
  const w = await a.tryAcquireRW("lease", "exclusive");
  t.false(w.acquired, "no writer while readers hold");
  await sim.advance(4_000);
  const validFor = await a.engine.rwlocks.renew(a.rwlockName("lease"), r1.acquired ? r1.grant.token : 0, undefined);
  t.true(validFor > 0);
  await b.engine.rwlocks.release(b.rwlockName("lease"), r2.acquired ? r2.grant.token : 0);
  await sim.advance(2_000);
  t.false((await b.tryAcquireRW("lease", "exclusive")).acquired, "the renewed reader still holds");
  await a.engine.rwlocks.release(a.rwlockName("lease"), r1.acquired ? r1.grant.token : 0);
  await sim.advance(20);
  const w2 = await b.tryAcquireRW("lease", "exclusive");
  t.true(w2.acquired, "the writer takes the lock once both readers released");
  t.false((await a.tryAcquireRW("lease", "shared")).acquired, "no reader while a writer holds");
  const again = await a.engine.rwlocks.release(a.rwlockName("lease"), r1.acquired ? r1.grant.token : 0).catch((e: unknown) => e);
  t.is((again as { code?: string }).code, "not-held");
  t.is((again as { field?: string }).field, "hold_id");
});

test("rwlock: GetRWLock reports the writer, the readers per daemon and who waits", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  const readers = [a.acquireRW("show", "shared", { holder: "r1" }), a.acquireRW("show", "shared", { holder: "r2" })];
  const rb = b.acquireRW("show", "shared", { holder: "r3" });
  await sim.advance(40);
  t.is(holding([...readers, rb]).length, 3);
  const writer = b.acquireRW("show", "exclusive", { holder: "w" });
  await sim.advance(40);
  let state = await a.engine.rwlocks.get(a.rwlockName("show"), true);
  t.is(state.mode, "shared");
  t.deepEqual(state.readers.map((r) => [r.holderIdentity, r.readers]).sort(), [
    [a.engine.identity, 2],
    [b.engine.identity, 1],
  ]);
  t.deepEqual(state.waitingDaemons, [b.engine.identity]);
  for (const r of [...readers, rb]) r.close();
  await sim.advance(40);
  t.truthy(writer.grant);
  state = await a.engine.rwlocks.get(a.rwlockName("show"), true);
  t.is(state.mode, "exclusive");
  t.is(state.writer?.holder, "w");
  t.is(state.writer?.holderIdentity, b.engine.identity);
  t.is(state.fencingToken, writer.grant!.token);
  t.deepEqual(state.readers, []);
});

test("rwlock: a daemon's shared and exclusive entries ahead of a waiter count as one daemon for the turn grace: it skips them after one grace", async (t) => {
  const sim = new SimCluster();
  const [a, b, c] = [await sim.daemon("a"), await sim.daemon("b"), await sim.daemon("c")];
  const writer = a.acquireRW("stale", "exclusive");
  await sim.advance(20);
  b.acquireRW("stale", "shared");
  await sim.advance(20);
  b.acquireRW("stale", "exclusive");
  await sim.advance(20);
  const reader = c.acquireRW("stale", "shared");
  await sim.advance(20);
  const line = sim.store.peek(a.rwlockName("stale"))!;
  t.deepEqual(
    [...line.queue, ...(line.waiting ?? [])].map((entry) => entry.split(" ")[0]),
    [b.engine.identity, b.engine.identity, c.engine.identity],
    "b's two entries, then c's",
  );
  b.conn.holdEvents(); // b hears nothing more: its turns pass
  const releasedAt = a.engine.clock.now();
  writer.close();
  for (let i = 0; i < 60 && reader.grant === undefined; i++) await sim.advance(50);
  t.truthy(reader.grant, "c's reader skipped b's stale entries");
  // One turn grace (2 s at a 15 s lease): a quarter grace more per daemon between c and the head, none here.
  t.true(reader.grant!.at - releasedAt <= 2_150, `granted ${reader.grant!.at - releasedAt} ms after the writer released`);
});

test("rwlock: a waiter's turn grace does not start again when a daemon that announced itself later sorts ahead of it", async (t) => {
  const sim = new SimCluster();
  const [a, b, d] = [await sim.daemon("a"), await sim.daemon("b"), await sim.daemon("d")];
  const writer = a.acquireRW("late", "exclusive");
  await sim.advance(20);
  b.acquireRW("late", "shared");
  await sim.advance(20);
  b.conn.holdEvents(); // b hears nothing more: its turn passes
  writer.close();
  await sim.advance(20);
  const askedAt = d.engine.clock.now();
  const reader = d.acquireRW("late", "shared");
  await sim.advance(1_000);
  // c announces itself a second after d, and dies; announcements are ordered by text, so c's sorts ahead of d's.
  const c = await sim.daemon("c");
  c.acquireRW("late", "exclusive");
  await sim.advance(20);
  c.kill();
  const order = line(sim.store.peek(a.rwlockName("late"))!).map((entry) => entry.split(" ")[0]);
  t.deepEqual(order, [b.engine.identity, c.engine.identity, d.engine.identity], "b's entry, then c's, then d's");
  for (let i = 0; i < 80 && reader.grant === undefined; i++) await sim.advance(50);
  t.truthy(reader.grant, "d's reader skipped the entries ahead of it");
  // Its grace started when it found the lock free: one turn grace (2 s at a 15 s lease) and a quarter more for the
  // second daemon ahead, not counted again from c's announcement.
  t.true(reader.grant!.at - askedAt <= 2_650, `granted ${reader.grant!.at - askedAt} ms after it asked`);
});
