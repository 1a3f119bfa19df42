// The lease cache's subscriptions, which every contender and leader tracker
// relies on to hear of changes to its lease.
import test from "ava";
import { LeaseCache } from "../../daemon/engine/lease-cache.js";
import { MemoryStore } from "../../daemon/store/memory/memory-store.js";
import { FakeClock } from "../support/fake-clock.js";

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
  cache.remember({
    name: "msync-lock-x",
    kind: "lock",
    holderIdentity: "",
    holder: "",
    leaseDurationSeconds: 15,
    acquireTime: undefined,
    renewTime: undefined,
    transitions: 1,
    value: "",
    queue: [],
    version: "1",
  });
  t.is(heard, 1, "the newer subscriber heard the change");
});
