// The history checker can fail: on a real recorded history it finds nothing,
// and on the same history with an overlap, a token regression or a duplicate
// token injected it finds exactly that; each rule is also shown on a small
// hand-written history.
import test from "ava";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { type CheckOptions, type Rule, check } from "./checker.js";
import { type EventFields, type HistoryEvent, parseHistory, sortByTime } from "./history.js";

const fixture = fileURLToPath(new URL("../../../test/faults/fixtures/recorded-history.jsonl", import.meta.url));
/** The recorded run: 3 daemons x 2 clients, lock l0 and election e0, 4 s, lease 5 s. */
const recorded = () => parseHistory(readFileSync(fixture, "utf8"));
const recordedOptions: CheckOptions = { leaseMs: 5_000, maxPasses: 12 };

const rules = (events: readonly HistoryEvent[], options: CheckOptions = { leaseMs: 5_000, maxPasses: 5 }): Rule[] =>
  check(sortByTime(events), options).violations.map((v) => v.rule);

/** An event at `atMs` milliseconds. */
const at = (atMs: number, client: string, fields: EventFields): HistoryEvent => ({ ts: BigInt(Math.round(atMs * 1e6)), client, ...fields });
const lock = (atMs: number, client: string, ev: EventFields["ev"], token?: number, extra: Partial<EventFields> = {}) =>
  at(atMs, client, { ev, kind: "lock", name: "l", daemon: Number(client.slice(1, 2)) || 0, token, ...extra });
const elect = (atMs: number, client: string, ev: EventFields["ev"], token?: number, extra: Partial<EventFields> = {}) =>
  at(atMs, client, { ev, kind: "election", name: "e", daemon: 0, token, ...extra });

/** The acquired and release events of the lock holds in a history, in time order. */
function lockHolds(events: readonly HistoryEvent[]) {
  const holds: Array<{ acquired: HistoryEvent; release: HistoryEvent }> = [];
  for (const e of events.filter((e) => e.kind === "lock" && e.ev === "acquired")) {
    const release = events.find((r) => r.client === e.client && r.kind === "lock" && r.ev === "release" && r.token === e.token);
    if (release !== undefined) holds.push({ acquired: e, release });
  }
  return holds;
}

test("the recorded history of a real run passes every rule", (t) => {
  const events = recorded();
  const result = check(events, recordedOptions);
  t.deepEqual(result.violations, []);
  t.true(result.holds.length > 50, `${result.holds.length} holds`);
  t.true(result.tokensVerified > 50, "client tokens are checked against the Lease history");
  t.is(result.tokensUnverified, 0);
});

test("the recorded history with one hold's release delayed past the next grant: overlap", (t) => {
  const events = recorded();
  const [first, second] = lockHolds(events).filter((h, i, all) => i + 1 < all.length && all[i + 1]!.acquired.client !== h.acquired.client);
  t.truthy(first && second);
  const late = events.map((e) => (e === first!.release ? { ...e, ts: second!.acquired.ts + 1_000_000n } : e));
  const result = check(sortByTime(late), recordedOptions);
  t.deepEqual(
    result.violations.map((v) => v.rule),
    ["overlap"],
  );
  t.deepEqual(result.violations[0]!.clients, [first!.acquired.client, second!.acquired.client]);
});

test("the recorded history with two tokens swapped: token regression", (t) => {
  const events = recorded();
  const holds = lockHolds(events);
  const [a, b] = [holds[3]!, holds[4]!];
  const swapped = events.map((e) => {
    if (e === a.acquired) return { ...e, token: b.acquired.token };
    if (e === b.acquired) return { ...e, token: a.acquired.token };
    return e;
  });
  // The Lease history says who wrote which token, so the swap also shows there.
  t.deepEqual(check(swapped, { ...recordedOptions }).violations.filter((v) => v.rule === "token-order").length, 1);
});

test("the recorded history with a token granted twice: duplicate token", (t) => {
  const events = recorded();
  const holds = lockHolds(events);
  const again = events.map((e) => (e === holds[6]!.acquired ? { ...e, token: holds[5]!.acquired.token } : e));
  t.true(check(again, recordedOptions).violations.some((v) => v.rule === "duplicate-token"));
});

test("a hold ends at the wrapper's Lost signal; one that keeps going after it overlaps the next", (t) => {
  const base = [lock(0, "c0.0", "acquire-start"), lock(1, "c0.0", "acquired", 1), lock(2, "c1.0", "acquire-start")];
  t.deepEqual(
    rules([
      ...base,
      lock(10, "c0.0", "lost", 1, { reason: "heartbeat-timeout" }),
      lock(11, "c1.0", "acquired", 2),
      lock(20, "c0.0", "release", 1),
    ]),
    [],
  );
  t.deepEqual(
    rules([
      ...base,
      lock(10, "c0.0", "lost-ignored", 1, { reason: "heartbeat-timeout" }),
      lock(11, "c1.0", "acquired", 2),
      lock(20, "c0.0", "release", 1),
    ]),
    ["overlap"],
  );
});

test("Acquired or Elected without a positive token", (t) => {
  t.deepEqual(rules([lock(0, "c0.0", "acquire-start"), lock(1, "c0.0", "acquired", 0)]), ["no-token"]);
  t.deepEqual(rules([elect(0, "c0.0", "campaign-start"), elect(1, "c0.0", "elected", undefined)]), ["no-token"]);
});

test("a release while someone waits and no grant within the bound: no handover, unless a fault covers it", (t) => {
  const history = [
    lock(0, "c0.0", "acquire-start"),
    lock(1, "c0.0", "acquired", 1),
    lock(2, "c1.0", "acquire-start"),
    lock(10, "c0.0", "release", 1),
    at(40_000, "harness", { ev: "workload-end" }),
  ];
  t.deepEqual(rules(history), ["no-handover"]);
  t.deepEqual(rules([...history, lock(14_000, "c1.0", "acquired", 2)]), [], "granted within 2 x lease + 5 s");
  const fault = [
    at(5, "harness", { ev: "fault-start", fault: "apiserver#1", affects: "all" }),
    at(20_000, "harness", { ev: "fault-end", fault: "apiserver#1", affects: "all" }),
  ];
  t.deepEqual(rules([...history, ...fault, lock(30_000, "c1.0", "acquired", 2)]), [], "the bound counts from the end of the fault");
  t.deepEqual(rules([...history, ...fault, at(60_000, "harness", { ev: "workload-end" })].filter((e) => e.ts !== 40_000_000_000n)), [
    "no-handover",
  ]);
  // A waiter that gave up is not owed a handover.
  t.deepEqual(rules([...history, lock(11, "c1.0", "acquire-failed", undefined, { code: 4 })]), []);
});

test("a client killed while holding stops holding when killed", (t) => {
  t.deepEqual(
    rules([
      lock(0, "c0.0", "acquire-start"),
      lock(1, "c0.0", "acquired", 1),
      lock(2, "c1.0", "acquire-start"),
      at(10, "harness", { ev: "client-killed", target: "c0.0" }),
      lock(11, "c1.0", "acquired", 2),
    ]),
    [],
  );
  t.deepEqual(rules([lock(0, "c0.0", "acquired", 1), lock(11, "c1.0", "acquired", 2)]), ["overlap"], "without the kill it never ended");
});

test("a raw client's hold ends when its last valid_for runs out", (t) => {
  const raw = { raw: true };
  t.deepEqual(
    rules([
      lock(0, "s0/1", "acquired", 1, { ...raw, validForMs: 100 }),
      lock(50, "s0/1", "renewed", undefined, { ...raw, validForMs: 100 }),
      lock(151, "c1.0", "acquired", 2),
    ]),
    [],
  );
  t.deepEqual(rules([lock(0, "s0/1", "acquired", 1, { ...raw, validForMs: 100 }), lock(99, "c1.0", "acquired", 2)]), ["overlap"]);
});

test("a waiter passed over by more than K grants starves", (t) => {
  const history: HistoryEvent[] = [lock(0, "c2.0", "acquire-start")];
  for (let i = 0; i < 8; i++) {
    const client = i % 2 === 0 ? "c0.0" : "c1.0";
    history.push(lock(10 + i * 10, client, "acquired", i + 1), lock(15 + i * 10, client, "release", i + 1));
  }
  t.deepEqual(rules(history, { leaseMs: 5_000, maxPasses: 7 }), ["starvation"]);
  t.deepEqual(rules(history, { leaseMs: 5_000, maxPasses: 8 }), []);
  // Grants while the waiter's own daemon (2) is faulted, and for the bound after, do not count.
  const fault = [
    at(1, "harness", { ev: "fault-start", fault: "sigstop-d2#1", affects: [2] }),
    at(2, "harness", { ev: "fault-end", fault: "sigstop-d2#1", affects: [2] }),
  ];
  t.deepEqual(rules([...history, ...fault], { leaseMs: 5_000, maxPasses: 7 }), []);
});

test("elections: one leader per term, terms increase, no two leaders at once", (t) => {
  const campaign = (client: string) => elect(0, client, "campaign-start");
  t.deepEqual(
    rules([
      campaign("c0.0"),
      campaign("c1.0"),
      elect(1, "c0.0", "elected", 1),
      elect(5, "c0.0", "resign", 1),
      elect(6, "c1.0", "elected", 2),
    ]),
    [],
  );
  t.deepEqual(
    rules([
      campaign("c0.0"),
      campaign("c1.0"),
      elect(1, "c0.0", "elected", 1),
      elect(5, "c0.0", "resign", 1),
      elect(6, "c1.0", "elected", 1),
    ]),
    ["duplicate-token"],
  );
  t.deepEqual(
    rules([
      campaign("c0.0"),
      campaign("c1.0"),
      elect(1, "c0.0", "elected", 3),
      elect(5, "c0.0", "resign", 3),
      elect(6, "c1.0", "elected", 2),
    ]),
    ["token-order"],
  );
  t.deepEqual(rules([campaign("c0.0"), campaign("c1.0"), elect(1, "c0.0", "elected", 1), elect(6, "c1.0", "elected", 2)]), ["overlap"]);
  // Resign ends the campaign: being elected again in it is a violation; a new campaign may win.
  t.deepEqual(rules([campaign("c0.0"), elect(1, "c0.0", "elected", 1), elect(5, "c0.0", "resign", 1), elect(6, "c0.0", "elected", 2)]), [
    "elected-after-resign",
  ]);
  t.deepEqual(
    rules([
      campaign("c0.0"),
      elect(1, "c0.0", "elected", 1),
      elect(5, "c0.0", "resign", 1),
      elect(6, "c0.0", "resigned", 1),
      elect(7, "c0.0", "campaign-start"),
      elect(8, "c0.0", "elected", 2),
    ]),
    [],
  );
  // Deposed ends the term; the candidate keeps campaigning.
  t.deepEqual(
    rules([
      campaign("c0.0"),
      campaign("c1.0"),
      elect(1, "c0.0", "elected", 1),
      elect(5, "c0.0", "deposed", 1, { reason: "heartbeat-timeout" }),
      elect(6, "c1.0", "elected", 2),
    ]),
    [],
  );
});

test("the Lease history: tokens never go back, one holder per token, no write of a token after its release", (t) => {
  const lease = (atMs: number, rv: number, holderIdentity: string, transitions: number) =>
    at(atMs, "harness", { ev: "lease", name: "msync-lock-l", resourceVersion: String(rv), holderIdentity, transitions });
  t.deepEqual(rules([lease(1, 10, "d0_a", 1), lease(2, 11, "", 1), lease(3, 12, "d1_b", 2)]), []);
  t.deepEqual(rules([lease(1, 10, "d0_a", 2), lease(2, 11, "d1_b", 1)]), ["lease-history"]);
  t.deepEqual(rules([lease(1, 10, "d0_a", 1), lease(2, 11, "d1_b", 1)]), ["lease-history"]);
  t.deepEqual(rules([lease(1, 10, "d0_a", 1), lease(2, 11, "", 1), lease(3, 12, "d0_a", 1)]), ["lease-history"]);
  // A client's token must have been written by its own daemon.
  t.deepEqual(rules([lease(1, 10, "d1_b", 1), lock(2, "c0.0", "acquired", 1)]), ["token-mismatch"]);
});

test("a deletion of the Lease begins an epoch: violations within one are plain, those across a deletion say between which instants", (t) => {
  const lease = (atMs: number, rv: number, holderIdentity: string, transitions: number) =>
    at(atMs, "harness", { ev: "lease", name: "msync-lock-l", resourceVersion: String(rv), holderIdentity, transitions });
  const deleted = (atMs: number, rv: number) =>
    at(atMs, "harness", { ev: "lease", name: "msync-lock-l", resourceVersion: String(rv), deleted: true });
  const ns = (atMs: number) => BigInt(atMs * 1e6);
  const found = (events: HistoryEvent[]) =>
    check(sortByTime(events), { leaseMs: 5_000 }).violations.map((v) => ({ rule: v.rule, across: v.across }));
  // Epoch 0: token 5 by d0; the Lease deleted at 20 ms; epoch 1 starts again at 1, by d1 (a daemon that never saw it).
  const before = [lease(10, 10, "d0_a", 5), lock(10, "c0.0", "acquired", 5), lock(15, "c0.0", "release", 5), lease(15, 11, "", 5)];
  const after = [
    deleted(20, 12),
    lease(30, 13, "d1_b", 1),
    lock(30, "c1.0", "acquired", 1),
    lock(35, "c1.0", "release", 1),
    lease(35, 14, "", 1),
  ];
  t.deepEqual(found([...before, ...after]), [
    { rule: "token-order", across: { from: ns(10), to: ns(30) } },
    { rule: "lease-history", across: { from: ns(15), to: ns(30) } },
  ]);
  // The same token again within epoch 1: a violation no deletion explains, though one came before both grants.
  const again = [lease(40, 15, "d2_c", 1), lock(40, "c2.0", "acquired", 1)];
  const within = found([...before, ...after, ...again]).filter((v) => v.across === undefined);
  // (Token 1 granted twice; in the Lease, written by two holders, and written again after its release.)
  t.deepEqual(
    within.map((v) => v.rule),
    ["duplicate-token", "lease-history", "lease-history"],
  );
  // Without the deletion in the watch, every violation is within one epoch.
  t.true(found([...before, ...after.slice(1)]).every((v) => v.across === undefined));
});
