// The lease cache's subscriptions, which every contender and leader tracker
// relies on to hear of changes to its lease.
import test from "ava";
import { LeaseCache } from "../../daemon/engine/lease-cache.js";
import type { LeaseFields, LeaseStore, WatchEvent } from "../../daemon/store/lease-store.js";
import { MemoryStore } from "../../daemon/store/memory/memory-store.js";
import { ConnectionStore } from "../support/connection-store.js";
import { FakeClock } from "../support/fake-clock.js";
import { leaseRecord } from "../support/lease-record.js";

test("a stale unsubscribe does not take away a newer subscriber's changes", (t) => {
  const store = new MemoryStore();
  const cache = new LeaseCache(store, new FakeClock());
  const first = cache.subscribe("msync-lock-x", () => {});
  first();
  let heard = 0;
  cache.subscribe("msync-lock-x", () => (heard += 1));
  // A contender that was already dropped goes idle again and unsubscribes twice.
  first();
  cache.forget("msync-lock-x", cache.get("msync-lock-x"));
  cache.remember({ ...fields("msync-lock-x"), version: "1" });
  t.is(heard, 1, "the newer subscriber heard the change");
});

/** A free lease named `name`, as a daemon would create it. */
function fields(name: string): LeaseFields {
  const { version: _version, ...rest } = leaseRecord({ name });
  return rest;
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

test("the watch covers only the names subscribed to: other leases are never heard of, and a name subscribed later is listed", async (t) => {
  const store = new MemoryStore();
  await store.create(fields("msync-lock-used"));
  await store.create(fields("msync-lock-other"));
  const cache = new LeaseCache(store, new FakeClock());
  cache.start();
  await cache.ready();
  t.teardown(() => cache.stop());
  t.false(cache.covers("msync-lock-used"), "nothing is covered before a subscriber asks");
  t.is(cache.get("msync-lock-other"), undefined);

  let heard = 0;
  const unsubscribe = cache.subscribe("msync-lock-used", () => (heard += 1));
  t.false(cache.covers("msync-lock-used"), "not covered until the store has listed it");
  await tick();
  t.true(cache.covers("msync-lock-used"));
  t.is(heard, 1, "the subscriber is told once the name is covered");
  t.is(cache.get("msync-lock-used")?.record.transitions, 1);

  const other = store.peek("msync-lock-other")!;
  await store.update({ ...other, holderIdentity: "daemon-x", transitions: 2 });
  await tick();
  t.is(cache.get("msync-lock-other"), undefined, "a lease nobody here uses is not kept");
  t.false(cache.covers("msync-lock-other"));

  const used = store.peek("msync-lock-used")!;
  await store.update({ ...used, holderIdentity: "daemon-x", transitions: 2 });
  await tick();
  t.is(cache.get("msync-lock-used")?.record.holderIdentity, "daemon-x", "a subscribed lease follows the store");
  t.is(heard, 2);

  unsubscribe();
  let heardOther = 0;
  cache.subscribe("msync-lock-other", () => (heardOther += 1));
  await tick();
  t.true(cache.covers("msync-lock-other"));
  t.is(cache.get("msync-lock-other")?.record.holderIdentity, "daemon-x", "listed when it became wanted, with its latest state");
  t.is(heardOther, 1);
  t.true(cache.covers("msync-lock-used"), "a scope that grows keeps the names it had: their renewals stay timed");
  t.is(cache.get("msync-lock-used")?.record.holderIdentity, "daemon-x");
});

test("a name covered but absent is news to its subscriber: it may create the lease", async (t) => {
  const store = new MemoryStore();
  const cache = new LeaseCache(store, new FakeClock());
  cache.start();
  await cache.ready();
  t.teardown(() => cache.stop());
  let heard = 0;
  cache.subscribe("msync-lock-new", () => (heard += 1));
  await tick();
  t.true(cache.covers("msync-lock-new"));
  t.is(cache.get("msync-lock-new"), undefined);
  t.is(heard, 1);
});

test("the end of a hold observed moves on with renewals, and only a release by its holder's daemon brings it forward", async (t) => {
  const store = new MemoryStore();
  const clock = new FakeClock();
  const cache = new LeaseCache(store, clock);
  cache.start();
  t.teardown(() => cache.stop());
  const name = "msync-lock-held";
  cache.subscribe(name, () => {});
  await cache.ready();
  const held = await store.create({ ...fields(name), holderIdentity: "a_1", leaseDurationSeconds: 15 });
  await tick();
  t.is(cache.get(name)?.holdEnd, 15_000, "a lease from the moment it was seen");
  await clock.advance(5_000);
  const renewed = await store.update({ ...held, renewTime: new Date(5_000) });
  await tick();
  t.is(cache.get(name)?.holdEnd, 20_000, "a renewal moves it on");
  await clock.advance(1_000);
  store.edit(name, (r) => ({ ...r, leaseDurationSeconds: 1 }));
  await tick();
  t.is(cache.get(name)?.holdEnd, 20_000, "a lease shortened by hand does not bring it forward");
  store.edit(name, (r) => ({ ...r, holderIdentity: "", holder: "" }));
  await tick();
  // The holder may have renewed where this daemon did not see it: a renewal of the lease its daemon wrote, seen now.
  t.is(cache.get(name)?.holdEnd, 21_000, "nor does a holder cleared by hand");
  store.delete(name);
  await tick();
  t.is(cache.get(name), undefined);
  t.is(cache.holdEnd(name), 21_000, "nor a deletion by hand");
  await clock.advance(15_000);
  t.is(cache.holdEnd(name), 0, "once it has passed, it is forgotten");

  const again = await store.create({ ...fields(name), holderIdentity: "a_1", leaseDurationSeconds: 15 });
  await tick();
  t.is(cache.get(name)?.holdEnd, 36_000);
  await store.update({ ...again, holderIdentity: "" });
  await tick();
  t.is(cache.get(name)?.holdEnd, 21_000, "a release by its holder's daemon: free at once");
  void renewed;
});

test("a new token written by a daemon starts the hold observed afresh: the hold before it is over", async (t) => {
  const store = new MemoryStore();
  const clock = new FakeClock();
  const cache = new LeaseCache(store, clock);
  cache.start();
  t.teardown(() => cache.stop());
  const name = "msync-election-handoff";
  cache.subscribe(name, () => {});
  await cache.ready();
  const first = await store.create({ ...fields(name), holderIdentity: "a_1", leaseDurationSeconds: 30, transitions: 1 });
  await tick();
  t.is(cache.get(name)?.holdEnd, 30_000);
  await clock.advance(1_000);
  // A local handoff: a_1's daemon gave the lease to its next claim, with a shorter lease, once the first let go.
  const second = await store.update({ ...first, transitions: 2, leaseDurationSeconds: 15, writtenDuration: 15 });
  await tick();
  t.is(cache.get(name)?.holdEnd, 16_000, "the new hold's own lease, not the longer one before it");
  await clock.advance(1_000);
  // A takeover by another daemon, which waited out the hold it observed.
  await store.update({ ...second, holderIdentity: "b_1", transitions: 3, leaseDurationSeconds: 10, writtenDuration: 10 });
  await tick();
  t.is(cache.get(name)?.holdEnd, 12_000);
  await clock.advance(1_000);
  // Someone who is not a daemon names a holder of their own with a new token: the hold before it may still act.
  store.edit(name, (r) => ({ ...r, holderIdentity: "admin", transitions: 4, leaseDurationSeconds: 1 }));
  await tick();
  // (It counts as a renewal seen now of the lease a daemon last wrote: 10 s, not the 1 s written by hand.)
  t.is(cache.get(name)?.holdEnd, 13_000, "an edit by hand never brings the end of a hold forward");
});

test("a release of a later token ends the hold observed on a Lease freed by someone else, even with its acquisition unseen", async (t) => {
  // Seed 290: a daemon back from a freeze hears of the holder's last renewal and of the Lease restored after a
  // deletion by hand (free, held off), then reads it released by a daemon that took a later token meanwhile.
  const clock = new FakeClock();
  const cache = new LeaseCache(new MemoryStore(), clock);
  const name = "msync-lock-restored";
  const held = leaseRecord({ name, holderIdentity: "a_1", leaseDurationSeconds: 10, transitions: 35, version: "1098" });
  cache.remember(held);
  t.is(cache.get(name)?.holdEnd, 10_000);
  const restored = { ...held, holderIdentity: "", holder: "", writtenHolder: "a_1", queue: ["c_1"], version: "1100" };
  cache.remember(restored);
  t.is(cache.get(name)?.holdEnd, 10_000, "a Lease restored free is held off until the hold observed ends");
  cache.remember({ ...restored, queue: ["c_1", "b_1"], version: "1102" });
  t.is(cache.get(name)?.holdEnd, 10_000, "a queue write on it, with the same token, ends no hold");
  await clock.advance(2_000);
  // b_1's daemon took token 36 once the hold it observed had ended, and released it: the release is all this daemon sees.
  cache.remember({ ...restored, writtenHolder: "", transitions: 36, leaseDurationSeconds: 15, queue: [], version: "1115" });
  t.is(cache.get(name)?.holdEnd, 2_000, "free at once: the later token's daemon waited out the hold before it");
});

test("a list that arrives late does not bring back a record older than one this daemon holds, even after a list that did not cover the name", (t) => {
  let emit: (event: WatchEvent) => void = () => {};
  // A store whose watch events the test sends itself.
  const store = new (class extends MemoryStore {
    override watch(listener: (event: WatchEvent) => void) {
      emit = listener;
      return { stop: async () => {}, rescope: () => {}, relist: () => {} };
    }
  })() as LeaseStore;
  const cache = new LeaseCache(store, new FakeClock());
  const name = "msync-lock-x";
  cache.subscribe(name, () => {});
  cache.start();
  emit({ type: "synced", leases: [leaseRecord({ version: "5" })], scope: new Set([name]), version: "5" });
  // This daemon takes the lease; the reply to its own write comes first.
  cache.remember(leaseRecord({ version: "7", holderIdentity: "d0", holder: "c1", transitions: 2 }));
  // Then, late (a slow watch), a list taken before the name was wanted, and one taken before the write.
  emit({ type: "synced", leases: [], scope: new Set(), version: "6" });
  emit({ type: "synced", leases: [leaseRecord({ version: "6" })], scope: new Set([name]), version: "6" });
  t.is(cache.get(name)?.record.version, "7", "the record this daemon wrote stands");
  t.is(cache.get(name)?.record.holderIdentity, "d0");
});

test("the watch's lag is learned from this daemon's own writes: unknown until one is told back, then the delay measured, and at least the age of one still untold", async (t) => {
  const clock = new FakeClock();
  const conn = new ConnectionStore(new MemoryStore());
  conn.delayEvents = (deliver) => void clock.setTimer(300, deliver);
  const cache = new LeaseCache(conn, clock);
  cache.start();
  t.teardown(() => cache.stop());
  cache.subscribe("msync-lock-lag", () => {});
  await clock.advance(700);
  await cache.ready();
  t.true(cache.covers("msync-lock-lag"), "the list covering the name arrived");
  cache.remember(await conn.create(fields("msync-lock-lag")));
  await clock.advance(200);
  t.is(cache.watchLagMs, Infinity, "unknown while no write of its own has been told back");
  await clock.advance(100);
  t.is(cache.watchLagMs, 300, "the delay from the write's reply to its event");
  conn.holdEvents();
  const held = cache.get("msync-lock-lag")!.record;
  cache.remember(await conn.update({ ...held, queue: ["someone"] }));
  await clock.advance(1_000);
  t.is(cache.watchLagMs, 1_000, "a write untold for 1 s: the watch is at least that far behind");
  conn.releaseEvents();
  await clock.advance(0);
  t.true(cache.watchLagMs >= 300 && cache.watchLagMs <= 1_000, `told at last: ${cache.watchLagMs} ms`);
});

test("a call that finds a Lease gone does not forget a newer record the watch told while the call waited: a Lease restored meanwhile stays", (t) => {
  const cache = new LeaseCache(new MemoryStore(), new FakeClock());
  cache.remember({ ...fields("msync-election-restored"), version: "5" });
  // A renewal is sent; it waits in the API server's backlog while the Lease is deleted and restored by another daemon.
  const seen = cache.get("msync-election-restored");
  cache.remember({ ...fields("msync-election-restored"), version: "9", transitions: 3 });
  // Its answer, "not found", is about the Lease as it was before the restore.
  cache.forget("msync-election-restored", seen);
  t.is(cache.get("msync-election-restored")?.record.version, "9", "the restored Lease is still known");
  cache.forget("msync-election-restored", cache.get("msync-election-restored"));
  t.is(cache.get("msync-election-restored"), undefined, "a call that began with the newest record is believed");
});

test("a read sent before anything was known of a Lease, answered not-found late, does not forget the Lease the watch told meanwhile", (t) => {
  // Seed 377848: a GetLock read of l2 waited 6.1 s for its reply; meanwhile this daemon created l2 (its reply hung)
  // and the watch told of it. The late "not found" dropped the entry, and a cached GetLock answered "not held".
  const cache = new LeaseCache(new MemoryStore(), new FakeClock());
  const seen = cache.get("msync-lock-late");
  t.is(seen, undefined, "nothing is known of the Lease when the read is sent");
  cache.remember({ ...fields("msync-lock-late"), holderIdentity: "d1_0", transitions: 1, version: "3" });
  cache.forget("msync-lock-late", seen);
  t.is(cache.get("msync-lock-late")?.record.version, "3", "the Lease told meanwhile is still known");
});
