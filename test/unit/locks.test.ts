// Engine lock semantics on the memory store with a fake clock: no test sleeps.
import test, { type ExecutionContext } from "ava";
import type { Clock, Timer } from "../../daemon/engine/clock.js";
import { MAX_GRANTS_IN_A_ROW } from "../../daemon/engine/decide.js";
import { Engine } from "../../daemon/engine/index.js";
import { StoreError } from "../../daemon/store/lease-store.js";
import { ConnectionStore } from "../support/connection-store.js";
import { settle } from "../support/fake-clock.js";
import { leaseRecord } from "../support/lease-record.js";
import { SimCluster, LockHandle, type SimDaemon } from "../support/sim.js";

const LEASE = 15_000;
const DEADLINE = 10_000;

function holders(handles: LockHandle[]): LockHandle[] {
  return handles.filter((h) => h.grant !== undefined && h.loss === undefined && !h.controller.signal.aborted);
}

test("mutual exclusion: one holder among many clients on three daemons", async (t) => {
  const sim = new SimCluster();
  const daemons = [await sim.daemon("a"), await sim.daemon("b"), await sim.daemon("c")];
  const handles: LockHandle[] = [];
  for (let i = 0; i < 30; i++) handles.push(daemons[i % 3]!.acquire("job", { holder: `client-${i}` }));
  const tokens: number[] = [];
  for (let round = 0; round < 30; round++) {
    await sim.advance(50);
    const current = holders(handles);
    t.is(current.length, 1, `round ${round}: exactly one holder`);
    tokens.push(current[0]!.grant!.token);
    current[0]!.close();
  }
  t.deepEqual(
    tokens,
    [...tokens].sort((a, b) => a - b),
    "tokens increase in acquisition order",
  );
  t.is(new Set(tokens).size, 30, "every acquisition has its own token");
  t.true(
    handles.every((h) => h.grant !== undefined),
    "every client eventually held the lock",
  );
});

test("FIFO handoff: local waiters acquire in the order they asked", async (t) => {
  const sim = new SimCluster();
  const d = await sim.daemon();
  const handles = ["first", "second", "third", "fourth"].map((holder) => d.acquire("fifo", { holder }));
  const order: string[] = [];
  for (let i = 0; i < 4; i++) {
    await sim.advance(10);
    const [current] = holders(handles);
    order.push(current!.grant !== undefined ? ["first", "second", "third", "fourth"][handles.indexOf(current!)]! : "none");
    current!.close();
  }
  t.deepEqual(order, ["first", "second", "third", "fourth"]);
});

test("FIFO handoff across daemons: a waiting daemon is served before the releasing daemon's next client", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  const a1 = a.acquire("fair", { holder: "a1" });
  await sim.advance(10);
  const b1 = b.acquire("fair", { holder: "b1" });
  await sim.advance(10);
  const a2 = a.acquire("fair", { holder: "a2" });
  await sim.advance(10);
  a1.close();
  await sim.advance(10);
  t.truthy(b1.grant, "b, which waited first, holds the lock");
  t.is(a2.grant, undefined);
  b1.close();
  await sim.advance(10);
  t.truthy(a2.grant);
  t.true(a2.grant!.token > b1.grant!.token);
});

test("non-fair: the holding daemon hands the lock to its own non-fair waiters, one write each, up to MAX_GRANTS_IN_A_ROW in a row while another daemon waits, and the other daemon is served next", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  const first = a.acquire("barge", { holder: "a0", nonFair: true });
  await sim.advance(10);
  const waiter = b.acquire("barge", { holder: "b1" });
  await sim.advance(10);
  const local: LockHandle[] = [first];
  for (let i = 1; i <= MAX_GRANTS_IN_A_ROW + 2; i++) local.push(a.acquire("barge", { holder: `a${i}`, nonFair: true }));
  await sim.advance(10);
  const updatesBefore = a.conn.calls.update;
  for (let i = 0; i < MAX_GRANTS_IN_A_ROW; i++) {
    const holding = local.find((h) => h.grant !== undefined && !h.controller.signal.aborted);
    if (holding === undefined || waiter.grant !== undefined) break;
    holding.close();
    await sim.advance(10);
  }
  const grantedHere = local.filter((h) => h.grant !== undefined).length;
  t.is(grantedHere, MAX_GRANTS_IN_A_ROW, "the non-fair waiters on the holding daemon got the lock, up to the bound");
  t.truthy(waiter.grant, "then the waiter on the other daemon holds it");
  t.true(waiter.grant!.token > Math.max(...local.filter((h) => h.grant).map((h) => h.grant!.token)));
  t.is(
    a.conn.calls.update - updatesBefore,
    MAX_GRANTS_IN_A_ROW,
    "one write per local handoff, and one for the release to the other daemon",
  );
});

test("fair by default: with the same waiters asking fair, the other daemon is served at the first release", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  const first = a.acquire("no-barge", { holder: "a0" });
  await sim.advance(10);
  const waiter = b.acquire("no-barge", { holder: "b1" });
  await sim.advance(10);
  const next = a.acquire("no-barge", { holder: "a1", nonFair: false });
  await sim.advance(10);
  first.close();
  await sim.advance(10);
  t.truthy(waiter.grant);
  t.is(next.grant, undefined);
});

test("stream close releases: the next waiter on another daemon acquires at once, without waiting for expiry", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  const holder = a.acquire("close");
  await sim.advance(10);
  const waiter = b.acquire("close");
  await sim.advance(10);
  t.is(waiter.grant, undefined);
  const closedAt = sim.clock.now();
  holder.close();
  await sim.advance(1);
  t.truthy(waiter.grant, "acquired within one watch event plus one write");
  t.true(waiter.grant!.at - closedAt < LEASE);
  t.true(waiter.grant!.token > holder.grant!.token);
});

test("release by token of a session hold: answered once the store has it, the stream ends without a loss, and the next waiter on another daemon acquires", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  const holder = a.acquire("by-token");
  await sim.advance(10);
  const waiter = b.acquire("by-token");
  await sim.advance(10);
  const releasing = a.engine.locks.release(a.lockName("by-token"), holder.grant!.token);
  let answered = false;
  void releasing.then(() => (answered = true));
  await sim.advance(1);
  t.true(answered, "Release answers once the store took the write");
  t.true(holder.released, "the hold's stream is ended as released");
  t.is(holder.loss, undefined, "a release is not a loss");
  t.truthy(waiter.grant, "the waiter on the other daemon acquires");
  t.true(waiter.grant!.token > holder.grant!.token);
  await t.throwsAsync(a.engine.locks.release(a.lockName("by-token"), holder.grant!.token), { message: /is not held/ });
});

test("no polling while waiting: waiters make no store calls beyond joining the queue", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  a.acquire("quiet");
  await sim.advance(10);
  const waiters = Array.from({ length: 10 }, (_, i) => b.acquire("quiet", { holder: `w${i}` }));
  await sim.advance(100);
  const before = { ...b.conn.calls };
  await sim.advance(10 * 60_000);
  t.deepEqual(b.conn.calls, before, "ten minutes of waiting cost the waiting daemon no calls");
  t.true(waiters.every((w) => w.grant === undefined && w.failure === undefined));
  t.true(a.conn.calls.update > 100, "meanwhile the holder kept renewing");
});

test("renewals: the holder renews about every third of the lease and hears how long it may act", async (t) => {
  const sim = new SimCluster();
  const d = await sim.daemon();
  const h = d.acquire("renew");
  await sim.advance(10);
  t.truthy(h.grant);
  t.true(h.grant!.validForMs > DEADLINE - 100 && h.grant!.validForMs <= DEADLINE);
  await sim.advance(60_000);
  t.true(h.renewals.length >= 11 && h.renewals.length <= 13, `renewed ${h.renewals.length} times in 60 s`);
  t.true(h.renewals.every((v) => v > DEADLINE - 100 && v <= DEADLINE));
  t.is(h.loss, undefined);
});

test("lost before expiry: a holder that cannot renew is told before anyone else may take the lock", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  const holder = a.acquire("partition");
  await sim.advance(10);
  const waiter = b.acquire("partition");
  await sim.advance(10);
  a.conn.partition();
  await sim.advance(3 * LEASE);
  t.truthy(holder.loss, "the holder was told");
  t.is(holder.loss!.reason, "renew-deadline-exceeded");
  t.truthy(waiter.grant, "the waiter took over after expiry");
  t.true(holder.loss!.at < waiter.grant!.at, "lost was signalled before the takeover");
  t.true(waiter.grant!.at - holder.loss!.at >= LEASE - DEADLINE - 100, "with the lease minus renew deadline as margin");
});

test("a holder told it lost that closes its stream later, after the lock was taken again through its daemon, does not give back the new holder's lease", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  const name = a.lockName("late-close");
  const first = a.acquire("late-close");
  await sim.advance(10);
  a.conn.partition();
  await sim.advance(LEASE + 1_000);
  t.is(first.loss?.reason, "renew-deadline-exceeded", "the first holder was told it lost; it does not read its stream");
  a.conn.heal();
  await sim.advance(LEASE);
  const second = await a.engine.locks.tryAcquire({ leaseName: name, holder: "second", leaseMs: 30_000 });
  t.true(second.acquired, "taken again through the same daemon");
  const token = second.acquired ? second.grant.token : 0;
  first.close();
  await sim.advance(1_000);
  t.like(sim.store.peek(name), { holderIdentity: a.engine.identity, transitions: token }, "the second holder's lease stays held");
  const other = await b.engine.locks.tryAcquire({ leaseName: name, holder: "other", leaseMs: 5_000 });
  t.false(other.acquired, "nobody else is let in while the second holder's valid_for runs");
  t.truthy(await a.engine.locks.renew(name, token, undefined), "the second holder still renews");
});

test("expiry is measured from the observed change, not the renewTime written: clock skew is tolerated", async (t) => {
  const sim = new SimCluster();
  // a's wall clock is an hour behind: every renewTime it writes looks long expired.
  const a = await sim.daemon("a", { wallOffsetMs: -3_600_000 });
  const b = await sim.daemon("b");
  const holder = a.acquire("skew");
  await sim.advance(10);
  const waiter = b.acquire("skew");
  await sim.advance(5 * LEASE);
  t.is(waiter.grant, undefined, "b does not take a lease that is being renewed, whatever its renewTime says");
  t.is(holder.loss, undefined);
  a.kill();
  const killedAt = sim.clock.now();
  await sim.advance(2 * LEASE);
  t.truthy(waiter.grant);
  t.true(waiter.grant!.at - killedAt >= LEASE - 5_000, "taken over one lease after the last observed renewal");
});

test("crash: a killed daemon's lock is taken over after the lease expires", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  a.acquire("crash");
  await sim.advance(10);
  const waiter = b.acquire("crash");
  await sim.advance(10);
  a.kill();
  const killedAt = sim.clock.now();
  await sim.advance(LEASE - 5_001);
  t.is(waiter.grant, undefined, "not before the lease could have expired");
  await sim.advance(10_000);
  t.truthy(waiter.grant);
  t.true(waiter.grant!.at - killedAt <= LEASE + 100);
});

test("restart: a new daemon process never mistakes a lease of its previous life for its own", async (t) => {
  const sim = new SimCluster();
  const first = await sim.daemon("pod-0");
  first.acquire("restart");
  await sim.advance(10);
  first.kill();
  const restarted = await sim.daemon("pod-0");
  const again = restarted.acquire("restart");
  await sim.advance(LEASE - 1_000);
  t.is(again.grant, undefined, "waits for the old lease to expire");
  await sim.advance(2_000);
  t.truthy(again.grant);
  t.is(again.grant!.token, 2);
});

test("fencing tokens strictly increase across 1000 acquisitions", async (t) => {
  const sim = new SimCluster();
  const daemons = [await sim.daemon("a"), await sim.daemon("b")];
  let last = 0;
  for (let i = 0; i < 1000; i++) {
    const h = daemons[i % 2]!.acquire("tokens");
    await sim.advance(1);
    if (h.grant === undefined) return t.fail(`acquisition ${i} did not complete`);
    t.true(h.grant.token > last, `token ${h.grant.token} after ${last}`);
    last = h.grant.token;
    h.close();
    await sim.advance(1);
  }
  t.is(last, 1000);
});

test("wait timeout: the wait ends with wait-timeout naming the holder, and nothing is held", async (t) => {
  const sim = new SimCluster();
  const d = await sim.daemon();
  d.acquire("timeout", { holder: "busy-job" });
  await sim.advance(10);
  const waiter = d.acquire("timeout", { waitTimeoutMs: 2_000 });
  await sim.advance(2_010);
  t.is(waiter.failure?.code, "wait-timeout");
  t.regex(waiter.failure!.message, /busy-job/);
  const zero = d.acquire("timeout", { waitTimeoutMs: 0 });
  await sim.advance(1);
  t.is(zero.failure?.code, "wait-timeout", "zero wait fails at once when held");
});

test("lease-held lock: TryAcquire, Renew and Release with stale and foreign tokens change nothing", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  const name = a.lockName("lease");
  const first = await a.engine.locks.tryAcquire({ leaseName: name, holder: "script", leaseMs: 5_000 });
  t.true(first.acquired);
  const token = first.acquired ? first.grant.token : 0;
  const other = await b.engine.locks.tryAcquire({ leaseName: name, holder: "other", leaseMs: 5_000 });
  t.false(other.acquired, "held by another daemon's lease");
  t.like(other, { holder: "script", token });

  const before = sim.store.peek(name);
  await t.throwsAsync(a.engine.locks.renew(name, token + 1, undefined), { message: /token 2 is not held/ });
  await t.throwsAsync(b.engine.locks.renew(name, token, undefined), { message: /not held by this daemon/ }, "foreign daemon");
  await t.throwsAsync(a.engine.locks.release(name, token - 1), { instanceOf: Error });
  t.deepEqual(sim.store.peek(name), before, "rejected calls changed nothing");

  await sim.advance(4_000);
  const validFor = await a.engine.locks.renew(name, token, undefined);
  t.true(validFor > 3_000 && validFor <= 3_334, `valid for ${validFor} ms after a renewal of a 5 s lease`);
  await sim.advance(4_000);
  t.false((await b.engine.locks.tryAcquire({ leaseName: name, holder: "other", leaseMs: 5_000 })).acquired, "the renewal kept it held");

  await a.engine.locks.release(name, token);
  const releasedTwice = await a.engine.locks.release(name, token).then(
    () => "released",
    (err: Error) => err.message,
  );
  t.regex(releasedTwice, /not held/, "a second Release is rejected");
  await sim.advance(10);
  const next = await b.engine.locks.tryAcquire({ leaseName: name, holder: "other", leaseMs: 5_000 });
  t.true(next.acquired, "free at once after Release");
  t.is(next.acquired ? next.grant.token : 0, token + 1);
});

test("lease-held lock expires when not renewed", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  const name = a.lockName("expire");
  const first = await a.engine.locks.tryAcquire({ leaseName: name, holder: "forgetful", leaseMs: 3_000 });
  t.true(first.acquired);
  const waiter = b.acquire("expire");
  await sim.advance(2_900);
  t.is(waiter.grant, undefined);
  await sim.advance(200);
  t.truthy(waiter.grant, "acquired once the unrenewed lease ran out");
  await t.throwsAsync(a.engine.locks.renew(name, first.acquired ? first.grant.token : 0, undefined), { message: /not held/ });
});

test("only its own leases: a foreign Lease is never modified and the error says so", async (t) => {
  const sim = new SimCluster();
  const d = await sim.daemon();
  sim.store.addForeign(d.lockName("controller-leader"));
  const h = d.acquire("controller-leader");
  await sim.advance(10);
  t.is(h.failure?.code, "foreign-lease");
  t.regex(h.failure!.message, /not managed by metaparticle-sync/);
  await t.throwsAsync(d.engine.locks.tryAcquire({ leaseName: d.lockName("controller-leader"), holder: "x", leaseMs: 5_000 }), {
    message: /not managed/,
  });
});

test("graceful shutdown: holders are told, leases released, and a waiter elsewhere acquires at once", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  const held = a.acquire("shutdown");
  const queued = a.acquire("shutdown");
  await sim.advance(10);
  const waiter = b.acquire("shutdown");
  await sim.advance(10);
  const done = a.engine.shutdown(5_000);
  await sim.advance(1);
  t.is(held.loss?.reason, "shutdown");
  t.is(queued.failure?.code, "shutting-down");
  // The holder reads its Lost and closes its stream, as the client libraries do.
  held.close();
  await sim.advance(10);
  await done;
  t.truthy(waiter.grant, "taken over at once, not after expiry");
  t.true(waiter.grant!.at - held.loss!.at < 100);
});

test("graceful shutdown keeps a session lease whose holder does not close its stream until its valid_for has passed", async (t) => {
  const sim = new SimCluster();
  const renewedAt: number[] = [];
  const a = await sim.daemon("a", { observer: { renewed: () => void renewedAt.push(sim.clock.now()) } });
  const b = await sim.daemon("b");
  const held = a.acquire("unread", { holder: "paused" });
  await sim.advance(10);
  const waiter = b.acquire("unread", { holder: "waiter" });
  // Renewed once (at 5 s), the holder acts until its last valid_for ends,
  // whether or not it reads the Lost it is told at 9 s.
  await sim.advance(9_000);
  t.is(renewedAt.length, 1);
  const promisedUntil = renewedAt[0]! + held.renewals[0]!;
  const expiry = renewedAt[0]! + LEASE;
  const done = a.engine.shutdown(10_000);
  await sim.advance(1);
  t.is(held.loss?.reason, "shutdown", "told at once");
  await sim.advance(promisedUntil - sim.clock.now() - 1);
  t.is(waiter.grant, undefined, "nobody else holds the lock while the holder may still act");
  await sim.advance(10_000);
  await done;
  t.truthy(waiter.grant, "given back within the shutdown timeout");
  t.true(waiter.grant!.at >= promisedUntil);
  t.true(waiter.grant!.at < expiry, "given back, not left to expire");
});

test("graceful shutdown answers a Release by token its holder asked for before the shutdown, and gives the lease back at once", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  const held = a.acquire("asked", { holder: "leaving" });
  await sim.advance(10);
  const waiter = b.acquire("asked", { holder: "waiter" });
  await sim.advance(10);
  // A renewal held on a slow link keeps the contender's loop busy, so the Release waits in its queue when the shutdown comes.
  let letGo!: () => void;
  a.conn.before = () => new Promise<void>((resolve) => (letGo = resolve));
  await sim.advance(5_000);
  t.is(typeof letGo, "function", "the renewal is on its way");
  const release = a.engine.locks.release(a.lockName("asked"), held.grant!.token).then(
    () => "released",
    (err: Error) => err.message,
  );
  const stoppedAt = sim.clock.now();
  const done = a.engine.shutdown(10_000);
  a.conn.before = undefined;
  letGo();
  await sim.advance(10);
  await done;
  t.is(await release, "released");
  t.truthy(waiter.grant, "the waiter is served at once: the holder had let go");
  t.true(waiter.grant!.at - stoppedAt < 100);
});

test("graceful shutdown leaves a session lease to expire when its holder's valid_for outlasts the shutdown timeout", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  const held = a.acquire("slow", { holder: "paused" });
  await sim.advance(10);
  const waiter = b.acquire("slow", { holder: "waiter" });
  await sim.advance(10);
  const done = a.engine.shutdown(1_000);
  await sim.advance(1_000);
  await done;
  t.is(held.loss?.reason, "shutdown");
  await sim.advance(held.grant!.validForMs);
  t.is(waiter.grant, undefined, "not released at the timeout, nor after it");
  t.is(sim.store.peek(a.lockName("slow"))?.holderIdentity, a.engine.identity, "left to expire");
  await sim.advance(LEASE);
  t.truthy(waiter.grant, "taken over once the lease has run out");
});

test("deleted lease: the holder is told and tokens never go back when it is re-created", async (t) => {
  const sim = new SimCluster();
  const d = await sim.daemon();
  const first = d.acquire("deleted");
  await sim.advance(10);
  first.close();
  await sim.advance(10);
  const second = d.acquire("deleted");
  await sim.advance(10);
  sim.store.delete(d.lockName("deleted"));
  await sim.advance(10);
  t.is(second.loss?.reason, "deleted");
  const third = d.acquire("deleted");
  // Not before the end of the lease observed: the holder told of the deletion may still act until then.
  await sim.advance(LEASE);
  t.is(third.grant?.token, 3);
});

test("handoff latency counts from the ask when the lease stood free before anyone asked", async (t) => {
  const handoffs: (number | undefined)[] = [];
  const sim = new SimCluster();
  const d = await sim.daemon("a", { observer: { acquired: (_kind, ms) => handoffs.push(ms) } });
  const first = d.acquire("idle", { holder: "first" });
  await sim.advance(10);
  first.close();
  await sim.advance(60_000);
  const second = d.acquire("idle", { holder: "second" });
  await sim.advance(10);
  t.truthy(second.grant, "the free lease is acquired");
  t.is(handoffs.length, 2);
  t.is(handoffs[0], undefined, "creating the lease is no handoff");
  t.true(handoffs[1]! <= 10, `handoff measured as ${handoffs[1]} ms, not the minute the lease stood free`);
});

test("graceful shutdown keeps a lease-held lock until its holder's valid_for has passed", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  const held = await a.tryAcquire("leased", { holder: "cron" });
  if (!held.acquired) return t.fail("TryAcquire on a free lock must succeed");
  const waiter = b.acquire("leased", { holder: "waiter" });
  await sim.advance(10);
  const stopped = a.engine.shutdown(10_000);
  await sim.advance(100);
  await stopped;
  await sim.advance(held.grant.validForMs);
  t.is(waiter.grant, undefined, "nobody else holds the lock while the TryAcquire holder may still act");
  await sim.advance(LEASE);
  t.truthy(waiter.grant, "once the lease runs out it is taken over");
  t.true(waiter.grant!.at >= held.at + held.grant.validForMs);
});

test("a shortening Renew whose reply is lost never lets others in before the valid_for already promised", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  const held = await a.tryAcquire("shrink", { holder: "cron", leaseMs: 30_000 });
  if (!held.acquired) return t.fail("TryAcquire on a free lock must succeed");
  const promisedUntil = held.at + held.grant.validForMs;
  const waiter = b.acquire("shrink", { holder: "waiter" });
  await sim.advance(10);
  // The write is applied, its reply lost, and the holder's daemon cut off at once (it cannot write the lease
  // back); a daemon that first sees the lease now counts only what it reads.
  a.conn.loseReply = (operation) => {
    if (operation !== "update") return false;
    a.conn.partition();
    return true;
  };
  const renew = a.engine.locks.renew(a.lockName("shrink"), held.grant.token, 2_000);
  await sim.advance(1);
  const c = await sim.daemon("c");
  const late = c.acquire("shrink", { holder: "late-waiter" });
  await sim.advance(19_999);
  await t.throwsAsync(renew, undefined, "the caller never heard of the shorter lease");
  a.conn.loseReply = undefined;
  a.conn.heal();
  await sim.advance(20_000);
  t.truthy(waiter.grant ?? late.grant, "the lease runs out in the end");
  for (const grant of [waiter.grant, late.grant].filter((g) => g !== undefined))
    t.true(grant.at >= promisedUntil, `granted at ${grant.at} ms, before the promised ${promisedUntil} ms had passed`);
});

test("tokens never go back after a Lease is deleted and re-created by a daemon that never saw it", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const tokens: number[] = [];
  for (let i = 0; i < 3; i++) {
    const held = a.acquire("recreated");
    await sim.advance(10);
    tokens.push(held.grant!.token);
    held.close();
    await sim.advance(10);
  }
  // a does not hear of the deletion (cut off from the store), so it cannot restore the Lease (see the next test).
  a.conn.partition();
  sim.store.delete(a.lockName("recreated"));
  await sim.advance(10);
  const b = await sim.daemon("b");
  const fresh = b.acquire("recreated");
  await sim.advance(LEASE);
  t.truthy(fresh.grant, "b holds the re-created lease and has renewed it");
  t.is(fresh.grant!.token, 1, "b never saw the tokens before the deletion");
  fresh.close();
  a.conn.heal();
  await sim.advance(1_000);
  const again = a.acquire("recreated");
  await sim.advance(10);
  t.truthy(again.grant);
  t.true(again.grant!.token > Math.max(...tokens), `a issued token ${again.grant!.token} after having issued ${tokens.join(", ")}`);
});

/**
 * Clients of `daemon` taking `name` one after another, each releasing as
 * soon as it is granted: the next one "queued" behind it already, or asking
 * 1 ms "after-release". Counts the grants to them.
 */
function keepTaking(sim: SimCluster, daemon: SimDaemon, name: string, next: "queued" | "after-release", pauseMs = (_left: number) => 1) {
  const grants: { token: number; at: number }[] = [];
  const take = (left: number): void => {
    if (left === 0) return;
    const handle = daemon.acquire(name, { holder: `${daemon.name}-${left}` });
    handle.sink.acquired = (grant) => {
      grants.push({ token: grant.token, at: sim.clock.now() });
      if (next === "queued") take(left - 1);
      else sim.clock.setTimer(pauseMs(left), () => take(left - 1));
      handle.close();
    };
  };
  take(2_000);
  return {
    /** Grants to these clients after `since` and before `waiter` was served: how often it was passed over. */
    passesBefore: (waiter: LockHandle, since: number) =>
      grants.filter((g) => g.at > since && (waiter.grant === undefined || g.token < waiter.grant.token)).length,
    /** Grants to these clients after `since` of a token up to `token`. */
    grantsUpTo: (token: number, since: number) => grants.filter((g) => g.at > since && g.token <= token).length,
    /** Grants to these clients after `since`. */
    grantsAfter: (since: number) => grants.filter((g) => g.at > since).length,
  };
}

test("a waiter on another daemon is served after a bounded number of local handoffs, and backs off on conflicts", async (t) => {
  const sim = new SimCluster();
  // Every store call takes a millisecond, so a waiter's read-modify-write
  // always overlaps the holder's next handoff write.
  sim.store.interceptor = () => new Promise<void>((resolve) => sim.clock.setTimer(1, resolve));
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  // A line of local claims on a, each releasing as soon as it is granted.
  const a1 = keepTaking(sim, a, "hot", "queued");
  await sim.advance(3);
  const callsBefore = b.conn.calls.update + b.conn.calls.get + b.conn.calls.create;
  const askedAt = sim.clock.now();
  const waiter = b.acquire("hot", { holder: "b" });
  await sim.advance(1_000);
  const passes = a1.passesBefore(waiter, askedAt);
  t.truthy(waiter.grant, `b was never served while a handed the lock over locally ${passes} times`);
  t.log({ passes, at: sim.clock.now() - askedAt, calls: b.conn.calls });
  t.true(passes > 0, "a was handing over locally while b waited");
  t.true(passes <= 32, `a handed over locally ${passes} times before serving b`);
  const calls = b.conn.calls.update + b.conn.calls.get + b.conn.calls.create - callsBefore;
  t.true(calls <= 40, `b made ${calls} store calls in ${sim.clock.now() - askedAt} ms while waiting`);
});

test("a waiter on a slow daemon is served when the holding daemon releases and retakes the lock back to back", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  // b's connection is slow: each of its calls takes 25 ms more.
  b.conn.before = () => new Promise<void>((resolve) => sim.clock.setTimer(25, resolve));
  // Each client of a asks only after the one before it has let go.
  const a1 = keepTaking(sim, a, "retake", "after-release");
  await sim.advance(3);
  const askedAt = sim.clock.now();
  const waiter = b.acquire("retake", { holder: "b" });
  await sim.advance(2_000);
  const passes = a1.passesBefore(waiter, askedAt);
  t.truthy(waiter.grant, `b was never served while a took the lock ${passes} times`);
  t.true(passes > 0, "a kept taking the lock while b waited");
  t.true(passes <= 32, `a took the lock ${passes} times in a row before serving b`);
});

/**
 * The token of lock `name` when `daemon`'s announcement that it waits landed in
 * the store (undefined until then), watched after each of its calls.
 */
function announcedAt(sim: SimCluster, daemon: SimDaemon, name: string): () => number | undefined {
  let token: number | undefined;
  daemon.conn.after = () => {
    const record = sim.store.peek(daemon.lockName(name));
    if (token === undefined && record?.waiting?.includes(daemon.engine.identity)) token = record.transitions;
    return undefined;
  };
  return () => token;
}

test("a waiter on a slow daemon joins the queue with one patch while the holding daemon hands the lock over back to back, and is served next, before any yield", async (t) => {
  const sim = new SimCluster();
  // Every store call takes a millisecond, and b's 5 ms more: a hands the lock over every millisecond, so any
  // read-modify-write of b's (a read and a conditional write, 12 ms) would lose to a's next handoff.
  sim.store.interceptor = () => new Promise<void>((resolve) => sim.clock.setTimer(1, resolve));
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  b.conn.before = () => new Promise<void>((resolve) => sim.clock.setTimer(5, resolve));
  const a1 = keepTaking(sim, a, "patched", "queued");
  // b asks as a starts a run of grants (after a yield, its first one lasting the turn grace): a has its whole
  // budget of MAX_GRANTS_IN_A_ROW ahead before it would yield again.
  await sim.advance(2_100);
  while (a1.grantsAfter(sim.clock.now() - 50) !== 1) await sim.advance(1);
  const announced = announcedAt(sim, b, "patched");
  // The lease as it stood free while b waited: a yield would leave it free with b not first in line.
  const frees: string[][] = [];
  sim.store.watch((event) => {
    if (event.type === "upsert" && event.lease.holderIdentity === "" && event.lease.name === b.lockName("patched"))
      frees.push([...event.lease.queue]);
  });
  const before = { ...b.conn.calls };
  const askedAt = sim.clock.now();
  const waiter = b.acquire("patched", { holder: "b" });
  await sim.advance(1_000);
  t.truthy(waiter.grant, "b was served");
  const passes = a1.passesBefore(waiter, askedAt);
  t.true(passes > 0, "a was handing the lock over while b waited");
  t.true(passes < MAX_GRANTS_IN_A_ROW, `a took the lock ${passes} times before serving b`);
  t.true(
    frees.length > 0 && frees.every((queue) => queue[0] === b.engine.identity),
    `the lease stood free with b not first in line (a yielded): ${JSON.stringify(frees)}`,
  );
  // Served next: none of a's grants after the patch landed (at most one a had sent before it).
  const landed = announced() ?? Infinity;
  const afterPatch = passes - a1.grantsUpTo(landed, askedAt);
  t.true(Number.isFinite(landed) && afterPatch <= 1, `a took the lock ${afterPatch} times after b's announcement landed`);
  t.deepEqual(
    { patch: b.conn.calls.patch - before.patch, update: b.conn.calls.update - before.update },
    { patch: 1, update: 1 },
    "b joined with one patch and took the lock with one write",
  );
});

test("a daemon whose patch is refused (a Role without the patch verb, as older versions had) joins the wait queue by a conditional write instead, and its waiter is served", async (t) => {
  const sim = new SimCluster();
  sim.store.interceptor = (operation) => {
    if (operation === "patch") throw new StoreError("forbidden", 'leases.coordination.k8s.io is forbidden: cannot "patch"');
  };
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  const holder = a.acquire("no-patch", { holder: "a" });
  await sim.advance(10);
  t.truthy(holder.grant);
  const waiter = b.acquire("no-patch", { holder: "b" });
  await sim.advance(10);
  t.deepEqual(sim.store.peek(b.lockName("no-patch"))?.queue, [b.engine.identity], "b is queued");
  t.is(waiter.failure, undefined, "the refusal did not fail b's waiter");
  t.is(b.conn.calls.patch, 1, "b tried the patch once");
  holder.close();
  await sim.advance(10);
  t.truthy(waiter.grant, "b was served");
  // Once refused, the daemon no longer tries: a second waiter there joins by update at once.
  const other = a.acquire("no-patch", { holder: "a2" });
  await sim.advance(10);
  t.deepEqual(sim.store.peek(b.lockName("no-patch"))?.queue, [a.engine.identity]);
  waiter.close();
  await sim.advance(10);
  t.truthy(other.grant);
  t.is(a.conn.calls.patch, 1, "a tried the patch once too");
});

/**
 * Daemon a takes lock `name` for its clients back to back (pausing `pauseMs`
 * between clients), both daemons' watches 300 ms behind the store and b's
 * calls 25 ms slower; b asks once a has learned its watch's lag (until then
 * its first yield lasts the turn grace, 2 s). b must be let in within two
 * yields' worth of a's grants.
 */
async function servedBehindLaggingWatch(t: ExecutionContext, name: string, pauseMs: (left: number) => number, waitMs: number) {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  for (const daemon of [a, b]) daemon.conn.delayEvents = (deliver) => void sim.clock.setTimer(300, deliver);
  b.conn.before = () => new Promise<void>((resolve) => sim.clock.setTimer(25, resolve));
  const a1 = keepTaking(sim, a, name, "after-release", pauseMs);
  await sim.advance(4_000);
  const askedAt = sim.clock.now();
  const waiter = b.acquire(name, { holder: "b" });
  await sim.advance(waitMs);
  const passes = a1.passesBefore(waiter, askedAt);
  t.truthy(waiter.grant, `b was never served while a took the lock ${passes} times`);
  // a was taking the lock back to back (between its pauses) when b asked: b had to be let in.
  t.true(a1.grantsAfter(askedAt - 1_000) >= 16, "a was taking the lock back to back");
  t.true(passes <= 32, `a took the lock ${passes} times in a row before serving b`);
}

test("a waiter on a daemon that hears 300 ms late is served when the holding daemon releases and retakes the lock back to back", (t) =>
  servedBehindLaggingWatch(t, "retake-lagging", () => 1, 3_000));

// Fourteen clients of a one after another, then none for 130 ms (the lease free), and again: never 16 grants in a
// row without a pause, but b, which hears 300 ms late and backs off after its conflicts, misses each pause.
test("a waiter on a daemon that hears 300 ms late is served when the holding daemon's clients come back in bursts, each after the lease stood free 130 ms", (t) =>
  servedBehindLaggingWatch(t, "bursts-lagging", (left) => (left % 14 === 0 ? 130 : 1), 5_000));

test("a waiter on a slow daemon is served while two fast daemons take the lock back to back, each yielding to the other", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  const c = await sim.daemon("c");
  for (const daemon of [a, b, c]) daemon.conn.delayEvents = (deliver) => void sim.clock.setTimer(50, deliver);
  b.conn.before = () => new Promise<void>((resolve) => sim.clock.setTimer(25, resolve));
  const a1 = keepTaking(sim, a, "two-fast", "after-release");
  const c1 = keepTaking(sim, c, "two-fast", "after-release");
  await sim.advance(4_000);
  const announced = announcedAt(sim, b, "two-fast");
  const askedAt = sim.clock.now();
  const patchesBefore = b.conn.calls.patch;
  const waiter = b.acquire("two-fast", { holder: "b" });
  await sim.advance(5_000);
  const passes = a1.passesBefore(waiter, askedAt) + c1.passesBefore(waiter, askedAt);
  t.truthy(waiter.grant, `b was never served while a and c took the lock ${passes} times`);
  t.true(a1.grantsAfter(askedAt - 1_000) + c1.grantsAfter(askedAt - 1_000) >= 16, "a and c were taking the lock");
  // b joins once, and is served next: no grant to a or c after its announcement landed but one already on its way.
  t.is(b.conn.calls.patch - patchesBefore, 1, "b announced itself once");
  const landed = announced() ?? Infinity;
  const afterPatch = passes - a1.grantsUpTo(landed, askedAt) - c1.grantsUpTo(landed, askedAt);
  t.true(Number.isFinite(landed) && afterPatch <= 1, `a and c took the lock ${afterPatch} times after b's announcement landed`);
  // Before it landed: a turn of one of them and the other's (its lost attempt to take the lease, a read, the patch).
  t.true(passes <= 2 * MAX_GRANTS_IN_A_ROW + 8, `a and c took the lock ${passes} times before serving b`);
});

test("a reply that comes after its call's deadline is not acted on: no grant of a token older than one already granted", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  const first = a.acquire("late", { holder: "a1" });
  await sim.advance(10);
  const second = a.acquire("late", { holder: "a2" });
  await sim.advance(10);
  // The handoff to a2 is applied at once, but its reply comes 30 s later,
  // whatever deadline the daemon gave the call.
  a.conn.after = () => new Promise<void>((resolve) => sim.clock.setTimer(30_000, resolve));
  first.close();
  await sim.advance(10);
  a.conn.after = undefined;
  // a hears nothing of b's grant before the late reply comes (its watch lags): only the deadline keeps it from
  // acting on that reply, not what its cache knows.
  a.conn.holdEvents();
  const elsewhere = b.acquire("late", { holder: "b1" });
  await sim.advance(31_000);
  a.conn.releaseEvents();
  await sim.advance(9_000);
  const grants = [first, second, elsewhere]
    .filter((h) => h.grant !== undefined)
    .map((h) => h.grant!)
    .sort((x, y) => x.at - y.at);
  for (let i = 1; i < grants.length; i++) {
    t.true(
      grants[i]!.token > grants[i - 1]!.token,
      `token ${grants[i]!.token} granted at ${grants[i]!.at} ms after ${grants[i - 1]!.token}`,
    );
    t.true(grants[i]!.validForMs > 0, `token ${grants[i]!.token} was granted with nothing left of its valid_for`);
  }
});

test("an acquiring write whose reply comes after the watch told that the Lease changed hands is not granted: no overlap with the holder after a hand deletion", async (t) => {
  // Seed 433017: d1's acquisition of l2 landed, its reply held back while d1 was frozen; l2 was deleted by hand, and a
  // daemon that had never seen it created it and granted token 1. Thawed, d1 heard all that, then the reply, and told
  // its client acquired (token 9, valid_for 14 s) while the other holder's promise ran; lost came only after.
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  // a's watch covers the name before its events are held (as when another client of a uses it).
  const interest = a.engine.cache.subscribe(a.lockName("moved"), () => {});
  t.teardown(interest);
  await sim.advance(10);
  a.conn.holdEvents();
  let reply!: () => void;
  a.conn.after = () => new Promise<void>((resolve) => (reply = resolve));
  const late = a.acquire("moved", { holder: "a1" });
  await sim.advance(10);
  a.conn.after = undefined;
  // Deleted by hand while a's reply is held; a daemon that never saw the Lease creates it and holds it.
  sim.store.delete(a.lockName("moved"));
  const c = await sim.daemon("c");
  const other = c.acquire("moved", { holder: "c1" });
  await sim.advance(100);
  t.truthy(other.grant, "the daemon that never saw the Lease took it");
  // a hears the deletion and the other daemon's Lease, then its reply.
  a.conn.releaseEvents();
  await sim.advance(10);
  reply();
  await sim.advance(100);
  t.is(late.grant, undefined, "a's client was not told acquired while c1 holds the lock");
  other.close();
  await sim.advance(40_000);
  t.truthy(late.grant, "a's client is served later");
  t.true(late.grant!.at >= other.grant!.at + 100, "after c1 let go");
});

test("a fresh GetLock that finds the Lease gone answers not held, also when the watch told of an older version while the read waited", async (t) => {
  // Seed 434306: d0's fresh read of l0 was sent after l0 was deleted by hand and answered "not found"; meanwhile d0's
  // lagging watch told of a version written before the deletion, and the read answered with it: held, token 12.
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  const holder = b.acquire("gone", { holder: "b1" });
  const interest = a.engine.cache.subscribe(a.lockName("gone"), () => {});
  t.teardown(interest);
  await sim.advance(100);
  t.truthy(holder.grant);
  t.true(a.engine.cache.get(a.lockName("gone")) !== undefined, "a has observed the Lease");
  // a's watch runs 300 ms behind (b hears nothing meanwhile, so nobody restores the Lease before the read's reply);
  // a version is written, then the Lease is deleted by hand.
  b.conn.holdEvents();
  a.conn.delayEvents = (deliver) => void sim.clock.setTimer(300, deliver);
  sim.store.edit(a.lockName("gone"), (r) => ({ ...r, leaseDurationSeconds: 20 }));
  await sim.advance(100);
  sim.store.delete(a.lockName("gone"));
  await sim.advance(50);
  // The read is sent after the deletion; its reply, "not found", comes after the older version's event.
  a.conn.after = () => new Promise<void>((resolve) => sim.clock.setTimer(200, resolve));
  const read = a.engine.locks.get(a.lockName("gone"), true);
  await sim.advance(10);
  a.conn.after = undefined;
  await sim.advance(500);
  const state = await read;
  t.false(state.held, `answered held by ${state.holder}, token ${state.token}: the Lease was gone all through the read`);
  t.is(state.token, 0);
});

test("a store call that hangs ends at its deadline instead of stalling the name", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  const holder = a.acquire("stall", { holder: "a" });
  await sim.advance(10);
  // b's first write conflicts, and the read that follows never answers.
  let armed = true;
  sim.store.interceptor = (operation, name) => {
    if (!armed || name !== b.lockName("stall")) return;
    if (operation === "update") throw new StoreError("conflict", "injected conflict");
    if (operation === "get") {
      armed = false;
      return new Promise<void>(() => {});
    }
  };
  const waiter = b.acquire("stall", { holder: "b" });
  await sim.advance(100);
  holder.close();
  await sim.advance(DEADLINE + 2_000);
  t.truthy(waiter.grant, "b acquires once its hung read has timed out");
});

test("no ghost holder: an acquire applied but unanswered, then cancelled, is released rather than left to expire", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  // a's watch covers the name before its events are held (as when another client of a uses it).
  const interest = a.engine.cache.subscribe(a.lockName("ghost"), () => {});
  t.teardown(interest);
  await sim.advance(1);
  a.conn.holdEvents();
  a.conn.loseReply = (operation) => operation === "create" || operation === "update";
  const cancelled = a.acquire("ghost", { holder: "a" });
  await sim.advance(5);
  t.is(sim.store.peek(a.lockName("ghost"))?.holderIdentity.startsWith("a_"), true, "the write took effect");
  cancelled.close();
  a.conn.loseReply = undefined;
  await sim.advance(500);
  a.conn.releaseEvents();
  const waiter = b.acquire("ghost", { holder: "b" });
  await sim.advance(3_000);
  t.truthy(waiter.grant, "b acquires within seconds, not after a whole lease of a holder nobody is");
});

test("Release retries inside the engine when another daemon joins the queue at the same moment", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const held = await a.tryAcquire("busy", { holder: "cron" });
  if (!held.acquired) return t.fail("TryAcquire on a free lock must succeed");
  let conflicts = 1;
  sim.store.interceptor = (operation) => {
    if (operation === "update" && conflicts-- > 0) throw new StoreError("conflict", "another daemon joined the queue");
  };
  const released = a.engine.locks.release(a.lockName("busy"), held.grant.token);
  await sim.advance(100);
  await t.notThrowsAsync(released);
  t.is(sim.store.peek(a.lockName("busy"))?.holderIdentity, "");
});

test("an Acquire whose stream was already cancelled leaves no contender behind", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const controller = new AbortController();
  controller.abort();
  a.engine.locks.acquire(
    { leaseName: a.lockName("gone"), holder: "x", leaseMs: LEASE, waitTimeoutMs: undefined },
    { acquired: () => t.fail("granted"), renewed: () => {}, lost: () => {}, failed: () => {}, released: () => {} },
    controller.signal,
  );
  await sim.advance(100);
  t.is(a.engine.existingContender(a.lockName("gone")), undefined);
});

test("a relist that started before this daemon's own write does not take the lease from its holder", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  // a's watch already covers "fresh" (another client of a follows it) ...
  const interest = a.engine.cache.subscribe(a.lockName("fresh"), () => {});
  t.teardown(interest);
  await sim.advance(1);
  // ... when a client takes it, and in the same turn another name joins the watch: its list is
  // taken before the create is applied and arrives after its reply.
  const holder = a.acquire("fresh", { holder: "a" });
  const other = a.engine.cache.subscribe(a.lockName("other"), () => {});
  t.teardown(other);
  await sim.advance(100);
  t.truthy(holder.grant, "granted");
  t.is(holder.loss, undefined, "the lease is not lost to a list older than the daemon's own write");
  t.truthy(sim.store.peek(a.lockName("fresh"))?.holderIdentity.startsWith("a_"));
});

test("a deletion heard late does not take a lease created after it from its holder", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  const first = a.acquire("late", { holder: "first" });
  await sim.advance(10);
  first.close();
  const interest = a.engine.cache.subscribe(a.lockName("late"), () => {});
  t.teardown(interest);
  const restorer = b.engine.cache.subscribe(a.lockName("late"), () => {});
  t.teardown(restorer);
  await sim.advance(10);
  // a's watch is slow: it has not heard yet that the Lease was deleted by hand when a client asks; b, which
  // heard at once, has restored it, and a takes the Lease restored (its write conflicts, its read finds it).
  a.conn.holdEvents();
  sim.store.delete(a.lockName("late"));
  await sim.advance(10);
  const holder = a.acquire("late", { holder: "second" });
  await sim.advance(10);
  t.truthy(holder.grant, "granted on the Lease created again");
  a.conn.releaseEvents();
  await sim.advance(10);
  t.is(holder.loss, undefined, "the deletion it hears now is older than the Lease it holds");
  t.truthy(sim.store.peek(a.lockName("late"))?.holderIdentity.startsWith("a_"));
});

test("a Lease deleted by hand that its daemon learns of from its own call is held off for the longest lease seen there: a renewal it never heard of may have promised that long", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  const name = a.lockName("unseen-renewal");
  // a has seen a 15 s lease on this name: its own client's.
  const first = a.acquire("unseen-renewal", { holder: "first" });
  await sim.advance(10);
  first.close();
  await sim.advance(10);
  const taken = await b.tryAcquire("unseen-renewal", { holder: "script", leaseMs: 5_000 });
  if (!taken.acquired) return t.fail("b's TryAcquire was refused");
  await sim.advance(10);
  // a's watch goes silent (half-open) and b's tells nothing either; b renews with a longer lease, and an
  // administrator deletes the Lease.
  a.conn.partition("hearing");
  b.conn.holdEvents();
  await sim.advance(1_000);
  const validFor = await b.engine.locks.renew(name, taken.grant.token, 15_000);
  const promisedUntil = sim.clock.now() + validFor;
  await sim.advance(500);
  sim.store.delete(name);
  // a's client asks once the 5 s lease a saw has run out: a's take-over finds the Lease gone.
  await sim.advance(4_000);
  const waiter = a.acquire("unseen-renewal", { holder: "waiter" });
  // a's watch comes back and lists: the Lease is gone, and so is the renewal a never heard of.
  await sim.advance(500);
  a.conn.heal();
  while (waiter.grant === undefined && sim.clock.now() < promisedUntil + 20_000) await sim.advance(250);
  t.truthy(waiter.grant, "served in the end");
  t.true(
    waiter.grant!.at >= promisedUntil,
    `granted at ${waiter.grant!.at} ms while b's holder was promised the lock until ${promisedUntil} ms`,
  );
});

test("a Lease deleted by hand that a daemon once read but did not watch is held off when it next covers the name: a renewal it never saw may have promised longer", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  const name = a.lockName("read-once");
  const taken = await b.tryAcquire("read-once", { holder: "script", leaseMs: 5_000 });
  if (!taken.acquired) return t.fail("b's TryAcquire was refused");
  // a reads the lock once (no client of a uses the name, so a does not watch it): a 5 s lease.
  await a.engine.locks.get(name, true);
  await sim.advance(1_000);
  const validFor = await b.engine.locks.renew(name, taken.grant.token, 15_000);
  const promisedUntil = sim.clock.now() + validFor;
  // b cannot restore what is deleted now (cut off), and a's client asks once the 5 s lease a saw has run out.
  b.conn.partition();
  sim.store.delete(name);
  await sim.advance(4_500);
  const late = await a.tryAcquire("read-once", { holder: "late" });
  t.false(late.acquired && late.at < promisedUntil, `granted at ${late.at} ms, b's holder promised the lock until ${promisedUntil} ms`);
});

/** A daemon's clock whose wall clock reads what the test sets (it may stand still or step back); its monotonic clock runs on. */
class SettableWallClock implements Clock {
  wall: number;

  constructor(private readonly inner: Clock) {
    this.wall = inner.wallTime().getTime();
  }

  now(): number {
    return this.inner.now();
  }

  wallTime(): Date {
    return new Date(this.wall);
  }

  setTimer(delayMs: number, callback: () => void): Timer {
    return this.inner.setTimer(delayMs, callback);
  }
}

test("a renewal changes the stored record whatever the holder's wall clock does: others do not take the lock while the holder may act", async (t) => {
  const sim = new SimCluster();
  const clock = new SettableWallClock(sim.clock);
  const engine = new Engine({ random: () => 0.5, store: new ConnectionStore(sim.store), clock, identity: "stuck_1" });
  const started = engine.start();
  await settle();
  await started;
  const b = await sim.daemon("b");
  const name = engine.locks.prefix() + "wall";
  const held = new LockHandle(clock);
  engine.locks.acquire({ leaseName: name, holder: "stuck", leaseMs: LEASE, waitTimeoutMs: undefined }, held.sink, held.controller.signal);
  await sim.advance(10);
  const waiter = b.acquire("wall", { holder: "waiter" });
  const renewTimes: number[] = [];
  // The wall clock stands still for 30 s, then steps back 20 s and stands still again.
  for (let second = 0; second < 60; second++) {
    if (second === 30) clock.wall -= 20_000;
    await sim.advance(1_000);
    const renewTime = sim.store.peek(name)?.renewTime?.getTime();
    if (renewTime !== undefined && renewTime !== renewTimes.at(-1)) renewTimes.push(renewTime);
  }
  t.is(held.loss, undefined, "the holder kept renewing, and kept its lock");
  t.is(waiter.grant, undefined, "nobody else took it meanwhile");
  t.true(held.renewals.length >= 10);
  t.is(renewTimes.length, held.renewals.length + 1, "every renewal wrote a renewTime of its own");
  t.deepEqual(
    renewTimes,
    [...renewTimes].sort((x, y) => x - y),
    "each after the one before",
  );
  held.close();
  await sim.advance(10);
  t.truthy(waiter.grant, "the waiter is served once the holder lets go");
});

/**
 * A hand edit of issue 19 defect 4, as `kubectl delete` or `kubectl edit`
 * would make it, of a lock held on daemon a while b and a both wait for it.
 */
async function handEdit(t: ExecutionContext, apply: (sim: SimCluster, name: string) => void): Promise<void> {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  const held = a.acquire("edited", { holder: "holder" });
  await sim.advance(10);
  const waiter = b.acquire("edited", { holder: "waiter" });
  const local = a.acquire("edited", { holder: "local-waiter" });
  await sim.advance(6_000);
  t.truthy(held.grant);
  const promised = held.validUntil;
  apply(sim, a.lockName("edited"));
  await sim.advance(10);
  t.truthy(held.loss, "the holder is told at once");
  // Until the valid_for the holder last heard runs out, it may still act (a paused process would).
  while (sim.clock.now() < promised) {
    t.is(waiter.grant, undefined, `granted to the waiter at ${sim.clock.now()} ms, while the holder may act until ${promised} ms`);
    t.is(local.grant, undefined, `granted to the local waiter at ${sim.clock.now()} ms, while the holder may act until ${promised} ms`);
    await sim.advance(250);
  }
  await sim.advance(LEASE + 5_000);
  t.true(waiter.grant !== undefined || local.grant !== undefined, "a waiter is served once the lease observed has run out");
  const tokens = [waiter.grant?.token, local.grant?.token].filter((x) => x !== undefined);
  t.true(tokens.every((token) => token > held.grant!.token));
}

test("a hand edit (delete) tells the holder at once, and nobody takes the lock before the expiry already observed", (t) =>
  handEdit(t, (sim, name) => sim.store.delete(name)));

test("a hand edit (clear the holder) tells the holder at once, and nobody takes the lock before the expiry already observed", (t) =>
  handEdit(t, (sim, name) => sim.store.edit(name, (r) => ({ ...r, holderIdentity: "", holder: "" }))));

test("a hand edit that shortens a held lease lets nobody in early: the holder renews over it and keeps its lock", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  const held = a.acquire("shortened", { holder: "holder" });
  await sim.advance(10);
  const waiter = b.acquire("shortened", { holder: "waiter" });
  await sim.advance(6_000);
  sim.store.edit(a.lockName("shortened"), (r) => ({ ...r, leaseDurationSeconds: 1 }));
  for (let i = 0; i < 120; i++) {
    await sim.advance(250);
    t.is(waiter.grant, undefined, `granted to the waiter at ${sim.clock.now()} ms after the lease was shortened by hand`);
  }
  t.is(held.loss, undefined, "the holder kept its lock");
  t.is(sim.store.peek(a.lockName("shortened"))?.leaseDurationSeconds, LEASE / 1000, "its renewals wrote its own lease duration back");
  held.close();
  await sim.advance(10);
  t.truthy(waiter.grant, "the waiter is served as soon as the holder lets go");
});

test("a Lease deleted by hand while a daemon watches it is restored at once: a daemon that never saw its tokens goes on from them", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const tokens: number[] = [];
  for (let i = 0; i < 3; i++) {
    const held = a.acquire("restored");
    await sim.advance(10);
    tokens.push(held.grant!.token);
    held.close();
    await sim.advance(10);
  }
  const watching = a.acquire("restored");
  await sim.advance(10);
  tokens.push(watching.grant!.token);
  sim.store.delete(a.lockName("restored"));
  await sim.advance(10);
  t.is(watching.loss?.reason, "deleted", "the holder is told");
  t.is(sim.store.peek(a.lockName("restored"))?.transitions, Math.max(...tokens), "the Lease is back, with its token count");
  const c = await sim.daemon("c");
  const fresh = c.acquire("restored");
  await sim.advance(LEASE + 5_000);
  t.truthy(fresh.grant, "c is served once the hold deleted with the Lease has run out");
  t.true(fresh.grant!.at >= watching.grant!.at + 10_000, "not before the holder's valid_for ran out");
  t.true(fresh.grant!.token > Math.max(...tokens), `c issued token ${fresh.grant!.token} after ${tokens.join(", ")}`);
});

test("a semaphore's Lease deleted by hand is restored with its number of permits and its token count", async (t) => {
  // A semaphore's N is written once, when its Lease is created: restored without it, the next claim could not check
  // its N against the semaphore's (docs/proposals/22-semaphores-rwlocks.md 1B).
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const name = "msync-semaphore-export";
  const { version: _version, ...fields } = leaseRecord({ name, kind: "semaphore", permits: 3, transitions: 4 });
  await sim.store.create(fields);
  const interest = a.engine.cache.subscribe(name, () => {});
  t.teardown(interest);
  await sim.advance(100);
  sim.store.delete(name);
  await sim.advance(100);
  const restored = sim.store.peek(name);
  t.is(restored?.kind, "semaphore");
  t.is(restored?.permits, 3, "its N");
  t.is(restored?.transitions, 4, "its token count");
});

test("a Lease deleted by hand is restored also when its daemon learns of it from a release that finds it gone, before its watch says so", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const held = a.acquire("gone", { holder: "holder" });
  await sim.advance(10);
  const token = held.grant!.token;
  // Its watch lags (an API server's watch cache behind): the deletion reaches it only after the holder let go
  // and the release found the Lease gone.
  a.conn.holdEvents();
  sim.store.delete(a.lockName("gone"));
  await sim.advance(1);
  held.close();
  await sim.advance(100);
  a.conn.releaseEvents();
  await sim.advance(10);
  t.is(sim.store.peek(a.lockName("gone"))?.transitions, token, "the Lease is back, with its token count");
});

test("a Lease deleted by hand is restored only with what the watch has told: a daemon whose watch lags never restores it below a token issued since", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  const first = b.acquire("lagging");
  await sim.advance(10);
  // From here b's watch lags (an API server's watch cache behind): it hears nothing of a's tokens.
  b.conn.holdEvents();
  first.close();
  await sim.advance(10);
  const issued = [first.grant!.token];
  for (let i = 0; i < 2; i++) {
    const held = a.acquire("lagging");
    await sim.advance(10);
    issued.push(held.grant!.token);
    if (i === 0) held.close();
    await sim.advance(10);
  }
  // a, which issued the last tokens, can neither restore the Lease nor hear of it; b learns of the deletion
  // from its own call (a new claim's acquiring write finds the Lease gone) before its watch says so.
  a.conn.partition();
  sim.store.delete(a.lockName("lagging"));
  const late = b.acquire("lagging");
  await sim.advance(100);
  const early = sim.store.peek(a.lockName("lagging"));
  t.true(
    early === undefined || early.transitions >= Math.max(...issued),
    `restored at token ${early?.transitions} before b's watch told of ${issued.join(", ")}`,
  );
  b.conn.releaseEvents();
  await sim.advance(LEASE + 5_000);
  t.true(sim.store.peek(a.lockName("lagging"))!.transitions >= Math.max(...issued), "the Lease is back, with every token issued");
  t.truthy(late.grant, "b's claim is served once the hold deleted with the Lease has run out");
  t.true(late.grant!.token > Math.max(...issued), `b issued token ${late.grant!.token} after ${issued.join(", ")}`);
});

test("a Lease deleted by hand that a daemon learns of from a relist is not restored by it while a daemon whose watch told the deletion may still restore it with every token", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  const first = b.acquire("relisted");
  await sim.advance(10);
  const issued = [first.grant!.token];
  // From here b hears nothing (its watch is half open) and will list again: a's tokens reach b by no event.
  b.conn.partition("hearing");
  first.close();
  await sim.advance(10);
  for (let i = 0; i < 2; i++) {
    const held = a.acquire("relisted");
    await sim.advance(10);
    issued.push(held.grant!.token);
    if (i === 0) held.close();
    await sim.advance(10);
  }
  // a's watch tells of the deletion at once, but its writes wait 3 s (a slow link): its restore comes late.
  a.conn.before = () => new Promise<void>((resolve) => sim.clock.setTimer(3_000, resolve));
  const name = a.lockName("relisted");
  sim.store.delete(name);
  // b's client finds the Lease gone, and b lists again: it learns of the deletion from the list.
  const late = b.acquire("relisted");
  await sim.advance(10);
  b.conn.heal();
  const versions: number[] = [];
  for (let waited = 0; waited < LEASE + 5_000; waited += 100) {
    await sim.advance(100);
    const now = sim.store.peek(name);
    if (now !== undefined && versions.at(-1) !== now.transitions) versions.push(now.transitions);
  }
  t.true(versions.length > 0, "the Lease is back");
  t.true(
    versions.every((token) => token >= Math.max(...issued)),
    `restored at tokens ${versions.join(", ")} after ${issued.join(", ")} were issued`,
  );
  t.truthy(late.grant, "b's claim is served once the hold deleted with the Lease has run out");
  t.true(late.grant!.token > Math.max(...issued), `b issued token ${late.grant!.token} after ${issued.join(", ")}`);
});

test("a Renew whose caller gave up while it waited its turn behind another call is not written", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const name = a.lockName("given-up-renew");
  const held = await a.engine.locks.tryAcquire({ leaseName: name, holder: "script", leaseMs: 15_000 });
  if (!held.acquired) return t.fail("not acquired");
  // A slow link: the first Renew's write takes 3 s; the second waits its turn behind it, and its caller gives up.
  a.conn.before = () => new Promise<void>((resolve) => sim.clock.setTimer(3_000, resolve));
  const updatesBefore = a.conn.calls.update;
  const first = a.engine.locks.renew(name, held.grant.token, 15_000);
  const caller = new AbortController();
  const second = a.engine.locks.renew(name, held.grant.token, 60_000, caller.signal);
  second.catch(() => {});
  await sim.advance(1_000);
  caller.abort();
  await sim.advance(10_000);
  t.truthy(await first, "the first Renew is served");
  await t.throwsAsync(second, undefined, "the Renew given up is answered with an error");
  t.is(a.conn.calls.update - updatesBefore, 1, "only the first Renew was written");
  t.is(sim.store.peek(name)!.leaseDurationSeconds, 15, "the lease the caller gave up on was not written");
});

test("a TryAcquire whose caller gave up before it was answered does not leave the lock held", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  const name = a.lockName("given-up-try");
  // A slow link: the acquiring write lands 3 s after it was sent; the caller gives up after 1 s.
  a.conn.before = () => new Promise<void>((resolve) => sim.clock.setTimer(3_000, resolve));
  const caller = new AbortController();
  const attempt = a.engine.locks.tryAcquire({ leaseName: name, holder: "script", leaseMs: 30_000 }, caller.signal);
  attempt.catch(() => {});
  await sim.advance(1_000);
  caller.abort();
  // Every write of a takes 3 s: well before the 30 s lease could run out.
  await sim.advance(12_000);
  t.is(sim.store.peek(name)?.holderIdentity ?? "", "", "the lease nobody was told of is given back");
  const other = await b.engine.locks.tryAcquire({ leaseName: name, holder: "other", leaseMs: 5_000 });
  t.true(other.acquired, "another daemon takes the lock at once, not 30 s later");
});

test("an acquiring create that waited for a connection is not sent on the view it was decided on: a Lease taken and then deleted by hand meanwhile is not taken while its holder's promise runs", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const b = await sim.daemon("b", { maxStoreCallsInFlight: 1 });
  const name = a.lockName("contested");
  // b's one connection is taken by a call that hangs 6 s (an API server that does not answer).
  let hung = false;
  b.conn.before = () => {
    if (hung) return undefined;
    hung = true;
    return new Promise<void>((resolve) => sim.clock.setTimer(6_000, resolve));
  };
  void b.tryAcquire("elsewhere");
  await sim.advance(10);
  // b finds "contested" absent and decides to create it: the create waits for the connection.
  const late = b.tryAcquire("contested", { holder: "late", leaseMs: 30_000 });
  await sim.advance(10);
  // Meanwhile a takes it, b's watch tells b, and an administrator deletes the held Lease while a is cut off (it
  // cannot restore it); b, which restores it, has its restore wait behind its own create.
  const held = await a.tryAcquire("contested", { holder: "first", leaseMs: 15_000 });
  if (!held.acquired) return t.fail("a did not acquire");
  const promisedUntil = held.at + held.grant.validForMs;
  await sim.advance(100);
  a.conn.partition();
  sim.store.delete(name);
  while (sim.clock.now() < promisedUntil) {
    const record = sim.store.peek(name);
    t.true(
      record === undefined || !record.holderIdentity.startsWith("b_"),
      `b holds the lock at ${sim.clock.now()} ms, while the holder may act until ${promisedUntil} ms`,
    );
    await sim.advance(100);
  }
  const result = await late;
  t.true(!result.acquired || result.at >= promisedUntil, `the late TryAcquire was granted at ${result.at} ms, before ${promisedUntil} ms`);
});

/**
 * A TryAcquire holder on daemon a whose lease is shortened by hand to 2 s,
 * then (`afterEdit`) a daemon c that first sees the Lease after the edit
 * waits for the lock: it must not be granted before the holder's valid_for.
 */
async function shortenedByHand(
  t: ExecutionContext,
  name: string,
  afterEdit: (sim: SimCluster, a: SimDaemon) => void,
  beforeEdit: (a: SimDaemon) => void = () => {},
): Promise<void> {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const held = await a.tryAcquire(name, { holder: "holder", leaseMs: 30_000 });
  if (!held.acquired) return t.fail("not acquired");
  const promisedUntil = held.at + held.grant.validForMs;
  beforeEdit(a);
  sim.store.edit(a.lockName(name), (r) => ({ ...r, leaseDurationSeconds: 2 }));
  await sim.advance(100);
  afterEdit(sim, a);
  const c = await sim.daemon("c");
  const waiter = c.acquire(name, { holder: "waiter" });
  while (sim.clock.now() < promisedUntil) {
    t.is(waiter.grant, undefined, `granted at ${sim.clock.now()} ms while the holder may act until ${promisedUntil} ms`);
    await sim.advance(500);
  }
  await sim.advance(40_000);
  t.truthy(waiter.grant, "served once the lease has run out unrenewed");
}

test("a lease shortened by hand while its holder's daemon is gone: a daemon that first sees it later does not take it before the holder's valid_for ends", (t) =>
  // Its daemon is gone (killed, or shutting down with its watch broken): nobody writes the lease back.
  shortenedByHand(
    t,
    "shortened-orphan",
    () => {},
    (a) => a.kill(),
  ));

test("a lease shortened by hand is written back by its holder's daemon at once: a daemon that first sees it later does not take it before the holder's valid_for ends", (t) =>
  shortenedByHand(t, "shortened-lease", (sim, a) =>
    t.true(sim.store.peek(a.lockName("shortened-lease"))!.leaseDurationSeconds >= 20, "the holder's daemon wrote its lease back"),
  ));
