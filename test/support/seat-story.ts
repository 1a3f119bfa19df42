// One sequence of seat patches with every answer `LeaseStore.patchSeat` can
// give, run on any store, so that the memory store and the Kubernetes store
// (on the simulated API server) can be shown to answer alike.
import type { LeaseRecord, LeaseStore, LiveSeat, Seat } from "../../daemon/store/lease-store.js";
import { leaseRecord } from "./lease-record.js";

export const NAME = "msync-rwlock-seats";

const seatA: LiveSeat = {
  identity: "d-a_1",
  acquisition: 1,
  durationSeconds: 15,
  renewMs: 1_000,
  holder: "r1",
  riders: 1,
  acquireWallMs: 900,
};
const seatB: LiveSeat = {
  identity: "d-b_2",
  acquisition: 3,
  durationSeconds: 15,
  renewMs: 1_200,
  holder: "r2",
  riders: 2,
  acquireWallMs: 1_100,
};
const renewedA: LiveSeat = { ...seatA, renewMs: 6_000, riders: 2 };

/** How each step was answered: "ok", or the StoreError's reason. */
function outcome(call: Promise<LeaseRecord>): Promise<string> {
  return call.then(
    () => "ok",
    (err: unknown) => (err as { reason?: string }).reason ?? String(err),
  );
}

export async function seatStory(
  store: LeaseStore,
  /** Deletes the Lease as an administrator would. */
  remove: (name: string) => void | Promise<void>,
): Promise<Record<string, unknown>> {
  const seen: Record<string, unknown> = {};
  const { version: _version, ...fields } = leaseRecord({ name: NAME, kind: "rwlock", transitions: 2, seats: [seatA, seatB] });
  const created = await store.create(fields);
  // Writes by others in between: a conditional one and an announcement. The patch sent on what was seen first lands.
  const written = await store.update({ ...created, queue: ["d-w_9"] });
  await store.markWaiting(written, "d-x_8", true);
  const renewed = await store.patchSeat(created, "d-a_1", seatA, renewedA);
  seen.renewed = renewed.seats;
  seen.renewedIsNewer = store.isNewer(renewed.version, written.version);
  seen.renewedKeepsTheRest = { queue: renewed.queue, waiting: renewed.waiting, transitions: renewed.transitions };
  const again = await store.patchSeat(renewed, "d-a_1", renewedA, renewedA);
  seen.noChangeKeepsVersion = again.version === renewed.version;
  seen.stale = await outcome(store.patchSeat(renewed, "d-a_1", seatA, { ...renewedA, renewMs: 7_000 }));
  // A writer that observed d-b_2's seat over removes it: its daemon's renewal must not put it back.
  const removed = await store.update({ ...renewed, seats: [renewedA] });
  seen.removedSeat = await outcome(store.patchSeat(created, "d-b_2", seatB, { ...seatB, renewMs: 6_500 }));
  const released = await store.patchSeat(created, "d-a_1", renewedA, { identity: "d-a_1", acquisition: 1, released: true });
  seen.released = released.seats;
  seen.releasedIsNewer = store.isNewer(released.version, removed.version);
  // Deleted and created again with the same seat: a patch for the Lease seen before is refused.
  await remove(NAME);
  const recreated = await store.create({ ...fields, seats: [renewedA] });
  seen.otherLease = await outcome(store.patchSeat(created, "d-a_1", renewedA, { ...renewedA, renewMs: 9_000 }));
  seen.otherLeaseUnchanged = (await store.get(NAME))?.version === recreated.version;
  seen.recreatedPatched = await outcome(store.patchSeat(recreated, "d-a_1", renewedA, { ...renewedA, renewMs: 9_000 }));
  await remove(NAME);
  seen.gone = await outcome(store.patchSeat(recreated, "d-a_1", renewedA, { ...renewedA, renewMs: 9_500 }));
  return seen;
}

/** What `seatStory` must see on every store. */
export const SEAT_STORY: Record<string, unknown> = {
  renewed: [renewedA, seatB],
  renewedIsNewer: true,
  renewedKeepsTheRest: { queue: ["d-w_9"], waiting: ["d-x_8"], transitions: 2 },
  noChangeKeepsVersion: true,
  stale: "conflict",
  removedSeat: "conflict",
  released: [{ identity: "d-a_1", acquisition: 1, released: true }],
  releasedIsNewer: true,
  otherLease: "conflict",
  otherLeaseUnchanged: true,
  recreatedPatched: "ok",
  gone: "not-found",
};
