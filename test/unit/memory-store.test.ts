// The memory store keeps the Kubernetes API server's semantics that the
// engine depends on (docs/design.md 6).
import test from "ava";
import type { WatchEvent } from "../../daemon/store/lease-store.js";
import { MemoryStore } from "../../daemon/store/memory/memory-store.js";
import { settle } from "../support/fake-clock.js";
import { leaseRecord } from "../support/lease-record.js";

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
