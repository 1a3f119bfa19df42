// The contender's decision step as a table: a view of the contender and the
// lease in, the one thing to do out. Each row names the rule it checks.
import test from "ava";
import { type ContenderView, type Decision, MAX_GRANTS_IN_A_ROW, afterLoss, decide, isIdle } from "../../daemon/engine/decide.js";
import type { Observation } from "../../daemon/engine/lease-cache.js";
import { type LeaseRecord, StoreError } from "../../daemon/store/lease-store.js";
import { leaseRecord } from "../support/lease-record.js";

const ME = "me_1";
const OTHER = "other_2";
const NOW = 100_000;

function lease(fields: Partial<LeaseRecord> = {}): LeaseRecord {
  return leaseRecord({ transitions: 7, ...fields });
}

/** The lease as observed `agoMs` before NOW, by a daemon that saw nothing of it before. */
function seen(record: LeaseRecord, agoMs = 0): Observation {
  const changedAt = NOW - agoMs;
  return {
    record,
    changedAt,
    holdEnd: record.holderIdentity === "" ? changedAt : changedAt + record.leaseDurationSeconds * 1000,
    seats: new Map(),
  };
}

function view(fields: Partial<ContenderView> = {}): ContenderView {
  return {
    now: NOW,
    identity: ME,
    synced: true,
    syncError: undefined,
    observation: undefined,
    goneHoldEnd: 0,
    holding: undefined,
    head: undefined,
    anyNoWait: false,
    closing: false,
    retainedToken: undefined,
    backoffUntil: 0,
    conflicted: false,
    yieldUntil: 0,
    yieldToken: 0,
    uncertain: false,
    turnGraceMs: () => 2_000,
    grantsInARow: 0,
    lingerUntil: 0,
    ...fields,
  };
}

const holding = (fields: Partial<NonNullable<ContenderView["holding"]>> = {}) => ({
  token: 7,
  mode: "session" as const,
  persistent: false,
  ended: false,
  nextRequest: undefined,
  renewDue: false,
  pastRenewDeadline: false,
  leaseMs: 15_000,
  keepUntil: undefined,
  ...fields,
});
const waiter = { noWait: false };
const tryer = { noWait: true };

const rows: Array<[string, ContenderView, Decision]> = [
  ["nothing held, nothing wanted: wait", view({ observation: seen(lease()) }), { do: "wait" }],
  ["a waiter and no lease: create it", view({ head: waiter }), { do: "create" }],
  [
    "a lease deleted by hand while held: nobody creates it before its holder's lease observed runs out",
    view({ head: waiter, goneHoldEnd: NOW + 4_000 }),
    { do: "wait", until: NOW + 4_000 },
  ],
  ["a lease deleted by hand while held: a TryAcquire fails", view({ head: tryer, goneHoldEnd: NOW + 4_000 }), { do: "fail-head" }],
  ["a lease deleted by hand once its holder's lease ran out: create it", view({ head: waiter, goneHoldEnd: NOW }), { do: "create" }],
  [
    "a holder cleared by hand: the lease is not taken before the hold observed ends",
    view({ head: waiter, observation: { record: lease({ queue: [ME] }), changedAt: NOW - 10, holdEnd: NOW + 6_000, seats: new Map() } }),
    { do: "wait", until: NOW + 6_000 },
  ],
  ["a waiter and a free lease: acquire it", view({ head: waiter, observation: seen(lease()) }), { do: "acquire", skip: [] }],
  ["a held lease: join its queue", view({ head: waiter, observation: seen(lease({ holderIdentity: OTHER })) }), { do: "enqueue" }],
  [
    "a held lease, already queued: wait for its expiry as observed here",
    view({ head: waiter, observation: seen(lease({ holderIdentity: OTHER, queue: [ME] }), 5_000) }),
    { do: "wait", until: NOW + 10_000 },
  ],
  [
    "expiry counts from the observed change, not from any time written in the lease",
    view({ head: waiter, observation: seen(lease({ holderIdentity: OTHER, renewTime: new Date(0) }), 14_999) }),
    { do: "enqueue" },
  ],
  [
    "an expired lease is free",
    view({ head: waiter, observation: seen(lease({ holderIdentity: OTHER }), 15_000) }),
    { do: "acquire", skip: [] },
  ],
  [
    "a daemon queued ahead goes first",
    view({ head: waiter, observation: seen(lease({ queue: [OTHER, ME] }), 100) }),
    { do: "wait", until: NOW + 1_900 },
  ],
  [
    "a daemon queued ahead that does not take the lease within the turn grace is skipped",
    view({ head: waiter, observation: seen(lease({ queue: [OTHER, ME] }), 2_000) }),
    { do: "acquire", skip: [OTHER] },
  ],
  [
    "a TryAcquire on a held lease fails at once",
    view({ head: tryer, anyNoWait: true, observation: seen(lease({ holderIdentity: OTHER })) }),
    { do: "fail-head" },
  ],
  [
    "a waiter whose write lost a race announces itself before it tries to take a free lease again",
    view({ head: waiter, conflicted: true, observation: seen(lease()) }),
    { do: "enqueue" },
  ],
  [
    "a waiter in line takes a free lease at its turn, conflict or not",
    view({ head: waiter, conflicted: true, observation: seen(lease({ waiting: [ME] })) }),
    { do: "acquire", skip: [] },
  ],
  [
    "a waiter that announced itself has no turn ahead of the queue",
    view({ head: waiter, observation: seen(lease({ queue: [OTHER], waiting: [ME] }), 100) }),
    { do: "wait", until: NOW + 1_900 },
  ],
  [
    "a daemon that only announced itself holds no one off: a daemon not in line takes the free lease",
    view({ head: waiter, observation: seen(lease({ waiting: [OTHER] })) }),
    { do: "acquire", skip: [] },
  ],
  [
    "a waiter announces itself once: announced, it waits for the holder",
    view({ head: waiter, observation: seen(lease({ holderIdentity: OTHER, waiting: [ME] })) }),
    { do: "wait", until: NOW + 15_000 },
  ],
  [
    "after yielding, a free lease is left to others for the yield window",
    view({ head: waiter, yieldUntil: NOW + 8, yieldToken: 7, observation: seen(lease()) }),
    { do: "wait", until: NOW + 8 },
  ],
  [
    "after yielding, a free lease another daemon has taken and given back since is taken at once: the yield is over",
    view({ head: waiter, yieldUntil: NOW + 8, yieldToken: 7, observation: seen(lease({ transitions: 8 })) }),
    { do: "acquire", skip: [] },
  ],
  [
    "after yielding with claims still waiting, a free lease whose queue another daemon wrote this daemon into is taken at once: the yield is over",
    view({ head: waiter, yieldUntil: NOW + 8, yieldToken: Number.MAX_SAFE_INTEGER, observation: seen(lease({ queue: [ME] })) }),
    { do: "acquire", skip: [] },
  ],
  [
    "after yielding, a lease someone took is queued for as usual",
    view({ head: waiter, yieldUntil: NOW + 8, observation: seen(lease({ holderIdentity: OTHER })) }),
    { do: "enqueue" },
  ],
  [
    "an unanswered acquiring write is settled by a read before anything else",
    view({ uncertain: true, observation: seen(lease()) }),
    { do: "settle" },
  ],
  [
    "a backoff after a failure comes first",
    view({ uncertain: true, backoffUntil: NOW + 100, head: waiter }),
    { do: "wait", until: NOW + 100 },
  ],
  ["a lease this daemon holds for nobody is released", view({ observation: seen(lease({ holderIdentity: ME })) }), { do: "release-stale" }],
  [
    "at shutdown, a lease-held lock kept for its holder is not released",
    view({ closing: true, retainedToken: 7, observation: seen(lease({ holderIdentity: ME })) }),
    { do: "wait" },
  ],
  [
    "this daemon queued with nothing waiting: leave the queue",
    view({ observation: seen(lease({ holderIdentity: OTHER, queue: [ME] })) }),
    { do: "dequeue" },
  ],
  [
    "holding: someone else's token in the lease means it was taken over",
    view({ holding: holding(), observation: seen(lease({ holderIdentity: OTHER, transitions: 8 })) }),
    { do: "lose", reason: "taken-over", then: "end" },
  ],
  [
    "holding: our identity with another token is a takeover too (a handoff or a previous life)",
    view({ holding: holding(), observation: seen(lease({ holderIdentity: ME, transitions: 8 })) }),
    { do: "lose", reason: "taken-over", then: "end" },
  ],
  ["holding: a deleted lease is lost", view({ holding: holding() }), { do: "lose", reason: "deleted", then: "end" }],
  ["holding, before the first list: nothing can be decided", view({ holding: holding(), synced: false }), { do: "wait" }],
  [
    "holding: a renewal that is due is made",
    view({ holding: holding({ renewDue: true }), observation: seen(lease({ holderIdentity: ME })) }),
    { do: "renew" },
  ],
  [
    "holding: the holder's calls come before a renewal",
    view({ holding: holding({ renewDue: true, nextRequest: "renew" }), observation: seen(lease({ holderIdentity: ME })) }),
    { do: "serve-request" },
  ],
  [
    "holding for a caller that went away: give it back",
    view({ holding: holding({ ended: true }), observation: seen(lease({ holderIdentity: ME })) }),
    { do: "give-back", how: "release" },
  ],
  [
    "at shutdown, a session holder told it lost keeps its lease while it may still act on its promise",
    view({ closing: true, holding: holding({ ended: true, keepUntil: NOW + 500 }), observation: seen(lease({ holderIdentity: ME })) }),
    { do: "wait", until: NOW + 500 },
  ],
  [
    "at shutdown, a session holder's lease goes back once its promise has run out (or its stream closed)",
    view({ closing: true, holding: holding({ ended: true, keepUntil: NOW }), observation: seen(lease({ holderIdentity: ME })) }),
    { do: "give-back", how: "release" },
  ],
  [
    "holding for a caller that went away, the lease already run out: forget it",
    view({ holding: holding({ ended: true }), observation: seen(lease({ holderIdentity: ME }), 15_000) }),
    { do: "drop" },
  ],
  [
    "a lease-held lock nobody renewed runs out",
    view({ holding: holding({ mode: "lease" }), observation: seen(lease({ holderIdentity: ME }), 15_000) }),
    { do: "drop" },
  ],
  [
    "a lease-held lock: wake when it would run out",
    view({ holding: holding({ mode: "lease" }), observation: seen(lease({ holderIdentity: ME }), 1_000) }),
    { do: "wait", until: NOW + 14_000 },
  ],
  [
    "the first list failed with RBAC: every waiter fails, waiting cannot fix it",
    view({ synced: false, syncError: new StoreError("forbidden", "no"), head: waiter }),
    { do: "fail-unsynced", all: true },
  ],
  [
    "the first list failed for now: only claims that do not wait fail",
    view({ synced: false, syncError: new StoreError("unavailable", "no"), head: waiter, anyNoWait: true }),
    { do: "fail-unsynced", all: false },
  ],
  ["not listed yet and no error: wait for the list", view({ synced: false, head: waiter }), { do: "wait" }],
  [
    "holding: the renew deadline passed without a renewal: lost",
    view({ holding: holding({ pastRenewDeadline: true, renewDue: true }), observation: seen(lease({ holderIdentity: ME })) }),
    { do: "lose", reason: "renew-deadline-exceeded", then: "end" },
  ],
  [
    "holding: past the renew deadline, the loss is told as such whatever the lease shows now",
    view({ holding: holding({ pastRenewDeadline: true }), observation: seen(lease({ holderIdentity: OTHER, transitions: 8 })) }),
    { do: "lose", reason: "renew-deadline-exceeded", then: "end" },
  ],
  [
    "a leader past its renew deadline stays a candidate",
    view({ holding: holding({ persistent: true, pastRenewDeadline: true }), observation: seen(lease({ holderIdentity: ME })) }),
    { do: "lose", reason: "renew-deadline-exceeded", then: "wait-again" },
  ],
  [
    "a leader that loses its lease stays a candidate: its claim waits to be elected again",
    view({ holding: holding({ persistent: true }), observation: seen(lease({ holderIdentity: OTHER, transitions: 8 })) }),
    { do: "lose", reason: "taken-over", then: "wait-again" },
  ],
  [
    "a leader that loses its lease at shutdown is not a candidate any more",
    view({ closing: true, holding: holding({ persistent: true }), observation: seen(lease({ holderIdentity: OTHER, transitions: 8 })) }),
    { do: "lose", reason: "taken-over", then: "end" },
  ],
  [
    "a candidate that had resigned or closed its stream does not wait again when its lease is lost",
    view({ holding: holding({ persistent: true, ended: true }) }),
    { do: "lose", reason: "deleted", then: "end" },
  ],
  [
    "give-back: a local claim waits and no other daemon does: hand the lease to it",
    view({ holding: holding({ ended: true }), head: waiter, observation: seen(lease({ holderIdentity: ME, queue: [ME] })) }),
    { do: "give-back", how: "hand-off" },
  ],
  [
    "give-back: another daemon is queued: release, and queue behind it for the local claim",
    view({ holding: holding({ ended: true }), head: waiter, observation: seen(lease({ holderIdentity: ME, queue: [OTHER] })) }),
    { do: "give-back", how: "release-and-queue" },
  ],
  [
    "give-back: another daemon announced itself (not queued yet): release, and queue behind it for the local claim",
    view({ holding: holding({ ended: true }), head: waiter, observation: seen(lease({ holderIdentity: ME, waiting: [OTHER] })) }),
    { do: "give-back", how: "release-and-queue" },
  ],
  [
    "give-back at shutdown: release, whatever waits here",
    view({ closing: true, holding: holding({ ended: true }), head: waiter, observation: seen(lease({ holderIdentity: ME })) }),
    { do: "give-back", how: "release" },
  ],
  [
    "give-back after MAX_GRANTS_IN_A_ROW grants to this daemon: yield, not hand off",
    view({
      holding: holding({ ended: true }),
      head: waiter,
      grantsInARow: MAX_GRANTS_IN_A_ROW,
      observation: seen(lease({ holderIdentity: ME })),
    }),
    { do: "give-back", how: "yield" },
  ],
  [
    "give-back after MAX_GRANTS_IN_A_ROW grants with nothing waiting here: yield too",
    view({ holding: holding({ ended: true }), grantsInARow: MAX_GRANTS_IN_A_ROW, observation: seen(lease({ holderIdentity: ME })) }),
    { do: "give-back", how: "yield" },
  ],
  [
    "give-back after MAX_GRANTS_IN_A_ROW grants while another daemon is queued: no yield, it is served by the queue",
    view({
      holding: holding({ ended: true }),
      head: waiter,
      grantsInARow: MAX_GRANTS_IN_A_ROW,
      observation: seen(lease({ holderIdentity: ME, queue: [OTHER] })),
    }),
    { do: "give-back", how: "release-and-queue" },
  ],
  [
    "give-back, non-fair: another daemon is queued, but the local claim is non-fair and this daemon has had fewer than MAX_GRANTS_IN_A_ROW: hand the lease to it",
    view({
      holding: holding({ ended: true }),
      head: { ...waiter, nonFair: true },
      grantsInARow: MAX_GRANTS_IN_A_ROW - 1,
      observation: seen(lease({ holderIdentity: ME, queue: [OTHER] })),
    }),
    { do: "give-back", how: "hand-off" },
  ],
  [
    "give-back, non-fair: another daemon announced itself; the non-fair local claim is handed the lease",
    view({
      holding: holding({ ended: true }),
      head: { ...waiter, nonFair: true },
      grantsInARow: 1,
      observation: seen(lease({ holderIdentity: ME, waiting: [OTHER] })),
    }),
    { do: "give-back", how: "hand-off" },
  ],
  [
    "give-back, non-fair: after MAX_GRANTS_IN_A_ROW grants while another daemon is queued, released to the queue",
    view({
      holding: holding({ ended: true }),
      head: { ...waiter, nonFair: true },
      grantsInARow: MAX_GRANTS_IN_A_ROW,
      observation: seen(lease({ holderIdentity: ME, queue: [OTHER] })),
    }),
    { do: "give-back", how: "release-and-queue" },
  ],
  [
    "give-back, non-fair at shutdown: release, whatever waits here",
    view({
      closing: true,
      holding: holding({ ended: true }),
      head: { ...waiter, nonFair: true },
      observation: seen(lease({ holderIdentity: ME, queue: [OTHER] })),
    }),
    { do: "give-back", how: "release" },
  ],
  [
    "holding: a Release or Resign is served as a give-back, chosen by the same rule",
    view({ holding: holding({ nextRequest: "release", renewDue: true }), head: waiter, observation: seen(lease({ holderIdentity: ME })) }),
    { do: "serve-release", how: "hand-off" },
  ],
  [
    "holding: a Release with nothing waiting releases",
    view({ holding: holding({ nextRequest: "release" }), observation: seen(lease({ holderIdentity: ME })) }),
    { do: "serve-release", how: "release" },
  ],
  [
    "holding: a Proclaim is served as a write of the holder's",
    view({ holding: holding({ nextRequest: "proclaim" }), observation: seen(lease({ holderIdentity: ME })) }),
    { do: "serve-request" },
  ],
];

for (const [rule, input, expected] of rows) {
  test(`decide: ${rule}`, (t) => {
    t.deepEqual(decide(input), expected);
  });
}

/** When a contender may be dropped: the same rules as `decide`'s for a lease held for nobody and the wait queue. */
const idleRows: Array<[string, ContenderView, boolean]> = [
  ["nothing here and no lease: idle", view(), true],
  ["nothing here, the lease held by another daemon: idle", view({ observation: seen(lease({ holderIdentity: OTHER })) }), true],
  ["a claim waits: not idle", view({ head: waiter }), false],
  ["a claim holds: not idle", view({ holding: holding(), observation: seen(lease({ holderIdentity: ME })) }), false],
  ["an acquiring write's outcome is unknown: not idle until a read settles it", view({ uncertain: true }), false],
  ["lingering after a release: not idle", view({ lingerUntil: NOW + 1 }), false],
  ["lingering is cut short at shutdown", view({ closing: true, lingerUntil: NOW + 1 }), true],
  [
    "a lease this daemon holds for nobody: not idle until it is released",
    view({ observation: seen(lease({ holderIdentity: ME })) }),
    false,
  ],
  [
    "at shutdown, a lease-held lock kept for its holder: idle, it runs out on its own",
    view({ closing: true, retainedToken: 7, observation: seen(lease({ holderIdentity: ME })) }),
    true,
  ],
  [
    "at shutdown, a lease held for nobody that is not the kept lock: not idle",
    view({ closing: true, retainedToken: 6, observation: seen(lease({ holderIdentity: ME })) }),
    false,
  ],
  [
    "queued with nothing waiting: not idle until it leaves the queue",
    view({ observation: seen(lease({ holderIdentity: OTHER, queue: [ME] })) }),
    false,
  ],
];

for (const [rule, input, expected] of idleRows) {
  test(`isIdle: ${rule}`, (t) => {
    t.is(isIdle(input), expected);
  });
}

test("afterLoss: a leader past its renew deadline stays a candidate, by the same rule as any other loss", (t) => {
  const leader = holding({ persistent: true });
  t.is(afterLoss(view({ holding: leader }), leader), "wait-again");
  t.is(afterLoss(view({ holding: leader, closing: true }), leader), "end");
  const lock = holding();
  t.is(afterLoss(view({ holding: lock }), lock), "end");
});
