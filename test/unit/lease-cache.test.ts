// The lease cache's subscriptions, which every contender and leader tracker
// relies on to hear of changes to its lease.
import test from "ava";
import { LeaseCache } from "../../daemon/engine/lease-cache.js";
import type { LeaseFields } from "../../daemon/store/lease-store.js";
import { MemoryStore } from "../../daemon/store/memory/memory-store.js";
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
  cache.forget("msync-lock-x");
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
