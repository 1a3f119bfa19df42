// Bad input, fuzzed and at the boundaries, against a daemon on the Kubernetes
// backend (docs/design.md 3.8): every RPC gets the documented status (INVALID_ARGUMENT
// naming the field, FAILED_PRECONDITION for tokens and terms that are not
// held, DEADLINE_EXCEEDED when a wait runs out), garbage and truncated HTTP/2
// on the gRPC port crash nothing, and a lock and a leadership held by another
// client throughout stay held with the same token, with no Lost or Deposed.
// Every random choice comes from one seeded PRNG; the seed is printed.
//
// The expected status of each request comes from an oracle written from the
// proto's and validate.ts's documented rules, not from the daemon's code.
import { type ClientReadableStream, credentials, Metadata, status } from "@grpc/grpc-js";
import * as net from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { type Campaign, type Lock, SyncClient, SyncClientError } from "metaparticle-sync-client";
import type { Duration } from "metaparticle-sync-client/gen/google/protobuf/duration";
import { ElectionServiceClient } from "metaparticle-sync-client/gen/metaparticle/sync/v1/election_service";
import { LockServiceClient } from "metaparticle-sync-client/gen/metaparticle/sync/v1/lock_service";
import type { ReadConsistency } from "metaparticle-sync-client/gen/metaparticle/sync/v1/types";
import type { ControlPlane } from "../controlplane/controlplane.js";
import { type DaemonProcess, spawnDaemon } from "../support/daemon-process.js";
import { type Random, seededRandom } from "./prng.js";

export interface FuzzOptions {
  readonly seed: number;
  /** Every name length 0..300 and more of everything; otherwise a bounded sample for CI. */
  readonly full: boolean;
}

export interface FuzzResult {
  readonly seed: number;
  readonly full: boolean;
  readonly durationMs: number;
  /** Requests made, by RPC. */
  readonly calls: Record<string, number>;
  /** Outcomes, by status name. */
  readonly statuses: Record<string, number>;
  /** Requests whose status differed from the documented one. */
  readonly mismatches: string[];
  /** Raw connections to the gRPC port, by kind of garbage. */
  readonly sockets: Record<string, number>;
  readonly socketBytes: number;
  /** Problems with what was held throughout, or with the daemons' health. */
  readonly problems: string[];
}

/** What a call came back with: 0 for OK. */
interface Outcome {
  readonly code: number;
  readonly field?: string;
  readonly message: string;
}

/** The documented status: OK, or a code, with the field for INVALID_ARGUMENT. */
type Expected = { readonly code: 0 } | { readonly code: number; readonly field?: string } | { readonly anyOf: readonly number[] };

const LEASE_PREFIX = "msync-";
const MAX_LEASE_NAME = 253;
const DNS1123 = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const OK: Expected = { code: 0 };
const invalid = (field: string): Expected => ({ code: status.INVALID_ARGUMENT, field });
const notHeld: Expected = { code: status.FAILED_PRECONDITION };

/** The name rule of the proto: a DNS-1123 subdomain that fits with the Lease name prefix. */
export function nameIsValid(name: string, kind: "lock" | "election"): boolean {
  return name !== "" && DNS1123.test(name) && `${LEASE_PREFIX}${kind}-${name}`.length <= MAX_LEASE_NAME;
}

/** The duration rules: well-formed (nanos within ±999,999,999 and of the same sign as seconds), not negative. */
function durationMsOf(d: Duration): number | undefined {
  if (!Number.isSafeInteger(d.seconds) || !Number.isInteger(d.nanos) || Math.abs(d.nanos) > 999_999_999) return undefined;
  if ((d.seconds > 0 && d.nanos < 0) || (d.seconds < 0 && d.nanos > 0) || d.seconds < 0 || d.nanos < 0) return undefined;
  return d.seconds * 1000 + d.nanos / 1e6;
}

/** lease_duration: whole seconds from 1 s to 3600 s. */
export function leaseIsValid(d: Duration): boolean {
  const ms = durationMsOf(d);
  return ms !== undefined && ms >= 1000 && ms <= 3_600_000 && ms % 1000 === 0;
}

/** wait_timeout: from 0 to 24 hours. */
export function waitIsValid(d: Duration): boolean {
  const ms = durationMsOf(d);
  return ms !== undefined && ms <= 24 * 3_600_000;
}

/** holder and candidate: 1 to 253 printable characters. */
export function holderIsValid(holder: string): boolean {
  // eslint-disable-next-line no-control-regex
  return holder !== "" && [...holder].length <= 253 && !/[\u0000-\u001f\u007f]/.test(holder);
}

/** value: at most 4096 bytes of UTF-8. */
export function valueIsValid(value: string): boolean {
  return Buffer.byteLength(value, "utf8") <= 4096;
}

// ---- generators -------------------------------------------------------------

const ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789";
const UNICODE = ["é", "ß", "日", "🙂", "\u200b", "ı", "Ａ", "\u00a0"];
const OTHER_ASCII = ["_", " ", "/", ":", "@", "*", "%", "+", "~", "\\"];

/** A name of exactly `length` UTF-16 units in one character class; each class says whether it is meant to be valid. */
export const NAME_CLASSES: Record<string, (rng: Random, length: number) => string> = {
  lower: (rng, n) => alnum(rng, n),
  digits: (rng, n) => Array.from({ length: n }, () => String(rng.int(0, 9))).join(""),
  "inner-dashes": (rng, n) => sprinkle(rng, alnum(rng, n), "-"),
  dotted: (rng, n) => sprinkle(rng, alnum(rng, n), "."),
  "dash-at-edge": (rng, n) => (n === 0 ? "" : rng.bool() ? `-${alnum(rng, n - 1)}` : `${alnum(rng, n - 1)}-`),
  "dot-at-edge": (rng, n) => (n === 0 ? "" : rng.bool() ? `.${alnum(rng, n - 1)}` : `${alnum(rng, n - 1)}.`),
  "dash-next-to-dot": (rng, n) => (n < 3 ? alnum(rng, n) + "-".repeat(0) : replaceAt(rng, alnum(rng, n), rng.bool() ? ".-" : "-.")),
  "double-dot": (rng, n) => (n < 3 ? alnum(rng, n) : replaceAt(rng, alnum(rng, n), "..")),
  uppercase: (rng, n) => (n === 0 ? "" : replaceAt(rng, alnum(rng, n), String.fromCharCode(65 + rng.int(0, 25)))),
  unicode: (rng, n) => (n === 0 ? "" : replaceAt(rng, alnum(rng, n), rng.pick(UNICODE)).slice(0, Math.max(n, 1))),
  "other-ascii": (rng, n) => (n === 0 ? "" : replaceAt(rng, alnum(rng, n), rng.pick(OTHER_ASCII))),
};

function alnum(rng: Random, n: number): string {
  return Array.from({ length: n }, () => ALNUM[rng.int(0, ALNUM.length - 1)]).join("");
}

/** Puts `c` at a few inner positions, never first or last, never two in a row. */
function sprinkle(rng: Random, s: string, c: string): string {
  const chars = [...s];
  for (let i = 1; i < chars.length - 1; i++) if (rng.bool(0.15) && chars[i - 1] !== c) chars[i] = c;
  return chars.join("");
}

/** Overwrites a random inner stretch of `s` with `insert` (same length, as far as UTF-16 goes). */
function replaceAt(rng: Random, s: string, insert: string): string {
  if (s.length <= insert.length) return insert.slice(0, Math.max(s.length, 1));
  const at = rng.int(0, s.length - insert.length);
  return s.slice(0, at) + insert + s.slice(at + insert.length);
}

/** Boundary and random durations. Seconds stay within ±(2^53 - 1): larger ones are the beyond-2^53 test's. */
export function durations(rng: Random, full: boolean): Duration[] {
  const fixed: Array<[number, number]> = [
    [0, 0],
    [1, 0],
    [-1, 0],
    [0, -1],
    [1, -1],
    [-1, 1],
    [0, 999_999_999],
    [0, 1_000_000_000],
    [1, 999_999_999],
    [0, 500_000_000],
    [1, 500_000_000],
    [1, 1],
    [2, 0],
    [15, 0],
    [3599, 0],
    [3600, 0],
    [3600, 1],
    [3601, 0],
    [86_399, 999_999_999],
    [86_400, 0],
    [86_400, 1],
    [86_401, 0],
    [1e9, 0],
    [Number.MAX_SAFE_INTEGER, 0],
    [-Number.MAX_SAFE_INTEGER, 0],
    [0, 2_147_483_647],
    [0, -2_147_483_648],
    [5, 2_147_483_647],
  ];
  const random = Array.from({ length: full ? 60 : 12 }, (): [number, number] => {
    const scale = rng.pick([1, 10, 3600, 86_400, 1e6, 1e12, Number.MAX_SAFE_INTEGER]);
    const seconds = Math.round((rng.next() * 2 - 0.3) * scale);
    const nanos = rng.pick([0, 0, 0, 1, -1, rng.int(0, 999_999_999), rng.int(-999_999_999, 0), rng.int(1_000_000_000, 2_147_483_647)]);
    return [Math.max(-Number.MAX_SAFE_INTEGER, Math.min(Number.MAX_SAFE_INTEGER, seconds)), nanos];
  });
  return [...fixed, ...random].map(([seconds, nanos]) => ({ seconds, nanos }));
}

// ---- calls -----------------------------------------------------------------

class Caller {
  readonly calls: Record<string, number> = {};
  readonly statuses: Record<string, number> = {};
  readonly mismatches: string[] = [];

  locks: LockServiceClient;
  elections: ElectionServiceClient;
  private streams = 0;

  constructor(private readonly address: string) {
    [this.locks, this.elections] = this.connect();
  }

  /**
   * Its own connection (a local subchannel pool), replaced every 400 streams:
   * Node's HTTP/2 server closes a connection on which the client cancelled
   * about a thousand streams in quick succession (stream-churn.test.ts shows
   * it), which is not what this test is about.
   */
  private connect(): [LockServiceClient, ElectionServiceClient] {
    const locks = new LockServiceClient(this.address, credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 });
    return [locks, new ElectionServiceClient(this.address, credentials.createInsecure(), { channelOverride: locks.getChannel() })];
  }

  close(): void {
    this.locks.close();
    this.elections.close();
  }

  /** Makes a unary call and returns its outcome. */
  unary<Req>(rpc: string, call: (req: Req, cb: (err: Error | null) => void) => unknown, request: Req): Promise<Outcome> {
    this.calls[rpc] = (this.calls[rpc] ?? 0) + 1;
    return new Promise((resolve) =>
      call(request, (err) => {
        if (err === null) return resolve({ code: 0, message: "OK" });
        const e = SyncClientError.from(err);
        resolve({ code: e.code, field: e.field, message: e.message });
      }),
    );
  }

  /** Opens a server stream; resolves with OK once its first message arrives (and cancels it), or with the status it ended with. */
  stream(rpc: string, open: () => ClientReadableStream<unknown>, timeoutMs = 15_000): Promise<Outcome & { first?: unknown }> {
    this.calls[rpc] = (this.calls[rpc] ?? 0) + 1;
    if (++this.streams % 400 === 0) {
      this.close();
      [this.locks, this.elections] = this.connect();
    }
    return new Promise((resolve) => {
      const call = open();
      let settled = false;
      const timer = setTimeout(() => settle({ code: -1, message: `no message and no status within ${timeoutMs} ms` }), timeoutMs);
      const settle = (outcome: Outcome & { first?: unknown }) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        call.cancel();
        resolve(outcome);
      };
      call.on("data", (first: unknown) => settle({ code: 0, message: "first message", first }));
      call.on("error", (err: Error) => {
        const e = SyncClientError.from(err);
        settle({ code: e.code, field: e.field, message: e.message });
      });
      call.on("end", () => settle({ code: 0, message: "ended without a message" }));
    });
  }

  /** TryAcquire; on success the lock is released again, so nothing is left held. Retries a name still being released. */
  async tryAcquire(request: { name: string; holder: string; leaseDuration?: Duration }): Promise<Outcome> {
    for (let attempt = 0; ; attempt++) {
      this.calls.TryAcquire = (this.calls.TryAcquire ?? 0) + 1;
      const result = await new Promise<{ err: Error | null; acquired: boolean; token: number }>((resolve) =>
        this.locks.tryAcquire(request, (err, r) => resolve({ err, acquired: r?.acquired ?? false, token: r?.fencingToken ?? 0 })),
      );
      if (result.err !== null) {
        const e = SyncClientError.from(result.err);
        return { code: e.code, field: e.field, message: e.message };
      }
      if (result.acquired) {
        await this.unary("Release", this.locks.release.bind(this.locks), { name: request.name, fencingToken: result.token });
        return { code: 0, message: "acquired" };
      }
      // Held: a stream on the same name a moment ago is still being released.
      if (attempt >= 10) return { code: status.ABORTED, message: `${request.name} stayed held by someone else` };
      await sleep(100);
    }
  }

  /** Compares an outcome with the documented status; records a mismatch with `what` to reproduce it. */
  expect(what: string, outcome: Outcome, expected: Expected): boolean {
    const name = outcome.code === -1 ? "NO_ANSWER" : (status[outcome.code] ?? String(outcome.code));
    this.statuses[name] = (this.statuses[name] ?? 0) + 1;
    let ok: boolean;
    if ("anyOf" in expected) ok = expected.anyOf.includes(outcome.code);
    else {
      ok = outcome.code === expected.code;
      const field = "field" in expected ? expected.field : undefined;
      if (ok && field !== undefined) ok = outcome.field === field && outcome.message.includes(field);
    }
    if (!ok) {
      const want =
        "anyOf" in expected
          ? expected.anyOf.map((c) => status[c]).join(" or ")
          : `${status[expected.code]}${"field" in expected && expected.field ? ` naming ${expected.field}` : ""}`;
      if (this.mismatches.length < 200)
        this.mismatches.push(
          `${what}: expected ${want}, got ${name}${outcome.field ? ` (field ${outcome.field})` : ""}: ${outcome.message.slice(0, 200)}`,
        );
    }
    return ok;
  }
}

const dur = (ms: number): Duration => ({ seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 });
const show = (s: string) => JSON.stringify(s.length > 40 ? `${s.slice(0, 20)}…${s.slice(-10)}` : s) + ` (${s.length})`;

// ---- the run ------------------------------------------------------------------

export async function runFuzz(cp: ControlPlane, options: FuzzOptions): Promise<FuzzResult> {
  const started = performance.now();
  const rng = seededRandom(options.seed);
  const namespace = `fuzz-${options.seed.toString(36)}-${Math.floor(Math.random() * 1e4)}`;
  await cp.createNamespace(namespace);
  const flags = (id: string) => [
    "--backend=kubernetes",
    `--kubeconfig=${cp.kubeconfigPath}`,
    `--namespace=${namespace}`,
    `--identity=${id}`,
    "--lease-duration=15s",
    "--renew-deadline=10s",
    "--log-level=warn",
  ];
  // The log level hides "gRPC server listening", which spawnDaemon waits for: keep info.
  const a = await spawnDaemon(flags("fuzz-a").filter((f) => !f.startsWith("--log-level")));
  const b = await spawnDaemon(flags("fuzz-b").filter((f) => !f.startsWith("--log-level")));
  const problems: string[] = [];
  const sockets: Record<string, number> = {};
  let socketBytes = 0;
  const keeperA = new SyncClient({ address: a.address });
  const keeperB = new SyncClient({ address: b.address });
  const otherLocks = new LockServiceClient(b.address, credentials.createInsecure());
  const otherElections = new ElectionServiceClient(b.address, credentials.createInsecure(), { channelOverride: otherLocks.getChannel() });
  const c = new Caller(a.address);
  let keeperLock: Lock | undefined;
  let keeperCampaign: Campaign | undefined;
  const deposed: string[] = [];
  let counter = 0;
  const fresh = (kind: string) => `${kind}-${options.seed.toString(36)}-${++counter}`;
  try {
    // What is held throughout, by another client: a lock and a leadership.
    keeperLock = await keeperA.lock("held", { holder: "keeper" });
    const lockToken = keeperLock.token;
    let lostReason: string | undefined;
    keeperLock.signal.addEventListener("abort", () => (lostReason = String((keeperLock!.signal.reason as Error).message)), { once: true });
    keeperCampaign = keeperA.campaign("led", {
      candidate: "keeper",
      value: "keeper",
      onDeposed: (term, reason) => deposed.push(`term ${term}: ${reason}`),
    });
    while (!keeperCampaign.leading) await sleep(10);
    const term = keeperCampaign.leadership!.term;

    await fuzzNames(c, rng, options.full);
    await fuzzDurations(c, rng, options.full, fresh);
    await fuzzHoldersAndValues(c, fresh);
    await fuzzEnums(c);
    await fuzzTokens(c, { lockToken, term, otherLocks, otherElections, fresh });
    await fuzzAfterClose(c, fresh);

    const check = async (when: string) => {
      for (const [name, d] of [
        ["a", a],
        ["b", b],
      ] as const) {
        if (d.child.exitCode !== null || d.child.signalCode !== null)
          problems.push(`${when}: daemon ${name} exited (${d.child.exitCode ?? d.child.signalCode})`);
      }
      const health = await healthCheck(a.port);
      if (health !== "SERVING") problems.push(`${when}: daemon a health is ${health}`);
    };
    await check("after the fuzzed requests");
    const socketRuns = await fuzzSockets(a.port, rng, options.full, check);
    Object.assign(sockets, socketRuns.sockets);
    socketBytes = socketRuns.bytes;

    // Held throughout, same token, never told otherwise.
    if (lostReason !== undefined || keeperLock.lost) problems.push(`the keeper's lock was lost: ${lostReason}`);
    if (deposed.length > 0 || !keeperCampaign.leading) problems.push(`the keeper was deposed: ${deposed.join("; ")}`);
    for (const [where, client] of [
      ["a", keeperA],
      ["b", keeperB],
    ] as const) {
      const info = await client.getLock("held", { fresh: true });
      if (!info.held || info.token !== lockToken || info.holder !== "keeper")
        problems.push(`GetLock(held) on ${where}: ${JSON.stringify(info)}, expected held by keeper with token ${lockToken}`);
      const leader = await client.getLeader("led", { fresh: true });
      if (leader.leader !== "keeper" || leader.term !== term)
        problems.push(`GetLeader(led) on ${where}: ${JSON.stringify(leader)}, expected keeper in term ${term}`);
    }
    // The daemons' own account: errors they logged (a handler that failed unexpectedly is logged as a bug).
    for (const [name, d] of [
      ["a", a],
      ["b", b],
    ] as const) {
      for (const line of d.logs.filter((l) => l.level === "error" || l.level === "fatal")) {
        problems.push(`daemon ${name} logged: ${JSON.stringify(line).slice(0, 400)}`);
      }
    }
  } finally {
    keeperCampaign?.close();
    await keeperLock?.release();
    for (const client of [keeperA, keeperB]) client.close();
    c.close();
    for (const client of [otherLocks, otherElections]) client.close();
    await Promise.all([a.stop(), b.stop()]);
  }
  return {
    seed: options.seed,
    full: options.full,
    durationMs: performance.now() - started,
    calls: c.calls,
    statuses: c.statuses,
    mismatches: c.mismatches,
    sockets,
    socketBytes,
    problems,
  };
}

async function fuzzNames(c: Caller, rng: Random, full: boolean): Promise<void> {
  const boundaries = [0, 1, 2, 3, 62, 63, 64, 100, 237, 238, 239, 240, 241, 242, 243, 244, 252, 253, 254, 255, 300];
  const lengths = full
    ? Array.from({ length: 301 }, (_, i) => i)
    : [...new Set([...boundaries, ...Array.from({ length: 8 }, () => rng.int(4, 300))])];
  for (const length of lengths) {
    for (const [cls, make] of Object.entries(NAME_CLASSES)) {
      const name = make(rng, length);
      const what = (rpc: string) => `${rpc} with a ${cls} name ${show(name)}`;
      const lockOk = nameIsValid(name, "lock");
      const electionOk = nameIsValid(name, "election");
      if (!lockOk) {
        const e = invalid("name");
        c.expect(what("Acquire"), await c.stream("Acquire", () => c.locks.acquire({ fairness: 0, name, holder: "fuzz" })), e);
        c.expect(what("TryAcquire"), await c.unary("TryAcquire", c.locks.tryAcquire.bind(c.locks), { name, holder: "fuzz" }), e);
        c.expect(what("Renew"), await c.unary("Renew", c.locks.renew.bind(c.locks), { name, fencingToken: 1 }), e);
        c.expect(what("Release"), await c.unary("Release", c.locks.release.bind(c.locks), { name, fencingToken: 1 }), e);
        c.expect(what("GetLock"), await c.unary("GetLock", c.locks.getLock.bind(c.locks), { name, consistency: 0 as ReadConsistency }), e);
      } else if (full || rng.bool(0.5)) {
        // A valid name works end to end, against the real API server.
        // The same short name may come up again while its last Acquire stream is still being released: retry a little.
        let tried = { err: null as Error | null, token: 0, acquired: false };
        for (let attempt = 0; attempt < 10 && tried.err === null && !tried.acquired; attempt++) {
          if (attempt > 0) await sleep(100);
          tried = await new Promise<{ err: Error | null; token: number; acquired: boolean }>((resolve) => {
            c.calls.TryAcquire = (c.calls.TryAcquire ?? 0) + 1;
            c.locks.tryAcquire({ name, holder: "fuzz" }, (err, r) =>
              resolve({ err, token: r?.fencingToken ?? 0, acquired: r?.acquired ?? false }),
            );
          });
        }
        if (tried.err !== null || !tried.acquired) {
          c.expect(
            what("TryAcquire"),
            { code: tried.err ? SyncClientError.from(tried.err).code : 0, message: tried.err?.message ?? "not acquired" },
            OK,
          );
          if (tried.err === null) c.mismatches.push(`${what("TryAcquire")}: not acquired`);
          continue;
        }
        c.expect(what("TryAcquire"), { code: 0, message: "acquired" }, OK);
        const token = tried.token;
        c.expect(what("Renew"), await c.unary("Renew", c.locks.renew.bind(c.locks), { name, fencingToken: token }), OK);
        c.expect(what("GetLock"), await c.unary("GetLock", c.locks.getLock.bind(c.locks), { name, consistency: 2 as ReadConsistency }), OK);
        c.expect(what("Release"), await c.unary("Release", c.locks.release.bind(c.locks), { name, fencingToken: token }), OK);
        c.expect(what("a second Release"), await c.unary("Release", c.locks.release.bind(c.locks), { name, fencingToken: token }), notHeld);
        if (full || rng.bool(0.3)) {
          c.expect(
            what("Acquire (wait 0)"),
            await c.stream("Acquire", () => c.locks.acquire({ fairness: 0, name, holder: "fuzz", waitTimeout: dur(0) })),
            OK,
          );
        }
      }
      if (!electionOk) {
        const e = invalid("name");
        c.expect(what("Campaign"), await c.stream("Campaign", () => c.elections.campaign({ name, candidate: "fuzz", value: "" })), e);
        c.expect(what("Resign"), await c.unary("Resign", c.elections.resign.bind(c.elections), { name, term: 1 }), e);
        c.expect(what("Proclaim"), await c.unary("Proclaim", c.elections.proclaim.bind(c.elections), { name, term: 1, value: "" }), e);
        c.expect(
          what("GetLeader"),
          await c.unary("GetLeader", c.elections.getLeader.bind(c.elections), { name, consistency: 0 as ReadConsistency }),
          e,
        );
        c.expect(what("Observe"), await c.stream("Observe", () => c.elections.observe({ name })), e);
      } else if (full || rng.bool(0.5)) {
        c.expect(
          what("GetLeader"),
          await c.unary("GetLeader", c.elections.getLeader.bind(c.elections), { name, consistency: 2 as ReadConsistency }),
          OK,
        );
        c.expect(what("Resign by nobody"), await c.unary("Resign", c.elections.resign.bind(c.elections), { name, term: 1 }), notHeld);
        c.expect(
          what("Proclaim by nobody"),
          await c.unary("Proclaim", c.elections.proclaim.bind(c.elections), { name, term: 1, value: "v" }),
          notHeld,
        );
        c.expect(what("Observe"), await c.stream("Observe", () => c.elections.observe({ name })), OK);
        if (full || rng.bool(0.3)) {
          c.expect(what("Campaign"), await c.stream("Campaign", () => c.elections.campaign({ name, candidate: "fuzz", value: "" })), OK);
        }
      }
    }
  }
}

async function fuzzDurations(c: Caller, rng: Random, full: boolean, fresh: (kind: string) => string): Promise<void> {
  // A lease-held lock to renew with every duration.
  const target = fresh("renew");
  const held = await new Promise<number>((resolve, reject) =>
    c.locks.tryAcquire({ name: target, holder: "fuzz" }, (err, r) => (err ? reject(err) : resolve(r.fencingToken))),
  );
  for (const d of durations(rng, full)) {
    const show = `{seconds: ${d.seconds}, nanos: ${d.nanos}}`;
    const lease = leaseIsValid(d);
    const wait = waitIsValid(d);
    const waitMs = wait ? d.seconds * 1000 + d.nanos / 1e6 : 0;
    c.expect(
      `Acquire with lease_duration ${show}`,
      await c.stream("Acquire", () =>
        c.locks.acquire({ fairness: 0, name: fresh("d"), holder: "fuzz", leaseDuration: d, waitTimeout: dur(0) }),
      ),
      lease ? OK : invalid("lease_duration"),
    );
    c.expect(
      `Acquire with wait_timeout ${show}`,
      await c.stream("Acquire", () => c.locks.acquire({ fairness: 0, name: fresh("d"), holder: "fuzz", waitTimeout: d })),
      // A wait shorter than the create of a new Lease may run out first: DEADLINE_EXCEEDED is the documented end of a wait.
      wait ? (waitMs < 1000 && waitMs > 0 ? { anyOf: [0, status.DEADLINE_EXCEEDED] } : OK) : invalid("wait_timeout"),
    );
    c.expect(
      `TryAcquire with lease_duration ${show}`,
      await c.tryAcquire({ name: fresh("d"), holder: "fuzz", leaseDuration: d }),
      lease ? OK : invalid("lease_duration"),
    );
    c.expect(
      `Renew with lease_duration ${show}`,
      await c.unary("Renew", c.locks.renew.bind(c.locks), { name: target, fencingToken: held, leaseDuration: d }),
      lease ? OK : invalid("lease_duration"),
    );
    c.expect(
      `Campaign with lease_duration ${show}`,
      await c.stream("Campaign", () => c.elections.campaign({ name: fresh("d"), candidate: "fuzz", value: "", leaseDuration: d })),
      lease ? OK : invalid("lease_duration"),
    );
  }
  // Put the target back to a short lease and give it back.
  await c.unary("Renew", c.locks.renew.bind(c.locks), { name: target, fencingToken: held, leaseDuration: dur(15_000) });
  c.expect(
    "Release of the renewed lock",
    await c.unary("Release", c.locks.release.bind(c.locks), { name: target, fencingToken: held }),
    OK,
  );
}

async function fuzzHoldersAndValues(c: Caller, fresh: (kind: string) => string): Promise<void> {
  const holders = [
    "",
    "a",
    "h".repeat(253),
    "h".repeat(254),
    "🙂".repeat(253),
    "🙂".repeat(254),
    "é日本 pod/7",
    " leading and trailing ",
    "a\nb",
    "tab\there",
    "nul\u0000",
    "del\u007f",
    "c1\u0085",
    "\u200b",
  ];
  for (const holder of holders) {
    const e = holderIsValid(holder) ? OK : invalid("holder");
    c.expect(`TryAcquire with holder ${show(holder)}`, await c.tryAcquire({ name: fresh("h"), holder }), e);
    c.expect(
      `Acquire with holder ${show(holder)}`,
      await c.stream("Acquire", () => c.locks.acquire({ fairness: 0, name: fresh("h"), holder, waitTimeout: dur(0) })),
      e,
    );
    c.expect(
      `Campaign with candidate ${show(holder)}`,
      await c.stream("Campaign", () => c.elections.campaign({ name: fresh("h"), candidate: holder, value: "" })),
      holderIsValid(holder) ? OK : invalid("candidate"),
    );
  }
  const values = [
    "",
    "v",
    "x".repeat(4096),
    "x".repeat(4097),
    "é".repeat(2048),
    "é".repeat(2049),
    "🙂".repeat(1024),
    "🙂".repeat(1025),
    "x".repeat(1 << 20),
  ];
  // A leader of its own election, to proclaim every value.
  const election = fresh("v");
  const call = c.elections.campaign({ name: election, candidate: "proclaimer", value: "" });
  call.on("error", () => {});
  const term = await new Promise<number>((resolve) =>
    call.on("data", (m: { event?: { $case: string; value: { term: number } } }) => {
      if (m.event?.$case === "elected") resolve(m.event.value.term);
    }),
  );
  for (const value of values) {
    const e = valueIsValid(value) ? OK : invalid("value");
    c.expect(
      `Campaign with a ${Buffer.byteLength(value)}-byte value`,
      await c.stream("Campaign", () => c.elections.campaign({ name: fresh("v"), candidate: "c", value })),
      e,
    );
    c.expect(
      `Proclaim of a ${Buffer.byteLength(value)}-byte value`,
      await c.unary("Proclaim", c.elections.proclaim.bind(c.elections), { name: election, term, value }),
      e,
    );
  }
  call.cancel();
}

async function fuzzEnums(c: Caller): Promise<void> {
  for (const consistency of [0, 1, 2, 3, 7, 99, 2_147_483_647, -1, -2_147_483_648]) {
    const e = consistency >= 0 && consistency <= 2 ? OK : invalid("consistency");
    c.expect(
      `GetLock with consistency ${consistency}`,
      await c.unary("GetLock", c.locks.getLock.bind(c.locks), { name: "held", consistency: consistency as ReadConsistency }),
      e,
    );
    c.expect(
      `GetLeader with consistency ${consistency}`,
      await c.unary("GetLeader", c.elections.getLeader.bind(c.elections), { name: "led", consistency: consistency as ReadConsistency }),
      e,
    );
  }
}

async function fuzzTokens(
  c: Caller,
  ctx: {
    lockToken: number;
    term: number;
    otherLocks: LockServiceClient;
    otherElections: ElectionServiceClient;
    fresh: (kind: string) => string;
  },
): Promise<void> {
  const { lockToken, term } = ctx;
  // The keeper's lock is held by an Acquire stream: Renew with its token, or any other, changes nothing, and so
  // do Release with any other token and Release on another daemon. (Release with its own token on its own daemon
  // is the acknowledged release, which gives it back: test/grpc/lock.test.ts.)
  for (const token of [lockToken, lockToken + 1, lockToken - 1, 2, 1000, Number.MAX_SAFE_INTEGER]) {
    if (token < 1) continue;
    c.expect(
      `Renew of the keeper's lock with token ${token}`,
      await c.unary("Renew", c.locks.renew.bind(c.locks), { name: "held", fencingToken: token }),
      notHeld,
    );
    if (token !== lockToken)
      c.expect(
        `Release of the keeper's lock with token ${token}`,
        await c.unary("Release", c.locks.release.bind(c.locks), { name: "held", fencingToken: token }),
        notHeld,
      );
    c.expect(
      `Release of the keeper's lock on another daemon with token ${token}`,
      await c.unary("Release", ctx.otherLocks.release.bind(ctx.otherLocks), { name: "held", fencingToken: token }),
      notHeld,
    );
  }
  for (const token of [0, -1, -2, -Number.MAX_SAFE_INTEGER]) {
    c.expect(
      `Renew with token ${token}`,
      await c.unary("Renew", c.locks.renew.bind(c.locks), { name: "held", fencingToken: token }),
      invalid("fencing_token"),
    );
    c.expect(
      `Release with token ${token}`,
      await c.unary("Release", c.locks.release.bind(c.locks), { name: "held", fencingToken: token }),
      invalid("fencing_token"),
    );
    c.expect(
      `Resign with term ${token}`,
      await c.unary("Resign", c.elections.resign.bind(c.elections), { name: "led", term: token }),
      invalid("term"),
    );
    c.expect(
      `Proclaim with term ${token}`,
      await c.unary("Proclaim", c.elections.proclaim.bind(c.elections), { name: "led", term: token, value: "" }),
      invalid("term"),
    );
  }
  // Resign by a non-leader: a candidate that does not lead, with a term that is not the leader's,
  // and the leader's term sent to a daemon the leader is not on.
  const follower = c.elections.campaign({ name: "led", candidate: "follower", value: "" });
  follower.on("error", () => {});
  await new Promise<void>((resolve) => follower.once("data", () => resolve()));
  for (const t of [term + 1, term - 1, Number.MAX_SAFE_INTEGER].filter((t) => t >= 1)) {
    c.expect(
      `Resign by a non-leader with term ${t}`,
      await c.unary("Resign", c.elections.resign.bind(c.elections), { name: "led", term: t }),
      notHeld,
    );
    c.expect(
      `Proclaim by a non-leader with term ${t}`,
      await c.unary("Proclaim", c.elections.proclaim.bind(c.elections), { name: "led", term: t, value: "x" }),
      notHeld,
    );
  }
  c.expect(
    "Resign of the leader's term on a daemon it is not on",
    await c.unary("Resign", ctx.otherElections.resign.bind(ctx.otherElections), { name: "led", term }),
    notHeld,
  );
  c.expect(
    "Proclaim of the leader's term on a daemon it is not on",
    await c.unary("Proclaim", ctx.otherElections.proclaim.bind(ctx.otherElections), { name: "led", term, value: "x" }),
    notHeld,
  );
  follower.cancel();
  // A second Release of a lease-held lock, and a Release of a lock never taken.
  const name = ctx.fresh("twice");
  const token = await new Promise<number>((resolve, reject) =>
    c.locks.tryAcquire({ name, holder: "fuzz" }, (err, r) => (err ? reject(err) : resolve(r.fencingToken))),
  );
  c.expect("Release", await c.unary("Release", c.locks.release.bind(c.locks), { name, fencingToken: token }), OK);
  c.expect("a second Release", await c.unary("Release", c.locks.release.bind(c.locks), { name, fencingToken: token }), notHeld);
  c.expect("Renew after Release", await c.unary("Renew", c.locks.renew.bind(c.locks), { name, fencingToken: token }), notHeld);
  c.expect(
    "Release of a lock never taken",
    await c.unary("Release", c.locks.release.bind(c.locks), { name: ctx.fresh("never"), fencingToken: 1 }),
    notHeld,
  );
}

async function fuzzAfterClose(c: Caller, fresh: (kind: string) => string): Promise<void> {
  // An Acquire stream's token after the stream closed.
  const name = fresh("closed");
  const acquired = await c.stream("Acquire", () => c.locks.acquire({ fairness: 0, name, holder: "fuzz" }));
  const token = (acquired.first as { event?: { value: { fencingToken: number } } } | undefined)?.event?.value.fencingToken ?? 0;
  c.expect("Acquire (to close)", acquired, OK);
  await waitUntil(async () => !(await getLock(c.locks, name)).held);
  c.expect(
    "Renew after the Acquire stream closed",
    await c.unary("Renew", c.locks.renew.bind(c.locks), { name, fencingToken: token }),
    notHeld,
  );
  c.expect(
    "Release after the Acquire stream closed",
    await c.unary("Release", c.locks.release.bind(c.locks), { name, fencingToken: token }),
    notHeld,
  );
  // A Campaign stream's term after the stream closed.
  const election = fresh("closed");
  c.calls.Campaign = (c.calls.Campaign ?? 0) + 1;
  const campaign = c.elections.campaign({ name: election, candidate: "fuzz", value: "" });
  campaign.on("error", () => {});
  const term = await electedTerm(campaign);
  campaign.cancel();
  await waitUntil(async () => (await getLeader(c.elections, election)).leader === "");
  c.expect(
    "Resign after the Campaign stream closed",
    await c.unary("Resign", c.elections.resign.bind(c.elections), { name: election, term }),
    notHeld,
  );
  c.expect(
    "Proclaim after the Campaign stream closed",
    await c.unary("Proclaim", c.elections.proclaim.bind(c.elections), { name: election, term, value: "x" }),
    notHeld,
  );
  // Resign twice.
  const again = fresh("resign");
  c.calls.Campaign = (c.calls.Campaign ?? 0) + 1;
  const call = c.elections.campaign({ name: again, candidate: "fuzz", value: "" });
  call.on("error", () => {});
  const t = await new Promise<number>((resolve) =>
    call.on(
      "data",
      (m: { event?: { $case: string; value: { term: number } } }) => m.event?.$case === "elected" && resolve(m.event.value.term),
    ),
  );
  c.expect("Resign", await c.unary("Resign", c.elections.resign.bind(c.elections), { name: again, term: t }), OK);
  c.expect("a second Resign", await c.unary("Resign", c.elections.resign.bind(c.elections), { name: again, term: t }), notHeld);
  call.cancel();
}

/** The term of the `elected` event on a Campaign stream (other events may come first). */
function electedTerm(call: ClientReadableStream<unknown>): Promise<number> {
  return new Promise((resolve) =>
    call.on("data", (m: { event?: { $case: string; value: { term: number } } }) => {
      if (m.event?.$case === "elected") resolve(m.event.value.term);
    }),
  );
}

function getLock(locks: LockServiceClient, name: string): Promise<{ held: boolean }> {
  return new Promise((resolve, reject) =>
    locks.getLock({ name, consistency: 2 as ReadConsistency }, (err, r) => (err ? reject(err) : resolve(r))),
  );
}

function getLeader(elections: ElectionServiceClient, name: string): Promise<{ leader: string }> {
  return new Promise((resolve, reject) =>
    elections.getLeader({ name, consistency: 2 as ReadConsistency }, (err, r) => (err ? reject(err) : resolve(r))),
  );
}

async function waitUntil(condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error("condition not met in time");
    await sleep(20);
  }
}

// ---- raw bytes on the gRPC port ----------------------------------------------

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(stream & 0x7fffffff, 5);
  return Buffer.concat([header, payload]);
}

/** HPACK: every header as a literal without indexing, new name, no Huffman (names and values under 127 bytes). */
function hpack(headers: Array<[string, string]>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of headers)
    parts.push(Buffer.from([0x00, name.length]), Buffer.from(name), Buffer.from([value.length]), Buffer.from(value));
  return Buffer.concat(parts);
}

function requestHeaders(port: number, path: string): Buffer {
  return hpack([
    [":method", "POST"],
    [":scheme", "http"],
    [":path", path],
    [":authority", `127.0.0.1:${port}`],
    ["content-type", "application/grpc"],
    ["te", "trailers"],
  ]);
}

const SETTINGS = frame(0x4, 0, 0, Buffer.alloc(0));
const END_STREAM = 0x1;
const END_HEADERS = 0x4;

/** GetLock{name: "held"} as a gRPC message. */
function getLockMessage(): Buffer {
  const body = Buffer.concat([Buffer.from([0x0a, 4]), Buffer.from("held")]);
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(body.length, 1);
  return Buffer.concat([prefix, body]);
}

/** Opens a connection, writes `chunks` (with a pause between), then reads for `holdMs` and closes (or resets). Resolves with what came back. */
function exchange(port: number, chunks: Buffer[], holdMs: number, reset = false): Promise<Buffer> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    const received: Buffer[] = [];
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      if (reset) socket.resetAndDestroy();
      else socket.destroy();
      resolve(Buffer.concat(received));
    };
    socket.on("data", (d: Buffer) => received.push(d));
    socket.on("error", finish);
    socket.on("close", finish);
    socket.on("connect", async () => {
      for (const chunk of chunks) {
        if (socket.destroyed) break;
        socket.write(chunk);
        await sleep(5);
      }
      setTimeout(finish, holdMs);
    });
  });
}

/** The HTTP/2 frame types in a byte stream from the server. */
function frameTypes(bytes: Buffer): number[] {
  const types: number[] = [];
  for (let at = 0; at + 9 <= bytes.length;) {
    const length = bytes.readUIntBE(at, 3);
    types.push(bytes[at + 3]!);
    at += 9 + length;
  }
  return types;
}

async function fuzzSockets(
  port: number,
  rng: Random,
  full: boolean,
  check: (when: string) => Promise<void>,
): Promise<{ sockets: Record<string, number>; bytes: number }> {
  const sockets: Record<string, number> = {};
  let bytes = 0;
  const scale = full ? 4 : 1;
  const random = (n: number) => Buffer.from(Array.from({ length: n }, () => rng.int(0, 255)));
  // Bounded in count per kind and in time overall.
  const deadline = performance.now() + (full ? 300_000 : 90_000);
  const run = async (kind: string, count: number, parallel: number, make: (i: number) => Promise<unknown>) => {
    let next = 0;
    await Promise.all(
      Array.from({ length: parallel }, async () => {
        while (next < count && performance.now() < deadline) await make(next++);
      }),
    );
    sockets[kind] = (sockets[kind] ?? 0) + next;
    await check(`after ${kind}`);
  };
  const send = (chunks: Buffer[], holdMs: number, reset = false) => {
    bytes += chunks.reduce((n, c) => n + c.length, 0);
    return exchange(port, chunks, holdMs, reset);
  };
  const headers = frame(0x1, END_HEADERS, 1, requestHeaders(port, "/metaparticle.sync.v1.LockService/GetLock"));

  // The raw framing is right: a well-formed GetLock gets HEADERS back.
  const answer = await send([PREFACE, SETTINGS, headers, frame(0x0, END_STREAM, 1, getLockMessage())], 1_000);
  sockets["well-formed GetLock"] = 1;
  if (!frameTypes(answer).includes(0x1))
    throw new Error(`the raw HTTP/2 GetLock got no HEADERS back (frame types ${frameTypes(answer).join(",")})`);

  await run("random bytes", 40 * scale, 10, () => send([random(rng.int(1, 65_536))], 200));
  await run("preface, then random bytes", 40 * scale, 10, () => send([PREFACE, random(rng.int(1, 16_384))], 200));
  await run("preface, then random frames", 40 * scale, 10, () =>
    send(
      [
        PREFACE,
        SETTINGS,
        ...Array.from({ length: rng.int(1, 8) }, () => frame(rng.int(0, 12), rng.int(0, 255), rng.int(0, 7), random(rng.int(0, 512)))),
      ],
      200,
    ),
  );
  await run("HEADERS cut in half", 30 * scale, 10, async () => {
    const cut = rng.int(1, headers.length - 1);
    await send([PREFACE, SETTINGS, headers.subarray(0, cut)], rng.int(0, 1_000), rng.bool());
  });
  await run("HEADERS with garbage HPACK", 30 * scale, 10, () =>
    send([PREFACE, SETTINGS, frame(0x1, END_HEADERS, 1, random(rng.int(1, 200)))], 200),
  );
  await run("DATA without HEADERS", 20 * scale, 10, () => send([PREFACE, SETTINGS, frame(0x0, END_STREAM, 1, getLockMessage())], 200));
  await run("gRPC message cut short", 20 * scale, 10, () => {
    const message = getLockMessage();
    return send([PREFACE, SETTINGS, headers, frame(0x0, END_STREAM, 1, message.subarray(0, rng.int(1, message.length - 1)))], 300);
  });
  await run("gRPC length prefix of 2 GiB", 20 * scale, 10, () => {
    const prefix = Buffer.from([0, 0x7f, 0xff, 0xff, 0xff]);
    return send([PREFACE, SETTINGS, headers, frame(0x0, 0, 1, Buffer.concat([prefix, random(100)]))], 300);
  });
  await run("undecodable request message", 20 * scale, 10, () => {
    const body = random(rng.int(1, 100));
    const prefix = Buffer.alloc(5);
    prefix.writeUInt32BE(body.length, 1);
    return send([PREFACE, SETTINGS, headers, frame(0x0, END_STREAM, 1, Buffer.concat([prefix, body]))], 300);
  });
  await run("preface only, held open", 100 * scale, 100, () => send([PREFACE], 2_000));
  await run("connect and close", 500 * scale, 50, () => send([], 0));
  await run("connect and reset", 500 * scale, 50, () => send([], 0, true));
  return { sockets, bytes };
}

/** grpc.health.v1.Health/Check for the whole server, with hand-made messages (no proto needed). */
export function healthCheck(port: number): Promise<string> {
  return new Promise((resolve) => {
    const client = new LockServiceClient(`127.0.0.1:${port}`, credentials.createInsecure());
    client.makeUnaryRequest(
      "/grpc.health.v1.Health/Check",
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.alloc(0),
      new Metadata(),
      { deadline: Date.now() + 5_000 },
      (err, response) => {
        client.close();
        if (err) return resolve(`error ${status[err.code]}`);
        // HealthCheckResponse{status = 1 (SERVING)}: field 1, varint.
        resolve(
          response !== undefined && response[0] === 0x08 && response[1] === 1 ? "SERVING" : `status bytes ${response?.toString("hex")}`,
        );
      },
    );
  });
}
