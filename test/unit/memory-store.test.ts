// The memory store keeps the Kubernetes API server's semantics that the
// engine depends on (docs/design.md 6).
import test from "ava";
import type { LiveSeat, StoreError, WatchEvent } from "../../daemon/store/lease-store.js";
import { MemoryStore } from "../../daemon/store/memory/memory-store.js";
import { settle } from "../support/fake-clock.js";
import { leaseRecord } from "../support/lease-record.js";
import { SEAT_STORY, seatStory } from "../support/seat-story.js";

test("an update that changes nothing keeps its version and sends no watch event, as on Kubernetes", async (t) => {
  const store = new MemoryStore();
  const events: WatchEvent[] = [];
  store.watch((event) => events.push(event));
  const { version: _version, ...fields } = leaseRecord({ name: "msync-lock-same", holderIdentity: "a_1", renewTime: new Date(1_000) });
  const created = await store.create(fields);
  await settle();
  events.length = 0;
  const unchanged = await store.update({ ...created, renewTime: new Date(1_000) });
  await settle();
  t.is(unchanged.version, created.version, "no new version");
  t.is(events.length, 0, "no watch event");
  const renewed = await store.update({ ...created, renewTime: new Date(1_001) });
  await settle();
  t.true(store.isNewer(renewed.version, created.version), "a change is a new version");
  t.is(events.length, 1);
});

test("a daemon's wait entry is set and removed whatever the version, and nothing else changes; a conditional write from before it fails, one after it can admit the waiter", async (t) => {
  const store = new MemoryStore();
  const events: WatchEvent[] = [];
  store.watch((event) => events.push(event));
  const { version: _version, ...fields } = leaseRecord({ name: "msync-lock-wait", holderIdentity: "a_1", holder: "h", transitions: 4 });
  const created = await store.create(fields);
  // The holder writes again: the waiter's view is now out of date, and its patch lands all the same.
  const renewed = await store.update({ ...created, renewTime: new Date(2_000) });
  await settle();
  events.length = 0;
  const marked = await store.markWaiting(created, "b_2", true);
  t.deepEqual(marked.waiting, ["b_2"]);
  t.true(store.isNewer(marked.version, renewed.version), "a patch that changes the entry is a new version");
  t.deepEqual(
    { ...marked, version: "", waiting: undefined },
    { ...renewed, version: "", waiting: undefined },
    "holder, token, times and queue are untouched",
  );
  await settle();
  t.is(events.length, 1, "one watch event");
  const again = await store.markWaiting(renewed, "b_2", true);
  await settle();
  t.is(again.version, marked.version, "marking again changes nothing: no new version");
  t.is(events.length, 1, "and no watch event");
  // The holder's write from before the patch loses: it must read again, and so sees the waiter.
  const stale = await store.update({ ...renewed, renewTime: new Date(3_000) }).catch((err: Error) => err);
  t.is((stale as StoreError).reason, "conflict");
  const admitted = await store.update({ ...marked, queue: ["b_2"], waiting: undefined });
  t.deepEqual([admitted.queue, admitted.waiting], [["b_2"], undefined], "the write after it moves the waiter into the queue");
  const unmarked = await store.markWaiting(admitted, "b_2", false);
  t.is(unmarked.version, admitted.version, "removing an entry that is not there changes nothing");
  // Missing and foreign Leases are refused, as for any other write.
  const missing = await store.markWaiting(leaseRecord({ name: "msync-lock-none" }), "b_2", true).catch((err: Error) => err);
  t.is((missing as StoreError).reason, "not-found");
  store.addForeign("msync-lock-theirs");
  const foreign = await store.markWaiting(leaseRecord({ name: "msync-lock-theirs" }), "b_2", true).catch((err: Error) => err);
  t.is((foreign as StoreError).reason, "foreign");
});

test("a seat is patched whatever the version while it holds exactly the seat expected, and nothing else changes; a seat changed or removed since, a Lease deleted and created again, or one gone is refused", async (t) => {
  const store = new MemoryStore();
  t.deepEqual(await seatStory(store, (name) => store.delete(name)), SEAT_STORY);
});

test("a seat patch that changes nothing keeps the version and sends no watch event; an update that changes only the seats is a new version", async (t) => {
  const store = new MemoryStore();
  const events: WatchEvent[] = [];
  store.watch((event) => events.push(event));
  const seat: LiveSeat = {
    identity: "d-a_1",
    acquisition: 1,
    durationSeconds: 15,
    renewMs: 1_000,
    holder: "r",
    riders: 1,
    acquireWallMs: 900,
  };
  const { version: _version, ...fields } = leaseRecord({
    name: "msync-semaphore-s",
    kind: "semaphore",
    permits: 2,
    seats: [{ ...seat, permits: 1 }],
  });
  const created = await store.create(fields);
  await settle();
  events.length = 0;
  const same = await store.patchSeat(created, "d-a_1", { ...seat, permits: 1 }, { ...seat, permits: 1 });
  await settle();
  t.is(same.version, created.version, "no new version");
  t.is(events.length, 0, "no watch event");
  const more = await store.update({ ...created, seats: [{ ...seat, permits: 2 }] });
  t.true(store.isNewer(more.version, created.version), "a seat changed by an update is a new version");
  t.deepEqual(more.seats, [{ ...seat, permits: 2 }]);
  const fewer = await store.update({ ...more, permits: 3 });
  t.true(store.isNewer(fewer.version, more.version), "so is the number of permits");
  await settle();
  t.is(events.length, 2);
});
