// A store that cannot keep up (issue 19 defect 8): the engine keeps what is
// held before it takes more. The store here serves one call at a time, each
// taking STORE_CALL_MS of the fake clock, like an API server at its limit.
import test from "ava";
import { line } from "../../daemon/engine/lease-records.js";
import { SimCluster } from "../support/sim.js";

const STORE_CALL_MS = 25;
const LEASE_MS = 5_000;
const RENEW_DEADLINE_MS = 3_000;

/** Makes every call to `sim`'s store wait its turn at a server that serves one call at a time. */
function oneAtATime(sim: SimCluster): { calls: number } {
  let freeAt = 0;
  const served = { calls: 0 };
  sim.store.interceptor = () => {
    served.calls += 1;
    const start = Math.max(sim.clock.now(), freeAt);
    freeAt = start + STORE_CALL_MS;
    return new Promise<void>((resolve) => sim.clock.setTimer(freeAt - sim.clock.now(), resolve));
  };
  return served;
}

test("under a burst of acquisitions the store cannot keep up with, renewals of held locks go first: none is lost", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a", { leaseDurationMs: LEASE_MS, renewDeadlineMs: RENEW_DEADLINE_MS, maxStoreCallsInFlight: 4 });
  oneAtATime(sim);
  const held = Array.from({ length: 30 }, (_, i) => a.acquire(`held-${i}`, { holder: `h${i}` }));
  await sim.advance(2_000);
  t.is(held.filter((h) => h.grant !== undefined).length, 30, "all 30 locks taken");
  // 200 TryAcquire calls for other names at once: 5 s of the store's time, more than the renew deadline.
  const burst = Array.from({ length: 200 }, (_, i) => a.tryAcquire(`burst-${i}`, { holder: `b${i}` }).catch((err: Error) => err));
  for (let i = 0; i < 150; i++) await sim.advance(100);
  const lost = held.filter((h) => h.loss !== undefined);
  t.is(
    lost.length,
    0,
    `${lost.length} of 30 held locks lost: ${lost
      .map((h) => h.loss!.message)
      .join("; ")
      .slice(0, 300)}`,
  );
  const results = await Promise.all(burst);
  const granted = results.filter((r) => !(r instanceof Error) && r.acquired).length;
  t.true(granted > 0, "the burst is served as far as the store allows");
  t.true(
    results.every((r) => !(r instanceof Error) || /unavailable|overloaded|no answer|not sent|deadline/i.test(r.message)),
    "the rest fail as unavailable",
  );
  for (const h of held) h.close();
  await sim.advance(1_000);
});

test("a daemon's wait-queue write goes before its own clients' reads: a flood of fresh reads does not keep its waiter out of the queue", async (t) => {
  const sim = new SimCluster();
  const options = { leaseDurationMs: LEASE_MS, renewDeadlineMs: RENEW_DEADLINE_MS, maxStoreCallsInFlight: 2 };
  const a = await sim.daemon("a", options);
  const b = await sim.daemon("b", options);
  oneAtATime(sim);
  const holder = a.acquire("x", { holder: "h" });
  await sim.advance(500);
  t.truthy(holder.grant, "a holds x");
  // 120 fresh reads of another name from b's clients: 3 s of the store's time, as long as a read may wait.
  const flood = Array.from({ length: 120 }, () => b.engine.locks.get(b.lockName("flood"), true).catch((err: Error) => err));
  await sim.advance(10);
  const waiter = b.acquire("x", { holder: "w" });
  // Ten store calls' time: the queue write must not wait for the reads asked for before it (bounded waiting, 3.4).
  await sim.advance(10 * STORE_CALL_MS);
  // (In line: in the queue, or announced as waiting, to be moved into it by the next write.)
  const stored = sim.store.peek(a.lockName("x"));
  const queue = stored === undefined ? [] : line(stored);
  t.true(
    queue.includes(b.engine.identity),
    `b's waiter is not in x's wait queue ${10 * STORE_CALL_MS} ms after it asked: [${queue.join(", ")}]`,
  );
  await sim.advance(5_000);
  await Promise.all(flood);
  holder.close();
  waiter.close();
  await sim.advance(1_000);
});

test("clients' reads that hang never take every store connection: the holder's renewals and release still go", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a", { leaseDurationMs: LEASE_MS, renewDeadlineMs: RENEW_DEADLINE_MS, maxStoreCallsInFlight: 4 });
  const holder = a.acquire("x", { holder: "h" });
  await sim.advance(500);
  t.truthy(holder.grant, "a holds x");
  // Every read of "flood" hangs until its caller gives up, and a's clients keep asking: 10 reads a second for 8 s.
  sim.store.interceptor = (operation, name) => (name === a.lockName("flood") ? new Promise<void>(() => {}) : undefined);
  const reads: Array<Promise<unknown>> = [];
  for (let i = 0; i < 80; i++) {
    reads.push(a.engine.locks.get(a.lockName("flood"), true).catch((err: Error) => err));
    await sim.advance(100);
  }
  t.is(holder.loss, undefined, `the holder lost x while reads hung: ${holder.loss?.message ?? ""}`);
  holder.close();
  await sim.advance(500);
  t.is(sim.store.peek(a.lockName("x"))?.holderIdentity, "", "x is released while reads still hang");
  sim.store.interceptor = undefined;
  await sim.advance(5_000);
  await Promise.all(reads);
});
