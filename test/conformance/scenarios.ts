// The conformance scenarios, written once as data: every client runs every
// one through its driver (PROTOCOL.md). A step sends a command to a driver,
// waits for an event, acts on a sidecar or a driver process, or waits. Values
// saved by one step (`save`) are compared by later ones (`{ gt: "t1" }`);
// `zero` is saved as 0 before the first step.

/**
 * What a reply or event must hold: a literal, a comparison with a saved value,
 * or a list (a semaphore's `holders`) whose entries match these, one each, in
 * any order.
 */
export type Match =
  | string
  | number
  | boolean
  | null
  | { readonly gt: string }
  | { readonly eq: string }
  | { readonly anyOrder: readonly Readonly<Record<string, Match>>[] };

/** An error a reply must be: its code and, if given, the field it names and the wrapper's own kind of error. */
export interface ExpectedError {
  readonly code: string;
  readonly field?: string | null;
  /** The wrapper's typed error, as the driver names it (PROTOCOL.md): "permits-mismatch", "not-held", "wait-timeout". */
  readonly kind?: string | null;
}

export type Step =
  /** Sends `op` with `args` to driver `to`; unless `pending`, waits for the reply and checks it. */
  | {
      readonly to: string;
      readonly op: string;
      readonly args: Readonly<Record<string, unknown>>;
      /** The reply must be ok and hold these fields (or, given a list, the fields of one of its entries). Default: ok. */
      readonly expect?: Readonly<Record<string, Match>> | readonly Readonly<Record<string, Match>>[];
      /** The reply must be this error. */
      readonly expectError?: ExpectedError;
      /** Reply fields to remember, as { field: variable }. */
      readonly save?: Readonly<Record<string, string>>;
      /** Do not wait for the reply now; a later `reply` step does. */
      readonly pending?: string;
    }
  /** Waits for the reply of a `pending` command. */
  | {
      readonly reply: string;
      readonly withinMs: number;
      readonly expect?: Readonly<Record<string, Match>>;
      /** The reply must be this error. */
      readonly expectError?: ExpectedError;
      /** Success or any error will do: only that it came within `withinMs` is checked. */
      readonly eitherOutcome?: true;
      readonly save?: Readonly<Record<string, string>>;
      /** Remember when it arrived, for `order`. */
      readonly at?: string;
    }
  /** Waits for an event from driver `from` matching `expect`. */
  | {
      readonly from: string;
      readonly event: Readonly<Record<string, Match>>;
      readonly withinMs: number;
      readonly save?: Readonly<Record<string, string>>;
      readonly at?: string;
    }
  /**
   * Waits a settle window, then fails if driver `none` (or any of them) has
   * sent an event matching `event` (since the moment saved by a `mark` step,
   * if `since`).
   */
  | { readonly none: string | readonly string[]; readonly event: Readonly<Record<string, Match>>; readonly since?: string }
  /** Remembers this moment, for a later `none` step's `since`. */
  | { readonly mark: string }
  /** Waits `forMs` and fails if the `pending` command has been answered by then. */
  | { readonly notYet: string; readonly forMs: number }
  /** The moments saved with `at` happened in this order. */
  | { readonly order: readonly string[] }
  /** Acts on sidecar number `sidecar`. */
  | { readonly sidecar: number; readonly action: "freeze" | "thaw" | "restart" }
  /** Stops driver process `pause` (SIGSTOP) for `forMs`, then continues it. */
  | { readonly pause: string; readonly forMs: number }
  | { readonly sleepMs: number };

export interface Scenario {
  readonly name: string;
  /**
   * "memory": one daemon on the memory backend. "shared": two daemons on the
   * Kubernetes backend sharing one namespace of the test control plane.
   */
  readonly sidecars: "memory" | "shared";
  /** Driver processes, each connected to one sidecar: { driver: sidecar index }. */
  readonly drivers: Readonly<Record<string, number>>;
  readonly steps: readonly Step[];
}

/** Leases in these scenarios: short, so deadlines pass in seconds. Sidecars get --lease-duration=3s --renew-deadline=2s. */
const LEASE_MS = 3000;
/** Longer than any valid_for at LEASE_MS, with room for a slow machine. */
const PAST_DEADLINE_MS = 5000;
/** A bound for events that must come promptly; generous, as timing is not under test. */
const SOON_MS = 15_000;
/** The deadline these scenarios give a call on a frozen sidecar. */
const CALL_MS = 2000;
/**
 * The deadline of each of the eight calls made one after another on a frozen
 * sidecar: all of them are over before gRPC keepalive (10 s of silence, then
 * 5 s) may close the connection under one and turn its DEADLINE_EXCEEDED
 * into UNAVAILABLE.
 */
const QUICK_CALL_MS = 1000;
/**
 * A bound for a call with deadline CALL_MS (or a wait timeout of CALL_MS) to
 * return on a frozen sidecar: the deadline, the wrappers' one-second grace on
 * a wait timeout, and room for a slow machine. A call with no deadline never
 * returns, so the bound only has to be finite.
 */
const BOUNDED_MS = 10_000;
/**
 * A wrapper notices a stream's sidecar that stopped answering by gRPC
 * keepalive (a ping every 10 s, 5 s to answer): within this, with room.
 */
const KEEPALIVE_NOTICE_MS = 30_000;
/**
 * The deadline of each semaphore call on a frozen sidecar (and the wait
 * timeout of one acquisition): all seven are over within 5 s of the freeze,
 * before a keepalive ping sent just after it can go unanswered for its 5 s
 * and close the connection under a call (UNAVAILABLE instead of
 * DEADLINE_EXCEEDED).
 */
const PERMIT_CALL_MS = 500;
/**
 * A permit's lease where its promise must outlast a freeze: its valid_for
 * (the renew deadline, 2/3 of it) less a renew interval is still about 9 s.
 */
const LONG_LEASE_MS = 30_000;

export const SCENARIOS: readonly Scenario[] = [
  {
    name: "acquire: each token is greater than the last",
    sidecars: "memory",
    drivers: { a: 0 },
    steps: [
      { to: "a", op: "lock", args: { client: "a", as: "l1", name: "tokens" }, save: { token: "t1" } },
      { to: "a", op: "release", args: { handle: "l1" } },
      { to: "a", op: "lock", args: { client: "a", as: "l2", name: "tokens" }, expect: { token: { gt: "t1" } }, save: { token: "t2" } },
      { to: "a", op: "release", args: { handle: "l2" } },
      { to: "a", op: "tryLock", args: { client: "a", as: "l3", name: "tokens" }, expect: { acquired: true, token: { gt: "t2" } } },
      { to: "a", op: "release", args: { handle: "l3" } },
      { none: "a", event: { event: "lost" } },
    ],
  },
  {
    name: "wait: a waiter on another sidecar is granted when the holder releases, and release returns once released",
    sidecars: "shared",
    drivers: { a: 0, b: 1, c: 1 },
    steps: [
      { to: "a", op: "lock", args: { client: "a", as: "held", name: "queue", holder: "a" }, save: { token: "t1" } },
      { to: "b", op: "lock", args: { client: "b", as: "waiting", name: "queue", holder: "b" }, pending: "b-lock" },
      { sleepMs: 300 },
      { to: "a", op: "getLock", args: { client: "a", name: "queue" }, expect: { held: true, holder: "a" } },
      { to: "a", op: "release", args: { handle: "held" } },
      // Defect 4: a release that returns before the sidecar released leaves the lock still held here.
      {
        to: "c",
        op: "getLock",
        args: { client: "c", name: "queue", fresh: true },
        expect: [{ held: false }, { held: true, holder: "b" }],
      },
      { reply: "b-lock", withinMs: SOON_MS, expect: { token: { gt: "t1" } } },
      { to: "b", op: "release", args: { handle: "waiting" } },
      { to: "b", op: "getLock", args: { client: "b", name: "queue", fresh: true }, expect: { held: false } },
      { none: "a", event: { event: "lost" } },
      { none: "b", event: { event: "lost" } },
    ],
  },
  {
    name: "non-fair: a non-fair waiter on the holder's sidecar is handed the lock before a waiter on another sidecar, who is granted next",
    sidecars: "shared",
    drivers: { a: 0, b: 1, c: 0 },
    steps: [
      { to: "a", op: "lock", args: { client: "a", as: "held", name: "barge", holder: "a" }, save: { token: "t1" } },
      { to: "b", op: "lock", args: { client: "b", as: "waiting", name: "barge", holder: "b" }, pending: "b-lock" },
      { sleepMs: 300 },
      // A wrapper that drops fair: false asks for a fair lock, and b, which waited first, is granted at the release.
      { to: "c", op: "lock", args: { client: "c", as: "next", name: "barge", holder: "c", fair: false }, pending: "c-lock" },
      // Time for c's first call to reach its sidecar (a fresh JVM's first call takes about 300 ms).
      { sleepMs: 1500 },
      { to: "a", op: "release", args: { handle: "held" } },
      { reply: "c-lock", withinMs: SOON_MS, expect: { token: { gt: "t1" } }, save: { token: "t2" } },
      { notYet: "b-lock", forMs: 300 },
      { to: "c", op: "release", args: { handle: "next" } },
      { reply: "b-lock", withinMs: SOON_MS, expect: { token: { gt: "t2" } } },
      { to: "b", op: "release", args: { handle: "waiting" } },
      { none: ["a", "b", "c"], event: { event: "lost" } },
    ],
  },
  {
    name: "try-lock: refused while another holds the lock",
    sidecars: "memory",
    drivers: { a: 0, b: 0 },
    steps: [
      { to: "a", op: "lock", args: { client: "a", as: "held", name: "busy", holder: "a" } },
      { to: "b", op: "tryLock", args: { client: "b", as: "try", name: "busy", holder: "b" }, expect: { acquired: false } },
      { to: "a", op: "release", args: { handle: "held" } },
      { to: "b", op: "tryLock", args: { client: "b", as: "try2", name: "busy", holder: "b" }, expect: { acquired: true } },
      { to: "b", op: "renew", args: { handle: "try2" } },
      { to: "b", op: "getLock", args: { client: "b", name: "busy" }, expect: { held: true, holder: "b" } },
      { to: "b", op: "release", args: { handle: "try2" } },
    ],
  },
  {
    name: "stale token: renew and release after the lease ran out are refused with FAILED_PRECONDITION",
    sidecars: "memory",
    drivers: { a: 0, b: 0 },
    steps: [
      {
        to: "a",
        op: "tryLock",
        args: { client: "a", as: "old", name: "stale", holder: "a", leaseDurationMs: 1000 },
        expect: { acquired: true },
        save: { token: "t1" },
      },
      { sleepMs: 2500 },
      {
        to: "b",
        op: "tryLock",
        args: { client: "b", as: "new", name: "stale", holder: "b", leaseDurationMs: LEASE_MS },
        expect: { acquired: true, token: { gt: "t1" } },
      },
      { to: "a", op: "renew", args: { handle: "old" }, expectError: { code: "FAILED_PRECONDITION" } },
      { to: "a", op: "release", args: { handle: "old" }, expectError: { code: "FAILED_PRECONDITION" } },
      { to: "b", op: "getLock", args: { client: "b", name: "stale" }, expect: { held: true, holder: "b" } },
      { to: "b", op: "release", args: { handle: "new" } },
    ],
  },
  {
    name: "election: elected, proclaim is observed, resign elects the next candidate",
    sidecars: "memory",
    drivers: { a: 0, b: 0 },
    steps: [
      { to: "b", op: "observe", args: { client: "b", as: "watch", name: "sched" } },
      { to: "a", op: "campaign", args: { client: "a", as: "ca", name: "sched", candidate: "a", value: "a-1" } },
      { from: "a", event: { event: "elected", handle: "ca" }, withinMs: SOON_MS, save: { term: "t1" } },
      { from: "b", event: { event: "leader", handle: "watch", leader: "a", value: "a-1" }, withinMs: SOON_MS },
      { to: "b", op: "campaign", args: { client: "b", as: "cb", name: "sched", candidate: "b", value: "b-1" } },
      { to: "a", op: "proclaim", args: { handle: "ca", value: "a-2" } },
      { from: "b", event: { event: "leader", handle: "watch", leader: "a", value: "a-2" }, withinMs: SOON_MS },
      { to: "b", op: "getLeader", args: { client: "b", name: "sched", fresh: true }, expect: { leader: "a", value: "a-2" } },
      { to: "a", op: "resign", args: { handle: "ca" } },
      { from: "a", event: { event: "deposed", handle: "ca", reason: "resigned" }, withinMs: SOON_MS },
      { from: "b", event: { event: "elected", handle: "cb", term: { gt: "t1" } }, withinMs: SOON_MS },
      { from: "b", event: { event: "leader", handle: "watch", leader: "b", value: "b-1" }, withinMs: SOON_MS },
      { to: "b", op: "close", args: { handle: "cb" } },
    ],
  },
  {
    name: "frozen sidecar: the holder signals lost on its own deadline before a client of another sidecar is granted",
    sidecars: "shared",
    drivers: { a: 0, b: 1 },
    steps: [
      {
        to: "a",
        op: "lock",
        args: { client: "a", as: "held", name: "frozen", holder: "a", leaseDurationMs: LEASE_MS },
        save: { token: "t1" },
      },
      { to: "b", op: "lock", args: { client: "b", as: "next", name: "frozen", holder: "b", leaseDurationMs: LEASE_MS }, pending: "b-lock" },
      { sleepMs: 500 },
      { sidecar: 0, action: "freeze" },
      { from: "a", event: { event: "lost", handle: "held", reason: "heartbeat-timeout" }, withinMs: SOON_MS, at: "lost" },
      { reply: "b-lock", withinMs: SOON_MS, expect: { token: { gt: "t1" } }, at: "granted" },
      { order: ["lost", "granted"] },
      { sidecar: 0, action: "thaw" },
      { to: "b", op: "release", args: { handle: "next" } },
    ],
  },
  {
    name: "paused client holding a lock: on resume it gives the lock back",
    sidecars: "memory",
    drivers: { a: 0, b: 0 },
    steps: [
      {
        to: "a",
        op: "lock",
        args: { client: "a", as: "held", name: "paused", holder: "a", leaseDurationMs: LEASE_MS },
        save: { token: "t1" },
      },
      { to: "b", op: "lock", args: { client: "b", as: "next", name: "paused", holder: "b", leaseDurationMs: LEASE_MS }, pending: "b-lock" },
      { sleepMs: 300 },
      { pause: "a", forMs: PAST_DEADLINE_MS },
      { from: "a", event: { event: "lost", handle: "held", reason: "heartbeat-timeout" }, withinMs: SOON_MS },
      { reply: "b-lock", withinMs: SOON_MS, expect: { token: { gt: "t1" } } },
      { to: "b", op: "release", args: { handle: "next" } },
    ],
  },
  {
    name: "paused client leading: on resume it steps down and the next candidate is elected",
    sidecars: "memory",
    drivers: { a: 0, b: 0 },
    steps: [
      { to: "a", op: "campaign", args: { client: "a", as: "ca", name: "paused-lead", candidate: "a", leaseDurationMs: LEASE_MS } },
      { from: "a", event: { event: "elected", handle: "ca" }, withinMs: SOON_MS, save: { term: "t1" } },
      { to: "b", op: "campaign", args: { client: "b", as: "cb", name: "paused-lead", candidate: "b", leaseDurationMs: LEASE_MS } },
      { sleepMs: 300 },
      { pause: "a", forMs: PAST_DEADLINE_MS },
      { from: "a", event: { event: "deposed", handle: "ca", reason: "heartbeat-timeout" }, withinMs: SOON_MS },
      // Defect 1: a candidate that deposes itself but keeps its stream open keeps the old term renewed forever.
      { from: "b", event: { event: "elected", handle: "cb", term: { gt: "t1" } }, withinMs: SOON_MS },
      { to: "a", op: "close", args: { handle: "ca" } },
      { to: "b", op: "close", args: { handle: "cb" } },
    ],
  },
  {
    name: "restarted sidecar: the holder is told, and the same client locks again afterwards",
    sidecars: "shared",
    drivers: { a: 0 },
    steps: [
      {
        to: "a",
        op: "lock",
        args: { client: "a", as: "held", name: "restart", holder: "a", leaseDurationMs: LEASE_MS },
        save: { token: "t1" },
      },
      { sidecar: 0, action: "restart" },
      { from: "a", event: { event: "lost", handle: "held" }, withinMs: SOON_MS },
      {
        to: "a",
        op: "lock",
        args: { client: "a", as: "again", name: "restart", holder: "a", leaseDurationMs: LEASE_MS, waitTimeoutMs: 10_000 },
        expect: { token: { gt: "t1" } },
      },
      { to: "a", op: "release", args: { handle: "again" } },
    ],
  },
  {
    name: "bad input: INVALID_ARGUMENT naming the field",
    sidecars: "memory",
    drivers: { a: 0 },
    steps: [
      { to: "a", op: "lock", args: { client: "a", as: "x", name: "Not A Name" }, expectError: { code: "INVALID_ARGUMENT", field: "name" } },
      {
        to: "a",
        op: "tryLock",
        args: { client: "a", as: "y", name: "fine", leaseDurationMs: 1500 },
        expectError: { code: "INVALID_ARGUMENT", field: "lease_duration" },
      },
      { to: "a", op: "getLock", args: { client: "a", name: "" }, expectError: { code: "INVALID_ARGUMENT", field: "name" } },
      { to: "a", op: "getLeader", args: { client: "a", name: "UPPER" }, expectError: { code: "INVALID_ARGUMENT", field: "name" } },
    ],
  },
  {
    name: "token: the fencing token a client reports is the one the sidecar holds",
    sidecars: "shared",
    drivers: { a: 0, b: 1 },
    steps: [
      { to: "a", op: "lock", args: { client: "a", as: "held", name: "token-truth", holder: "a" }, save: { token: "t1" } },
      {
        to: "b",
        op: "getLock",
        args: { client: "b", name: "token-truth", fresh: true },
        expect: { held: true, holder: "a", token: { eq: "t1" } },
      },
      { to: "a", op: "release", args: { handle: "held" } },
      {
        to: "b",
        op: "tryLock",
        args: { client: "b", as: "leased", name: "token-truth", holder: "b" },
        expect: { acquired: true },
        save: { token: "t2" },
      },
      {
        to: "a",
        op: "getLock",
        args: { client: "a", name: "token-truth", fresh: true },
        expect: { held: true, holder: "b", token: { eq: "t2" } },
      },
      { to: "b", op: "release", args: { handle: "leased" } },
    ],
  },
  {
    name: "release is acknowledged: release does not return while the holder's sidecar is frozen, and the lock is free once it does",
    sidecars: "shared",
    drivers: { a: 0, b: 1, c: 1 },
    steps: [
      // A long lease: the holder's promise outlasts the freeze, so the only way for release to return early is not to wait.
      { to: "a", op: "lock", args: { client: "a", as: "held", name: "ack", holder: "a", leaseDurationMs: 15_000 }, save: { token: "t1" } },
      { to: "b", op: "lock", args: { client: "b", as: "waiting", name: "ack", holder: "b" }, pending: "b-lock" },
      { sleepMs: 300 },
      { sidecar: 0, action: "freeze" },
      { to: "a", op: "release", args: { handle: "held", timeoutMs: 10_000 }, pending: "released" },
      { notYet: "released", forMs: 2000 },
      { sidecar: 0, action: "thaw" },
      { reply: "released", withinMs: SOON_MS },
      { to: "c", op: "getLock", args: { client: "c", name: "ack", fresh: true }, expect: [{ held: false }, { held: true, holder: "b" }] },
      { reply: "b-lock", withinMs: SOON_MS, expect: { token: { gt: "t1" } } },
      { to: "b", op: "release", args: { handle: "waiting" } },
      { none: "a", event: { event: "lost" } },
    ],
  },
  {
    name: "wait timeout: a lock not had within its wait timeout fails with DEADLINE_EXCEEDED, on a frozen sidecar too",
    sidecars: "memory",
    drivers: { a: 0, b: 0 },
    steps: [
      // A long lease, so the holder keeps the lock through the freeze.
      { to: "a", op: "lock", args: { client: "a", as: "held", name: "wait-timeout", holder: "a", leaseDurationMs: 15_000 } },
      { to: "b", op: "lock", args: { client: "b", as: "w1", name: "wait-timeout", holder: "b", waitTimeoutMs: CALL_MS }, pending: "w1" },
      { reply: "w1", withinMs: BOUNDED_MS, expectError: { code: "DEADLINE_EXCEEDED" } },
      { sidecar: 0, action: "freeze" },
      { to: "b", op: "lock", args: { client: "b", as: "w2", name: "wait-timeout", holder: "b", waitTimeoutMs: CALL_MS }, pending: "w2" },
      { reply: "w2", withinMs: BOUNDED_MS, expectError: { code: "DEADLINE_EXCEEDED" } },
      { sidecar: 0, action: "thaw" },
      // The attempt that timed out left nothing behind: the holder still holds.
      { sleepMs: 1000 },
      { to: "b", op: "getLock", args: { client: "b", name: "wait-timeout", fresh: true }, expect: { held: true, holder: "a" } },
      { to: "a", op: "release", args: { handle: "held" } },
      { none: "a", event: { event: "lost" } },
    ],
  },
  {
    name: "frozen sidecar while leading: the leader is deposed on its own deadline before a candidate of another sidecar is elected",
    sidecars: "shared",
    drivers: { a: 0, b: 1 },
    steps: [
      { to: "a", op: "campaign", args: { client: "a", as: "ca", name: "frozen-lead", candidate: "a", leaseDurationMs: LEASE_MS } },
      { from: "a", event: { event: "elected", handle: "ca" }, withinMs: SOON_MS, save: { term: "t1" } },
      { to: "b", op: "campaign", args: { client: "b", as: "cb", name: "frozen-lead", candidate: "b", leaseDurationMs: LEASE_MS } },
      { from: "b", event: { event: "leader-changed", handle: "cb", leader: "a", term: { eq: "t1" } }, withinMs: SOON_MS },
      { sleepMs: 500 },
      { sidecar: 0, action: "freeze" },
      {
        from: "a",
        event: { event: "deposed", handle: "ca", term: { eq: "t1" }, reason: "heartbeat-timeout" },
        withinMs: SOON_MS,
        at: "deposed",
      },
      { from: "b", event: { event: "elected", handle: "cb", term: { gt: "t1" } }, withinMs: SOON_MS, at: "elected" },
      { order: ["deposed", "elected"] },
      { sidecar: 0, action: "thaw" },
      { to: "b", op: "close", args: { handle: "cb" } },
      { to: "a", op: "close", args: { handle: "ca" } },
    ],
  },
  {
    name: "resign while the sidecar is frozen: resign returns within its deadline and no elected is reported after it",
    sidecars: "shared",
    drivers: { a: 0, b: 1 },
    steps: [
      { to: "a", op: "campaign", args: { client: "a", as: "ca", name: "frozen-resign", candidate: "a", leaseDurationMs: LEASE_MS } },
      { from: "a", event: { event: "elected", handle: "ca" }, withinMs: SOON_MS, save: { term: "t1" } },
      { to: "b", op: "campaign", args: { client: "b", as: "cb", name: "frozen-resign", candidate: "b", leaseDurationMs: LEASE_MS } },
      { from: "b", event: { event: "leader-changed", handle: "cb", leader: "a" }, withinMs: SOON_MS },
      { sidecar: 0, action: "freeze" },
      { mark: "resigning" },
      { to: "a", op: "resign", args: { handle: "ca", timeoutMs: CALL_MS }, pending: "resign" },
      { reply: "resign", withinMs: BOUNDED_MS, eitherOutcome: true },
      { from: "b", event: { event: "elected", handle: "cb", term: { gt: "t1" } }, withinMs: SOON_MS, save: { term: "t2" } },
      { sidecar: 0, action: "thaw" },
      { from: "a", event: { event: "deposed", handle: "ca", term: { eq: "t1" } }, withinMs: SOON_MS },
      // Whatever the sidecar made of the Resign it got late, a candidate still in the election would now be elected.
      { sleepMs: 2000 },
      { to: "b", op: "close", args: { handle: "cb" } },
      { sleepMs: PAST_DEADLINE_MS },
      { none: "a", event: { event: "elected" }, since: "resigning" },
      { from: "a", event: { event: "campaign-ended", handle: "ca" }, withinMs: SOON_MS },
    ],
  },
  {
    name: "every call is bounded on a frozen sidecar: each returns within its deadline, and an observation notices",
    sidecars: "memory",
    drivers: { a: 0, b: 0 },
    steps: [
      { to: "a", op: "lock", args: { client: "a", as: "held", name: "bounded-lock", holder: "a", leaseDurationMs: 15_000 } },
      {
        to: "a",
        op: "tryLock",
        args: { client: "a", as: "leased", name: "bounded-lease", holder: "a", leaseDurationMs: 15_000 },
        expect: { acquired: true },
      },
      { to: "a", op: "campaign", args: { client: "a", as: "ca", name: "bounded-election", candidate: "a", leaseDurationMs: 15_000 } },
      { from: "a", event: { event: "elected", handle: "ca" }, withinMs: SOON_MS },
      { to: "b", op: "observe", args: { client: "b", as: "watch", name: "bounded-election" } },
      { from: "b", event: { event: "leader", handle: "watch", leader: "a" }, withinMs: SOON_MS },
      { sidecar: 0, action: "freeze" },
      {
        to: "a",
        op: "tryLock",
        args: { client: "a", as: "other", name: "bounded-other", holder: "a", timeoutMs: QUICK_CALL_MS },
        pending: "tryLock",
      },
      { reply: "tryLock", withinMs: BOUNDED_MS, expectError: { code: "DEADLINE_EXCEEDED" } },
      { to: "a", op: "renew", args: { handle: "leased", timeoutMs: QUICK_CALL_MS }, pending: "renew" },
      { reply: "renew", withinMs: BOUNDED_MS, expectError: { code: "DEADLINE_EXCEEDED" } },
      { to: "a", op: "getLock", args: { client: "a", name: "bounded-lock", timeoutMs: QUICK_CALL_MS }, pending: "getLock" },
      { reply: "getLock", withinMs: BOUNDED_MS, expectError: { code: "DEADLINE_EXCEEDED" } },
      { to: "a", op: "getLeader", args: { client: "a", name: "bounded-election", timeoutMs: QUICK_CALL_MS }, pending: "getLeader" },
      { reply: "getLeader", withinMs: BOUNDED_MS, expectError: { code: "DEADLINE_EXCEEDED" } },
      { to: "a", op: "proclaim", args: { handle: "ca", value: "v2", timeoutMs: QUICK_CALL_MS }, pending: "proclaim" },
      { reply: "proclaim", withinMs: BOUNDED_MS, expectError: { code: "DEADLINE_EXCEEDED" } },
      {
        to: "b",
        op: "lock",
        args: { client: "b", as: "blocked", name: "bounded-lock", holder: "b", timeoutMs: QUICK_CALL_MS },
        pending: "lock",
      },
      { reply: "lock", withinMs: BOUNDED_MS, expectError: { code: "DEADLINE_EXCEEDED" } },
      { to: "a", op: "release", args: { handle: "leased", timeoutMs: QUICK_CALL_MS }, pending: "release-lease" },
      { reply: "release-lease", withinMs: BOUNDED_MS, expectError: { code: "DEADLINE_EXCEEDED" } },
      { to: "a", op: "release", args: { handle: "held", timeoutMs: QUICK_CALL_MS }, pending: "release-lock" },
      { reply: "release-lock", withinMs: BOUNDED_MS, eitherOutcome: true },
      { to: "a", op: "resign", args: { handle: "ca", timeoutMs: QUICK_CALL_MS }, pending: "resign" },
      { reply: "resign", withinMs: BOUNDED_MS, eitherOutcome: true },
      { from: "b", event: { event: "observe-ended", handle: "watch" }, withinMs: KEEPALIVE_NOTICE_MS },
      { sidecar: 0, action: "thaw" },
    ],
  },
  {
    name: "election events: leader-changed, deposed, campaign-ended and observe-ended are reported when the sidecar restarts",
    sidecars: "memory",
    drivers: { a: 0, b: 0 },
    steps: [
      { to: "b", op: "observe", args: { client: "b", as: "watch", name: "events" } },
      { to: "a", op: "campaign", args: { client: "a", as: "ca", name: "events", candidate: "a", value: "a-1" } },
      { from: "a", event: { event: "elected", handle: "ca" }, withinMs: SOON_MS, save: { term: "t1" } },
      { to: "b", op: "campaign", args: { client: "b", as: "cb", name: "events", candidate: "b" } },
      { from: "b", event: { event: "leader-changed", handle: "cb", leader: "a", value: "a-1", term: { eq: "t1" } }, withinMs: SOON_MS },
      { from: "b", event: { event: "leader", handle: "watch", leader: "a", value: "a-1", term: { eq: "t1" } }, withinMs: SOON_MS },
      { sidecar: 0, action: "restart" },
      { from: "a", event: { event: "deposed", handle: "ca", term: { eq: "t1" }, reason: "shutdown" }, withinMs: SOON_MS },
      { from: "a", event: { event: "campaign-ended", handle: "ca" }, withinMs: SOON_MS },
      { from: "b", event: { event: "campaign-ended", handle: "cb" }, withinMs: SOON_MS },
      { from: "b", event: { event: "observe-ended", handle: "watch" }, withinMs: SOON_MS },
    ],
  },
  {
    name: "shutdown acknowledged: told lost or deposed by a sidecar shutting down, the client closes its stream so the lock and the leadership pass on at once",
    sidecars: "shared",
    drivers: { a: 0, b: 1, c: 1 },
    steps: [
      // Long leases: unless the client closes its streams when told, the sidecar keeps the leases through its
      // 3 s shutdown timeout and then leaves them to run out (docs/design.md 3.7), long after SOON_MS.
      {
        to: "a",
        op: "lock",
        args: { client: "a", as: "held", name: "ack-shutdown", holder: "a", leaseDurationMs: 60_000 },
        save: { token: "t1" },
      },
      { to: "a", op: "campaign", args: { client: "a", as: "ca", name: "ack-shutdown", candidate: "a", leaseDurationMs: 60_000 } },
      { from: "a", event: { event: "elected", handle: "ca" }, withinMs: SOON_MS, save: { term: "e1" } },
      { to: "b", op: "lock", args: { client: "b", as: "next", name: "ack-shutdown", holder: "b" }, pending: "b-lock" },
      { to: "c", op: "campaign", args: { client: "c", as: "cc", name: "ack-shutdown", candidate: "c" } },
      { from: "c", event: { event: "leader-changed", handle: "cc", leader: "a" }, withinMs: SOON_MS },
      { sidecar: 0, action: "restart" },
      { from: "a", event: { event: "lost", handle: "held", reason: "shutdown" }, withinMs: SOON_MS },
      { from: "a", event: { event: "deposed", handle: "ca", term: { eq: "e1" }, reason: "shutdown" }, withinMs: SOON_MS },
      { reply: "b-lock", withinMs: SOON_MS, expect: { token: { gt: "t1" } } },
      { from: "c", event: { event: "elected", handle: "cc", term: { gt: "e1" } }, withinMs: SOON_MS },
      { to: "b", op: "release", args: { handle: "next" } },
      { to: "c", op: "close", args: { handle: "cc" } },
    ],
  },
  {
    name: "semaphore: two holders of N=2 at once, a third on another sidecar waits and is granted the permit one gives back; tokens increase",
    sidecars: "shared",
    drivers: { a: 0, b: 1, c: 1 },
    steps: [
      {
        to: "a",
        op: "acquirePermit",
        args: { client: "a", as: "pa", name: "pool", permits: 2, holder: "a" },
        expect: { holder: "a", permits: 2 },
        save: { token: "t1" },
      },
      {
        to: "b",
        op: "acquirePermit",
        args: { client: "b", as: "pb", name: "pool", permits: 2, holder: "b" },
        expect: { holder: "b", permits: 2, token: { gt: "t1" } },
        save: { token: "t2" },
      },
      { to: "c", op: "acquirePermit", args: { client: "c", as: "pc", name: "pool", permits: 2, holder: "c" }, pending: "c-permit" },
      // Both permits are held: the third waits.
      { notYet: "c-permit", forMs: 500 },
      {
        to: "b",
        op: "getSemaphore",
        args: { client: "b", name: "pool", fresh: true },
        // A hold through another sidecar shows token 0 (a seat records only how many permits it holds).
        expect: { permits: 2, token: { eq: "t2" }, holders: { anyOrder: [{ holder: "a" }, { holder: "b", token: { eq: "t2" } }] } },
      },
      { to: "a", op: "release", args: { handle: "pa" } },
      // A release that returns before the sidecar gave the permit back leaves a still listed here.
      {
        to: "b",
        op: "getSemaphore",
        args: { client: "b", name: "pool", fresh: true },
        expect: [{ holders: { anyOrder: [{ holder: "b" }] } }, { holders: { anyOrder: [{ holder: "b" }, { holder: "c" }] } }],
      },
      { reply: "c-permit", withinMs: SOON_MS, expect: { holder: "c", permits: 2, token: { gt: "t2" } }, save: { token: "t3" } },
      { to: "c", op: "release", args: { handle: "pc" } },
      { to: "b", op: "release", args: { handle: "pb" } },
      {
        to: "b",
        op: "getSemaphore",
        args: { client: "b", name: "pool", fresh: true },
        expect: { permits: 2, token: { eq: "t3" }, holders: { anyOrder: [] } },
      },
      { none: ["a", "b", "c"], event: { event: "lost" } },
    ],
  },
  {
    name: "semaphore on a frozen sidecar: the permit holder signals lost on its own deadline before a client of another sidecar is granted",
    sidecars: "shared",
    drivers: { a: 0, b: 1 },
    steps: [
      {
        to: "a",
        op: "acquirePermit",
        args: { client: "a", as: "held", name: "frozen-pool", permits: 2, holder: "a", leaseDurationMs: LEASE_MS },
        save: { token: "t1" },
      },
      {
        to: "b",
        op: "acquirePermit",
        args: { client: "b", as: "other", name: "frozen-pool", permits: 2, holder: "b", leaseDurationMs: LEASE_MS },
        save: { token: "t2" },
      },
      {
        to: "b",
        op: "acquirePermit",
        args: { client: "b", as: "next", name: "frozen-pool", permits: 2, holder: "b-next", leaseDurationMs: LEASE_MS },
        pending: "b-permit",
      },
      { sleepMs: 500 },
      { sidecar: 0, action: "freeze" },
      { from: "a", event: { event: "lost", handle: "held", reason: "heartbeat-timeout" }, withinMs: SOON_MS, at: "lost" },
      { reply: "b-permit", withinMs: SOON_MS, expect: { token: { gt: "t2" } }, at: "granted" },
      { order: ["lost", "granted"] },
      { sidecar: 0, action: "thaw" },
      { to: "b", op: "release", args: { handle: "next" } },
      { to: "b", op: "release", args: { handle: "other" } },
    ],
  },
  {
    name: "semaphore calls are bounded on a frozen sidecar: each returns within its deadline, and a permit's release waits for the sidecar",
    sidecars: "memory",
    drivers: { a: 0, b: 0 },
    steps: [
      {
        to: "a",
        op: "acquirePermit",
        args: { client: "a", as: "held", name: "bounded-pool", permits: 2, holder: "a", leaseDurationMs: LONG_LEASE_MS },
      },
      {
        to: "a",
        op: "tryAcquirePermit",
        args: { client: "a", as: "leased", name: "bounded-pool", permits: 2, holder: "a", leaseDurationMs: LONG_LEASE_MS },
        expect: { acquired: true },
      },
      { sidecar: 0, action: "freeze" },
      {
        to: "b",
        op: "acquirePermit",
        args: { client: "b", as: "blocked", name: "bounded-pool", permits: 2, holder: "b", timeoutMs: PERMIT_CALL_MS },
        pending: "acquire",
      },
      { reply: "acquire", withinMs: BOUNDED_MS, expectError: { code: "DEADLINE_EXCEEDED" } },
      {
        to: "b",
        op: "acquirePermit",
        args: { client: "b", as: "waited", name: "bounded-pool", permits: 2, holder: "b", waitTimeoutMs: PERMIT_CALL_MS },
        pending: "wait",
      },
      // The sidecar cannot say the wait timed out: the wrapper's own clock does.
      { reply: "wait", withinMs: BOUNDED_MS, expectError: { code: "DEADLINE_EXCEEDED", kind: "wait-timeout" } },
      // The permit's promise outlasts this deadline, so a release that may return only once the sidecar has the permit back cannot succeed.
      { to: "a", op: "release", args: { handle: "held", timeoutMs: PERMIT_CALL_MS }, pending: "release-held" },
      { reply: "release-held", withinMs: BOUNDED_MS, expectError: { code: "DEADLINE_EXCEEDED" } },
      { to: "a", op: "renew", args: { handle: "leased", timeoutMs: PERMIT_CALL_MS }, pending: "renew" },
      { reply: "renew", withinMs: BOUNDED_MS, expectError: { code: "DEADLINE_EXCEEDED" } },
      {
        to: "a",
        op: "tryAcquirePermit",
        args: { client: "a", as: "other", name: "bounded-pool", permits: 2, holder: "a", timeoutMs: PERMIT_CALL_MS },
        pending: "tryAcquire",
      },
      { reply: "tryAcquire", withinMs: BOUNDED_MS, expectError: { code: "DEADLINE_EXCEEDED" } },
      { to: "a", op: "getSemaphore", args: { client: "a", name: "bounded-pool", timeoutMs: PERMIT_CALL_MS }, pending: "get" },
      { reply: "get", withinMs: BOUNDED_MS, expectError: { code: "DEADLINE_EXCEEDED" } },
      { to: "a", op: "release", args: { handle: "leased", timeoutMs: PERMIT_CALL_MS }, pending: "release-leased" },
      { reply: "release-leased", withinMs: BOUNDED_MS, expectError: { code: "DEADLINE_EXCEEDED" } },
      { sidecar: 0, action: "thaw" },
    ],
  },
  {
    name: "semaphore bad input: another N fails with PERMITS_MISMATCH naming permits, a bad N or name with INVALID_ARGUMENT, and nothing changes",
    sidecars: "memory",
    drivers: { a: 0, b: 0 },
    steps: [
      {
        to: "a",
        op: "acquirePermit",
        args: { client: "a", as: "held", name: "mismatch", permits: 2, holder: "a" },
        expect: { permits: 2 },
        save: { token: "t1" },
      },
      {
        to: "b",
        op: "tryAcquirePermit",
        args: { client: "b", as: "x", name: "mismatch", permits: 3, holder: "b" },
        expectError: { code: "FAILED_PRECONDITION", field: "permits", kind: "permits-mismatch" },
      },
      {
        to: "b",
        op: "acquirePermit",
        args: { client: "b", as: "y", name: "mismatch", permits: 1, holder: "b" },
        expectError: { code: "FAILED_PRECONDITION", field: "permits", kind: "permits-mismatch" },
      },
      {
        to: "b",
        op: "tryAcquirePermit",
        args: { client: "b", as: "z", name: "mismatch", permits: 0, holder: "b" },
        expectError: { code: "INVALID_ARGUMENT", field: "permits" },
      },
      {
        to: "b",
        op: "acquirePermit",
        args: { client: "b", as: "w", name: "mismatch", permits: 33, holder: "b" },
        expectError: { code: "INVALID_ARGUMENT", field: "permits" },
      },
      { to: "b", op: "getSemaphore", args: { client: "b", name: "Not A Name" }, expectError: { code: "INVALID_ARGUMENT", field: "name" } },
      // Nothing was written: the one holder and the last token are as before.
      {
        to: "b",
        op: "getSemaphore",
        args: { client: "b", name: "mismatch", fresh: true },
        expect: { permits: 2, token: { eq: "t1" }, holders: { anyOrder: [{ holder: "a", token: { eq: "t1" } }] } },
      },
      { to: "a", op: "release", args: { handle: "held" } },
    ],
  },
  {
    name: "semaphore try-acquire: refused with its holders listed when none is free; renew and release go by hold, and a released hold is NOT_HELD",
    sidecars: "memory",
    drivers: { a: 0, b: 0 },
    steps: [
      // Two holds of one holder name: only their hold tells them apart.
      {
        to: "a",
        op: "tryAcquirePermit",
        args: { client: "a", as: "p1", name: "leased-pool", permits: 2, holder: "a" },
        expect: { acquired: true, permits: 2 },
        save: { token: "t1" },
      },
      {
        to: "a",
        op: "tryAcquirePermit",
        args: { client: "a", as: "p2", name: "leased-pool", permits: 2, holder: "a" },
        expect: { acquired: true, permits: 2, token: { gt: "t1" } },
        save: { token: "t2" },
      },
      {
        to: "b",
        op: "tryAcquirePermit",
        args: { client: "b", as: "q", name: "leased-pool", permits: 2, holder: "b" },
        expect: {
          acquired: false,
          holders: {
            anyOrder: [
              { holder: "a", token: { eq: "t1" } },
              { holder: "a", token: { eq: "t2" } },
            ],
          },
        },
      },
      { to: "a", op: "renew", args: { handle: "p1" } },
      { to: "a", op: "release", args: { handle: "p1" } },
      {
        to: "b",
        op: "getSemaphore",
        args: { client: "b", name: "leased-pool", fresh: true },
        expect: { permits: 2, token: { eq: "t2" }, holders: { anyOrder: [{ holder: "a", token: { eq: "t2" } }] } },
      },
      { to: "a", op: "renew", args: { handle: "p1" }, expectError: { code: "FAILED_PRECONDITION", kind: "not-held" } },
      { to: "a", op: "release", args: { handle: "p1" }, expectError: { code: "FAILED_PRECONDITION", kind: "not-held" } },
      { to: "a", op: "renew", args: { handle: "p2" } },
      {
        to: "b",
        op: "tryAcquirePermit",
        args: { client: "b", as: "q", name: "leased-pool", permits: 2, holder: "b" },
        expect: { acquired: true, token: { gt: "t2" } },
      },
      { to: "a", op: "release", args: { handle: "p2" } },
      { to: "b", op: "release", args: { handle: "q" } },
    ],
  },
  {
    name: "rwlock: readers on two sidecars share the lock, a writer waits for both and holds alone with a greater token, which a later reader reports",
    sidecars: "shared",
    drivers: { a: 0, b: 1, c: 1 },
    steps: [
      // No writer yet: a shared hold reports token 0.
      {
        to: "a",
        op: "acquireRW",
        args: { client: "a", as: "ra", name: "catalog", mode: "shared", holder: "ra" },
        expect: { holder: "ra", mode: "shared", token: 0 },
      },
      {
        to: "b",
        op: "acquireRW",
        args: { client: "b", as: "rb", name: "catalog", mode: "shared", holder: "rb" },
        expect: { holder: "rb", mode: "shared", token: 0 },
      },
      { to: "c", op: "acquireRW", args: { client: "c", as: "w", name: "catalog", mode: "exclusive", holder: "w" }, pending: "writer" },
      // Two readers hold: the writer waits.
      { notYet: "writer", forMs: 500 },
      {
        to: "a",
        op: "getRWLock",
        args: { client: "a", name: "catalog", fresh: true },
        expect: { mode: "shared", readers: 2, holder: "", token: 0 },
      },
      { to: "a", op: "release", args: { handle: "ra" } },
      { notYet: "writer", forMs: 300 },
      { to: "b", op: "release", args: { handle: "rb" } },
      { reply: "writer", withinMs: SOON_MS, expect: { holder: "w", mode: "exclusive", token: { gt: "zero" } }, save: { token: "t1" } },
      {
        to: "a",
        op: "getRWLock",
        args: { client: "a", name: "catalog", fresh: true },
        expect: { mode: "exclusive", holder: "w", token: { eq: "t1" }, readers: 0 },
      },
      { to: "a", op: "acquireRW", args: { client: "a", as: "late", name: "catalog", mode: "shared", holder: "late" }, pending: "late" },
      { notYet: "late", forMs: 500 },
      { to: "c", op: "release", args: { handle: "w" } },
      { reply: "late", withinMs: SOON_MS, expect: { holder: "late", mode: "shared", token: { eq: "t1" } } },
      {
        to: "c",
        op: "acquireRW",
        args: { client: "c", as: "w2", name: "catalog", mode: "exclusive", holder: "w2" },
        pending: "writer2",
      },
      { to: "a", op: "release", args: { handle: "late" } },
      { reply: "writer2", withinMs: SOON_MS, expect: { mode: "exclusive", token: { gt: "t1" } } },
      { to: "c", op: "release", args: { handle: "w2" } },
      { none: ["a", "b", "c"], event: { event: "lost" } },
    ],
  },
  {
    name: "rwlock on a frozen sidecar: the reader signals lost on its own deadline before a writer of another sidecar is granted, and calls there are bounded",
    sidecars: "shared",
    drivers: { a: 0, b: 1 },
    steps: [
      {
        to: "a",
        op: "acquireRW",
        args: { client: "a", as: "held", name: "frozen-rw", mode: "shared", holder: "a", leaseDurationMs: LEASE_MS },
      },
      {
        to: "b",
        op: "acquireRW",
        args: { client: "b", as: "writer", name: "frozen-rw", mode: "exclusive", holder: "b", leaseDurationMs: LEASE_MS },
        pending: "b-writer",
      },
      { sleepMs: 500 },
      { sidecar: 0, action: "freeze" },
      {
        to: "a",
        op: "acquireRW",
        args: { client: "a", as: "blocked", name: "frozen-rw", mode: "shared", holder: "a2", timeoutMs: PERMIT_CALL_MS },
        pending: "acquire",
      },
      { reply: "acquire", withinMs: BOUNDED_MS, expectError: { code: "DEADLINE_EXCEEDED" } },
      {
        to: "a",
        op: "tryAcquireRW",
        args: { client: "a", as: "try", name: "frozen-rw", mode: "shared", holder: "a3", timeoutMs: PERMIT_CALL_MS },
        pending: "try",
      },
      { reply: "try", withinMs: BOUNDED_MS, expectError: { code: "DEADLINE_EXCEEDED" } },
      { to: "a", op: "getRWLock", args: { client: "a", name: "frozen-rw", timeoutMs: PERMIT_CALL_MS }, pending: "get" },
      { reply: "get", withinMs: BOUNDED_MS, expectError: { code: "DEADLINE_EXCEEDED" } },
      { from: "a", event: { event: "lost", handle: "held", reason: "heartbeat-timeout" }, withinMs: SOON_MS, at: "lost" },
      { reply: "b-writer", withinMs: SOON_MS, expect: { mode: "exclusive" }, at: "granted" },
      { order: ["lost", "granted"] },
      { sidecar: 0, action: "thaw" },
      { to: "b", op: "release", args: { handle: "writer" } },
    ],
  },
  {
    name: "rwlock try-acquire: refused with the lock's mode while a writer holds; a shared hold renewed and released by its hold, then NOT_HELD; a bad name is INVALID_ARGUMENT",
    sidecars: "memory",
    drivers: { a: 0, b: 0 },
    steps: [
      {
        to: "a",
        op: "tryAcquireRW",
        args: { client: "a", as: "w", name: "leased-rw", mode: "exclusive", holder: "a" },
        expect: { acquired: true, mode: "exclusive", token: { gt: "zero" } },
        save: { token: "t1" },
      },
      {
        to: "b",
        op: "tryAcquireRW",
        args: { client: "b", as: "r", name: "leased-rw", mode: "shared", holder: "b" },
        expect: { acquired: false, mode: "exclusive" },
      },
      { to: "a", op: "release", args: { handle: "w" } },
      {
        to: "b",
        op: "tryAcquireRW",
        args: { client: "b", as: "r1", name: "leased-rw", mode: "shared", holder: "b" },
        expect: { acquired: true, mode: "shared", token: { eq: "t1" } },
      },
      {
        to: "b",
        op: "tryAcquireRW",
        args: { client: "b", as: "r2", name: "leased-rw", mode: "shared", holder: "b" },
        expect: { acquired: true, mode: "shared", token: { eq: "t1" } },
      },
      {
        to: "a",
        op: "tryAcquireRW",
        args: { client: "a", as: "w2", name: "leased-rw", mode: "exclusive", holder: "a" },
        expect: { acquired: false, mode: "shared" },
      },
      { to: "b", op: "renew", args: { handle: "r1" } },
      { to: "b", op: "release", args: { handle: "r1" } },
      {
        to: "a",
        op: "getRWLock",
        args: { client: "a", name: "leased-rw", fresh: true },
        expect: { mode: "shared", readers: 1, token: { eq: "t1" } },
      },
      { to: "b", op: "renew", args: { handle: "r1" }, expectError: { code: "FAILED_PRECONDITION", kind: "not-held" } },
      { to: "b", op: "release", args: { handle: "r1" }, expectError: { code: "FAILED_PRECONDITION", kind: "not-held" } },
      { to: "b", op: "renew", args: { handle: "r2" } },
      { to: "b", op: "release", args: { handle: "r2" } },
      {
        to: "a",
        op: "acquireRW",
        args: { client: "a", as: "bad", name: "Not A Name", mode: "shared" },
        expectError: { code: "INVALID_ARGUMENT", field: "name" },
      },
      {
        to: "a",
        op: "tryAcquireRW",
        args: { client: "a", as: "w3", name: "leased-rw", mode: "exclusive", holder: "a" },
        expect: { acquired: true, token: { gt: "t1" } },
      },
      { to: "a", op: "release", args: { handle: "w3" } },
    ],
  },
];
