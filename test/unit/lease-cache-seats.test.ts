// How the lease cache times the seats of semaphores and read-write locks
// (docs/proposals/22-semaphores-rwlocks.md 3.2), and the helpers that read
// them. No claim uses seats yet: these are the rules the claims will rest on.
import test from "ava";
import {
  LeaseCache,
  type Observation,
  freePermits,
  mayTake,
  mayTakeExclusive,
  mayTakeShared,
  permitsInUse,
} from "../../daemon/engine/lease-cache.js";
import type { LeaseRecord, LiveSeat, Seat, SeatTombstone } from "../../daemon/store/lease-store.js";
import { MemoryStore } from "../../daemon/store/memory/memory-store.js";
import { FakeClock } from "../support/fake-clock.js";
import { leaseRecord } from "../support/lease-record.js";

const NAME = "msync-rwlock-r";
const BROKEN = "sync.metaparticle.io/seat.0123456789abcdef";

/** A seat of `identity`'s daemon, renewed at wall time `renewMs`, with a lease of `durationSeconds`. */
function seat(identity: string, acquisition: number, renewMs: number, durationSeconds = 10, more: Partial<LiveSeat> = {}): LiveSeat {
  return { identity, acquisition, durationSeconds, renewMs, holder: "reader", riders: 1, acquireWallMs: 0, ...more };
}

function tombstone(identity: string, acquisition: number): SeatTombstone {
  return { identity, acquisition, released: true };
}

/** A read-write lock with no writer and `seats`, at token 3 unless told. */
function rwlock(version: number, seats: readonly Seat[], fields: Partial<LeaseRecord> = {}): LeaseRecord {
  return leaseRecord({ name: NAME, kind: "rwlock", transitions: 3, version: String(version), seats, ...fields });
}

function setup(defaultLeaseMs = 0): { clock: FakeClock; cache: LeaseCache; seen: () => Observation } {
  const clock = new FakeClock();
  const cache = new LeaseCache(new MemoryStore(), clock, defaultLeaseMs);
  return { clock, cache, seen: () => cache.get(NAME)! };
}

test("a seat's hold observed moves on with its renewals, never back, and a new acquisition of it does not start it afresh", async (t) => {
  const { clock, cache, seen } = setup();
  cache.remember(rwlock(1, [seat("a_1", 1, 100)]));
  t.deepEqual(seen().seats.get("a_1"), { seat: seat("a_1", 1, 100), changedAt: 0, holdEnd: 10_000 });
  await clock.advance(4_000);
  cache.remember(rwlock(2, [seat("a_1", 1, 4_100)]));
  t.is(seen().seats.get("a_1")?.holdEnd, 14_000, "a renewal moves it on");
  t.is(seen().seats.get("a_1")?.changedAt, 4_000);
  await clock.advance(1_000);
  cache.remember(rwlock(3, [seat("a_1", 1, 4_100, 10, { riders: 3, holder: "another" })]));
  t.is(seen().seats.get("a_1")?.holdEnd, 14_000, "riders coming and going are no renewal");
  t.is(seen().seats.get("a_1")?.changedAt, 4_000);
  t.is(seen().seats.get("a_1")?.seat, seen().record.seats![0], "the seat as last observed");
  cache.remember(rwlock(4, [seat("a_1", 1, 5_100, 2)]));
  t.is(seen().seats.get("a_1")?.holdEnd, 14_000, "a renewal with a shorter lease shortens nothing");
  t.is(seen().seats.get("a_1")?.changedAt, 5_000, "but it is a renewal");
  cache.remember(rwlock(5, [seat("a_1", 2, 5_200, 1)]));
  t.is(seen().seats.get("a_1")?.holdEnd, 14_000, "nor does a new acquisition of a_1's seat whose tombstone went unseen");
  await clock.advance(10_000);
  cache.remember(rwlock(6, [seat("a_1", 2, 15_200, 10)]));
  t.is(seen().seats.get("a_1")?.holdEnd, 25_000);
  t.true(mayTake(seen(), clock.now()), "the writer's part is free all along: seat writes are no writer's renewal");
});

test("a seat given back (its tombstone) ends its hold at once, also when versions were missed since the seat observed", async (t) => {
  const { clock, cache, seen } = setup();
  cache.remember(rwlock(1, [seat("a_1", 4, 100), seat("b_1", 7, 100)]));
  await clock.advance(2_000);
  cache.remember(rwlock(2, [tombstone("a_1", 4), seat("b_1", 7, 100)]));
  t.is(seen().seats.get("a_1")?.holdEnd, 2_000, "a_1's own tombstone: over now, not at 10 s");
  t.is(seen().seats.get("b_1")?.holdEnd, 10_000, "b_1's seat is its own");
  await clock.advance(1_000);
  // Unseen: b_1 gave seat 7 back, took seat 8 and gave that back too.
  cache.remember(rwlock(9, [tombstone("a_1", 4), tombstone("b_1", 8)]));
  t.is(seen().seats.get("b_1")?.holdEnd, 3_000, "a tombstone of a later acquisition ends the seat observed");
  t.true(mayTakeExclusive(seen(), clock.now(), "w_1"));
  t.is(seen().seats.get("a_1")?.holdEnd, 2_000, "a tombstone seen again changes nothing");

  cache.remember(rwlock(10, [seat("a_1", 5, 3_100), tombstone("b_1", 8)]));
  t.is(seen().seats.get("a_1")?.holdEnd, 13_000, "a seat taken again after its tombstone holds from now");
  cache.remember(rwlock(11, [tombstone("a_1", 4), tombstone("b_1", 8)]));
  t.is(seen().seats.get("a_1")?.holdEnd, 13_000, "a tombstone of an earlier acquisition (forged, or stale) gives nothing back");
  t.false(mayTakeExclusive(seen(), clock.now(), "w_1"));
});

test("a seat removed by an exclusive acquisition (a new token) is over: its writer had observed it over", async (t) => {
  const { clock, cache, seen } = setup();
  cache.remember(rwlock(1, [seat("a_1", 1, 100, 30)]));
  await clock.advance(1_000);
  cache.remember(rwlock(2, [], { holderIdentity: "w_1", holder: "writer", transitions: 4 }));
  t.false(seen().seats.has("a_1"), "the seat is gone, and over");
  t.is(cache.holdEnd(NAME), 16_000, "the hold is the writer's alone");
  t.false(mayTakeShared(seen(), clock.now()), "the writer holds");
});

test("a seat removed by hand (same token) keeps its observed end: it still holds a writer off until then, and is forgotten after", async (t) => {
  const { clock, cache, seen } = setup();
  cache.remember(rwlock(1, [seat("a_1", 1, 100, 10), seat("b_1", 1, 100, 30)]));
  await clock.advance(2_000);
  cache.remember(rwlock(2, [seat("b_1", 1, 100, 30)]));
  t.is(seen().seats.get("a_1")?.holdEnd, 10_000, "kept, with the end observed");
  t.deepEqual(seen().seats.get("a_1")?.seat, seat("a_1", 1, 100, 10), "the seat as last seen");
  t.false(mayTakeExclusive(seen(), clock.now(), "w_1"), "a writer waits for it");
  t.true(mayTakeShared(seen(), clock.now()), "a reader need not");
  // b_1 gives its seat back, and a writer on another daemon (which waited out a_1's seat too) takes the lock later.
  cache.remember(rwlock(3, [tombstone("b_1", 1)]));
  t.false(mayTakeExclusive(seen(), clock.now(), "w_1"), "a_1's seat still holds");
  t.is(cache.holdEnd(NAME), 10_000);
  await clock.advance(7_999);
  cache.remember(rwlock(4, [], { holderIdentity: "x_1", transitions: 4 }));
  t.is(seen().seats.get("a_1")?.holdEnd, 10_000, "an acquisition that did not remove it does not end it");
  t.false(seen().seats.has("b_1"), "the tombstone it removed is gone");
  await clock.advance(1);
  t.true(mayTakeExclusive({ ...seen(), holdEnd: 0 }, clock.now(), "w_1"), "over at its end");
  cache.remember(rwlock(5, [], { transitions: 4 }));
  t.false(seen().seats.has("a_1"), "forgotten at the next record once over");
  t.is(seen().seats.size, 0);
});

test("a Lease first seen with seats: each live seat holds for its lease from first sight, a tombstone not at all", async (t) => {
  const { clock, cache, seen } = setup();
  await clock.advance(5_000);
  cache.remember(rwlock(7, [seat("a_1", 3, 99_999, 20), tombstone("b_1", 2)]));
  t.deepEqual(seen().seats.get("a_1"), { seat: seat("a_1", 3, 99_999, 20), changedAt: 5_000, holdEnd: 25_000 });
  t.deepEqual(seen().seats.get("b_1"), { seat: tombstone("b_1", 2), changedAt: 5_000, holdEnd: 5_000 });
  t.true(mayTakeShared(seen(), clock.now()));
  t.false(mayTakeExclusive(seen(), clock.now(), "b_1"));
  await clock.advance(20_000);
  t.true(mayTakeExclusive(seen(), clock.now(), "b_1"), "unrenewed, over at its end");
});

test("a broken seat is held for the longest lease seen for the name from first sight, and never freed early", async (t) => {
  const { clock, cache, seen } = setup(15_000);
  cache.remember(rwlock(1, [seat("a_1", 1, 100, 40)]));
  cache.remember(rwlock(2, [tombstone("a_1", 1)], { leaseDurationSeconds: 15 }));
  await clock.advance(1_000);
  cache.remember(rwlock(3, [tombstone("a_1", 1)], { brokenSeats: [BROKEN] }));
  t.deepEqual(seen().seats.get(BROKEN), { seat: undefined, changedAt: 1_000, holdEnd: 41_000 }, "a_1's 40 s, the longest seen");
  t.false(mayTakeExclusive(seen(), clock.now(), "a_1"), "nobody's: no daemon may take it as its own");
  await clock.advance(39_999);
  cache.remember(rwlock(4, [seat("c_1", 1, 100)], { brokenSeats: [BROKEN] }));
  t.is(seen().seats.get(BROKEN)?.holdEnd, 41_000, "seen again it is not renewed");
  t.false(mayTakeExclusive(seen(), clock.now(), "c_1"));
  await clock.advance(1);
  t.true(mayTakeExclusive(seen(), clock.now(), "c_1"));

  const other = setup(15_000);
  other.cache.remember(rwlock(1, [], { brokenSeats: [BROKEN], leaseDurationSeconds: 5 }));
  t.is(other.seen().seats.get(BROKEN)?.holdEnd, 15_000, "at least the daemon's default lease, as after a deletion learned late");
});

test("a Lease with seats deleted by hand: its hold observed is the latest of the writer's and every seat's, and its restore is held off until then", async (t) => {
  const clock = new FakeClock();
  const store = new MemoryStore();
  const cache = new LeaseCache(store, clock);
  const deleted: string[] = [];
  cache.onDeleted = (name) => deleted.push(name);
  cache.start();
  t.teardown(() => cache.stop());
  cache.subscribe(NAME, () => {});
  await cache.ready();
  const { version: _version, ...fields } = rwlock(0, [seat("a_1", 1, 100, 25), seat("b_1", 1, 100, 12)], { leaseDurationSeconds: 5 });
  await store.create(fields);
  await clock.advance(1_000);
  t.is(cache.get(NAME)?.seats.size, 2);
  store.delete(NAME);
  await clock.advance(0);
  t.deepEqual(deleted, [NAME]);
  t.is(cache.holdEnd(NAME), 25_000, "a_1's seat, the last to end");
  // Another daemon restores it as Engine.restore does: free, held off, no seat.
  await clock.advance(1_000);
  const restoredSeconds = Math.ceil((cache.holdEnd(NAME) - clock.now()) / 1000);
  await store.create({
    ...fields,
    seats: undefined,
    leaseDurationSeconds: restoredSeconds,
    writtenDuration: restoredSeconds,
    writtenHolder: "(deleted)",
  });
  await clock.advance(0);
  t.is(cache.get(NAME)?.seats.size, 0);
  t.false(mayTakeShared(cache.get(NAME)!, 24_999), "held off until the seats observed end");
  t.true(mayTakeExclusive(cache.get(NAME)!, 25_000, "w_1"));

  // A deletion learned other than from the watch counts the seats' leases among the longest seen.
  const late = new LeaseCache(new MemoryStore(), clock);
  late.remember(rwlock(1, [seat("a_1", 1, 100, 25)], { leaseDurationSeconds: 5 }));
  await clock.advance(5_000);
  late.forget(NAME, late.get(NAME));
  t.is(late.holdEnd(NAME), clock.now() + 25_000, "a renewal of a_1's seat, unseen, may have promised its 25 s from now");
});

test("a writer ignores its own daemon's seat, and a reader only the writer's part", (t) => {
  const now = 10_000;
  const record = rwlock(1, [seat("me_1", 1, 100)]);
  const obs = (holdEnd: number, seats: Array<[string, Seat | undefined, number]>): Observation => ({
    record,
    changedAt: 0,
    holdEnd,
    seats: new Map(seats.map(([key, s, end]) => [key, { seat: s, changedAt: 0, holdEnd: end }])),
  });
  const rows: Array<[string, Observation, boolean, boolean]> = [
    ["no writer, no seat", obs(0, []), true, true],
    ["a writer still holding", obs(now + 1, []), false, false],
    ["the writer's hold ended now", obs(now, []), true, true],
    ["my own seat held", obs(0, [["me_1", seat("me_1", 1, 100), now + 1]]), true, true],
    ["another daemon's seat held", obs(0, [["other_1", seat("other_1", 1, 100), now + 1]]), false, true],
    ["another daemon's seat ended now", obs(0, [["other_1", seat("other_1", 1, 100), now]]), true, true],
    ["a broken seat held", obs(0, [[BROKEN, undefined, now + 1]]), false, true],
    ["another daemon's tombstone", obs(0, [["other_1", tombstone("other_1", 1), now]]), true, true],
  ];
  for (const [row, o, exclusive, shared] of rows) {
    t.is(mayTakeExclusive(o, now, "me_1"), exclusive, `exclusive: ${row}`);
    t.is(mayTakeShared(o, now), shared, `shared: ${row}`);
  }
});

test("free permits: the permits of seats still held, ended seats excluded; a broken seat, a seat without a count, or a Lease held off holds them all", (t) => {
  const now = 10_000;
  const obs = (permits: number | undefined, holdEnd: number, seats: Array<[string, Seat | undefined, number]>): Observation => ({
    record: leaseRecord({ name: "msync-semaphore-s", kind: "semaphore", permits }),
    changedAt: 0,
    holdEnd,
    seats: new Map(seats.map(([key, s, end]) => [key, { seat: s, changedAt: 0, holdEnd: end }])),
  });
  const held = (identity: string, permits: number | undefined, end = now + 1): [string, Seat, number] => [
    identity,
    seat(identity, 1, 100, 10, permits === undefined ? {} : { permits }),
    end,
  ];
  const rows: Array<[string, Observation, number, number, number]> = [
    // row, observation, in use, in use but me_1's, free
    ["no seat", obs(3, 0, []), 0, 0, 3],
    ["seats' permits add up", obs(5, 0, [held("me_1", 2), held("b_1", 1)]), 3, 1, 2],
    ["an ended seat holds nothing", obs(3, 0, [held("me_1", 2), held("b_1", 1, now)]), 2, 0, 1],
    ["a tombstone holds nothing", obs(3, 0, [["b_1", tombstone("b_1", 1), now]]), 0, 0, 3],
    ["more held than N (edited by hand): none free", obs(2, 0, [held("me_1", 2), held("b_1", 2)]), 4, 2, 0],
    ["a broken seat holds all N", obs(3, 0, [held("me_1", 1), [BROKEN, undefined, now + 1]]), 4, 3, 0],
    ["a broken seat that ended holds nothing", obs(3, 0, [[BROKEN, undefined, now]]), 0, 0, 3],
    ["a live seat without a count holds all N", obs(3, 0, [held("b_1", undefined)]), 3, 3, 0],
    ["a Lease held off as a whole (restored) holds all N", obs(3, now + 1, [held("me_1", 1)]), 4, 3, 0],
    ["no N: nothing free", obs(undefined, 0, []), 0, 0, 0],
    ["no N and a broken seat: all in use", obs(undefined, 0, [[BROKEN, undefined, now + 1]]), Infinity, Infinity, 0],
  ];
  for (const [row, o, inUse, inUseByOthers, free] of rows) {
    t.is(permitsInUse(o, now), inUse, `in use: ${row}`);
    t.is(permitsInUse(o, now, "me_1"), inUseByOthers, `in use but me_1's: ${row}`);
    t.is(freePermits(o, now), free, `free: ${row}`);
  }
});

test("free permits follow the cache: a semaphore's seats count until their end or their tombstone", async (t) => {
  const { clock, cache } = setup();
  const name = "msync-semaphore-s";
  const semaphore = (version: number, seats: readonly Seat[]) =>
    leaseRecord({ name, kind: "semaphore", transitions: 0, permits: 3, version: String(version), seats });
  cache.remember(semaphore(1, [seat("a_1", 1, 100, 10, { permits: 2 })]));
  t.is(freePermits(cache.get(name)!, clock.now()), 1);
  await clock.advance(1_000);
  cache.remember(semaphore(2, [seat("a_1", 1, 100, 10, { permits: 2 }), seat("b_1", 1, 100, 20, { permits: 1 })]));
  t.is(freePermits(cache.get(name)!, clock.now()), 0);
  cache.remember(semaphore(3, [tombstone("a_1", 1), seat("b_1", 1, 100, 20, { permits: 1 })]));
  t.is(freePermits(cache.get(name)!, clock.now()), 2, "a_1's given back: free at once");
  await clock.advance(20_000);
  t.is(freePermits(cache.get(name)!, clock.now()), 3, "b_1's ran out unrenewed");
});

test("a seat's count of permits lowered by hand frees nothing before the seat's observed end; lowered by its daemon's write, at once", async (t) => {
  const { clock, cache } = setup();
  const name = "msync-semaphore-s";
  const semaphore = (version: number, seats: readonly Seat[]) =>
    leaseRecord({ name, kind: "semaphore", transitions: 0, permits: 3, version: String(version), seats });
  cache.remember(semaphore(1, [seat("a_1", 1, 100, 10, { permits: 3 })]));
  t.is(freePermits(cache.get(name)!, clock.now()), 0);
  // Someone edits the seat's count down, leaving its renew stamp as it was: no write of a_1's daemon.
  await clock.advance(1_000);
  cache.remember(semaphore(2, [seat("a_1", 1, 100, 10, { permits: 1 })]));
  t.is(freePermits(cache.get(name)!, clock.now()), 0, "a_1's three holders may still act");
  // a_1's daemon renews, and its write says one permit: what it writes counts.
  await clock.advance(1_000);
  cache.remember(semaphore(3, [seat("a_1", 1, 2_100, 10, { permits: 1 })]));
  t.is(freePermits(cache.get(name)!, clock.now()), 2, "its daemon lowers its count only once those holders cannot act");
});

test("a lock's observation has no seats, and its hold is timed as before", async (t) => {
  const clock = new FakeClock();
  const cache = new LeaseCache(new MemoryStore(), clock);
  cache.remember(leaseRecord({ holderIdentity: "a_1", leaseDurationSeconds: 15 }));
  const obs = cache.get("msync-lock-x")!;
  t.is(obs.seats.size, 0);
  t.is(obs.holdEnd, 15_000);
  t.true(mayTakeExclusive({ ...obs, holdEnd: 0 }, 0, "me_1"));
  await clock.advance(1_000);
  cache.remember(leaseRecord({ holderIdentity: "", leaseDurationSeconds: 15, version: "2" }));
  t.is(cache.get("msync-lock-x")?.holdEnd, 1_000);
  t.is(cache.get("msync-lock-x")?.seats, obs.seats, "one shared empty map: a lock allocates nothing for seats");
});
