// The soak phase's load: operations on locks and elections started at a
// steady rate against one or more daemons, through the TypeScript client,
// each on a name from a small fixed set so the Leases behind them stay few.
// Every operation ends what it opened (releases, resigns, cancels its
// streams) and is bounded in time; the load as a whole is bounded in rate and
// in the operations in flight at once.
import { type Campaign, type Lock, SyncClient } from "metaparticle-sync-client";
import { sleep, within } from "./clock.js";
import type { SoakOps } from "./results.js";

export interface SoakLoadOptions {
  /** gRPC addresses of the daemons; an operation with two participants puts them on two different daemons when there are two. */
  readonly addresses: readonly string[];
  readonly opsPerSecond: number;
  /** A tick that finds this many operations running starts nothing. */
  readonly maxInFlight: number;
  readonly lockNames: number;
  readonly electionNames: number;
  /** Client channels per daemon, chosen at random per participant. */
  readonly channelsPerDaemon: number;
  /** Seed of the choice of operations, names, pauses and daemons, so two runs load the daemons alike. */
  readonly seed: number;
}

/** Longest an operation may run before its signal aborts and it cleans up. */
const OP_TIMEOUT_MS = 30_000;
/** Longest a participant waits to acquire or be elected. */
const WAIT_MS = 20_000;
/** Longest the load waits for running operations once it stops starting new ones. */
const DRAIN_MS = 45_000;

/**
 * The operations, how often each is picked (relative weights), and which
 * names one takes for itself while it runs (others read any name).
 */
export const SOAK_MIX = {
  "lock-handoff": {
    weight: 3,
    reserves: "lock",
    what: "Acquire stream held 20-200 ms while a second one, on the other daemon, waits; release; the second acquires, holds, releases",
  },
  "lock-cancel-waiting": {
    weight: 2,
    reserves: "lock",
    what: "Acquire held; a second Acquire on the other daemon is cancelled after 0-300 ms of waiting (must not acquire); release",
  },
  "try-renew-release": { weight: 2, reserves: "lock", what: "TryAcquire, Renew once or twice, Release" },
  "campaign-resign": {
    weight: 2,
    reserves: "election",
    what: "Campaign elected; a second candidate on the other daemon campaigns; the leader resigns; the second is elected and resigns",
  },
  "campaign-cancel": {
    weight: 2,
    reserves: "election",
    what: "Campaign elected; a second candidate's stream is cancelled after 0-300 ms of waiting (must not be elected); then the leader's stream is cancelled",
  },
  observe: { weight: 2, reserves: undefined, what: "Observe stream on an election, first message read, cancelled after 0.1-1 s" },
  read: { weight: 3, reserves: undefined, what: "GetLock or GetLeader, cached or fresh (half each)" },
  connect: { weight: 1, reserves: undefined, what: "a new client channel: GetLeader, then the channel closes" },
} as const;

export type SoakKind = keyof typeof SOAK_MIX;
/** "ok", or the name of another expected outcome. */
type Outcome = string;

interface Op {
  readonly seq: number;
  /** Aborts when the operation times out, and when it ends (so nothing it started keeps waiting). */
  readonly signal: AbortSignal;
}

export class SoakLoad {
  private readonly clients: SyncClient[][];
  private readonly random: () => number;
  private readonly freeLocks: Set<string>;
  private readonly freeElections: Set<string>;
  private readonly running = new Set<Promise<void>>();
  private readonly controllers = new Set<AbortController>();
  /** Highest fencing token / term the load has seen per name: each must exceed the last. */
  private readonly lastToken = new Map<string, number>();
  private readonly lastTerm = new Map<string, number>();
  private stopped = false;
  private seq = 0;
  readonly ops = Object.fromEntries(Object.keys(SOAK_MIX).map((k) => [k, { ok: 0, errors: 0, other: {} }])) as Record<SoakKind, SoakOps>;
  skipped = 0;
  private readonly errors = new Map<string, number>();
  private readonly weights: Array<[SoakKind, number]>;

  constructor(private readonly options: SoakLoadOptions) {
    this.clients = options.addresses.map((address) => Array.from({ length: options.channelsPerDaemon }, () => new SyncClient({ address })));
    this.random = mulberry32(options.seed);
    this.freeLocks = new Set(Array.from({ length: options.lockNames }, (_, i) => `soak-lock-${i}`));
    this.freeElections = new Set(Array.from({ length: options.electionNames }, (_, i) => `soak-election-${i}`));
    this.weights = Object.entries(SOAK_MIX).map(([k, v]) => [k as SoakKind, v.weight]);
  }

  /** Starts operations at the set rate for `durationMs` (or until stop()), then waits for the running ones. */
  async run(durationMs: number): Promise<void> {
    const interval = 1000 / this.options.opsPerSecond;
    const start = performance.now();
    for (let tick = 0; !this.stopped; tick++) {
      const at = start + tick * interval;
      if (at - start >= durationMs) break;
      const wait = at - performance.now();
      if (wait > 0) await sleep(wait);
      if (!this.stopped) this.startOne();
    }
    this.stopped = true;
    await this.drain();
  }

  /** Starts no more operations; run() returns once the running ones have ended. */
  stop(): void {
    this.stopped = true;
  }

  get inFlight(): number {
    return this.running.size;
  }

  /** Errors by kind and message (digits shown as N), most frequent first. */
  errorKinds(): Array<[string, number]> {
    return [...this.errors].sort((a, b) => b[1] - a[1]).slice(0, 10);
  }

  close(): void {
    for (const controller of this.controllers) controller.abort(new Error("the load was closed"));
    for (const channels of this.clients) for (const client of channels) client.close();
  }

  private async drain(): Promise<void> {
    const all = () => Promise.allSettled([...this.running]).then(() => undefined);
    try {
      await within(all(), DRAIN_MS, "soak operations to end");
    } catch {
      for (const controller of this.controllers) controller.abort(new Error("the load stopped"));
      await within(all(), 20_000, "soak operations to end after their signals aborted").catch(() => {});
    }
  }

  private startOne(): void {
    if (this.running.size >= this.options.maxInFlight) {
      this.skipped += 1;
      return;
    }
    const kind = this.pick();
    const reserves = SOAK_MIX[kind].reserves;
    const pool = reserves === "lock" ? this.freeLocks : reserves === "election" ? this.freeElections : undefined;
    const name = pool === undefined ? undefined : this.takeName(pool);
    if (pool !== undefined && name === undefined) {
      this.skipped += 1;
      return;
    }
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new Error(`timed out after ${OP_TIMEOUT_MS} ms`)), OP_TIMEOUT_MS);
    this.controllers.add(controller);
    const op: Op = { seq: ++this.seq, signal: controller.signal };
    const counts = this.ops[kind];
    const done = this.runOp(kind, op, name)
      .then(
        (outcome) => {
          if (outcome === "ok") counts.ok += 1;
          else counts.other[outcome] = (counts.other[outcome] ?? 0) + 1;
        },
        (err: unknown) => {
          counts.errors += 1;
          const message = err instanceof Error ? err.message : String(err);
          const key = `${kind}: ${message}`.replace(/\d+/g, "N").slice(0, 160);
          this.errors.set(key, (this.errors.get(key) ?? 0) + 1);
        },
      )
      .finally(() => {
        clearTimeout(timer);
        controller.abort(new Error("the operation ended"));
        this.controllers.delete(controller);
        if (name !== undefined) pool!.add(name);
        this.running.delete(done);
      });
    this.running.add(done);
  }

  private runOp(kind: SoakKind, op: Op, name: string | undefined): Promise<Outcome> {
    switch (kind) {
      case "lock-handoff":
        return this.lockHandoff(op, name!);
      case "lock-cancel-waiting":
        return this.lockCancelWaiting(op, name!);
      case "try-renew-release":
        return this.tryRenewRelease(op, name!);
      case "campaign-resign":
        return this.campaignResign(op, name!);
      case "campaign-cancel":
        return this.campaignCancel(op, name!);
      case "observe":
        return this.observe(op);
      case "read":
        return this.read();
      case "connect":
        return this.connect();
    }
  }

  private async lockHandoff(op: Op, name: string): Promise<Outcome> {
    const [x, y] = this.twoDaemons();
    const cancel = new AbortController();
    const signal = AbortSignal.any([cancel.signal, op.signal]);
    const first = this.client(x).lock(name, { holder: `soak-${op.seq}-a`, signal, waitTimeoutMs: WAIT_MS });
    let second: Promise<Lock> | undefined;
    try {
      const a = await first;
      this.increasing(this.lastToken, name, a.token, "fencing token");
      second = this.client(y).lock(name, { holder: `soak-${op.seq}-b`, signal, waitTimeoutMs: WAIT_MS });
      second.catch(() => {}); // awaited below
      await sleep(this.between(20, 200));
      await a.release();
      const b = await second;
      this.increasing(this.lastToken, name, b.token, "fencing token");
      await sleep(this.between(20, 200));
      await b.release();
      return "ok";
    } finally {
      await ended(cancel, first, second);
    }
  }

  private async lockCancelWaiting(op: Op, name: string): Promise<Outcome> {
    const [x, y] = this.twoDaemons();
    const cancel = new AbortController();
    const holder = this.client(x).lock(name, { holder: `soak-${op.seq}-h`, signal: AbortSignal.any([cancel.signal, op.signal]) });
    const cancelWaiter = new AbortController();
    let waiter: Promise<Lock> | undefined;
    try {
      const h = await within(holder, WAIT_MS, `${name}: holder acquired`);
      this.increasing(this.lastToken, name, h.token, "fencing token");
      waiter = this.client(y).lock(name, { holder: `soak-${op.seq}-w`, signal: AbortSignal.any([cancelWaiter.signal, op.signal]) });
      waiter.catch(() => {}); // awaited below
      await sleep(this.between(0, 300));
      cancelWaiter.abort(new Error("cancelled while waiting"));
      const w = await waiter.catch(() => undefined);
      if (w !== undefined) throw new Error(`a waiter acquired ${name} while another holder held it (token ${w.token})`);
      await h.release();
      return "ok";
    } finally {
      await ended(cancelWaiter, waiter);
      await ended(cancel, holder);
    }
  }

  private async tryRenewRelease(op: Op, name: string): Promise<Outcome> {
    const lease = await this.client(this.oneDaemon()).tryLock(name, { holder: `soak-${op.seq}-t` });
    // Held by nobody the load knows of: a Lease an earlier operation gave up without releasing is running out.
    if (lease === undefined) return "found the lock held";
    try {
      this.increasing(this.lastToken, name, lease.token, "fencing token");
      const renewals = 1 + Math.floor(this.random() * 2);
      for (let i = 0; i < renewals; i++) {
        await sleep(this.between(10, 100));
        await lease.renew();
      }
      await lease.release();
      return "ok";
    } finally {
      if (!lease.lost) await lease.release().catch(() => {});
    }
  }

  private async campaignResign(op: Op, name: string): Promise<Outcome> {
    const [x, y] = this.twoDaemons();
    const first = candidate(this.client(x), name, `soak-${op.seq}-a`, op.signal);
    let second: Candidate | undefined;
    try {
      this.increasing(this.lastTerm, name, await within(first.elected, WAIT_MS, `${name}: first candidate elected`), "term");
      second = candidate(this.client(y), name, `soak-${op.seq}-b`, op.signal);
      await sleep(this.between(20, 200));
      await first.campaign.resign();
      this.increasing(this.lastTerm, name, await within(second.elected, WAIT_MS, `${name}: second candidate elected`), "term");
      await sleep(this.between(20, 200));
      await second.campaign.resign();
      return "ok";
    } finally {
      await leave(first);
      await leave(second);
    }
  }

  private async campaignCancel(op: Op, name: string): Promise<Outcome> {
    const [x, y] = this.twoDaemons();
    const leader = candidate(this.client(x), name, `soak-${op.seq}-a`, op.signal);
    let waiter: Candidate | undefined;
    try {
      this.increasing(this.lastTerm, name, await within(leader.elected, WAIT_MS, `${name}: leader elected`), "term");
      waiter = candidate(this.client(y), name, `soak-${op.seq}-w`, op.signal);
      await sleep(this.between(0, 300));
      waiter.campaign.close();
      if (waiter.term !== undefined)
        throw new Error(`a second candidate was elected in ${name} while the leader led (term ${waiter.term})`);
      await sleep(this.between(0, 100));
      leader.campaign.close();
      return "ok";
    } finally {
      await leave(waiter);
      await leave(leader);
    }
  }

  private async observe(op: Op): Promise<Outcome> {
    const name = `soak-election-${Math.floor(this.random() * this.options.electionNames)}`;
    const cancel = new AbortController();
    const stream = this.client(this.oneDaemon()).observe(name, { signal: AbortSignal.any([cancel.signal, op.signal]) });
    try {
      const first = await within(stream.next(), 10_000, `${name}: first Observe message`);
      if (first.done) throw new Error(`the Observe stream of ${name} ended before its first message`);
      await sleep(this.between(100, 1000));
      return "ok";
    } finally {
      cancel.abort();
      await stream.return?.();
    }
  }

  private async read(): Promise<Outcome> {
    const client = this.client(this.oneDaemon());
    const fresh = this.random() < 0.5;
    if (this.random() < 0.5) await client.getLock(`soak-lock-${Math.floor(this.random() * this.options.lockNames)}`, { fresh });
    else await client.getLeader(`soak-election-${Math.floor(this.random() * this.options.electionNames)}`, { fresh });
    return "ok";
  }

  private async connect(): Promise<Outcome> {
    const client = new SyncClient({ address: this.options.addresses[this.oneDaemon()]! });
    try {
      await within(
        client.getLeader(`soak-election-${Math.floor(this.random() * this.options.electionNames)}`),
        10_000,
        "GetLeader on a new channel",
      );
      return "ok";
    } finally {
      client.close();
    }
  }

  private pick(): SoakKind {
    const total = this.weights.reduce((sum, [, w]) => sum + w, 0);
    let r = this.random() * total;
    for (const [kind, w] of this.weights) if ((r -= w) < 0) return kind;
    return this.weights.at(-1)![0];
  }

  private takeName(pool: Set<string>): string | undefined {
    if (pool.size === 0) return undefined;
    const names = [...pool];
    const name = names[Math.floor(this.random() * names.length)]!;
    pool.delete(name);
    return name;
  }

  private increasing(last: Map<string, number>, name: string, value: number, what: string): void {
    const before = last.get(name) ?? 0;
    if (value <= before) throw new Error(`${what} of ${name} did not increase: ${value} after ${before}`);
    last.set(name, value);
  }

  private oneDaemon(): number {
    return Math.floor(this.random() * this.clients.length);
  }

  /** Two daemon indexes, different ones when there are two or more. */
  private twoDaemons(): [number, number] {
    const x = this.oneDaemon();
    return [x, (x + 1) % this.clients.length];
  }

  private client(daemon: number): SyncClient {
    const channels = this.clients[daemon]!;
    return channels[Math.floor(this.random() * channels.length)]!;
  }

  private between(lo: number, hi: number): number {
    return lo + this.random() * (hi - lo);
  }
}

interface Candidate {
  readonly campaign: Campaign;
  /** The first term, once elected; rejects if the campaign ends first. */
  readonly elected: Promise<number>;
  /** The first term, from the moment it is known. */
  term: number | undefined;
}

function candidate(client: SyncClient, name: string, id: string, signal: AbortSignal): Candidate {
  let resolve!: (term: number) => void;
  let reject!: (err: Error) => void;
  const elected = new Promise<number>((res, rej) => ((resolve = res), (reject = rej)));
  elected.catch(() => {}); // awaited by the caller, or not needed
  const c: { campaign?: Campaign; elected: Promise<number>; term: number | undefined } = { elected, term: undefined };
  const onElected = (leadership: { term: number }) => {
    c.term ??= leadership.term;
    resolve(leadership.term);
  };
  const campaign = client.campaign(name, { candidate: id, signal, onElected });
  campaign.done.then(
    () => reject(new Error(`the campaign of ${id} in ${name} ended before it was elected`)),
    (err: Error) => reject(err),
  );
  c.campaign = campaign;
  return c as Candidate;
}

/** Ends a campaign (resigning at once if it leads) and waits for its stream to close. */
async function leave(c: Candidate | undefined): Promise<void> {
  if (c === undefined) return;
  c.campaign.close();
  await within(c.campaign.done, 10_000, `the campaign stream of ${c.campaign.candidate} to close`).catch(() => {});
}

/**
 * Cancels lock calls that may still be waiting and releases those that
 * acquired, so an operation that failed half-way leaves no holder behind.
 */
async function ended(cancel: AbortController, ...calls: Array<Promise<Lock> | undefined>): Promise<void> {
  cancel.abort(new Error("the operation ended"));
  for (const call of calls) {
    const lock = await call?.catch(() => undefined);
    await lock?.release().catch(() => {});
  }
}

/** A small seeded generator of numbers in [0, 1). */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
