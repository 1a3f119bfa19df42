// The simulated API server the simulator runs the Kubernetes store against
// (test/sim/kube-api-server.ts): each Kubernetes semantic the store relies on,
// pinned, and the real KubernetesStore on it.
import type { V1Lease, V1LeaseList } from "@kubernetes/client-node";
import test from "ava";
import { KubernetesStore } from "../../daemon/store/kubernetes/kubernetes-store.js";
import { type JsonPatchOperation, type LeaseApi, LeaseApiError } from "../../daemon/store/kubernetes/lease-api.js";
import { MANAGED_BY, MANAGED_BY_LABEL, NAME_LABEL, selectorFor, waitAnnotation } from "../../daemon/store/kubernetes/lease-convert.js";
import type { LeaseFields, StoreError, WatchEvent } from "../../daemon/store/lease-store.js";
import { MemoryStore } from "../../daemon/store/memory/memory-store.js";
import { createLogger } from "../../daemon/log.js";
import { DirectLeaseApi, SimApiServer, parseSelector } from "../sim/kube-api-server.js";
import { FakeClock } from "../support/fake-clock.js";
import { leaseRecord } from "../support/lease-record.js";
import { SEAT_STORY, seatStory } from "../support/seat-story.js";

function lease(
  name: string,
  holder = "",
  labels: Record<string, string> = { [MANAGED_BY_LABEL]: MANAGED_BY, [NAME_LABEL]: name },
): V1Lease {
  return { metadata: { name, labels }, spec: { holderIdentity: holder, leaseDurationSeconds: 15 } };
}

function code(fn: () => unknown): number | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof LeaseApiError ? err.code : -1;
  }
  return undefined;
}

function reason(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return ((err as LeaseApiError).body as { reason?: string }).reason;
  }
  return undefined;
}

interface Seen {
  type: string;
  name: string | undefined;
  rv: string | undefined;
  holder?: string;
  code?: number;
}

function watchAll(
  server: SimApiServer,
  selector: string,
  resourceVersion: string,
  bookmarks = false,
): { seen: Seen[]; ended: unknown[]; stop: () => void } {
  const seen: Seen[] = [];
  const ended: unknown[] = [];
  const stop = server.watch(
    { labelSelector: selector, resourceVersion, allowWatchBookmarks: bookmarks, timeoutSeconds: 600 },
    (type, object) => {
      const o = object as V1Lease & { code?: number };
      seen.push({ type, name: o.metadata?.name, rv: o.metadata?.resourceVersion, holder: o.spec?.holderIdentity, code: o.code });
    },
    (err) => ended.push(err),
  );
  return { seen, ended, stop };
}

test("simulated API server: every write takes the next resourceVersion; create of an existing Lease is 409 AlreadyExists, a stale replace 409 Conflict, a missing one 404", (t) => {
  const server = new SimApiServer(new FakeClock());
  const a = server.create(lease("a"));
  const b = server.create(lease("b"));
  t.true(Number(b.metadata!.resourceVersion) > Number(a.metadata!.resourceVersion));
  t.is(
    code(() => server.create(lease("a"))),
    409,
  );
  t.is(
    reason(() => server.create(lease("a"))),
    "AlreadyExists",
  );
  const a2 = server.replace("a", { ...a, spec: { ...a.spec, holderIdentity: "d0" } });
  t.true(Number(a2.metadata!.resourceVersion) > Number(b.metadata!.resourceVersion));
  t.is(
    code(() => server.replace("a", { ...a, spec: { ...a.spec, holderIdentity: "d1" } })),
    409,
  );
  t.is(
    reason(() => server.replace("a", { ...a, spec: { ...a.spec, holderIdentity: "d1" } })),
    "Conflict",
  );
  t.is(
    code(() => server.read("nope")),
    404,
  );
  t.is(
    code(() => server.replace("nope", lease("nope"))),
    404,
  );
  t.is(server.read("a").spec?.holderIdentity, "d0");
});

test("simulated API server: an update that changes nothing keeps the resourceVersion and sends no event", async (t) => {
  const clock = new FakeClock();
  const server = new SimApiServer(clock);
  const a = server.create(lease("a", "d0"));
  const watch = watchAll(server, `${MANAGED_BY_LABEL}=${MANAGED_BY}`, a.metadata!.resourceVersion!);
  const same = server.replace("a", a);
  t.is(same.metadata!.resourceVersion, a.metadata!.resourceVersion);
  t.is(server.resourceVersion, a.metadata!.resourceVersion!);
  await clock.advance(1_000);
  t.deepEqual(watch.seen, []);
  const changed = server.replace("a", { ...a, spec: { ...a.spec, leaseDurationSeconds: 20 } });
  await clock.advance(1_000);
  t.deepEqual(
    watch.seen.map((e) => [e.type, e.rv]),
    [["MODIFIED", changed.metadata!.resourceVersion]],
  );
});

test("simulated API server: label selectors as the store sends them (key=value, key in (...), key exists, !key, comma is AND)", (t) => {
  const l = (labels: Record<string, string>) => ({ metadata: { labels } }) as V1Lease;
  t.true(parseSelector("a=1")(l({ a: "1" })));
  t.false(parseSelector("a=1")(l({ a: "2" })));
  t.true(parseSelector("a in (x,y)")(l({ a: "y" })));
  t.false(parseSelector("a in (x,y)")(l({ b: "y" })));
  t.true(parseSelector("a")(l({ a: "" })));
  t.false(parseSelector("!a")(l({ a: "" })));
  t.true(parseSelector("a=1,b in (x, y)")(l({ a: "1", b: "x" })));
  t.false(parseSelector("a=1,b in (x,y)")(l({ a: "1", b: "z" })));
  t.true(parseSelector(selectorFor(["n1", "n2"]))(lease("n2")));
  t.false(parseSelector(selectorFor(["n1", "n2"]))(lease("n3")));
  t.is(
    code(() => parseSelector("a in x")),
    400,
  );
});

test("simulated API server: on a selector watch a Lease that loses its label arrives as DELETED (content before, new resourceVersion) and one that gains it as ADDED", async (t) => {
  const clock = new FakeClock();
  const server = new SimApiServer(clock);
  const a = server.create(lease("a", "d0"));
  const watch = watchAll(server, selectorFor(["a"]), a.metadata!.resourceVersion!);
  const { [NAME_LABEL]: _dropped, ...rest } = a.metadata!.labels!;
  const relabelled = server.replace("a", { ...a, metadata: { ...a.metadata, labels: rest } });
  const back = server.replace("a", { ...relabelled, metadata: { ...relabelled.metadata, labels: a.metadata!.labels } });
  server.delete("a");
  await clock.advance(10);
  t.deepEqual(
    watch.seen.map((e) => [e.type, e.rv, e.holder]),
    [
      ["DELETED", relabelled.metadata!.resourceVersion, "d0"],
      ["ADDED", back.metadata!.resourceVersion, "d0"],
      ["DELETED", server.resourceVersion, "d0"],
    ],
  );
  t.is(server.list(selectorFor(["a"])).items.length, 0);
});

test("simulated API server: watch events lag behind writes by the cache's lag, in order, while a list is current at once", async (t) => {
  const clock = new FakeClock();
  const server = new SimApiServer(clock, { cacheLagMs: () => 500 });
  const listed = server.list(selectorFor(["a"]));
  const watch = watchAll(server, selectorFor(["a"]), listed.metadata!.resourceVersion!);
  server.create(lease("a", "d0"));
  t.is(server.list(selectorFor(["a"])).items.length, 1);
  await clock.advance(499);
  t.deepEqual(watch.seen, []);
  await clock.advance(1);
  t.deepEqual(
    watch.seen.map((e) => e.type),
    ["ADDED"],
  );
});

test("simulated API server: a watch from a resourceVersion older than the cache's window, or from before a compaction, gets an ERROR event with 410 Expired and ends", async (t) => {
  const clock = new FakeClock();
  const server = new SimApiServer(clock, { cacheEvents: 2 });
  const first = server.create(lease("a"));
  for (const holder of ["d1", "d2", "d3"]) server.replace("a", { ...server.read("a"), spec: { holderIdentity: holder } });
  await clock.advance(0);
  const old = watchAll(server, selectorFor(["a"]), first.metadata!.resourceVersion!);
  t.deepEqual(
    old.seen.map((e) => [e.type, e.code]),
    [["ERROR", 410]],
  );
  t.deepEqual(old.ended, [null]);
  // Within the window: the events after it.
  const recent = watchAll(server, selectorFor(["a"]), String(Number(server.resourceVersion) - 1));
  t.deepEqual(
    recent.seen.map((e) => [e.type, e.holder]),
    [["MODIFIED", "d3"]],
  );
  const now = server.resourceVersion;
  server.compact();
  t.deepEqual(
    watchAll(server, selectorFor(["a"]), String(Number(now) - 1)).seen.map((e) => e.code),
    [410],
  );
  t.deepEqual(watchAll(server, selectorFor(["a"]), now).seen, []);
});

test("simulated API server: a watch that asked for bookmarks gets the current resourceVersion though nothing it selects changes, and ends after its timeout", async (t) => {
  const clock = new FakeClock();
  const server = new SimApiServer(clock, { bookmarkMs: 1_000 });
  const start = server.resourceVersion;
  const ended: unknown[] = [];
  const seen: string[] = [];
  server.watch(
    { labelSelector: selectorFor(["a"]), resourceVersion: start, allowWatchBookmarks: true, timeoutSeconds: 5 },
    (type, object) => seen.push(`${type} ${(object as V1Lease).metadata?.resourceVersion}`),
    (err) => ended.push(err),
  );
  server.create(lease("b"));
  await clock.advance(1_000);
  t.deepEqual(seen, [`BOOKMARK ${server.resourceVersion}`]);
  t.deepEqual(ended, []);
  await clock.advance(4_000);
  t.deepEqual(ended, [null]);
});

/** The fields of lock `name` held by daemon d0 for client c1. */
function heldLease(name: string): LeaseFields {
  const { version: _version, ...fields } = leaseRecord({ name, holderIdentity: "d0", holder: "c1" });
  return fields;
}

function kubeStore(server: SimApiServer, clock: FakeClock, api: LeaseApi = new DirectLeaseApi(server)): KubernetesStore {
  return new KubernetesStore({ api, namespace: "sim", log: createLogger("silent"), clock, random: () => 0.5 });
}

/** A read that never answers, as a request to an API server that hangs: it fails only when its caller gives up. */
function hangsUntilAborted<T>(signal: AbortSignal | undefined): Promise<T> {
  return new Promise((_, reject) => signal?.addEventListener("abort", () => reject(new Error("aborted"))));
}

test("KubernetesStore on the simulated API server: a held Lease relabelled by hand stays held on the daemon's watch (it reads before believing a deletion)", async (t) => {
  const clock = new FakeClock();
  const server = new SimApiServer(clock);
  const store = kubeStore(server, clock);
  const created = await store.create(heldLease("l"));
  const events: WatchEvent[] = [];
  const handle = store.watch((e) => events.push(e), new Set(["l"]));
  await clock.advance(100);
  t.is(events[0]?.type, "synced");
  removeNameLabel(server, "l");
  await clock.advance(100);
  t.false(events.some((e) => e.type === "delete"));
  // What the watch said of it last (a read, then a relist of every managed Lease): still held, as written since.
  const last = events
    .flatMap((e) => (e.type === "upsert" ? [e.lease] : e.type === "synced" ? e.leases : []))
    .filter((lease) => lease.name === "l")
    .at(-1);
  t.is(last?.holderIdentity, "d0");
  t.true(Number(last?.version ?? 0) > Number(created.version));
  await handle.stop();
});

test("KubernetesStore on the simulated API server: a Lease taken as deleted when it lost its name label and the read to confirm failed is found again once reads answer", async (t) => {
  // Seed 404154: e0, held by d2, was relabelled by hand while d2 could not reach the API server; d2's read to confirm
  // the DELETED failed, so it believed the deletion (safe: its candidate was deposed), and its cached reads said
  // "nobody, term 0" for more than 10 s after the API server answered again: no watch selected by name hears of the
  // Lease, and the watch did not look it up again.
  const clock = new FakeClock();
  const server = new SimApiServer(clock);
  let unreachable = false;
  const direct = new DirectLeaseApi(server);
  const api: LeaseApi = Object.assign(Object.create(direct) as LeaseApi, {
    read: (name: string) => (unreachable ? Promise.reject(new Error("connect ECONNREFUSED 127.0.0.1:6443")) : direct.read(name)),
  });
  const store = kubeStore(server, clock, api);
  await store.create(heldLease("l"));
  const events: WatchEvent[] = [];
  const handle = store.watch((e) => events.push(e), new Set(["l"]));
  await clock.advance(100);
  unreachable = true;
  removeNameLabel(server, "l");
  await clock.advance(100);
  t.true(
    events.some((e) => e.type === "delete" && e.name === "l"),
    "the read to confirm failed: the deletion is believed",
  );
  unreachable = false;
  await clock.advance(10_000);
  const last = events
    .flatMap((e) => (e.type === "upsert" ? [e.lease] : e.type === "synced" ? e.leases : []))
    .filter((lease) => lease.name === "l")
    .at(-1);
  const lastDelete = events.findLastIndex((e) => e.type === "delete" && e.name === "l");
  const heardSince = events
    .slice(lastDelete + 1)
    .some((e) => (e.type === "upsert" ? [e.lease] : e.type === "synced" ? e.leases : []).some((l) => l.name === "l"));
  t.true(heardSince, "the Lease was heard of again after the deletion was believed");
  t.is(last?.holderIdentity, "d0");
  await handle.stop();
});

test("KubernetesStore on the simulated API server: after a Lease loses its name label by hand, the watch still hears its changes (it watches every managed Lease)", async (t) => {
  const clock = new FakeClock();
  const server = new SimApiServer(clock);
  const store = kubeStore(server, clock);
  await store.create(heldLease("l"));
  const events: WatchEvent[] = [];
  const handle = store.watch((e) => events.push(e), new Set(["l"]));
  await clock.advance(100);
  removeNameLabel(server, "l");
  await clock.advance(100);
  // Then someone shortens it, still without the label: a watch selected by name would never hear of it.
  const relabelled = server.read("l");
  const edited = server.replace("l", { ...relabelled, spec: { ...relabelled.spec, leaseDurationSeconds: 3 } });
  await clock.advance(10_000);
  const heard = events
    .filter((e) => e.type === "upsert" || e.type === "synced")
    .flatMap((e) => (e.type === "upsert" ? [e.lease] : e.leases));
  t.true(
    heard.some((lease) => lease.name === "l" && lease.version === edited.metadata!.resourceVersion),
    `heard the edit (resourceVersion ${edited.metadata!.resourceVersion}); heard: ${heard.map((l) => l.version).join(", ")}`,
  );
  await handle.stop();
});

test("KubernetesStore on the simulated API server: a held Lease relabelled by hand is not taken as deleted by a later relist (the scope grew)", async (t) => {
  const clock = new FakeClock();
  // The watch cache lags: the relist comes before the watch would have told of the label's removal.
  const server = new SimApiServer(clock, { cacheLagMs: () => 300 });
  const store = kubeStore(server, clock);
  const events: WatchEvent[] = [];
  const names = new Set(["l"]);
  // Watched before it exists: the first list does not have it, so the watch looks it up (absent) once.
  const handle = store.watch((e) => events.push(e), names);
  await clock.advance(100);
  await store.create(heldLease("l"));
  await clock.advance(1_000);
  // The label goes, and at once the scope grows: the watch ends and relists before it hears of the removal.
  removeNameLabel(server, "l");
  names.add("m");
  handle.rescope();
  await clock.advance(10_000);
  const lastOfL = events
    .flatMap((e) =>
      e.type === "synced" ? (e.leases.some((l) => l.name === "l") ? ["listed"] : inScopeOf(e.scope, "l") ? ["missing"] : []) : [],
    )
    .at(-1);
  t.false(
    events.some((e) => e.type === "delete" && e.name === "l"),
    "no deletion",
  );
  t.is(lastOfL, "listed", "the last list that covered it had it");
  await handle.stop();
});

test("KubernetesStore on the simulated API server: a Lease that lost its name label while the watch did not cover it is found when the name is watched again", async (t) => {
  // Seed 378565: d0 looked l0 up once (absent), stopped watching it, and l0 was created and then relabelled by hand
  // meanwhile; when d0 watched l0 again it did not look it up a second time, took it as absent, and a cached GetLock
  // answered "not held" while d2 held it.
  const clock = new FakeClock();
  const server = new SimApiServer(clock, { maxWatchMs: 2_000 });
  const store = kubeStore(server, clock);
  const events: WatchEvent[] = [];
  const names = new Set(["l", "m"]);
  // Watched before it exists: the first list does not have it, so the watch looks it up (absent).
  const handle = store.watch((e) => events.push(e), names);
  await clock.advance(100);
  // Nobody here wants it any more: the next watch, once this one ends on its own, is narrowed to m.
  names.delete("l");
  await clock.advance(5_000);
  const narrowed = events.filter((e) => e.type === "synced").at(-1);
  t.false(narrowed?.type === "synced" && inScopeOf(narrowed.scope, "l"), "the scope was narrowed to m");
  // Out of sight, another daemon takes it, and someone removes its name label.
  await store.create(heldLease("l"));
  removeNameLabel(server, "l");
  // Wanted again.
  names.add("l");
  handle.rescope();
  await clock.advance(1_000);
  const covering = events.filter((e) => e.type === "synced" && inScopeOf(e.scope, "l")).at(-1);
  t.true(
    covering?.type === "synced" && covering.leases.some((lease) => lease.name === "l" && lease.holderIdentity === "d0"),
    "the list that covers l again has it, held",
  );
  await handle.stop();
});

/** Removes a Lease's name label by hand (kubectl edit), leaving everything else as it is. */
function removeNameLabel(server: SimApiServer, name: string): void {
  const stored = server.read(name);
  const { [NAME_LABEL]: _dropped, ...labels } = stored.metadata!.labels!;
  server.replace(name, { ...stored, metadata: { ...stored.metadata, labels } });
}

function inScopeOf(scope: ReadonlySet<string> | "all", name: string): boolean {
  return scope === "all" || scope.has(name);
}

test("KubernetesStore on the simulated API server: a watch that heard nothing since a compaction resumes into 410 Gone and relists", async (t) => {
  const clock = new FakeClock();
  const server = new SimApiServer(clock, { maxWatchMs: 2_000 });
  const store = kubeStore(server, clock);
  server.create(lease("l", "d0"));
  const events: WatchEvent[] = [];
  const handle = store.watch((e) => events.push(e), new Set(["l"]));
  await clock.advance(100);
  t.is(events.filter((e) => e.type === "synced").length, 1);
  // Writes this watch does not select, then a compaction: its last resourceVersion is gone.
  server.create(lease("m", "d1"));
  await clock.advance(100);
  server.compact();
  await clock.advance(5_000);
  const synced = events.filter((e) => e.type === "synced");
  t.is(synced.length, 2);
  const latest = synced.at(-1);
  t.is(latest?.type === "synced" ? latest.leases.map((l) => l.holderIdentity).join() : "", "d0");
  t.is(latest?.type === "synced" ? latest.version : "", server.resourceVersion);
  await handle.stop();
});

test("KubernetesStore on the simulated API server: the check of a name not listed (an older daemon's Lease?) holds the watch up 2 s at most when its read hangs", async (t) => {
  const clock = new FakeClock();
  const server = new SimApiServer(clock);
  let reads = 0;
  const api = new (class extends DirectLeaseApi {
    override read(name: string, signal?: AbortSignal): Promise<V1Lease> {
      reads += 1;
      return hangsUntilAborted(signal);
    }
  })(server);
  const store = kubeStore(server, clock, api);
  const events: WatchEvent[] = [];
  const handle = store.watch((e) => events.push(e), new Set(["l"]));
  await clock.advance(2_500);
  t.true(reads > 0, "the name was looked up");
  t.true(
    events.some((e) => e.type === "synced"),
    "the watch synced while the read still hung",
  );
  await handle.stop();
});

test("KubernetesStore on the simulated API server: a read of the watch that never answers does not stop the watch: it gives up and lists again", async (t) => {
  const clock = new FakeClock();
  const server = new SimApiServer(clock);
  // The first read hangs, as a request to an API server that never answers (until the HTTP client's 5 minutes).
  let hung = 0;
  const api = new (class extends DirectLeaseApi {
    override read(name: string, signal?: AbortSignal): Promise<V1Lease> {
      if (hung++ === 0) return hangsUntilAborted(signal);
      return super.read(name);
    }
  })(server);
  const store = kubeStore(server, clock, api);
  const events: WatchEvent[] = [];
  // "l" is not listed, so the watch reads it to find out whether an older daemon wrote it without the name label.
  const handle = store.watch((e) => events.push(e), new Set(["l"]));
  await clock.advance(60_000);
  t.true(
    events.some((e) => e.type === "synced"),
    "the watch synced after the hung read",
  );
  await handle.stop();
});

/** True when every list the watch reported as covering `name` returned it: an empty entry is not "nobody" (docs/design.md 3.10). */
function everyCoveringListHas(events: readonly WatchEvent[], name: string): boolean {
  return events.every((e) => e.type !== "synced" || !inScopeOf(e.scope, name) || e.leases.some((l) => l.name === name));
}

/** A Lease an older daemon wrote: managed, without the name label. */
function olderDaemonsLease(name: string): V1Lease {
  return lease(name, "old-daemon", { [MANAGED_BY_LABEL]: MANAGED_BY });
}

test("KubernetesStore on the simulated API server: a name whose check goes unanswered is not reported covered until a later check answers, and an older daemon's Lease behind it is then listed", async (t) => {
  const clock = new FakeClock();
  const server = new SimApiServer(clock);
  server.create(olderDaemonsLease("l"));
  // The first read hangs until the watch gives up on it; later ones answer.
  let reads = 0;
  const api = new (class extends DirectLeaseApi {
    override read(name: string, signal?: AbortSignal): Promise<V1Lease> {
      if (reads++ === 0) return hangsUntilAborted(signal);
      return super.read(name);
    }
  })(server);
  const store = kubeStore(server, clock, api);
  const events: WatchEvent[] = [];
  const handle = store.watch((e) => events.push(e), new Set(["l"]));
  await clock.advance(30_000);
  t.true(reads > 1, "the name was checked again");
  t.true(everyCoveringListHas(events, "l"), "no list reported the name covered without its Lease");
  const last = events.filter((e) => e.type === "synced").at(-1);
  t.true(last?.type === "synced" && last.leases.some((l) => l.name === "l" && l.holderIdentity === "old-daemon"));
  await handle.stop();
});

test("KubernetesStore on the simulated API server: a check on an overloaded API server that answers lists and reads only after 3 s is given twice as long as the list took, so an older daemon's Lease behind it is listed", async (t) => {
  const clock = new FakeClock();
  const server = new SimApiServer(clock);
  server.create(olderDaemonsLease("l"));
  // Every request waits 3 s for its turn at the server (seed 261367: 70 daemons at 20 requests a second, lists and
  // reads waited 4-12 s, and checks given 2 s each never learned of the older daemon's Lease in 57 s).
  let reads = 0;
  const api = new (class extends DirectLeaseApi {
    override list(labelSelector: string, limit: number | undefined): Promise<V1LeaseList> {
      return new Promise((resolve, reject) => clock.setTimer(3_000, () => super.list(labelSelector, limit).then(resolve, reject)));
    }
    override read(name: string, signal?: AbortSignal): Promise<V1Lease> {
      reads += 1;
      return new Promise((resolve, reject) => {
        const timer = clock.setTimer(3_000, () => super.read(name).then(resolve, reject));
        signal?.addEventListener("abort", () => {
          timer.cancel();
          reject(new Error("aborted"));
        });
      });
    }
  })(server);
  const store = kubeStore(server, clock, api);
  const events: WatchEvent[] = [];
  const handle = store.watch((e) => events.push(e), new Set(["l"]));
  await clock.advance(30_000);
  t.true(everyCoveringListHas(events, "l"), "no list reported the name covered without its Lease");
  const last = events.filter((e) => e.type === "synced").at(-1);
  t.true(
    last?.type === "synced" && last.leases.some((l) => l.name === "l" && l.holderIdentity === "old-daemon"),
    `the older daemon's Lease was listed (${reads} reads)`,
  );
  await handle.stop();
});

test("KubernetesStore on the simulated API server: a check whose read hangs, on an API server that answers the list at once, holds the watch up 2 s each time, however often it goes unanswered", async (t) => {
  const clock = new FakeClock();
  const server = new SimApiServer(clock);
  // Every read hangs (seed 293645: a check of an election's name hung at each list, and a campaign for another name,
  // which the list answered at once, waited for the checks).
  const listedAt: number[] = [];
  const api = new (class extends DirectLeaseApi {
    override list(labelSelector: string, limit: number | undefined): Promise<V1LeaseList> {
      listedAt.push(clock.now());
      return super.list(labelSelector, limit);
    }
    override read(_name: string, signal?: AbortSignal): Promise<V1Lease> {
      return hangsUntilAborted(signal);
    }
  })(server);
  const store = kubeStore(server, clock, api);
  const synced: number[] = [];
  const handle = store.watch((e) => void (e.type === "synced" && synced.push(clock.now())), new Set(["l"]));
  await clock.advance(30_000);
  t.true(synced.length >= 3, `the watch listed again and again (${synced.length} times)`);
  const waits = synced.map((at) => at - Math.max(...listedAt.filter((l) => l <= at)));
  t.true(
    waits.every((ms) => ms <= 2_000),
    `each list was told within 2 s of being asked for: ${waits.join(", ")} ms`,
  );
  await handle.stop();
});

test("KubernetesStore on the simulated API server: a name not listed that a daemon labels before the check reads it is reported as the check found it", async (t) => {
  const clock = new FakeClock();
  const server = new SimApiServer(clock);
  server.create(olderDaemonsLease("l"));
  // Between the list and the check, a daemon of this version writes the Lease (its write adds the name label).
  const api = new (class extends DirectLeaseApi {
    override read(name: string, signal?: AbortSignal): Promise<V1Lease> {
      const stored = server.read(name);
      if (stored.metadata?.labels?.[NAME_LABEL] === undefined)
        server.replace(name, { ...stored, metadata: { ...stored.metadata, labels: { ...stored.metadata?.labels, [NAME_LABEL]: name } } });
      return super.read(name);
    }
  })(server);
  const store = kubeStore(server, clock, api);
  const events: WatchEvent[] = [];
  const handle = store.watch((e) => events.push(e), new Set(["l"]));
  await clock.advance(100);
  t.true(
    events.some((e) => e.type === "synced"),
    "the watch synced",
  );
  t.true(everyCoveringListHas(events, "l"), "no list reported the name covered without its Lease");
  await handle.stop();
});

test("simulated API server: a JSON merge patch changes only the keys it names (null removes one), whatever the resourceVersion; a uid not the stored one is 422, a missing Lease 404, a patch that changes nothing keeps the resourceVersion", async (t) => {
  const clock = new FakeClock();
  const server = new SimApiServer(clock);
  const a = server.create({ ...lease("a", "d0"), metadata: { ...lease("a", "d0").metadata, annotations: { keep: "1" } } });
  const renewed = server.replace("a", { ...a, spec: { ...a.spec, leaseDurationSeconds: 20 } });
  const watch = watchAll(server, `${MANAGED_BY_LABEL}=${MANAGED_BY}`, renewed.metadata!.resourceVersion!);
  // Sent by a daemon that last saw `a`: no resourceVersion, so the replace since does not matter.
  const patched = server.mergePatch("a", { metadata: { uid: a.metadata!.uid, annotations: { mine: "b_2" } } });
  t.true(Number(patched.metadata!.resourceVersion) > Number(renewed.metadata!.resourceVersion));
  t.deepEqual(patched.metadata!.annotations, { keep: "1", mine: "b_2" });
  t.deepEqual(patched.spec, renewed.spec, "the spec is untouched");
  t.deepEqual(patched.metadata!.labels, renewed.metadata!.labels);
  t.is(
    server.mergePatch("a", { metadata: { annotations: { mine: "b_2" } } }).metadata!.resourceVersion,
    patched.metadata!.resourceVersion,
    "a patch that changes nothing is no new version",
  );
  const removed = server.mergePatch("a", { metadata: { annotations: { mine: null } } });
  t.deepEqual(removed.metadata!.annotations, { keep: "1" });
  t.is(
    code(() => server.mergePatch("a", { metadata: { uid: "uid-of-another", annotations: { mine: "b_2" } } })),
    422,
  );
  t.is(
    code(() => server.mergePatch("nope", { metadata: { annotations: { mine: "b_2" } } })),
    404,
  );
  t.deepEqual(server.read("a").metadata!.annotations, { keep: "1" }, "refused patches changed nothing");
  await clock.advance(1_000);
  t.deepEqual(
    watch.seen.map((e) => [e.type, e.rv]),
    [
      ["MODIFIED", patched.metadata!.resourceVersion],
      ["MODIFIED", removed.metadata!.resourceVersion],
    ],
  );
});

test("KubernetesStore on the simulated API server: a daemon's wait entry is one annotation of its own, set by a merge patch; a replace from before it conflicts, and one after it that admits the waiter removes the annotation", async (t) => {
  const clock = new FakeClock();
  const server = new SimApiServer(clock);
  const store = kubeStore(server, clock);
  const created = await store.create(heldLease("w"));
  const renewed = await store.update({ ...created, renewTime: new Date(5_000) });
  const identity = "daemon-with-a-long-identity-0123456789-0123456789-0123456789-0123456789_7";
  const marked = await store.markWaiting(created, identity, true);
  const key = waitAnnotation(identity);
  const annotations = server.read("w").metadata!.annotations!;
  t.is(annotations[key], identity);
  // An annotation key: a DNS-subdomain prefix, and a name of at most 63 characters that begins and ends alphanumeric.
  const [prefix, keyName] = key.split("/") as [string, string];
  t.is(prefix, "sync.metaparticle.io");
  t.true(keyName.length <= 63 && /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(keyName), keyName);
  t.deepEqual(marked.waiting, [identity]);
  t.is(marked.holderIdentity, "d0");
  t.is(marked.transitions, renewed.transitions);
  const stale = await store.update({ ...renewed, renewTime: new Date(6_000) }).catch((err: Error) => err);
  t.is((stale as StoreError).reason, "conflict");
  const admitted = await store.update({ ...marked, queue: [identity], waiting: undefined });
  t.deepEqual([admitted.queue, admitted.waiting], [[identity], undefined]);
  t.false(key in server.read("w").metadata!.annotations!, "the write that admits the waiter removes its annotation");
  // The Lease deleted and created again: a patch for the one seen before is refused (422: the uid is immutable) and
  // changes nothing; to the engine, a write that lost to another's.
  server.delete("w");
  await store.create(heldLease("w"));
  const refused = await store.markWaiting(marked, identity, true).catch((err: Error) => err);
  t.is((refused as StoreError).reason, "conflict");
  t.false(key in (server.read("w").metadata!.annotations ?? {}));
});

test("simulated API server: a JSON patch applies whole or not at all: with its tests holding it writes whatever the resourceVersion; a failed test, a test of a missing key, or of another uid is 422 Invalid and writes nothing; a missing Lease 404; one that changes nothing keeps the resourceVersion", async (t) => {
  const clock = new FakeClock();
  const server = new SimApiServer(clock);
  const key = "sync.metaparticle.io/seat.0123456789abcdef";
  const path = "/metadata/annotations/sync.metaparticle.io~1seat.0123456789abcdef";
  const a = server.create({ ...lease("a", "d0"), metadata: { ...lease("a", "d0").metadata, annotations: { [key]: "s1", keep: "1" } } });
  // Another write since the patching daemon read `a`: the patch is not conditional on the version.
  const between = server.mergePatch("a", { metadata: { annotations: { other: "x" } } });
  const watch = watchAll(server, `${MANAGED_BY_LABEL}=${MANAGED_BY}`, between.metadata!.resourceVersion!);
  const seat = (uid: string, from: string, to: string, at = path) => [
    { op: "test", path: "/metadata/uid", value: uid },
    { op: "test", path: at, value: from },
    { op: "replace", path: at, value: to },
  ];
  const uid = a.metadata!.uid!;
  const patched = server.jsonPatch("a", seat(uid, "s1", "s2"));
  t.true(Number(patched.metadata!.resourceVersion) > Number(between.metadata!.resourceVersion));
  t.deepEqual(patched.metadata!.annotations, { [key]: "s2", keep: "1", other: "x" });
  t.deepEqual(patched.spec, a.spec, "the spec is untouched");
  const refused = {
    failedTest: seat(uid, "s1", "s3"),
    missingKey: seat(uid, "s2", "s3", "/metadata/annotations/sync.metaparticle.io~1seat.fedcba9876543210"),
    otherUid: seat("uid-of-another", "s2", "s3"),
  };
  for (const [what, operations] of Object.entries(refused)) {
    t.deepEqual([code(() => server.jsonPatch("a", operations)), reason(() => server.jsonPatch("a", operations))], [422, "Invalid"], what);
  }
  t.is(
    code(() => server.jsonPatch("nope", seat(uid, "s2", "s3"))),
    404,
  );
  const stored = server.peek("a")!;
  t.is(stored.metadata!.resourceVersion, patched.metadata!.resourceVersion, "refused patches wrote nothing");
  t.deepEqual(stored.metadata!.annotations, patched.metadata!.annotations);
  t.is(
    server.jsonPatch("a", seat(uid, "s2", "s2")).metadata!.resourceVersion,
    patched.metadata!.resourceVersion,
    "no change, no new version",
  );
  await clock.advance(1_000);
  t.deepEqual(
    watch.seen.map((e) => [e.type, e.rv]),
    [["MODIFIED", patched.metadata!.resourceVersion]],
  );
});

test("KubernetesStore on the simulated API server: a seat is patched (one JSON patch) as on the memory store: whatever the version while it holds exactly the seat expected; a seat changed or removed since, or a Lease deleted and created again, is a conflict, and one gone not-found", async (t) => {
  const clock = new FakeClock();
  const server = new SimApiServer(clock);
  const patches: string[] = [];
  const api = new (class extends DirectLeaseApi {
    override mergePatch(name: string, patch: object): Promise<V1Lease> {
      patches.push("merge");
      return super.mergePatch(name, patch);
    }
    override jsonPatch(name: string, operations: readonly JsonPatchOperation[]): Promise<V1Lease> {
      patches.push(operations.map((o) => o.op).join(","));
      return super.jsonPatch(name, operations);
    }
  })(server);
  const kube = await seatStory(kubeStore(server, clock, api), (name) => server.delete(name));
  const memoryStore = new MemoryStore();
  t.deepEqual(kube, await seatStory(memoryStore, (name) => memoryStore.delete(name)));
  t.deepEqual(kube, SEAT_STORY);
  // The story's one announcement, then its eight seat patches, each one request.
  t.deepEqual(patches, ["merge", ...Array<string>(8).fill("test,test,replace")]);
});

test("KubernetesStore on the simulated API server: a name the watch's predicate says no older daemon writes is not looked up when a list misses it, unless the watch last told of it as existing", async (t) => {
  const clock = new FakeClock();
  // The watch cache lags: the relist comes before the watch would have told of the label's removal.
  const server = new SimApiServer(clock, { cacheLagMs: () => 300 });
  const reads: string[] = [];
  const api = new (class extends DirectLeaseApi {
    override read(name: string): Promise<V1Lease> {
      reads.push(name);
      return super.read(name);
    }
  })(server);
  const store = kubeStore(server, clock, api);
  const events: WatchEvent[] = [];
  const names = new Set(["msync-rwlock-r", "msync-lock-l"]);
  const handle = store.watch((e) => events.push(e), names, { checkUnlabelled: (name) => !name.startsWith("msync-rwlock-") });
  await clock.advance(100);
  t.deepEqual(reads, ["msync-lock-l"], "only the lock's name was looked up");
  t.true(
    events.some((e) => e.type === "synced" && inScopeOf(e.scope, "msync-rwlock-r")),
    "the other is covered all the same",
  );
  // Once the watch has told of it, a list that misses it reads it: it may have lost its name label by hand.
  await store.create(heldLease("msync-rwlock-r"));
  await clock.advance(1_000);
  removeNameLabel(server, "msync-rwlock-r");
  names.add("msync-lock-m");
  handle.rescope();
  await clock.advance(10_000);
  t.true(reads.includes("msync-rwlock-r"), "read once it had been told of");
  const last = events.filter((e) => e.type === "synced" && inScopeOf(e.scope, "msync-rwlock-r")).at(-1);
  t.true(last?.type === "synced" && last.leases.some((lease) => lease.name === "msync-rwlock-r"), "and not taken as deleted");
  await handle.stop();
});
