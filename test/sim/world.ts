// One simulated run: N daemons (engines) on one shared memory store and one
// simulated clock, a random workload of clients, random faults, and the
// oracles that judge what happened. Everything random comes from the run's
// seed, and nothing reads real time, so a seed replays exactly.
import type { Timer } from "../../daemon/engine/clock.js";
import { Engine } from "../../daemon/engine/index.js";
import { MAX_GRANTS_IN_A_ROW } from "../../daemon/engine/decide.js";
import { line } from "../../daemon/engine/lease-records.js";
import { untagged } from "../../daemon/engine/semaphores.js";
import type { LeaseRecord } from "../../daemon/store/lease-store.js";
import { MAX_RETRY_MS } from "../../daemon/store/kubernetes/watch-backoff.js";
import { MemoryStore, type StoreOperation } from "../../daemon/store/memory/memory-store.js";
import { type CheckResult, check } from "../faults/checker.js";
import type { HistoryEvent } from "../faults/history.js";
import { DaemonClock } from "../support/daemon-clock.js";
import { FakeClock } from "../support/fake-clock.js";
import {
  AcquireClient,
  CampaignClient,
  type DaemonLink,
  ObserverClient,
  type Resource,
  type SimEventFields,
  type Stream,
  TryClient,
  read,
  type World as ClientWorld,
} from "./clients.js";
import { DriftClock, NodeWallClock, type WallFault } from "./drift-clock.js";
import { Excuses, type Until } from "./excuses.js";
import { type CallFault, FaultyStore } from "./faulty-store.js";
import { KubeBackend } from "./kube-backend.js";
import { type Random, between, stream } from "./random.js";
import { type ReadAnswer, ReadOracle } from "./read-oracle.js";

export const FAULT_KINDS = [
  "latency",
  "conflict",
  "lost-reply",
  "hang",
  "watch",
  "lease-edit",
  "lease-delete",
  "freeze",
  "kill",
  "shutdown",
  "partition",
  "stall",
  "skew",
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export const WORKLOAD_KINDS = ["acquire", "hot", "try", "campaign", "observe", "read"] as const;
/**
 * Kinds drawn from streams of their own, so that adding them changed nothing
 * for the seeds that do not draw them: `semaphore`, 1 or 2 semaphores of 1 to 4
 * permits with blocking, hot and TryAcquire clients; `rwlock`, 1 or 2
 * read-write locks with blocking, hot and TryAcquire clients, most of them
 * readers; `nonfair`, one lock whose blocking clients all ask
 * FAIRNESS_NON_FAIR, many of them hot loops, with waiters on other daemons.
 */
export const EXTRA_WORKLOAD_KINDS = ["semaphore", "rwlock", "nonfair"] as const;
export type WorkloadKind = (typeof WORKLOAD_KINDS)[number] | (typeof EXTRA_WORKLOAD_KINDS)[number];
export const ALL_WORKLOAD_KINDS: readonly WorkloadKind[] = [...WORKLOAD_KINDS, ...EXTRA_WORKLOAD_KINDS];

/**
 * Worlds at scale, drawn for a few seeds from a stream of their own: `names`,
 * one daemon whose clients use more than 100 names at once (a Kubernetes
 * daemon then watches every managed Lease); `daemons`, more daemons waiting
 * for one lock than a Lease's queue holds (MAX_QUEUE).
 */
export const SCALE_KINDS = ["none", "names", "daemons"] as const;
export type ScaleKind = (typeof SCALE_KINDS)[number];

export interface SimOptions {
  readonly seed: number;
  /** Fault kinds that may be chosen (default: all). */
  readonly faults?: ReadonlySet<FaultKind>;
  /** Workload kinds that may be chosen (default: all). */
  readonly workload?: ReadonlySet<WorkloadKind>;
  /** The world's scale (default: drawn from the seed, mostly "none"). */
  readonly scale?: ScaleKind;
  /** Keep a readable trace of the run. */
  readonly trace?: boolean;
  /** The backend (default: chosen from the seed, half the runs each). */
  readonly backend?: Backend;
  /** Only runs whose API server cannot keep up (a capacity limit; implies the Kubernetes backend). */
  readonly overload?: boolean;
}

export interface SimViolation {
  readonly rule: string;
  readonly resource: string;
  /** Simulated ms. */
  readonly at: number;
  readonly message: string;
}

export interface SimResult {
  readonly seed: number;
  readonly violations: SimViolation[];
  readonly history: HistoryEvent[];
  readonly profile: string;
  readonly stats: {
    readonly clients: number;
    readonly holds: number;
    readonly storeCalls: number;
    readonly simulatedMs: number;
    /** Name-ticks of the fault phase (one name, one monitor tick), and of those the ones the liveness oracles looked away. */
    readonly faultPhaseTicks: number;
    readonly excusedTicks: number;
    /** Read answers the read oracle judged. */
    readonly reads: number;
    readonly excusedBy: Readonly<Record<string, number>>;
  };
}

/** The run's timeline. Faults end by FAULTS_END; no client starts after WORKLOAD_END; the quiet tail lets everything settle. */
export const FAULTS_END_MS = 50_000;
export const WORKLOAD_END_MS = 60_000;
export const RUN_MS = 110_000;
const TICK_MS = 100;
const DAEMONS = 3;
/** Names in use in a `names` world: above the 100 a daemon watches by name. */
const SCALE_NAMES: readonly [number, number] = [101, 130];
/** Daemons in a `daemons` world, each with a client waiting for one lock: above the queue's 64. */
const SCALE_DAEMONS: readonly [number, number] = [66, 72];

/** The engine's defaults (15 s lease, 10 s renew deadline), as the daemon runs them. */
const LEASE_MS = 15_000;
const RENEW_DEADLINE_MS = 10_000;
/** After a lease is free, the head of its wait queue has this long to take it (timing.ts). */
const TURN_GRACE_MS = 2_000;
/** Longest store-call deadline a correct engine would use: the renew deadline of the longest lease asked for. */
const LONGEST_DEADLINE_MS = 20_000;
/** Longest lease any request asks for. */
const LONGEST_LEASE_MS = 30_000;
/** How long after a write, with no fault, every daemon has seen it on its watch (a margin, not a bound the engine keeps). */
const WATCH_SIGHT_MS = 2_000;

/** A request that waits less than this for its turn at an overloaded API server excuses nothing: the stall bound absorbs it. */
const OVERLOAD_MIN_WAIT_MS = 100;

/**
 * Store connections an acquiring write (and a queue write, and the read that
 * settles them) leaves to renewals and releases: it starts only while this
 * many are free besides it (docs/design.md 5, "When the store cannot keep up").
 */
const KEPT_FOR_RENEWALS = 1;

/**
 * How late a renewal of a lease of `leaseMs` may come back before its holder
 * gives the lease up, at the worst: sent a renew interval (a third of the
 * lease, 10 % jitter) after the last one, given up at the renew deadline
 * after it, on a clock running fast by MAX_DRIFT (timing.ts).
 */
function renewalSlackMs(leaseMs: number): number {
  const deadlineMs = (leaseMs * RENEW_DEADLINE_MS) / LEASE_MS;
  const intervalMs = Math.min(leaseMs / 3, deadlineMs / 2);
  return (deadlineMs - 1.1 * intervalMs) / (1 + MAX_DRIFT);
}

/** Stall bound: a lock that no client holds, with waiters, outside any fault's excuse, is granted within this. */
export const STALL_BOUND_MS = 4_000;
/** The longest an Acquire client of the workload holds its lock. */
const MAX_HOLD_MS = 20_000;
/** A daemon holding nothing of a name makes at most this many store calls for it in any simulated second. */
export const CALLS_PER_SECOND_BOUND = 40;
/** A waiter sees at most this many grants in a row to claims of one other daemon. */
export const PASSES_IN_A_ROW_BOUND = 25;
/**
 * On a non-fair lock, one budget of hand-offs more (MAX_GRANTS_IN_A_ROW): a
 * waiter whose announcement lands while the holding daemon yields is passed by
 * the grants before the yield and, once in line, by up to a budget after it.
 */
export const NON_FAIR_PASSES_IN_A_ROW_BOUND = PASSES_IN_A_ROW_BOUND + MAX_GRANTS_IN_A_ROW;
/**
 * A writer waiting for a read-write lock sees at most this many readers that
 * began to wait after it granted in a row, with no exclusive grant between:
 * each daemon's readers entry in line ahead of it serves one claim and goes
 * to the tail.
 */
export const READERS_PAST_A_WRITER_BOUND = 8;

/** Each node's monotonic clock runs within this of simulated time: (1 + d) / (1 - d) = 1 + 0.8 / 3. */
const MAX_DRIFT = 0.117;

const MAX_CLIENTS_PER_LOCK = 12;
const ACQUIRE_LEASES = [LEASE_MS, LEASE_MS, 10_000, 20_000, 30_000];
const TRY_LEASES = [5_000, 10_000, 15_000, 20_000, 30_000];
const RENEW_LEASES = [undefined, 5_000, 10_000, 15_000, 20_000, 30_000];

/** What one run may do, chosen from the seed: most runs have a few kinds of fault, some none. */
interface Profile {
  readonly scale: ScaleKind;
  readonly daemons: number;
  /**
   * Where the Leases live: the shared memory store, or the simulated API
   * server, which each daemon's real KubernetesStore calls (drawn from a
   * stream of its own, so a memory run is what it was before).
   */
  readonly backend: Backend;
  readonly apiServer: ApiServerProfile | undefined;
  readonly faults: ReadonlySet<FaultKind>;
  readonly workload: ReadonlySet<WorkloadKind>;
  readonly locks: number;
  readonly elections: number;
  /** Per call, during store-fault phases. */
  readonly storeFaultRate: number;
  readonly phases: ReadonlyArray<readonly [number, number]>;
  readonly baseLatencyMs: readonly number[];
  readonly driftRate: readonly number[];
  readonly wallOffsetMs: readonly number[];
  /**
   * With `skew`: wall clocks that stop for a while or step back (drawn from a
   * stream of their own), each on a node whose daemon holds a lease then, if any.
   */
  readonly wallFaults: readonly WallFault[];
  readonly meanArrivalMs: number;
}

/** With `skew`: one to three wall clocks that stop (for up to three leases) or step back (up to a minute). */
function chooseWallFaults(random: Random): WallFault[] {
  return Array.from({ length: random.int(1, 3) }, (): WallFault => {
    if (random.bool(0.7)) return { kind: "stop", at: random.int(1_000, FAULTS_END_MS - 15_000), ms: random.int(5_000, 45_000) };
    return { kind: "step-back", at: random.int(1_000, FAULTS_END_MS), ms: random.pick([random.int(1, 1_000), random.int(1_000, 60_000)]) };
  });
}

export type Backend = "memory" | "kubernetes";

/** The simulated API server of a kubernetes run: how far its watch cache lags, how long it keeps events and watches. */
interface ApiServerProfile {
  readonly cacheLagMs: number;
  readonly cacheEvents: number;
  readonly maxWatchMs: number;
  readonly bookmarkMs: number;
  /** A Lease an older daemon left without the name label, held by it for this long from the start (0: none). */
  readonly legacyHoldMs: number;
  /** Requests it serves per second (an API server that cannot keep up); undefined: no limit. */
  readonly callsPerSecond: number | undefined;
  /**
   * With a limit: a flood of fresh reads on one daemon, half again as many
   * per second as the server serves, from `atMs` for `ms` (its store calls
   * then queue in the engine, behind or after its renewals).
   */
  readonly flood: { readonly atMs: number; readonly ms: number } | undefined;
}

/** A quarter of the API servers (or all, `overload`) serve few requests per second, drawn from a stream of their own. */
function chooseApiServer(random: Random, capacity: Random, overload: boolean): ApiServerProfile {
  const limited = capacity.bool(0.25) || overload;
  const callsPerSecond = limited ? capacity.pick([20, 50, 100]) : undefined;
  const flood = limited ? { atMs: capacity.int(3_000, 35_000), ms: capacity.int(4_000, 12_000) } : undefined;
  return {
    callsPerSecond,
    flood,
    cacheLagMs: random.pick([0, 0, 5, 50, 300]),
    cacheEvents: random.pick([50, 200, 1_000]),
    maxWatchMs: random.pick([5_000, 30_000, 300_000]),
    bookmarkMs: random.pick([1_000, 10_000, 60_000]),
    legacyHoldMs: random.bool(0.3) ? random.int(3_000, 20_000) : 0,
  };
}

/** Most seeds run at the usual scale; 3 % each are `names` and `daemons` worlds. */
function chooseScale(random: Random, options: SimOptions): ScaleKind {
  const draw = random.next();
  return options.scale ?? (draw < 0.03 ? "names" : draw < 0.06 ? "daemons" : "none");
}

function chooseProfile(random: Random, options: SimOptions, wallRandom: Random, scaleRandom: Random): Profile {
  const scale = chooseScale(scaleRandom, options);
  const daemons = scale === "daemons" ? scaleRandom.int(...SCALE_DAEMONS) : DAEMONS;
  const allowedFaults = options.faults ?? new Set(FAULT_KINDS);
  const allowedWork = options.workload ?? new Set(ALL_WORKLOAD_KINDS);
  const quiet = random.bool(0.15);
  const faults = new Set<FaultKind>();
  for (const kind of FAULT_KINDS) if (!quiet && random.bool(0.4) && allowedFaults.has(kind)) faults.add(kind);
  const workload = new Set<WorkloadKind>();
  for (const kind of WORKLOAD_KINDS) if (random.bool(0.75) && allowedWork.has(kind)) workload.add(kind);
  if (workload.size === 0) workload.add([...allowedWork][0] ?? "acquire");
  const onlyExtra = [...allowedWork].every((kind) => !(WORKLOAD_KINDS as readonly string[]).includes(kind));
  if (allowedWork.has("semaphore") && (stream(options.seed, "semaphore").bool(0.4) || onlyExtra)) workload.add("semaphore");
  if (allowedWork.has("rwlock") && (stream(options.seed, "rwlock").bool(0.4) || onlyExtra)) workload.add("rwlock");
  if (allowedWork.has("nonfair") && (stream(options.seed, "nonfair").bool(0.3) || onlyExtra)) workload.add("nonfair");
  const phases: Array<[number, number]> = [];
  for (let i = random.int(1, 3); i > 0; i--) {
    const start = random.int(0, FAULTS_END_MS - 3_000);
    phases.push([start, Math.min(FAULTS_END_MS - 1, start + random.int(2_000, 15_000))]);
  }
  const skew = faults.has("skew");
  const locks = random.int(1, 3);
  const backendRandom = stream(options.seed, "backend");
  const backend = options.overload === true ? "kubernetes" : (options.backend ?? (backendRandom.bool(0.5) ? "kubernetes" : "memory"));
  return {
    scale,
    daemons,
    backend,
    apiServer:
      backend === "kubernetes" ? chooseApiServer(backendRandom, stream(options.seed, "capacity"), options.overload === true) : undefined,
    faults,
    workload,
    locks: scale === "names" ? scaleRandom.int(...SCALE_NAMES) : locks,
    elections: workload.has("campaign") || workload.has("observe") ? random.int(1, 2) : 0,
    storeFaultRate: random.pick([0.005, 0.02, 0.05, 0.15]),
    phases,
    baseLatencyMs: Array.from({ length: daemons }, () => random.pick([0, 0, 1, 2, 5, 10, 25])),
    // Any two clocks apart by at most 80 % of the safety margin over one lease: lease - renew
    // deadline is a third of the lease, so two rates differ by at most 26.7 % (each within 11.7 %).
    driftRate: Array.from({ length: daemons }, () => (skew ? 1 + between(random, -MAX_DRIFT, MAX_DRIFT) : 1)),
    wallOffsetMs: Array.from({ length: daemons }, () => (skew ? random.int(-60_000, 60_000) : 0)),
    meanArrivalMs: random.pick([200, 400, 800]),
    wallFaults: skew ? chooseWallFaults(wallRandom) : [],
  };
}

function describeProfile(p: Profile): string {
  const api = p.apiServer;
  return [
    ...(p.scale !== "none" ? [`scale=${p.scale} daemons=${p.daemons}`] : []),
    `backend=${p.backend}`,
    ...(api === undefined
      ? []
      : [
          `apiServer=lag:${api.cacheLagMs},events:${api.cacheEvents},watch:${api.maxWatchMs},bookmark:${api.bookmarkMs},legacy:${api.legacyHoldMs}${
            api.callsPerSecond === undefined ? "" : `,capacity:${api.callsPerSecond}/s`
          }`,
        ]),
    `faults=${[...p.faults].join(",") || "none"}`,
    `workload=${[...p.workload].join(",")}`,
    `locks=${p.locks} elections=${p.elections}`,
    `storeFaultRate=${p.storeFaultRate}`,
    `phases=${p.phases.map(([a, b]) => `${a}-${b}`).join(",")}`,
    `latency=${p.baseLatencyMs.join("/")}`,
    `drift=${p.driftRate.map((r) => r.toFixed(4)).join("/")}`,
    `wallOffset=${p.wallOffsetMs.join("/")}`,
    ...(p.wallFaults.length > 0 ? [`wallFaults=${p.wallFaults.map((w) => `${w.kind}@${w.at}:${w.ms}`).join(",")}`] : []),
    `arrival=${p.meanArrivalMs}`,
  ].join(" ");
}

/** One daemon process: an engine on its own connection and its own view of the clock. */
class Daemon implements DaemonLink {
  readonly engine: Engine;
  readonly store: FaultyStore;
  readonly clock: DaemonClock;
  readonly streams = new Set<Stream>();
  readonly clockRate: number;
  state: "up" | "frozen" | "stopping" | "dead" = "up";
  /**
   * Simulated ms when this process started, or a fault of it (freeze,
   * partition, broken watch) last ended; Infinity while one lasts.
   */
  troubledAt: number;
  /** Partitions and broken or slow watches in progress: while any is, the daemon may hear of a change late or never. */
  cut = 0;
  /**
   * Names it watches but no client of it wanted when it was last back from a
   * cut-off: it counts their hold (`holder`, `token`) from then, until `until`,
   * for a waiter that comes later (`Simulation.countedLate`).
   */
  readonly lateCounts = new Map<
    string,
    { readonly until: number; readonly holder: string; readonly token: number; readonly why: string }
  >();
  /** Its store calls hanging now (a hang, or a reply that comes late). */
  hung = 0;
  /** Of those, the ones a call fault holds (not a wait for its turn at an overloaded API server). */
  faultHung = 0;
  /** When the last of its requests that waited their turn at an overloaded API server (100 ms or more) is answered. */
  backloggedUntil = 0;
  /**
   * Until when it hears nothing and covers no new name, plus a turn grace: no
   * watch of its was open while a request of its waited its turn at an
   * overloaded API server (the list that would open one, seed 374367).
   */
  deafUntil = 0;
  /**
   * Faulty reads of its in flight that began while no watch of its was open:
   * its watch's list may be waiting for one of them (its check of a name the
   * list did not return), so it hears nothing and covers no new name until
   * they end, and a turn grace after (seed 471612: two checks hung 2 s each).
   */
  deafReads = 0;
  /** Set while its hung calls take every store connection it allows itself: it can make no store call. */
  unblock: (() => void) | undefined;
  /**
   * Set while its faulty hung calls take every store connection but those kept
   * for renewals and releases: it sends no acquiring write or queue write.
   */
  takesHeld: (() => void) | undefined;

  /** Frozen, cut off, or every store connection hung: its clients can be served only once it is back. */
  get unreachable(): boolean {
    return this.state === "frozen" || this.cut > 0 || this.unblock !== undefined;
  }

  /** Its waiters cannot be served now: it is unreachable, or can send no acquiring write. */
  get cannotAcquire(): boolean {
    return this.unreachable || this.takesHeld !== undefined;
  }

  /** It hears nothing and covers no new name now (`deafUntil`, `deafReads`). */
  get deaf(): boolean {
    return this.deafReads > 0 || this.deafUntil > this.sim.clock.now();
  }

  constructor(
    private readonly sim: Simulation,
    readonly slot: number,
    readonly identity: string,
  ) {
    const profile = sim.profile;
    this.troubledAt = sim.clock.now();
    this.clockRate = profile.driftRate[slot]!;
    const local = new DriftClock(sim.clock, this.clockRate, sim.faultRandom.int(0, 1_000_000), sim.walls[slot]);
    this.clock = new DaemonClock(local);
    const storeRandom = stream(sim.seed, `store/${identity}`);
    this.store = new FaultyStore(
      sim.shared,
      sim.clock,
      {
        decide: (operation, name, hasDeadline, acquiring) => sim.decideFault(this, operation, name, hasDeadline, acquiring),
        faultBegan: (fault, operation, name, hasDeadline) => sim.storeFaultBegan(this, fault, operation, name, hasDeadline),
        firstSight: (lease) => sim.leaseFirstSeen(lease),
        waited: (operation, name, waitMs, deaf) => sim.storeWaited(this, operation, name, waitMs, deaf),
        watchHeldUp: (from, to) => sim.watchHeldUp(this, from, to),
        deafRead: () => {
          this.deafReads += 1;
          return () => {
            this.deafReads -= 1;
            this.deafUntil = Math.max(this.deafUntil, sim.clock.now() + TURN_GRACE_MS);
          };
        },
        traceCall: sim.tracing ? (line) => sim.record(identity, { ev: "note", daemon: slot, detail: `store: ${line}` }) : undefined,
      },
      { clock: this.clock, random: () => storeRandom.next() },
    );
    this.store.baseLatencyMs = profile.baseLatencyMs[slot]!;
    const jitter = stream(sim.seed, `jitter/${identity}`);
    this.engine = new Engine({
      store: this.store,
      identity,
      clock: this.clock,
      random: () => jitter.next(),
      leaseDurationMs: LEASE_MS,
      renewDeadlineMs: RENEW_DEADLINE_MS,
    });
    // A deletion it learned from a call or a relist holds the name off for the longest lease seen there (design 3.2).
    this.engine.cache.onUnseenRenewals = (name, end) =>
      sim.heldOffAfterDeletion(name, Math.max(0, end - this.clock.now()) / this.clockRate + TURN_GRACE_MS);
    void this.engine.start();
  }

  gone(): boolean {
    return this.state === "dead" || this.state === "stopping";
  }

  io(fn: () => void): void {
    this.store.deliver(fn);
  }

  breakStreams(): void {
    for (const s of [...this.streams]) s.broken();
  }
}

type AnyClient = AcquireClient | TryClient | CampaignClient | ObserverClient;

/** A daemon frozen or partitioned, and the longest lease written for each name meanwhile. */
interface CutOff {
  readonly daemon: Daemon;
  readonly why: string;
  readonly longest: Map<string, number>;
}

/** Most timers that may fire within one tick: beyond it the run is spinning (a livelock) and is stopped. */
const MAX_TIMERS_PER_TICK = 100_000;

/** The simulated clock, counting the timers that fire, so that a spinning engine ends the run instead of hanging it. */
class SimClock extends FakeClock {
  fired = 0;

  override setTimer(delayMs: number, callback: () => void): Timer {
    return super.setTimer(delayMs, () => {
      if (++this.fired > MAX_TIMERS_PER_TICK) throw new Error(`livelock: more than ${MAX_TIMERS_PER_TICK} timers fired within one tick`);
      callback();
    });
  }
}

export class Simulation implements ClientWorld {
  readonly clock = new SimClock();
  /** Where the Leases live: the memory store, or the simulated API server (see Profile.backend). */
  readonly shared: MemoryStore | KubeBackend;
  readonly profile: Profile;
  readonly random: Random;
  readonly faultRandom: Random;
  /** Draws for steering a fault toward a bad moment, apart so the other streams stay as they are. */
  private readonly buggify: Random;
  readonly daemons: Daemon[] = [];
  /** Each node's wall clock, which its daemons (one after another) read. */
  readonly walls: NodeWallClock[];
  /** Draws for the wall-clock faults, apart so the other streams stay as they are. */
  private readonly wallRandom: Random;
  private readonly incarnations: number[] = [];
  private readonly history: HistoryEvent[] = [];
  /** When each Lease was deleted by hand. */
  private readonly deletedAt = new Map<string, number[]>();
  /** When each Lease lost its name label by hand. */
  private readonly relabelledAt = new Map<string, number[]>();
  /** When each Lease was deleted by hand while no running daemon watched it: nobody could restore it. */
  private readonly unwatchedDeletedAt = new Map<string, number[]>();
  /** For each such deletion (by Lease name and time): the daemon processes that knew then of a hold still running. */
  private readonly awareAtDeletion = new Map<string, Set<string>>();
  private readonly violations: SimViolation[] = [];
  /** Every version of every Lease as it was written, and every read answered: the read oracle. */
  private readonly reads = new ReadOracle();
  private readonly excuses = new Excuses(() => this.clock.now());
  private readonly clients: AnyClient[] = [];
  /** Clients the monitor still looks at: not done, or TryAcquire holders whose lease may still stand. */
  private active: AnyClient[] = [];
  /** Last time a client of a daemon (by identity) held a lease (by name). */
  private readonly lastHeld = new Map<string, number>();
  private readonly resources: Resource[] = [];
  private clientCount = 0;
  private readonly blockedSince = new Map<string, number>();
  private readonly reported = new Set<string>();
  private historyFaults = 0;
  /** Store calls go into the history as notes (for --verbose; the checker passes over them). */
  readonly tracing: boolean;

  constructor(
    readonly seed: number,
    options: SimOptions,
  ) {
    this.tracing = options.trace === true;
    this.random = stream(seed, "workload");
    this.semaphoreRandom = stream(seed, "semaphore-workload");
    this.rwRandom = stream(seed, "rwlock-workload");
    this.nonFairRandom = stream(seed, "nonfair-workload");
    this.faultRandom = stream(seed, "faults");
    this.buggify = stream(seed, "buggify");
    this.wallRandom = stream(seed, "wall-clock");
    this.profile = chooseProfile(stream(seed, "profile"), { ...options, seed }, this.wallRandom, stream(seed, "scale"));
    const api = this.profile.apiServer;
    this.shared =
      api === undefined
        ? new MemoryStore()
        : new KubeBackend(this.clock, {
            cacheLagMs: () => api.cacheLagMs,
            cacheEvents: api.cacheEvents,
            maxWatchMs: api.maxWatchMs,
            bookmarkMs: api.bookmarkMs,
            // Only during the fault phase: the quiet tail lets everything settle.
            callsPerSecond: () => (this.clock.now() < FAULTS_END_MS ? api.callsPerSecond : undefined),
          });
    this.walls = this.profile.wallOffsetMs.map((offset) => new NodeWallClock(this.clock, offset));
    for (let i = 0; i < this.profile.locks; i++) this.resources.push(this.resource("lock", `l${i}`));
    for (let i = 0; i < this.profile.elections; i++) this.resources.push(this.resource("election", `e${i}`));
    if (this.profile.workload.has("semaphore")) {
      for (let i = this.semaphoreRandom.int(1, 2); i > 0; i--) {
        const name = `s${this.resources.filter((r) => r.kind === "semaphore").length}`;
        this.resources.push({ kind: "semaphore", name, leaseName: `msync-semaphore-${name}`, permits: this.semaphoreRandom.int(1, 4) });
      }
    }
    if (this.profile.workload.has("nonfair")) this.resources.push({ kind: "lock", name: "n0", leaseName: "msync-lock-n0", nonFair: true });
    if (this.profile.workload.has("rwlock")) {
      for (let i = this.rwRandom.int(1, 2); i > 0; i--) {
        const name = `w${this.resources.filter((r) => r.kind === "rwlock").length}`;
        this.resources.push({ kind: "rwlock", name, leaseName: `msync-rwlock-${name}` });
      }
    }
  }

  /** Draws of the semaphore workload, apart from the others (see EXTRA_WORKLOAD_KINDS). */
  private readonly semaphoreRandom: Random;
  /** Draws of the read-write lock workload, likewise. */
  private readonly rwRandom: Random;
  /** Draws of the non-fair lock's clients, a stream of their own (see EXTRA_WORKLOAD_KINDS). */
  private readonly nonFairRandom: Random;

  // ---- the world as clients see it --------------------------------------

  now(): number {
    return this.clock.now();
  }

  timer(ms: number, fn: () => void): Timer {
    return this.clock.setTimer(ms, fn);
  }

  record(client: string, fields: SimEventFields): void {
    const ts = BigInt(Math.round(this.clock.now() * 1000)) * 1000n;
    this.history.push({ ts, client, ...fields } as HistoryEvent);
    if ((fields.ev === "acquired" || fields.ev === "elected") && fields.name !== undefined)
      this.lastGrant.set(`msync-${fields.kind}-${fields.name}`, this.clock.now());
  }

  /** When each lease (by Lease name) was last granted to a client: a grant between two ticks ends a stall. */
  private readonly lastGrant = new Map<string, number>();

  /**
   * The same limit for holds (docs/design.md 3.1): when no running daemon
   * watched a Lease deleted by hand, nobody restores it, and a daemon that
   * never saw the hold on it cannot keep others off until its end, nor can
   * those who take the Lease after it. An overlap is excused only when such a
   * deletion came between the two grants and the first grant after it (the
   * one that re-created the Lease) came from a daemon that had heard of no
   * token as high as the earlier hold's.
   */
  private unseenAcrossDeletion(resource: Resource, clients: readonly string[], deletions: readonly number[], at: bigint): boolean {
    type Grant = HistoryEvent & { heard?: number };
    const grants = this.history.filter((e) => (e.ev === "acquired" || e.ev === "elected") && e.name === resource.name) as Grant[];
    const ms = (e: Grant) => Number(e.ts / 1000n) / 1000;
    // The later hold began at the violation's instant; the earlier one is its client's last grant before that.
    const later = grants.find((e) => e.client === clients[1] && e.ts === at);
    const earlier = grants.filter((e) => e.client === clients[0] && e.ts <= at).at(-1);
    if (earlier?.token === undefined || later === undefined) return false;
    return deletions.some((d) => {
      if (d < ms(earlier) || d > ms(later)) return false;
      const recreated = grants.find((e) => ms(e) >= d);
      if (recreated?.heard !== undefined && recreated.heard < earlier.token!) return true;
      // Or the daemon that re-created it knew of no hold still running when the Lease was deleted.
      // (On a semaphore, the daemon whose seat that version first shows.)
      const written = this.history.find(
        (e) =>
          e.ev === "lease" &&
          e.name === resource.leaseName &&
          e.transitions === recreated?.token &&
          ((e.holderIdentity ?? "") !== "" || (e.seated ?? []).length > 0) &&
          ms(e) >= d,
      );
      const seated = written?.seated?.[0];
      const writer = written?.holderIdentity || (seated === undefined ? undefined : untagged(seated));
      const aware = this.awareAtDeletion.get(`${resource.leaseName}@${d}`);
      return writer !== undefined && aware !== undefined && !aware.has(writer);
    });
  }

  /** A hold that a deletion interrupted, and that somebody was granted after, before it ended. */
  private overtakenAcrossDeletion(resource: Resource, client: string, deletions: readonly number[], endedAt: number): boolean {
    const grants = this.history.filter((e) => (e.ev === "acquired" || e.ev === "elected") && e.name === resource.name);
    const ms = (e: HistoryEvent) => Number(e.ts / 1000n) / 1000;
    const grantedAt = grants.filter((e) => e.client === client).at(-1);
    if (grantedAt === undefined) return false;
    return deletions.some(
      (d) => d >= ms(grantedAt) && d <= endedAt && grants.some((e) => e.client !== client && ms(e) >= d && ms(e) <= endedAt),
    );
  }

  /**
   * The limit of fencing across a deletion by hand (docs/design.md 3.2): a
   * Lease deleted while no running daemon watched it is not restored, and a
   * daemon re-creating it counts on from the highest token it has heard of, so
   * it may repeat tokens issued where it did not hear them. A deletion splits
   * the Lease's history into epochs (checker.ts): a violation between two
   * grants, or two Lease versions, of one epoch is never excused; one across
   * epochs only when such a deletion lies between them, and for a repeated or
   * lower token only when the later grant's token is above what its daemon had
   * heard of (a daemon repeating a token it knew is defect 3 of issue 11).
   */
  private reissuedAcrossDeletion(v: {
    rule: string;
    resource: string;
    clients: readonly string[];
    message: string;
    at: bigint;
    across?: { readonly from: bigint; readonly to: bigint };
  }): boolean {
    const resource = this.resources.find((r) => `${r.kind}/${r.name}` === v.resource || r.leaseName === v.resource);
    if (resource === undefined) return false;
    const deletions = this.unwatchedDeletedAt.get(resource.leaseName);
    if (deletions === undefined) return false;
    if (v.rule === "overlap" || v.rule === "permits-exceeded" || v.rule === "rw-overlap")
      return this.unseenAcrossDeletion(resource, v.clients, deletions, v.at);
    // The hold that ended was overtaken by one on the re-created Lease (the overlap above): that one is its successor.
    if (v.rule === "no-handover") return this.overtakenAcrossDeletion(resource, v.clients[0]!, deletions, Number(v.at / 1000n) / 1000);
    if (v.across === undefined) return false;
    const { from, to } = v.across;
    const between = deletions.some((d) => {
      const ns = BigInt(Math.round(d * 1000)) * 1000n;
      return ns > from && ns <= to;
    });
    if (!between) return false;
    if (v.rule === "lease-history" || v.rule === "token-mismatch") return true;
    if (v.rule !== "token-order" && v.rule !== "duplicate-token") return false;
    // The later grant of the pair (the violation's instant): above what its daemon had heard of.
    const later = this.history.find(
      (e) => e.client === v.clients[1] && (e.ev === "acquired" || e.ev === "elected") && e.name === resource.name && e.ts === v.at,
    ) as (HistoryEvent & { heard?: number }) | undefined;
    return later?.token !== undefined && later.heard !== undefined && later.token > later.heard;
  }

  /**
   * The limit of 3.2: a Lease deleted by hand and created by a daemon that
   * never saw its tokens before a watcher restored it (one watch event, which
   * an API server's cache may delay, and one write) is not covered. Such a
   * deletion counts as one no running daemon could restore: the first write
   * after it is an acquisition, not a free restored Lease.
   */
  private unrestoredInTime(): void {
    for (const [name, deletions] of this.deletedAt) {
      for (const at of deletions) {
        const ns = BigInt(Math.round(at * 1000)) * 1000n;
        const next = this.history.find(
          (e) => e.ev === "lease" && e.name === name && e.ts > ns && (e as { deleted?: boolean }).deleted !== true,
        );
        // (On a semaphore, a create with a seat: a restore has none.)
        if (next === undefined || ((next.holderIdentity ?? "") === "" && (next.seated ?? []).length === 0)) continue;
        const unwatched = this.unwatchedDeletedAt.get(name) ?? [];
        if (!unwatched.includes(at)) this.unwatchedDeletedAt.set(name, [...unwatched, at]);
      }
    }
  }

  winding(): boolean {
    return this.clock.now() >= WORKLOAD_END_MS;
  }

  violation(rule: string, resource: string, message: string): void {
    this.violations.push({ rule, resource, at: this.clock.now(), message });
  }

  toldDeleted(resource: Resource, holder: string, since: number, daemon: DaemonLink, token: number): void {
    // Since the write that granted it landed: its reply may have come much later (a frozen daemon).
    const identity = (daemon as Daemon).identity;
    const written = this.history.find(
      (e) => e.ev === "lease" && e.name === resource.leaseName && e.holderIdentity === identity && e.transitions === token,
    );
    const from = written === undefined ? since : Math.min(since, Number(written.ts) / 1e6);
    if ((this.deletedAt.get(resource.leaseName) ?? []).some((at) => at >= from)) return;
    // A Lease relabelled by hand leaves the holder's watch; a daemon whose read to confirm it is still there fails
    // believes it deleted, and its holder stops (docs/design.md 3.10: safe). Seed 211436: the read met a partition.
    if ((this.relabelledAt.get(resource.leaseName) ?? []).some((at) => at >= from)) return;
    this.violation(
      "spurious-loss",
      `${resource.kind}/${resource.name}`,
      `${holder} was told its lease was deleted, but nobody deleted ${resource.leaseName} since it was granted at ${(since / 1000).toFixed(3)} s`,
    );
  }

  readAnswered(answer: Omit<ReadAnswer, "reader"> & { readonly reader?: string }): void {
    const reader = answer.reader ?? `g${this.reads.count + 1}`;
    this.reads.answered({ ...answer, reader });
    if (!this.tracing) return;
    const said =
      answer.lock !== undefined
        ? `held=${answer.lock.held} ${answer.lock.holder || "-"} token ${answer.lock.token} remaining ${Math.round(answer.lock.remainingMs)} ms`
        : `${answer.leader!.leader || "(nobody)"} term ${answer.leader!.term}`;
    const [kind, name] = [answer.kind, answer.leaseName.replace(`msync-${answer.kind}-`, "")];
    const detail = `${answer.call}${answer.fresh ? " fresh" : ""} answered: ${said}`;
    this.record(reader, { ev: "note", daemon: answer.slot, kind, name, detail });
  }

  holding(daemon: DaemonLink, resource: Resource): void {
    this.lastHeld.set(`${(daemon as Daemon).identity}/${resource.leaseName}`, this.clock.now());
  }

  faultFree(link: DaemonLink, leaseName: string, since = this.clock.now()): boolean {
    const daemon = link as Daemon;
    if (daemon.gone() || daemon.unreachable || daemon.troubledAt >= since) return false;
    return this.excuses.excusedUntil(leaseName) < this.clock.now();
  }

  // ---- the run -------------------------------------------------------------

  async run(): Promise<SimResult> {
    this.record("harness", { ev: "run-start", detail: describeProfile(this.profile) });
    this.watchLeases();
    this.excuses.stand((name) => this.countedLate(name));
    this.excuses.stand(() => this.saturated());
    this.legacyHold();
    for (let slot = 0; slot < this.profile.daemons; slot++) this.startDaemon(slot);
    this.scheduleWorkload();
    this.scheduleFaults();
    this.scheduleFlood();
    while (this.clock.now() < RUN_MS) {
      this.clock.fired = 0;
      try {
        await this.clock.advance(TICK_MS);
      } catch (err) {
        this.violation("livelock", "-", (err as Error).message);
        break;
      }
      this.monitor();
      if (this.clock.now() === WORKLOAD_END_MS) this.windDown();
    }
    this.record("harness", { ev: "workload-end" });
    this.finalChecks();
    return this.result();
  }

  private resource(kind: "lock" | "election" | "semaphore", name: string): Resource {
    return { kind, name, leaseName: `msync-${kind}-${name}` };
  }

  private startDaemon(slot: number): Daemon {
    const incarnation = (this.incarnations[slot] ?? -1) + 1;
    this.incarnations[slot] = incarnation;
    const daemon = new Daemon(this, slot, `d${slot}_${incarnation}`);
    this.daemons[slot] = daemon;
    this.record("harness", { ev: "daemon-started", target: daemon.identity, daemon: slot });
    return daemon;
  }

  /** When the harness saw each Lease's holder last acquire, renew or release (`renewalOf` change). */
  private readonly renewals = new Map<string, { readonly stamp: string; readonly at: number }>();
  /** The same for each seat of a semaphore (by Lease name, then identity): when the harness saw it taken or renewed. */
  private readonly seatRenewals = new Map<string, Map<string, { readonly stamp: string; readonly at: number }>>();

  /**
   * When `identity`'s hold of `record` runs out as the others count it, unless renewed: the hold of its writer,
   * or its seat's on a semaphore. Undefined when it holds nothing there.
   */
  private holdOf(record: LeaseRecord, identity: string): { readonly renewedAt: number; readonly leaseMs: number } | undefined {
    const name = record.name;
    // The others count from when they saw its last renewal: a daemon that first saw it later, from then.
    const firstSeen = this.firstSeen.get(name) ?? -Infinity;
    if (record.holderIdentity === identity) {
      const renewedAt = Math.max(this.renewals.get(name)?.at ?? this.clock.now(), firstSeen);
      return { renewedAt, leaseMs: record.leaseDurationSeconds * 1000 };
    }
    // (A read-write lock's daemon may have two seats, its readers' and its writer's: the one that ends last.)
    let latest: { readonly renewedAt: number; readonly leaseMs: number } | undefined;
    for (const seat of record.seats ?? []) {
      if (untagged(seat.identity) !== identity || seat.released === true) continue;
      const renewedAt = Math.max(this.seatRenewals.get(name)?.get(seat.identity)?.at ?? this.clock.now(), firstSeen);
      const leaseMs = seat.durationSeconds * 1000;
      if (latest === undefined || renewedAt + leaseMs > latest.renewedAt + latest.leaseMs) latest = { renewedAt, leaseMs };
    }
    return latest;
  }

  /** The harness's own watch on the Leases, for the checker's Lease-history rules. */
  private watchLeases(): void {
    this.shared.watch((event) => {
      const leases: readonly LeaseRecord[] = event.type === "upsert" ? [event.lease] : event.type === "synced" ? event.leases : [];
      for (const lease of leases) {
        this.reads.saw(lease.name, this.clock.now(), lease);
        const stamp = renewalOf(lease);
        if (this.renewals.get(lease.name)?.stamp !== stamp) this.renewals.set(lease.name, { stamp, at: this.clock.now() });
        for (const seat of lease.seats ?? []) {
          if (seat.released === true) continue;
          const seats = this.seatRenewals.get(lease.name) ?? new Map<string, { stamp: string; at: number }>();
          this.seatRenewals.set(lease.name, seats);
          const seatStamp = `${seat.acquisition}|${seat.renewMs}|${seat.durationSeconds}`;
          if (seats.get(seat.identity)?.stamp !== seatStamp) seats.set(seat.identity, { stamp: seatStamp, at: this.clock.now() });
        }
        for (const fault of this.cutOffs)
          fault.longest.set(lease.name, Math.max(fault.longest.get(lease.name) ?? 0, lease.leaseDurationSeconds));
        this.record("harness", {
          ev: "lease",
          name: lease.name,
          resourceVersion: lease.version,
          holderIdentity: lease.holderIdentity,
          transitions: lease.transitions,
          ...(lease.kind === "semaphore" || lease.kind === "rwlock"
            ? { seated: (lease.seats ?? []).filter((seat) => seat.released !== true).map((seat) => seat.identity) }
            : {}),
          ...(lease.exclusiveToken === undefined ? {} : { exclusiveToken: lease.exclusiveToken }),
        });
      }
      if (event.type === "delete") {
        this.reads.saw(event.name, this.clock.now(), undefined);
        // A new epoch of the Lease's history begins (checker.ts).
        this.record("harness", { ev: "lease", name: event.name, resourceVersion: event.version, deleted: true, detail: "Lease deleted" });
      }
    });
  }

  /**
   * On the API server, some runs start with a Lease an older daemon holds and
   * renews without the name label (issue 19, defect 5): nobody may take it
   * meanwhile, and every Observe of it on a daemon that runs and is reachable
   * must report its holder by the time it gives the Lease back.
   */
  private legacyHold(): void {
    const holdMs = this.profile.apiServer?.legacyHoldMs ?? 0;
    if (!(this.shared instanceof KubeBackend) || holdMs === 0) return;
    const resource = this.resources.find((r) => r.kind === "election") ?? this.resources.find((r) => r.kind === "lock")!;
    const { identity, holder } = this.shared.legacyHold(resource.leaseName, resource.kind as "lock" | "election", holdMs);
    const shared = this.shared;
    this.record("harness", {
      ev: "note",
      name: resource.leaseName,
      detail: `an older daemon holds ${resource.leaseName} unlabelled for ${holdMs} ms`,
    });
    this.excuses.point(resource.leaseName, 0, holdMs + LEASE_MS / (1 - MAX_DRIFT) + TURN_GRACE_MS, "legacy-hold");
    // Checked just before it gives the Lease back, unless it lost it meanwhile: shortened by hand, it may run out
    // between renewals. The Lease has no duration annotation of ours, so daemons count the duration written: one that
    // ran out on the fastest clock since the last renewal is over (seed 372667: 1 s, renewed every 2 s).
    this.clock.setTimer(holdMs - 1, () => {
      const record = shared.peek(resource.leaseName);
      if (record?.holderIdentity !== identity) return;
      const renewedAt = this.renewals.get(resource.leaseName)?.at ?? 0;
      if (this.clock.now() >= renewedAt + record.leaseDurationSeconds * 1000 * (1 - MAX_DRIFT)) return;
      this.observersReport(resource, holder, `${holder} of an older daemon has held the unlabelled Lease since 0 s`);
    });
  }

  /**
   * Every Observe of `resource` that had time to hear of the current holder
   * reports `leader`: those that began 6 s ago or more, on a daemon that has
   * run unfrozen and reachable for 6 s, with no request waiting its turn at
   * an overloaded API server meanwhile, outside store-fault phases (a backoff
   * or two, and a watch resumed). (Seed 261367: 70 daemons at 20 requests a
   * second, each list and read waited 2.6-12 s.)
   */
  private observersReport(resource: Resource, leader: string, why: string): void {
    const now = this.clock.now();
    if (this.profile.phases.some(([a, b]) => a <= now && b >= now - 6_000)) return;
    for (const [client, since] of this.observedSince) {
      const daemon = client.daemon as Daemon;
      if (client.resource !== resource || client.done || client.stalled || now - since < 6_000) continue;
      if (daemon.state !== "up" || daemon.cut > 0 || now - Math.max(daemon.troubledAt, daemon.backloggedUntil) < 6_000) continue;
      if (client.lastLeader?.leader === leader) continue;
      this.violation(
        "stale-leader",
        `${resource.kind}/${resource.name}`,
        `${client.id} on ${daemon.identity}, observing since ${(since / 1000).toFixed(3)} s, was last told ${
          client.lastLeader === undefined ? "nothing" : `${client.lastLeader.leader || "(nobody)"} term ${client.lastLeader.term}`
        }, but ${why}`,
      );
    }
  }

  /** When each Observe began. */
  private readonly observedSince = new Map<ObserverClient, number>();

  // ---- workload ------------------------------------------------------------

  private liveDaemon(): Daemon | undefined {
    const live = this.daemons.filter((d) => !d.gone());
    return live.length === 0 ? undefined : this.random.pick(live);
  }

  private scheduleWorkload(): void {
    // Clients arrive as a Poisson process, from `r`, until the workload ends.
    const arrivals = (r: Random, spawn: () => void) => {
      const arrive = () => {
        if (this.clock.now() >= WORKLOAD_END_MS) return;
        spawn();
        this.clock.setTimer(-Math.log(1 - r.next()) * this.profile.meanArrivalMs, arrive);
      };
      this.clock.setTimer(r.int(0, 500), arrive);
    };
    arrivals(this.random, () => this.spawn());
    if (this.profile.workload.has("semaphore")) arrivals(this.semaphoreRandom, () => this.spawnAtSemaphore());
    if (this.profile.workload.has("rwlock")) arrivals(this.rwRandom, () => this.spawnAtRWLock());
    if (this.profile.workload.has("nonfair")) arrivals(this.nonFairRandom, () => this.spawnAtNonFairLock());
    if (this.profile.scale === "names") this.manyNames();
    if (this.profile.scale === "daemons") this.manyDaemons();
  }

  /** One daemon's clients take every lock within the first seconds: more than 100 names in use at once. */
  private manyNames(): void {
    const daemon = this.daemons[0]!;
    const locks = this.resources.filter((r) => r.kind === "lock" && r.nonFair !== true);
    locks.forEach((lock, i) =>
      this.clock.setTimer(i * 40, () => {
        if (daemon.gone()) return;
        const r = this.random;
        const client = new TryClient(this, this.nextId("t"), daemon, lock, {
          leaseMs: r.pick(TRY_LEASES),
          holdMs: r.int(5_000, 25_000),
          abandon: false,
          renewLeases: RENEW_LEASES,
        });
        this.adopt(client);
        client.start();
      }),
    );
  }

  /** A client on every daemon waits for the first lock, all within a second: more daemons queued than the queue holds. */
  private manyDaemons(): void {
    const lock = this.resources.find((r) => r.kind === "lock" && r.nonFair !== true)!;
    for (const daemon of this.daemons) {
      this.clock.setTimer(this.random.int(500, 1_500), () => {
        if (daemon.gone()) return;
        const client = new AcquireClient(this, this.nextId("a"), daemon, lock, {
          leaseMs: LEASE_MS,
          holdMs: this.random.int(200, 800),
          waitTimeoutMs: undefined,
          cancelAfterMs: undefined,
          preCancelled: false,
        });
        this.adopt(client);
        client.start();
      });
    }
  }

  private adopt(client: AnyClient): void {
    this.clients.push(client);
    this.active.push(client);
  }

  occupiedAgain(client: TryClient): void {
    if (!this.active.includes(client)) this.active.push(client);
  }

  private nextId(prefix: string): string {
    this.clientCount += 1;
    return `${prefix}${this.clientCount}`;
  }

  /** One client of a semaphore: blocking (some hot, handing permits on fast on one daemon), or TryAcquire. */
  private spawnAtSemaphore(): void {
    const r = this.semaphoreRandom;
    const live = this.daemons.filter((d) => !d.gone());
    const semaphores = this.resources.filter(
      (res) => res.kind === "semaphore" && this.active.filter((c) => !c.done && c.resource === res).length < MAX_CLIENTS_PER_LOCK,
    );
    if (live.length === 0 || semaphores.length === 0) return;
    const daemon = r.pick(live);
    const semaphore = r.pick(semaphores);
    const draw = r.next();
    if (draw < 0.1) {
      const until = this.clock.now() + r.int(2_000, 8_000);
      for (let i = r.int(2, 4); i > 0; i--) this.hotLoop(daemon, semaphore, until, r);
    } else if (draw < 0.3) {
      const client = new TryClient(this, this.nextId("t"), daemon, semaphore, {
        leaseMs: r.pick(TRY_LEASES),
        holdMs: r.pick([r.int(500, 5_000), r.int(5_000, 40_000)]),
        abandon: r.bool(0.15),
        renewLeases: RENEW_LEASES,
      });
      this.adopt(client);
      client.start();
    } else {
      this.acquire(daemon, semaphore, r);
    }
  }

  /**
   * One client of the non-fair lock: a hot loop of clients on one daemon (they
   * hand the lock between them, one write each, up to the bound) with a
   * blocking waiter on another daemon, or a blocking client alone.
   */
  private spawnAtNonFairLock(): void {
    const r = this.nonFairRandom;
    const live = this.daemons.filter((d) => !d.gone());
    const lock = this.resources.find((res) => res.nonFair === true)!;
    if (live.length === 0 || this.active.filter((c) => !c.done && c.resource === lock).length >= MAX_CLIENTS_PER_LOCK) return;
    const daemon = r.pick(live);
    if (r.bool(0.3)) this.hotLock(daemon, lock, r);
    else this.acquire(daemon, lock, r);
  }

  /** One client of a read-write lock, a reader three times in four: blocking (some hot), or TryAcquire. */
  private spawnAtRWLock(): void {
    const r = this.rwRandom;
    const live = this.daemons.filter((d) => !d.gone());
    const locks = this.resources.filter(
      (res) => res.kind === "rwlock" && this.active.filter((c) => !c.done && c.resource === res).length < MAX_CLIENTS_PER_LOCK,
    );
    if (live.length === 0 || locks.length === 0) return;
    const daemon = r.pick(live);
    const lock = r.pick(locks);
    const mode = r.bool(0.75) ? "shared" : "exclusive";
    const draw = r.next();
    if (draw < 0.1) {
      const until = this.clock.now() + r.int(2_000, 8_000);
      for (let i = r.int(2, 4); i > 0; i--) this.hotLoop(daemon, lock, until, r, mode);
    } else if (draw < 0.3) {
      const client = new TryClient(this, this.nextId("t"), daemon, lock, {
        leaseMs: r.pick(TRY_LEASES),
        holdMs: r.pick([r.int(500, 5_000), r.int(5_000, 40_000)]),
        abandon: r.bool(0.15),
        renewLeases: RENEW_LEASES,
      });
      client.mode = mode;
      this.adopt(client);
      client.start();
    } else {
      this.acquire(daemon, lock, r, mode);
    }
  }

  private spawn(): void {
    // (Kinds drawn from streams of their own have their own arrivals.)
    const kinds = [...this.profile.workload].filter((kind) => !(EXTRA_WORKLOAD_KINDS as readonly string[]).includes(kind));
    const kind = this.random.pick(kinds);
    const daemon = this.liveDaemon();
    if (daemon === undefined) return;
    // At most a dozen clients per lock at once, so that the quiet tail can serve every waiter.
    const busy = (r: Resource) => this.active.filter((c) => !c.done && c.resource === r).length >= MAX_CLIENTS_PER_LOCK;
    const locks = this.resources.filter((r) => r.kind === "lock" && r.nonFair !== true && !busy(r));
    if (locks.length === 0 && kind !== "campaign" && kind !== "observe") return;
    const elections = this.resources.filter((r) => r.kind === "election");
    const r = this.random;
    switch (kind) {
      case "acquire":
        return this.acquire(daemon, r.pick(locks));
      case "hot": {
        return this.hotLock(daemon, r.pick(locks), r);
      }
      case "try": {
        const client = new TryClient(this, this.nextId("t"), daemon, r.pick(locks), {
          leaseMs: r.pick(TRY_LEASES),
          holdMs: r.pick([r.int(500, 5_000), r.int(5_000, 40_000)]),
          abandon: r.bool(0.15),
          renewLeases: RENEW_LEASES,
        });
        this.adopt(client);
        return client.start();
      }
      case "campaign": {
        if (elections.length === 0) return;
        const election = r.pick(elections);
        // An Observe on the same daemon first makes its leader tracker exist before the campaign's.
        if (r.bool(0.4)) this.observe(daemon, election);
        const client = new CampaignClient(this, this.nextId("c"), daemon, election, {
          leaseMs: r.pick(ACQUIRE_LEASES),
          leadMs: r.int(500, 30_000),
          then: r.pick(["resign", "resign", "close", "stay"] as const),
          patienceMs: r.bool(0.5) ? r.int(2_000, 40_000) : undefined,
        });
        this.adopt(client);
        return client.start();
      }
      case "observe":
        if (elections.length === 0) return;
        return this.observe(daemon, r.pick(elections));
      case "read":
        return read(this, daemon, r.pick([...locks, ...elections]), r.bool(0.3));
    }
  }

  private acquire(daemon: Daemon, lock: Resource, r = this.random, mode?: "shared" | "exclusive"): void {
    const client = new AcquireClient(this, this.nextId("a"), daemon, lock, {
      leaseMs: r.pick(ACQUIRE_LEASES),
      holdMs: r.pick([r.int(0, 50), r.int(50, 2_000), r.int(2_000, MAX_HOLD_MS)]),
      waitTimeoutMs: r.bool(0.3) ? r.pick([0, r.int(100, 30_000)]) : undefined,
      cancelAfterMs: r.bool(0.2) ? r.int(0, 5_000) : undefined,
      preCancelled: r.bool(0.02),
    });
    client.mode = mode;
    this.adopt(client);
    client.start();
  }

  /** A hot lock: clients on one daemon hand it between them fast, and one client on another daemon wants it too. */
  private hotLock(daemon: Daemon, lock: Resource, r: Random): void {
    const until = this.clock.now() + r.int(2_000, 8_000);
    for (let i = r.int(2, 4); i > 0; i--) this.hotLoop(daemon, lock, until, r);
    const other = this.daemons.filter((d) => d !== daemon && !d.gone());
    if (other.length > 0) {
      const remote = r.pick(other);
      this.clock.setTimer(r.int(0, 1_000), () => !remote.gone() && this.acquire(remote, lock, r));
    }
  }

  private hotLoop(daemon: Daemon, lock: Resource, until: number, r = this.random, mode?: "shared" | "exclusive"): void {
    if (this.clock.now() >= until || daemon.gone()) return;
    const client = new AcquireClient(this, this.nextId("h"), daemon, lock, {
      leaseMs: LEASE_MS,
      holdMs: r.int(0, 10),
      waitTimeoutMs: undefined,
      cancelAfterMs: undefined,
      preCancelled: false,
      then: () => this.clock.setTimer(r.int(1, 10), () => this.hotLoop(daemon, lock, until, r, mode)),
    });
    client.mode = mode;
    this.adopt(client);
    client.start();
  }

  private observe(daemon: Daemon, election: Resource): void {
    const client = new ObserverClient(this, this.nextId("o"), daemon, election);
    this.observedSince.set(client, this.clock.now());
    this.adopt(client);
    client.start(this.random.bool(0.3) ? this.random.int(1_000, 40_000) : undefined);
  }

  private windDown(): void {
    this.record("harness", { ev: "note", detail: "winding down: no new clients; holds end soon" });
    for (const client of this.clients) if (!client.done && "windDown" in client) client.windDown();
  }

  // ---- faults ---------------------------------------------------------------

  /** Store-call faults: during the run's fault phases, each call fails with the run's rate. */
  decideFault(daemon: Daemon, operation: StoreOperation, name: string, hasDeadline: boolean, acquiring: boolean): CallFault {
    const now = this.clock.now();
    if (!this.profile.phases.some(([a, b]) => now >= a && now < b)) return { kind: "none" };
    const kinds = (["latency", "conflict", "lost-reply", "hang"] as const).filter((k) => this.profile.faults.has(k));
    // Acquiring writes fail more often: what happens around them is where holders are made.
    const rate = acquiring ? Math.min(0.5, 4 * this.profile.storeFaultRate) : this.profile.storeFaultRate;
    if (kinds.length === 0 || !this.faultRandom.bool(rate)) return { kind: "none" };
    void daemon;
    void operation;
    void hasDeadline;
    void name;
    const r = this.faultRandom;
    switch (r.pick(kinds)) {
      case "latency":
        return { kind: "latency", ms: r.pick([r.int(100, 1_000), r.int(1_000, 5_000)]) };
      case "conflict":
        return { kind: "conflict" };
      case "lost-reply":
        // A third of them are not lost but late: the write lands at once, its success reply seconds later.
        if (r.bool(0.3)) return { kind: "late-reply", ms: r.int(500, 8_000) };
        return { kind: "lost-reply", ms: r.pick([0, r.int(1, 100), r.int(100, 12_000)]) };
      case "hang":
        return { kind: "hang", applied: r.bool(0.5) };
    }
  }

  /**
   * A daemon's watch lists a held lease for the first time: like a restarted
   * daemon, it counts the lease's expiry from now, so a holder that is gone
   * is replaced up to a lease duration later than the true expiry.
   */
  leaseFirstSeen(lease: LeaseRecord): void {
    this.firstSeen.set(lease.name, this.clock.now());
    // A semaphore held off as a whole (restored after a deletion, until its first grant) is counted from here for its
    // lease (seeds 20835, 22128: daemons restarted after the restore each held it off that long from their first
    // sight). Unlike a lock, a TryAcquire holder's own count does not stand for it: it holds one permit of N.
    if ((lease.kind === "semaphore" || lease.kind === "rwlock") && (lease.writtenHolder ?? "") !== "") {
      const ms = (longestDurationSeconds(lease) * 1000) / (1 - MAX_DRIFT) + TURN_GRACE_MS;
      this.excuses.point(lease.name, this.clock.now(), ms, "first-sight");
      return;
    }
    if (lease.kind === "semaphore" || lease.kind === "rwlock") {
      // Each seat counts from now for its lease (a seat named but missing, for the longest lease seen): its permits
      // wait that long if their holders are gone (seed 1427: a frozen daemon killed, its seat counted afresh by a
      // daemon started after).
      // Only where they fill its permits: with one free, its waiters are served.
      const live = (lease.seats ?? []).filter((seat) => seat.released !== true);
      const missing = (lease.seated ?? []).some(({ identity }) => !(lease.seats ?? []).some((seat) => seat.identity === identity));
      const inUse = live.reduce((sum, seat) => sum + Math.max(seat.permits ?? 0, seat.riders), 0);
      // (On a read-write lock, wherever a seat is held: a writer waits for every seat.)
      if (!missing && (lease.kind === "rwlock" ? inUse === 0 : inUse < (lease.permits ?? 1))) return;
      const seconds = Math.max(missing ? LONGEST_LEASE_MS / 1000 : 0, ...live.map((seat) => seat.durationSeconds));
      this.excuses.point(lease.name, this.clock.now(), (seconds * 1000) / (1 - MAX_DRIFT) + TURN_GRACE_MS, "first-sight");
      return;
    }
    // The daemon counts the longer of the duration written and the one a daemon last wrote (a duration shortened
    // by hand, or left by client-go over a daemon's, does not shorten a hold: lease-cache.ts); so does the excuse.
    this.countsFromNow(lease, longestDurationSeconds(lease) * 1000, "first-sight");
  }

  /** A daemon holds `name` off for `ms` (simulated) after a deletion it learned other than from its watch. */
  heldOffAfterDeletion(name: string, ms: number): void {
    this.excuses.point(name, this.clock.now(), ms, "lease-delete");
  }

  /** When a daemon last saw each Lease for the first time, or heard of it again: it counts the expiry of the hold from then. */
  private readonly firstSeen = new Map<string, number>();

  /**
   * A daemon counts the expiry of `record`'s hold from now, up to `leaseMs`
   * (a first sight; renewals heard late). Only a hold that may end unheard
   * makes the difference: a stream holder's ends with a release, handed on at
   * once, or with its daemon's fault, which has its own excuse. The excuse
   * begins where the holder's own count ends (a TryAcquire holder occupies the
   * lock until its last write runs out), and is not needed if the hold has
   * ended by then (released, or taken with a new token). A renewal does not
   * end it: a later, shorter lease does not bring forward the end of a hold
   * observed.
   */
  private countsFromNow(record: LeaseRecord, leaseMs: number, why: string): void {
    const now = this.clock.now();
    const heard = this.active.some(
      (c) =>
        c.resource.leaseName === record.name &&
        !c.daemon.gone() &&
        ((c instanceof AcquireClient && c.daemonHolds) || (c instanceof CampaignClient && c.leading)),
    );
    if (heard) return;
    const until = now + leaseMs / (1 - MAX_DRIFT) + TURN_GRACE_MS;
    const holders = this.active.filter((c) => c instanceof TryClient && c.resource.leaseName === record.name) as TryClient[];
    const from = Math.max(now, ...holders.map((c) => c.occupiedUntil));
    if (from >= until) return;
    this.clock.setTimer(from - now, () => {
      const current = this.shared.peek(record.name);
      if (current === undefined || current.holderIdentity !== record.holderIdentity || current.transitions !== record.transitions) return;
      this.excuses.point(record.name, this.clock.now(), until - this.clock.now(), why);
    });
  }

  storeFaultBegan(daemon: Daemon, fault: CallFault, operation: StoreOperation, name: string, hasDeadline: boolean): () => void {
    const label = `${fault.kind}${fault.kind === "hang" && fault.applied ? " (applied)" : ""} on ${operation} ${name}${
      hasDeadline ? "" : " (no deadline)"
    }`;
    const leaseMs = (this.shared.peek(name)?.leaseDurationSeconds ?? 0) * 1000;
    // A hung call can cost a holder its lease (its renewals hang past the deadline), which others then wait
    // out. A lost reply cannot: the write went through, and the engine only backs off (2 s at most) before
    // it acts on what its watch shows. So a ghost holder left by a lost reply is a stall, not an excuse.
    // (A reply lost only after a long wait is a hang for this purpose: the caller's deadline may pass first.)
    const hangs = fault.kind === "hang" || ((fault.kind === "lost-reply" || fault.kind === "late-reply") && fault.ms >= 100);
    // Only a daemon that holds the name can lose a lease others must wait out; another waits a deadline at most.
    const current = this.shared.peek(name);
    const holds = current !== undefined && this.holdOf(current, daemon.identity) !== undefined;
    // (The hang itself is excused while it lasts; after it, a non-holder only backs off, 2 s at most.)
    const hangMs = holds ? Math.max(leaseMs, LEASE_MS) / (1 - MAX_DRIFT) : 2_000;
    const after = hangs
      ? hangMs + TURN_GRACE_MS
      : fault.kind === "lost-reply" || fault.kind === "late-reply"
        ? 2 * TURN_GRACE_MS
        : TURN_GRACE_MS;
    const id = this.excuses.begin(name, after, `store:${hangs ? "hang" : fault.kind}`);
    const fid = this.faultStart(label, [daemon.slot]);
    // A slow call holds one of the daemon's store connections as long as a hung one does (seeds 200238, 210362:
    // seven calls slowed by latency held every connection, and a Release waited past its client's deadline).
    const occupies = hangs || (fault.kind === "latency" && fault.ms >= 100);
    const unhang = occupies ? this.callHangs(daemon, true) : () => {};
    if ((fault.kind === "lost-reply" || fault.kind === "late-reply") && operation !== "get") this.cancelDuring(daemon, name);
    if (fault.kind === "hang" && !hasDeadline) {
      // A call without a deadline would hang for minutes: excuse only as long as a deadline would have allowed.
      this.clock.setTimer(LONGEST_DEADLINE_MS, () => {
        this.excuses.end(id, this.clock.now());
        this.faultEnd(fid, [daemon.slot]);
      });
      return unhang;
    }
    return () => {
      unhang();
      this.excuses.end(id, this.clock.now());
      this.faultEnd(fid, [daemon.slot]);
    };
  }

  /**
   * A call of `daemon` hangs until what this returns is called. When its hung
   * calls take every connection its store allows itself (scale seeds: a
   * daemon renewing a hundred leases), no other call of it is sent until one
   * ends: it cannot serve its clients (their waits are not counted, and their
   * Release and Resign may fail as unavailable), as when it is partitioned;
   * but it still hears its watch. Nor can it renew or give back what it holds,
   * as when it is partitioned: the names it holds are excused until their
   * leases run out (`excuseHeld`; seed 367820: d0's seven calls hung for 9.3 s,
   * its candidate for e1 was deposed at the renew deadline, and the others
   * waited 4.1 s more for a lease d0 could not give back). One faulty call fewer
   * (`byFault`) already holds back its acquiring writes and queue writes, not
   * its renewals and releases: its waiters are not counted then, its Release
   * and Resign are.
   */
  private callHangs(daemon: Daemon, byFault: boolean): () => void {
    const limit = daemon.store.maxCallsInFlight;
    // Seed 242065: six hung calls of d1 left only the connection kept for renewals; its queue head waited 10 s.
    // Only faulty calls count here: six connections held by requests waiting at an overloaded server may be its
    // own clients' flood of reads (five at most) and one more, and a queue write kept out by those is the engine's.
    const takeLimit = limit === undefined ? undefined : Math.max(1, limit - KEPT_FOR_RENEWALS);
    daemon.hung += 1;
    if (byFault) daemon.faultHung += 1;
    if (takeLimit !== undefined && daemon.faultHung >= takeLimit && daemon.takesHeld === undefined && !daemon.gone()) {
      this.record("harness", {
        ev: "note",
        detail: `${daemon.identity}'s faulty store calls take all ${takeLimit} connections an acquiring write may use: its waiters are not counted`,
      });
      daemon.takesHeld = () => {
        daemon.takesHeld = undefined;
        this.record("harness", { ev: "note", detail: `${daemon.identity} may send acquiring writes again` });
      };
    }
    if (limit !== undefined && daemon.hung >= limit && daemon.unblock === undefined && !daemon.gone()) {
      const why = `all ${limit} store connections of ${daemon.identity} hung`;
      const fid = this.faultStart(why, [daemon.slot]);
      const endHeld = this.excuseHeld(daemon, "store:all-hung");
      daemon.troubledAt = Infinity;
      daemon.unblock = () => {
        daemon.unblock = undefined;
        daemon.troubledAt = this.clock.now();
        endHeld();
        this.faultEnd(fid, [daemon.slot]);
      };
    }
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      daemon.hung -= 1;
      if (byFault) daemon.faultHung -= 1;
      if (daemon.unblock !== undefined && daemon.hung < (limit ?? Infinity)) daemon.unblock();
      if (daemon.takesHeld !== undefined && daemon.faultHung < (takeLimit ?? Infinity)) daemon.takesHeld();
    };
  }

  /**
   * A request of `daemon` waited `waitMs` for its turn at an API server that
   * cannot keep up (measured there: the requests of every daemon before it).
   * That holds up its name (a list: none) until it is answered; the stall
   * bound counts from there. A renewal that waits past half its slack may cost a
   * holder its lease, which the others then wait out; the other half is the
   * engine's to spend waiting for a connection behind calls already sent, not
   * behind new acquisitions (renewals go first, docs/design.md 5). And while
   * no watch of the daemon is open, what waits holds up what it hears: the
   * names its clients wait for.
   */
  storeWaited(daemon: Daemon, operation: StoreOperation | "list", name: string, waitMs: number, deaf: boolean): void {
    if (waitMs < OVERLOAD_MIN_WAIT_MS) return;
    const now = this.clock.now();
    const answeredMs = waitMs + 2 * (this.profile.baseLatencyMs[daemon.slot] ?? 0);
    // A waiter's announcement that waits its turn at the API server is not yet in the lease: bounded waiting counts
    // from when it lands (docs/design.md 3.4; seed 250527: d0's patch waited 3.4 s at 100 requests a second). So
    // too any request of the daemon for that lease: its turn comes and goes while the write that takes it waits, and
    // it joins again only when that write is answered (seed 321250: d1's update waited 9 s at 100 a second while d2,
    // whose requests came after the backlog had drained, served 128 claims of its own with nobody else in line).
    const resource = this.resources.find((r) => r.leaseName === name);
    if (resource !== undefined)
      this.requestsHeldUp.push({ slot: daemon.slot, resource: `${resource.kind}/${resource.name}`, start: now, end: now + answeredMs });
    // Meanwhile it holds one of the daemon's store connections, as a call slowed as long by latency does (seed
    // 260307: 115 names at 20 requests a second; every connection of d0 held creates waiting their turn, and the
    // create of a name its client waited for sat 3.3 s in the engine behind them).
    this.clock.setTimer(answeredMs, this.callHangs(daemon, false));
    daemon.backloggedUntil = Math.max(daemon.backloggedUntil, now + answeredMs);
    if (deaf) {
      daemon.deafUntil = Math.max(daemon.deafUntil, now + answeredMs + TURN_GRACE_MS);
      // Its waiters do not hear a lease given up meanwhile (what it holds, it renews without hearing).
      const waitingFor = new Set<string>();
      for (const c of this.active)
        if (c.daemon === daemon && ((c instanceof AcquireClient && c.state === "waiting") || (c instanceof CampaignClient && !c.leading)))
          waitingFor.add(c.resource.leaseName);
      this.excuses.point(waitingFor, now, answeredMs + TURN_GRACE_MS, "overload");
    }
    if (name === "") return;
    this.excuses.point(name, now, answeredMs, "overload");
    const record = this.shared.peek(name);
    const hold = record === undefined ? undefined : this.holdOf(record, daemon.identity);
    if (hold === undefined) return;
    const leaseMs = hold.leaseMs;
    if (waitMs >= renewalSlackMs(leaseMs) / 2)
      this.excuses.point(name, now, answeredMs + Math.max(leaseMs, LEASE_MS) / (1 - MAX_DRIFT) + TURN_GRACE_MS, "overload");
  }

  /** Watch events to `daemon` were held up by the API server's backlog from `from` to `to` (the read oracle's). */
  watchHeldUp(daemon: Daemon, from: number, to: number): void {
    this.heldUp.push({ slots: [daemon.slot], start: from, end: to, lateMs: 0 });
    this.record(daemon.identity, {
      ev: "note",
      daemon: daemon.slot,
      detail: `its watch was held up by the API server's backlog from ${(from / 1000).toFixed(3)} s`,
    });
  }

  /** Spans in which a daemon's request for a lease (an announcement that it waits, a write, a read) waited in the API server's backlog. */
  private readonly requestsHeldUp: Array<{ slot: number; resource: string; start: number; end: number }> = [];

  /** Spans in which a daemon heard no watch event while its requests waited in the API server's backlog. */
  private readonly heldUp: Array<{ slots: readonly number[]; start: number; end: number; lateMs: number }> = [];

  /**
   * While a write whose reply will be lost is in flight, the callers waiting for that lock on that daemon
   * may give up (the one being served, or all): a schedule hand-picked runs rarely reach by chance.
   */
  private cancelDuring(daemon: Daemon, leaseName: string): void {
    const r = this.buggify;
    if (!r.bool(0.5)) return;
    const waiting = this.active.filter(
      (c): c is AcquireClient =>
        c instanceof AcquireClient && c.daemon === daemon && c.resource.leaseName === leaseName && c.state === "waiting",
    );
    for (const client of r.bool(0.5) ? waiting : waiting.slice(0, 1)) client.close();
  }

  private faultStart(fault: string, affects: readonly number[] | "all"): string {
    const id = `${fault} #${++this.historyFaults}`;
    this.record("harness", { ev: "fault-start", fault: id, affects });
    return id;
  }

  private faultEnd(id: string, affects: readonly number[] | "all"): void {
    this.record("harness", { ev: "fault-end", fault: id, affects });
  }

  /**
   * The overload of a run whose API server cannot keep up: one daemon's
   * clients ask for fresh reads faster than the server serves, for a while.
   * They read a Lease nobody uses (so no name's liveness is judged by them),
   * and each waits in the engine for one of its 7 connections: the engine
   * must send the renewals of what it holds first (docs/design.md 5), or its
   * holders lose their leases while others wait for them (mutant 26).
   */
  private scheduleFlood(): void {
    const api = this.profile.apiServer;
    const rate = api?.callsPerSecond;
    if (rate === undefined || api?.flood === undefined) return;
    const { atMs, ms } = api.flood;
    const r = stream(this.seed, "flood");
    const target = this.resource("lock", "flood");
    const everyMs = 1000 / (1.5 * rate);
    this.clock.setTimer(atMs, () => {
      // The daemon that holds the most, so that what it holds has waiters elsewhere.
      const live = this.daemons.filter((d) => !d.gone());
      if (live.length === 0) return;
      const holds = (d: Daemon) =>
        this.resources.filter((res) => {
          const record = this.shared.peek(res.leaseName);
          return record !== undefined && this.holdOf(record, d.identity) !== undefined;
        }).length;
      const most = Math.max(...live.map(holds));
      const daemon = r.pick(live.filter((d) => holds(d) === most));
      this.record("harness", {
        ev: "note",
        detail: `overload: ${daemon.identity}'s clients ask for ${Math.round(1.5 * rate)} fresh reads a second for ${ms} ms`,
      });
      const until = this.clock.now() + ms;
      const next = () => {
        if (this.clock.now() >= until || daemon.gone()) return;
        read(this, daemon, target, true);
        this.clock.setTimer(everyMs, next);
      };
      next();
    });
  }

  private scheduleFaults(): void {
    // A wall clock that stops or steps back excuses nothing (no decision may depend on it): a note in the trace.
    for (const fault of this.profile.wallFaults) this.clock.setTimer(fault.at, () => this.wallFault(fault));
    const r = this.faultRandom;
    const at = (latestEndGap: number) => r.int(1_000, Math.max(1_000, FAULTS_END_MS - latestEndGap));
    for (const kind of this.profile.faults) {
      const count = kind === "skew" ? 0 : r.int(1, 3);
      for (let i = 0; i < count; i++) {
        switch (kind) {
          case "freeze": {
            const ms = r.pick([r.int(500, 5_000), r.int(5_000, 30_000)]);
            this.clock.setTimer(at(ms), () => this.freeze(r.int(0, this.profile.daemons - 1), ms));
            break;
          }
          case "partition": {
            const ms = r.pick([r.int(500, 5_000), r.int(5_000, 25_000)]);
            this.clock.setTimer(at(ms), () => this.partition(r.int(0, this.profile.daemons - 1), ms));
            break;
          }
          case "kill":
          case "shutdown":
            this.clock.setTimer(at(5_000), () => this.stop(r.int(0, this.profile.daemons - 1), kind, r.int(0, 5_000)));
            break;
          case "watch": {
            const ms = r.int(200, 10_000);
            this.clock.setTimer(at(ms), () => this.breakWatch(r.int(0, this.profile.daemons - 1), ms));
            break;
          }
          case "lease-edit":
          case "lease-delete":
            this.clock.setTimer(at(0), () => this.editLease(kind));
            break;
          case "stall":
            this.clock.setTimer(at(15_000), () => this.stallClient());
            break;
        }
      }
    }
  }

  /** A node's wall clock stops or steps back: preferably one whose daemon holds a lease now, where it matters. */
  private wallFault(fault: WallFault): void {
    const holding = this.daemons.filter((d) => !d.gone() && Object.values(d.engine.stats().held).some((n) => n > 0));
    const slot = this.wallRandom.pick(holding.length > 0 ? holding : this.daemons).slot;
    if (fault.kind === "stop") this.walls[slot]!.stop(fault.ms);
    else this.walls[slot]!.stepBack(fault.ms);
    const detail =
      fault.kind === "stop"
        ? `the wall clock of d${slot} stops for ${fault.ms} ms`
        : `the wall clock of d${slot} steps back ${fault.ms} ms`;
    this.record("harness", { ev: "note", daemon: slot, detail });
  }

  private freeze(slot: number, ms: number): void {
    const daemon = this.daemons[slot]!;
    if (daemon.state !== "up") return;
    daemon.state = "frozen";
    daemon.troubledAt = Infinity;
    const endExcuse = this.cutOff(daemon, "freeze");
    const fid = this.faultStart(`freeze ${daemon.identity} for ${ms} ms`, [slot]);
    daemon.clock.freeze();
    daemon.store.freeze();
    this.clock.setTimer(ms, () => {
      if (daemon.state !== "frozen") return;
      daemon.state = "up";
      daemon.troubledAt = this.clock.now();
      // On SIGCONT the process first handles what arrived (replies, watch events, requests), then its overdue timers.
      daemon.store.thaw();
      this.clock.setTimer(0, () => {
        daemon.clock.thaw();
        endExcuse();
        this.faultEnd(fid, [slot]);
      });
    });
  }

  private partition(slot: number, ms: number): void {
    const daemon = this.daemons[slot]!;
    if (daemon.gone()) return;
    // Both ways, or one: it hears but cannot write, or it writes but hears nothing (its watch open and silent).
    const mode = this.faultRandom.pick(["both", "both", "writes", "hearing"] as const);
    const endExcuse = this.cutOff(daemon, "partition", mode === "hearing");
    const fid = this.faultStart(`partition ${daemon.identity}${mode === "both" ? "" : ` (${mode} cut)`} for ${ms} ms`, [slot]);
    daemon.store.partition(mode);
    daemon.cut += 1;
    daemon.troubledAt = Infinity;
    const over = () => {
      daemon.cut -= 1;
      daemon.troubledAt = this.clock.now();
      endExcuse();
      this.faultEnd(fid, [slot]);
    };
    this.clock.setTimer(ms, () => {
      daemon.store.heal();
      // The Kubernetes store resumes its watch at its next retry, up to its longest backoff later; the memory store relists at once.
      if (this.shared instanceof KubeBackend) this.clock.setTimer(MAX_RETRY_MS, over);
      else over();
    });
  }

  private breakWatch(slot: number, ms: number): void {
    const daemon = this.daemons[slot]!;
    if (daemon.gone()) return;
    const delay = this.faultRandom.bool(0.3);
    // It still writes, so it renews what it holds; at the end it has heard of renewals late.
    const endExcuse = this.cutOff(daemon, "watch", true);
    const fid = this.faultStart(`${delay ? "slow" : "broken"} watch of ${daemon.identity} for ${ms} ms`, [slot]);
    if (delay) daemon.store.watchDelayMs = this.faultRandom.int(50, 2_000);
    else daemon.store.restartWatch(ms, this.faultRandom.bool(0.5));
    // On the API server, half the breaks come with a compaction: the resumed watch is answered 410 and relists.
    if (!delay && this.shared instanceof KubeBackend && this.faultRandom.bool(0.5)) {
      this.shared.server.compact();
      this.record("harness", { ev: "note", detail: "the API server compacts: watches resumed from before now get 410 Gone" });
    }
    daemon.cut += 1;
    daemon.troubledAt = Infinity;
    // A broken watch on the API server is resumed at the store's next retry, up to its longest backoff after the break.
    const resumeMs = !delay && this.shared instanceof KubeBackend ? MAX_RETRY_MS : 0;
    this.clock.setTimer(ms + (delay ? 2_000 : 0) + resumeMs, () => {
      daemon.cut -= 1;
      daemon.troubledAt = this.clock.now();
      if (delay) daemon.store.watchDelayMs = 0;
      endExcuse();
      this.faultEnd(fid, [slot]);
    });
  }

  /** Kill (SIGKILL) or graceful shutdown, then a new daemon process with a new identity in its place. */
  private stop(slot: number, how: "kill" | "shutdown", restartAfterMs: number): void {
    const daemon = this.daemons[slot]!;
    if (daemon.gone()) return;
    const fid = this.faultStart(`${how} ${daemon.identity}`, [slot]);
    const restart = () => {
      this.clock.setTimer(restartAfterMs, () => {
        // The new process counts the expiry of a held Lease from its first sight of it (docs/design.md 3.1):
        // `leaseFirstSeen` excuses that, for the names its clients use.
        this.startDaemon(slot);
        this.faultEnd(fid, [slot]);
      });
    };
    if (how === "kill") {
      // Others wait out the leases the dead daemon held (or takes yet: a write it sent may land after); where
      // it only waited, it is skipped after a turn grace, inside the stall bound.
      this.excuseHeld(daemon, "kill");
      // Where it was in line, the others skip it a turn grace after they see the lease free: killed just before it
      // skipped a dead daemon ahead of it, it costs one grace more (seed 433236: e0's queue head was killed at 16.4 s,
      // the next in line at 22.3 s, 46 ms before its own skip; a third daemon then waited a grace for both).
      for (const { leaseName } of this.resources) {
        const record = this.shared.peek(leaseName);
        if (record !== undefined && line(record).some((entry) => untagged(entry) === daemon.identity))
          this.excuses.point(leaseName, this.clock.now(), TURN_GRACE_MS, "kill");
      }
      daemon.state = "dead";
      this.record("harness", { ev: "daemon-killed", target: daemon.identity, daemon: slot });
      daemon.clock.kill();
      daemon.store.kill();
      daemon.breakStreams();
      return restart();
    }
    // A graceful shutdown, as on SIGTERM: the engine ends its streams and gives its leases back.
    // SIGTERM reaches a frozen process only once it runs again: skip.
    if (daemon.state === "frozen") return this.faultEnd(fid, [slot]);
    const endExcuse = this.daemonFault(daemon, TURN_GRACE_MS, "shutdown");
    // A holder that has stopped reading its stream hears nothing of the
    // shutdown and acts until its last valid_for runs out (its hold is judged
    // so); the daemon must not give its lease back before (docs/design.md 3.7).
    daemon.state = "stopping";
    const shutdownMs = 5_000;
    daemon.engine.shutdown(shutdownMs).then(
      () => {
        daemon.state = "dead";
        // What it kept (a lease-held lock, a lease left to expire) the others wait out, on the slowest clock.
        this.excuseHeld(daemon, "shutdown");
        this.record("harness", { ev: "daemon-stopped", target: daemon.identity, daemon: slot });
        daemon.breakStreams();
        daemon.clock.kill();
        daemon.store.kill();
        endExcuse();
        restart();
      },
      (err: unknown) => this.violation("unexpected-error", "daemon", `shutdown of ${daemon.identity} failed: ${String(err)}`),
    );
  }

  /**
   * Someone edits or deletes a managed Lease by hand, preferably a held one. The
   * edit ends no hold in the history: a holder it revokes is told so by its
   * daemon, and goes on acting until it reads that or its valid_for runs out,
   * so nobody may be granted the lease before then (docs/design.md 3.1). Half
   * the time the holder's daemon is frozen across the edit (a GC pause, CPU
   * throttling), so that it cannot warn its holder in time.
   */
  private editLease(kind: "lease-edit" | "lease-delete"): void {
    const r = this.faultRandom;
    const held = this.resources.filter((res) => (this.shared.peek(res.leaseName)?.holderIdentity ?? "") !== "");
    const resource = r.pick(held.length > 0 ? held : this.resources);
    const record = this.shared.peek(resource.leaseName);
    if (record === undefined) return;
    const holderDaemon = this.daemons.find((d) => d.identity === record.holderIdentity);
    if (holderDaemon !== undefined && r.bool(0.5)) this.freeze(holderDaemon.slot, r.int(500, 5_000));
    let change: string;
    // The hold observed runs out (an edit that lengthens the lease holds others off for as long as it says), as
    // daemons count it: the longer of its lease and the one a daemon last wrote (an earlier edit may have shortened it).
    // A semaphore's seats are held off as long (its Lease restored after a deletion, until the longest of them ends).
    const seatSeconds = Math.max(0, ...(record.seats ?? []).map((seat) => (seat.released === true ? 0 : seat.durationSeconds)));
    let excuseMs = (Math.max(longestDurationSeconds(record), seatSeconds) * 1000) / (1 - MAX_DRIFT) + TURN_GRACE_MS;
    if (kind === "lease-delete") {
      change = "deleted";
      this.shared.delete(resource.leaseName);
      this.deletedAt.set(resource.leaseName, [...(this.deletedAt.get(resource.leaseName) ?? []), this.clock.now()]);
      // A daemon that runs and watches the name, having seen its tokens, restores it (docs/design.md 3.2).
      const name = resource.leaseName;
      // (Not one that is cut off, nor while store calls fail: its restore may come too late.)
      const now = this.clock.now();
      const storeFaults = this.profile.phases.some(([from, to]) => now >= from && now < to);
      const watched =
        !storeFaults &&
        this.daemons.some((d) => d.state === "up" && d.cut === 0 && d.engine.cache.covers(name) && d.engine.cache.tokenFloor(name) > 0);
      if (!watched) {
        this.unwatchedDeletedAt.set(name, [...(this.unwatchedDeletedAt.get(name) ?? []), now]);
        // A daemon holds off only the hold it observed (docs/design.md 3.1): one whose observation had run out may
        // create the Lease at once, even if it once read its token.
        const aware = this.daemons.filter((d) => !d.gone() && (d.engine.cache.get(name)?.holdEnd ?? 0) > d.clock.now());
        this.awareAtDeletion.set(`${name}@${now}`, new Set(aware.map((d) => d.identity)));
      }
    } else {
      // The API server's Leases can also lose their name label, or be taken by a program that is not a daemon.
      const kube = this.shared instanceof KubeBackend ? this.shared : undefined;
      // A semaphore has no holder: its edits are of its seats (removed, or its count lowered, by hand).
      const edit =
        resource.kind === "semaphore" || resource.kind === "rwlock"
          ? r.pick([
              "remove-seat",
              "lower-permits",
              "shorter",
              "longer",
              "clear-queue",
              ...(kube === undefined ? [] : (["relabel"] as const)),
            ] as const)
          : r.pick([
              "clear-holder",
              "shorter",
              "longer",
              "clear-queue",
              ...(kube === undefined ? [] : (["relabel", "take-over"] as const)),
            ] as const);
      let next: LeaseRecord | undefined;
      switch (edit) {
        case "clear-holder":
          next = { ...record, holderIdentity: "", holder: "" };
          break;
        case "remove-seat":
        case "lower-permits": {
          // Ends nothing: observers keep the seat's hold, and its count, until its observed end (proposal 22, 1B).
          const live = (record.seats ?? []).filter((seat) => seat.released !== true);
          if (live.length === 0) break;
          const victim = r.pick(live);
          const seats =
            edit === "remove-seat"
              ? (record.seats ?? []).filter((seat) => seat !== victim)
              : (record.seats ?? []).map((seat) =>
                  seat === victim && seat.released !== true ? { ...seat, permits: Math.max(0, (seat.permits ?? 1) - 1) } : seat,
                );
          next = { ...record, seats };
          // A daemon that never saw the removed seat (its watch coalesced the seat's write with its removal) counts
          // it, as seated but unknown, for the longest lease seen for the name from when it sees the edit
          // (lease-cache.ts; seed 680: 30 s for a seat of a 15 s lease, a reader waited past the excuse).
          if (edit === "remove-seat") excuseMs = Math.max(excuseMs, LONGEST_LEASE_MS / (1 - MAX_DRIFT) + TURN_GRACE_MS + WATCH_SIGHT_MS);
          break;
        }
        case "shorter":
          next = { ...record, leaseDurationSeconds: r.int(1, Math.max(1, record.leaseDurationSeconds - 1)) };
          break;
        case "longer":
          next = { ...record, leaseDurationSeconds: record.leaseDurationSeconds + r.int(1, 30) };
          excuseMs = Math.max(excuseMs, (next.leaseDurationSeconds * 1000) / (1 - MAX_DRIFT) + TURN_GRACE_MS);
          break;
        case "clear-queue":
          next = { ...record, queue: [] };
          // A queue cleared costs a turn at most.
          excuseMs = TURN_GRACE_MS + 2_000;
          break;
        case "relabel":
          // Issue 19, defect 6: the Lease leaves every watch selected by name; its holder keeps it (and its next write relabels it).
          kube!.relabel(resource.leaseName);
          this.reads.relabelled(resource.leaseName, this.clock.now());
          this.relabelledAt.set(resource.leaseName, [...(this.relabelledAt.get(resource.leaseName) ?? []), this.clock.now()]);
          excuseMs = TURN_GRACE_MS;
          break;
        case "take-over": {
          // Issue 19, defect 9: client-go's leader election on the same Lease; daemons wait its lease out.
          const seconds = r.int(1, 15);
          const identity = `client-go-${r.int(1, 9)}`;
          // (On a Lease only an older daemon wrote, its holder annotation is trusted whoever holds it: a known limit.)
          const checkable = resource.kind === "election" && !kube!.holderUnrecorded(resource.leaseName);
          const takenAt = this.clock.now();
          kube!.takeOver(resource.leaseName, identity, seconds);
          // (Daemons count the longer of its lease and the one a daemon last wrote, as for any edit not theirs.)
          const countedSeconds = Math.max(seconds, record.writtenDuration ?? record.leaseDurationSeconds);
          excuseMs = Math.max(excuseMs, (countedSeconds * 1000) / (1 - MAX_DRIFT) + TURN_GRACE_MS);
          // Its leader is reported as client-go names it, not by the name a daemon left in the annotation; checked
          // before the daemons, whose clocks may run up to 11.7 % fast, count its lease out.
          if (checkable)
            this.clock.setTimer(seconds * 1000 * (1 - MAX_DRIFT) * 0.95, () => {
              if (kube!.peek(resource.leaseName)?.holderIdentity !== identity) return;
              this.observersReport(resource, identity, `${identity} (client-go) has held the Lease since ${(takenAt / 1000).toFixed(3)} s`);
            });
          break;
        }
      }
      const after = this.shared.peek(resource.leaseName);
      change =
        next === undefined
          ? `${edit} (${JSON.stringify({ holder: after?.holderIdentity, leaseDurationSeconds: after?.leaseDurationSeconds })})`
          : `${edit} (${JSON.stringify({ holder: next.holderIdentity, leaseDurationSeconds: next.leaseDurationSeconds, queue: next.queue })})`;
      if (next !== undefined) this.shared.edit(resource.leaseName, () => next);
    }
    this.record("harness", { ev: "note", name: resource.leaseName, detail: `Lease ${resource.leaseName} ${change} by hand` });
    this.excuses.point(resource.leaseName, this.clock.now(), excuseMs, kind);
    const fid = this.faultStart(`Lease ${resource.leaseName} ${change}`, "all");
    this.clock.setTimer(excuseMs, () => this.faultEnd(fid, "all"));
  }

  private stallClient(): void {
    const candidates = this.clients.filter(
      (c) =>
        !c.done &&
        !c.stalled &&
        ((c instanceof AcquireClient && c.state === "held") || c instanceof CampaignClient || c instanceof ObserverClient),
    );
    if (candidates.length === 0) return;
    const client = this.faultRandom.pick(candidates);
    const ms = this.faultRandom.int(1_000, 15_000);
    if (client instanceof ObserverClient) client.stall();
    else if (!(client instanceof TryClient)) client.stall(ms);
  }

  // ---- oracles ---------------------------------------------------------------

  /** Liveness, every tick: stalls of free locks with waiters, and store-call storms of waiting daemons. */
  /** The names each open fault of a daemon touches, kept up to date by the monitor while the fault lasts. */
  private readonly involvements = new Map<Set<string>, Daemon>();

  /**
   * Begins the excuse of a graceful shutdown of `daemon` (freezes, partitions
   * and broken watches have `cutOff`): it touches the names the daemon holds
   * or is queued for, now and at any tick while the shutdown lasts. Returns
   * the function that ends it.
   */
  private daemonFault(daemon: Daemon, afterMs: number, why: string): () => void {
    const names = this.involvedNow(daemon);
    this.involvements.set(names, daemon);
    const id = this.excuses.begin(names, afterMs, why);
    return () => {
      this.involvements.delete(names);
      this.excuses.end(id, this.clock.now());
    };
  }

  /**
   * The excuse of a daemon cut off (frozen, partitioned, or its watch broken
   * or slow). Unless it `canWrite`, it can neither renew nor give back what it
   * holds, so the others wait until the lease they last saw renewed runs out
   * (`excuseHeld`); back again, it has heard of renewals late (`heardLate`).
   * Returns what ends it.
   */
  private cutOff(daemon: Daemon, why: string, canWrite = false): () => void {
    const fault: CutOff = { daemon, why, longest: new Map() };
    this.cutOffs.add(fault);
    const endHeld = canWrite ? () => {} : this.excuseHeld(daemon, why);
    // Its own waiters are not counted while it is cut off (`unreachable`); a waiter elsewhere for a name it
    // is queued for waits a turn (2 s) at most, inside the stall bound.
    return () => {
      this.cutOffs.delete(fault);
      endHeld();
      this.heardLate(fault);
    };
  }

  /** Daemons cut off now, and the longest lease written meanwhile for each name. */
  private readonly cutOffs = new Set<CutOff>();

  /**
   * Excuses, until undone, each name the store names `daemon` as holder of
   * (now, or later: a write sent before may land after), until the lease it
   * last renewed runs out on the slowest clock, and a turn: nobody else may
   * take it before, and the daemon can neither renew nor give it back.
   */
  private excuseHeld(daemon: Daemon, why: string): () => void {
    const excuse = (name: string) => {
      const record = this.shared.peek(name);
      const hold = record === undefined ? undefined : this.holdOf(record, daemon.identity);
      if (hold === undefined) return undefined;
      return { at: hold.renewedAt + hold.leaseMs / (1 - MAX_DRIFT) + TURN_GRACE_MS, why };
    };
    const remove = this.excuses.stand(excuse);
    // Back again, it renews what it holds, or gives back what its holder let go meanwhile, within a turn.
    return () => {
      remove();
      const now = this.clock.now();
      for (const { leaseName } of this.resources) {
        const until = excuse(leaseName);
        if (until !== undefined && until.at > now) this.excuses.point(leaseName, now, Math.min(until.at - now, TURN_GRACE_MS), why);
      }
    };
  }

  /**
   * A daemon hears again (thawed, reconnected): the renewals it missed count
   * as seen now (docs/design.md 3.1), and the hold it then counts on is the
   * longest of them (a later, shorter one does not shorten it, as a hand edit
   * must not), so its waiters may wait up to the longest lease from now for a
   * lease held elsewhere whose holder is gone.
   */
  private heardLate(fault: CutOff): void {
    const { daemon, why } = fault;
    const wanted = new Set(this.active.filter((c) => c.daemon === daemon && !c.done).map((c) => c.resource.leaseName));
    // A semaphore's seats of other daemons are counted from now as well, each for its lease: its permits wait that long.
    for (const { leaseName: name, kind } of this.resources) {
      const record = this.shared.peek(name);
      if ((kind !== "semaphore" && kind !== "rwlock") || record === undefined || !daemon.engine.cache.covers(name)) continue;
      const seatSeconds = Math.max(
        0,
        ...(record.seats ?? []).map((seat) =>
          seat.released === true || untagged(seat.identity) === daemon.identity ? 0 : seat.durationSeconds,
        ),
      );
      if (seatSeconds > 0) this.excuses.point(name, this.clock.now(), (seatSeconds * 1000) / (1 - MAX_DRIFT) + TURN_GRACE_MS, why);
    }
    for (const { leaseName: name } of this.resources) {
      const record = this.shared.peek(name);
      if (wanted.has(name) || record === undefined || !daemon.engine.cache.covers(name)) continue;
      const heldOff = record.holderIdentity !== "" || (record.writtenHolder ?? "") !== "";
      if (!heldOff || record.holderIdentity === daemon.identity) continue;
      const leaseMs = Math.max(longestDurationSeconds(record), fault.longest.get(name) ?? 0) * 1000;
      const until = this.clock.now() + leaseMs / (1 - MAX_DRIFT) + TURN_GRACE_MS;
      daemon.lateCounts.set(name, { until, holder: record.holderIdentity, token: record.transitions, why });
    }
    for (const name of wanted) {
      const record = this.shared.peek(name);
      // Held by another daemon, or free but held off (a holder cleared by hand, a Lease restored).
      const heldOff = record !== undefined && (record.holderIdentity !== "" || (record.writtenHolder ?? "") !== "");
      if (record === undefined || !heldOff || record.holderIdentity === daemon.identity) continue;
      // Its count of the hold starts now: a holder cut off meanwhile (excuseHeld) is waited for that long.
      this.firstSeen.set(name, this.clock.now());
      this.countsFromNow(record, Math.max(longestDurationSeconds(record), fault.longest.get(name) ?? 0) * 1000, why);
    }
  }

  /**
   * An API server that cannot even serve the renewals of the Leases held:
   * measured at each moment, one renewal per renew deadline for each Lease
   * held (the fewest that keep its holder: the engine renews every third of
   * the lease, so renewals may come that late before anyone loses) against
   * the requests the server serves a second. While they need all of it, no
   * lock service can keep its promises: holders lose their leases, which the
   * others then wait out, and new acquisitions wait behind the renewals.
   * Every name is excused then, and for the longest lease after (on the
   * slowest clock) plus a turn. Short of that, the other overload excuses
   * judge. (Counted at the engine's renewal rate instead, seed 5039 of
   * --overload, which passes without it, was excused for 54 points of its
   * name-ticks; seed 30 of --overload, once thought such a world, needs at
   * most 11.6 renewals a second of its 20 at that rate, 5.8 at this one.)
   */
  private saturated(): Until | undefined {
    const now = this.clock.now();
    if (this.saturation.at !== now) {
      const capacity = now < FAULTS_END_MS ? this.profile.apiServer?.callsPerSecond : undefined;
      let needed = 0;
      if (capacity !== undefined)
        for (const resource of this.resources) {
          const record = this.shared.peek(resource.leaseName);
          if (record === undefined) continue;
          for (const seat of record.seats ?? [])
            if (seat.released !== true) needed += 1000 / ((seat.durationSeconds * 1000 * RENEW_DEADLINE_MS) / LEASE_MS);
          if (record.holderIdentity === "") continue;
          const leaseMs = record.leaseDurationSeconds * 1000;
          needed += 1000 / ((leaseMs * RENEW_DEADLINE_MS) / LEASE_MS);
        }
      const over = capacity !== undefined && needed >= capacity;
      if (over && this.saturation.since === undefined)
        this.record("harness", {
          ev: "note",
          detail: `the Leases held need ${needed.toFixed(1)} renewals a second, the API server serves ${capacity}: it cannot keep up`,
        });
      this.saturation = {
        at: now,
        since: over ? (this.saturation.since ?? now) : undefined,
        lastAt: over ? now : this.saturation.lastAt,
      };
    }
    const last = this.saturation.lastAt;
    if (last === undefined) return undefined;
    const at = last + LONGEST_LEASE_MS / (1 - MAX_DRIFT) + TURN_GRACE_MS;
    return at > now ? { at, why: "overload" } : undefined;
  }

  /** When `saturated` last measured (`at`), since when the renewals needed all the server serves, and when they last did. */
  private saturation: { at: number; since: number | undefined; lastAt: number | undefined } = {
    at: -1,
    since: undefined,
    lastAt: undefined,
  };

  /**
   * The excuse of a name whose waiters are all on daemons that heard of its
   * hold late, back from a cut-off, while no client of theirs wanted it
   * (`Daemon.lateCounts`): they count it from then (docs/design.md 3.1), the
   * others do not, so it excuses only while no waiter is elsewhere.
   */
  private countedLate(name: string): Until | undefined {
    const record = this.shared.peek(name);
    if (record === undefined) return undefined;
    const waiting = this.active.filter(
      (c) =>
        c.resource.leaseName === name &&
        !c.done &&
        ((c instanceof AcquireClient && c.state === "waiting") || (c instanceof CampaignClient && !c.leading)),
    );
    let counted: Until | undefined;
    for (const client of waiting) {
      const late = (client.daemon as Daemon).lateCounts.get(name);
      if (late === undefined || late.holder !== record.holderIdentity || late.token !== record.transitions) return undefined;
      if (counted === undefined || late.until < counted.at) counted = { at: late.until, why: late.why };
    }
    return counted;
  }

  private involvedNow(daemon: Daemon): Set<string> {
    const names = new Set<string>();
    for (const resource of this.resources) {
      const record = this.shared.peek(resource.leaseName);
      if (
        record !== undefined &&
        (this.holdOf(record, daemon.identity) !== undefined || line(record).some((entry) => untagged(entry) === daemon.identity))
      )
        names.add(resource.leaseName);
    }
    for (const client of this.active) if (client.daemon === daemon) names.add(client.resource.leaseName);
    return names;
  }

  /** When the liveness oracles looked away from each Lease name, as spans [from, to] of monitor ticks. */
  private readonly awaySpans = new Map<string, Array<[number, number]>>();

  private lookedAway(leaseName: string, now: number): void {
    const spans = this.awaySpans.get(leaseName) ?? [];
    this.awaySpans.set(leaseName, spans);
    const last = spans.at(-1);
    if (last !== undefined && now - last[1] <= TICK_MS * 1.5) last[1] = now;
    else spans.push([now, now]);
  }

  /** Whether the liveness oracles looked away from `resource` ("kind/name") at `at` ms. */
  private lookedAwayAt(resource: string, at: number): boolean {
    const found = this.resources.find((r) => `${r.kind}/${r.name}` === resource);
    const spans = found === undefined ? undefined : this.awaySpans.get(found.leaseName);
    return spans?.some(([from, to]) => at >= from && at <= to + TICK_MS) ?? false;
  }

  private faultPhaseTicks = 0;
  private excusedTicks = 0;
  /** Excused name-ticks of the fault phase by the kind of fault that excused them. */
  private readonly excusedBy: Record<string, number> = {};

  private monitor(): void {
    const now = this.clock.now();
    this.active = this.active.filter((c) => !c.done || (c instanceof TryClient && c.occupies(now)));
    for (const [names, daemon] of this.involvements) for (const name of this.involvedNow(daemon)) names.add(name);
    for (const resource of this.resources) {
      const waiters: string[] = [];
      let occupied = false;
      /** Holds of a semaphore: it is occupied once they fill its permits. */
      let holds = 0;
      const hold = () => {
        holds += 1;
        occupied = holds >= (resource.permits ?? 1);
      };
      for (const client of this.active) {
        if (client.resource !== resource) continue;
        // A TryAcquire holder that is done may still occupy the lease until it runs out.
        if (client instanceof TryClient) {
          if (client.occupies(now)) hold();
          continue;
        }
        if (client.done) continue;
        // A waiter whose daemon is frozen or cut off, or can send no acquiring write, cannot be served meanwhile: it
        // is not stalled by the others.
        // Nor those of a daemon deaf behind the backlog: clients that begin to wait then, for a name it does not cover
        // yet, are served only once its list is answered (seed 374367: two lists waited 8.8 and 10 s at 100 requests a
        // second, and l86's first waiters came 3-5 s into that wait).
        const reachable = !client.daemon.gone() && !(client.daemon as Daemon).cannotAcquire && !(client.daemon as Daemon).deaf;
        if (client instanceof AcquireClient) {
          if (client.state === "waiting" && reachable) waiters.push(client.id);
          if (client.daemonHolds) hold();
        } else if (client instanceof CampaignClient) {
          if (client.leading) occupied = true;
          else if (reachable) waiters.push(client.id);
        }
      }
      const key = resource.leaseName;
      if (this.excuses.excusedUntil(key) >= now) this.lookedAway(key, now);
      if (now <= FAULTS_END_MS) {
        this.faultPhaseTicks += 1;
        const cause = this.excuses.cause(key, now);
        if (cause !== undefined) {
          this.excusedTicks += 1;
          this.excusedBy[cause] = (this.excusedBy[cause] ?? 0) + 1;
        }
      }
      if (waiters.length === 0 || occupied) {
        this.blockedSince.delete(key);
      } else {
        // Waiters served between two ticks (a hot lock handed on within milliseconds) were not stalled.
        const since = Math.max(this.blockedSince.get(key) ?? now, this.lastGrant.get(key) ?? -Infinity);
        this.blockedSince.set(key, since);
        const excused = this.excuses.excusedUntil(key);
        const from = Math.max(since, excused);
        if (excused < now && now - from > STALL_BOUND_MS && !this.reported.has(`stall:${key}:${since}`)) {
          this.reported.add(`stall:${key}:${since}`);
          const record = this.shared.peek(key);
          this.violation(
            "stall",
            `${resource.kind}/${resource.name}`,
            `nobody holds ${key} and ${waiters.join(", ")} wait, for ${((now - from) / 1000).toFixed(1)} s with no fault (bound ${
              STALL_BOUND_MS / 1000
            } s); the Lease: ${describeRecord(record)}`,
          );
        }
      }
      // Store calls of daemons that hold nothing of this name.
      if (this.excuses.excusedUntil(key) >= now - 1_000) continue;
      for (const daemon of this.daemons) {
        if (daemon.gone()) continue;
        const times = daemon.store.callTimes.get(key);
        if (times === undefined) continue;
        while (times.length > 0 && times[0]! <= now - 1_000) times.shift();
        if (times.length <= CALLS_PER_SECOND_BOUND) continue;
        const holds =
          (this.lastHeld.get(`${daemon.identity}/${key}`) ?? -Infinity) > now - 1_000 ||
          this.active.some(
            (c) =>
              c.resource === resource &&
              c.daemon === daemon &&
              ((c instanceof AcquireClient && c.daemonHolds) ||
                (c instanceof TryClient && c.occupies(now)) ||
                (c instanceof CampaignClient && c.leading)),
          );
        const reportKey = `storm:${key}:${daemon.identity}`;
        if (holds || this.reported.has(reportKey)) continue;
        this.reported.add(reportKey);
        this.violation(
          "store-call-storm",
          `${resource.kind}/${resource.name}`,
          `${daemon.identity}, holding nothing of ${key}, made ${times.length} store calls for it in the last simulated second (bound ${CALLS_PER_SECOND_BOUND})`,
        );
      }
    }
  }

  /**
   * A waiter still queued at the end, on a lock that went round in turn: a
   * world of 70 daemons with a waiter each serves a daemon's second waiter
   * only after a handoff to every other daemon in line (a watch event and a
   * write, and each hold), which a quiet tail cut short by faults on the lock
   * may not leave time for (seeds 292481 and 302769: a lock deleted and then
   * lengthened by hand until 77 s, then handed over every 0.8 s). From the
   * later of the fault phase's end, the lock's last excuse and the waiter's
   * start: grants kept coming, none more than the longest hold and the stall
   * bound apart, up to the end; and no other daemon began a second turn while
   * the waiter's daemon had none (a queue across daemons serves every daemon
   * in line before any daemon again, docs/design.md 3.4), counting only turns
   * after one that ended a turn grace after that instant, when the waiter's
   * daemon was in line.
   */
  private wentRoundInTurn(client: AcquireClient): boolean {
    const from = Math.max(FAULTS_END_MS, this.excuses.excusedUntil(client.resource.leaseName), client.startedAt);
    const ms = (e: HistoryEvent) => Number(e.ts) / 1e6;
    const grants = this.history
      .filter((e) => e.ev === "acquired" && e.name === client.resource.name && e.kind === client.resource.kind && ms(e) >= from)
      .sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : 0));
    let last = from;
    for (const grant of grants) {
      if (ms(grant) - last > MAX_HOLD_MS + STALL_BOUND_MS) return false;
      last = ms(grant);
    }
    if (this.clock.now() - last > MAX_HOLD_MS + STALL_BOUND_MS) return false;
    // Turns of the other daemons since the waiter's daemon last had one, by daemon.
    const own = (client.daemon as Daemon).slot;
    const turns = new Map<number, number>();
    let previous: number | undefined;
    for (const [i, grant] of grants.entries()) {
      if (grant.daemon === previous) continue;
      previous = grant.daemon;
      if (grant.daemon === own) {
        turns.clear();
        continue;
      }
      // When the turn before this one ended: the next grant (a daemon's turn ends when it hands the lock on).
      const count = (turns.get(grant.daemon!) ?? 0) + 1;
      turns.set(grant.daemon!, count);
      if (count >= 2) return false;
      const next = grants.slice(i + 1).find((e) => e.daemon !== grant.daemon);
      if (next === undefined || ms(next) < from + TURN_GRACE_MS) turns.delete(grant.daemon!);
    }
    return true;
  }

  private finalChecks(): void {
    this.unrestoredInTime();
    // Every lock waiter was served (or gave up) by the end of the quiet tail,
    // unless a fault still excuses that lock (a lease lengthened by hand).
    for (const client of this.active) {
      const excused = this.excuses.excusedUntil(client.resource.leaseName) > this.clock.now();
      if (
        client instanceof AcquireClient &&
        client.state === "waiting" &&
        !client.daemon.gone() &&
        !excused &&
        !this.wentRoundInTurn(client)
      ) {
        this.violation(
          "unserved",
          `${client.resource.kind}/${client.resource.name}`,
          `${client.id} on ${(client.daemon as Daemon).identity} still waits at the end, after a quiet tail of ${(RUN_MS - FAULTS_END_MS) / 1000} s; the Lease: ${describeRecord(
            this.shared.peek(client.resource.leaseName),
          )}`,
        );
      }
    }
    // Every live candidate and observer was told who leads now, unless a fault still excuses that election
    // (a Lease lengthened by hand still names a leader whose daemon is gone, until it runs out).
    for (const election of this.resources.filter((r) => r.kind === "election")) {
      if (this.excuses.excusedUntil(election.leaseName) > this.clock.now()) continue;
      const live = this.clients.filter((c) => !c.done && c.resource === election && !c.daemon.gone());
      const leaders = live.filter((c): c is CampaignClient => c instanceof CampaignClient && c.leading);
      if (leaders.length > 1) continue; // the checker reports the overlap
      const record = this.shared.peek(election.leaseName);
      const actual =
        leaders[0] !== undefined ? { leader: leaders[0].id, term: leaders[0].term } : { leader: "", term: record?.transitions ?? 0 };
      const said = (state: { leader: string; term: number } | undefined) =>
        state === undefined ? "nothing" : `${state.leader || "(nobody)"} term ${state.term}`;
      for (const client of live) {
        if (client.stalled) continue;
        let ok: boolean;
        if (client instanceof CampaignClient) {
          if (client.leading) continue;
          const last = client.lastLeader;
          const matches = last !== undefined && last.leader === actual.leader && last.term === actual.term;
          ok = matches || (actual.leader === "" && client.lastDeposedTerm === actual.term && (last?.term ?? 0) <= actual.term);
        } else if (client instanceof ObserverClient) {
          ok = client.lastLeader?.leader === actual.leader && client.lastLeader?.term === actual.term;
        } else continue;
        if (!ok) {
          this.violation(
            "stale-leader",
            `election/${election.name}`,
            `${client.id} on ${(client.daemon as Daemon).identity} was last told ${said(client.lastLeader)}, but ${said(actual)} leads after the quiet tail`,
          );
        }
      }
    }
    // The history checker's safety and liveness rules.
    const checked = check(this.history, {
      leaseMs: LONGEST_LEASE_MS,
      identityPrefix: (d) => `d${d}_`,
      permitsOf: (resource) => this.resources.find((r) => `${r.kind}/${r.name}` === resource)?.permits,
      isRWLock: (resource) => resource.startsWith("rwlock/"),
    });
    for (const v of checked.violations) {
      if (this.reissuedAcrossDeletion(v)) continue;
      this.violations.push({ rule: v.rule, resource: v.resource, at: Number(v.at / 1000n) / 1000, message: v.message });
    }
    // Every read answered: a version of the Lease as it was during the call (read-oracle.ts).
    const faults = checked.faults;
    // A daemon's watch events reach its cache at the instant of the write, except while it is frozen (they wait),
    // cut off or its watch broken or slow (they are late or lost until a relist): from the start of such a fault on.
    // On the API server the watch also reads, and waits for its reads (docs/design.md 3.10): a name its list did not
    // return (the list is told once they answer, up to 2 s later), a Lease that left a watch selected by name (its
    // deletion is told once the read answers): a get held up on that daemon's connection is such a fault too. (Its
    // engine's own gets are not told apart from the watch's: the window opens for them as well.)
    const api = this.profile.apiServer;
    const heldUp = (fault: string) =>
      /^(freeze|partition|broken watch|slow watch) /.test(fault) ||
      (api !== undefined && /^(latency|late-reply|hang)( \(applied\))? on get /.test(fault));
    // Likewise while no watch of its was open and its requests waited in the API server's backlog, as the connection
    // measured: until a watch was served again, which brings what it missed at once.
    const disturbances = faults
      .filter((f) => heldUp(f.fault) && f.affects !== "all")
      .map((f) => ({
        slots: f.affects as readonly number[],
        start: Number(f.start) / 1e6,
        end: f.end === undefined ? Infinity : Number(f.end) / 1e6,
        lateMs: 2_000,
      }))
      .concat(this.heldUp);
    // On the API server, watch events come from a cache that lags the writes, through the daemon's connection.
    const watchLagMs = (slot: number) => (api === undefined ? 0 : api.cacheLagMs + 2 * (this.profile.baseLatencyMs[slot] ?? 0) + 50);
    const cacheSince = (slot: number, sent: number, replied: number) => {
      let from = sent - watchLagMs(slot);
      for (let changed = true; changed;) {
        changed = false;
        for (const d of disturbances) {
          if (d.slots.includes(slot) && d.start - watchLagMs(slot) < from && d.start <= replied && d.end + d.lateMs >= from) {
            from = d.start - watchLagMs(slot);
            changed = true;
          }
        }
      }
      return from;
    };
    for (const v of this.reads.check(cacheSince, (slot) => this.profile.driftRate[slot] ?? 1)) this.violations.push(v);
    // Starvation: a waiter sees many grants in a row to claims of one other daemon.
    for (const wait of checked.waits) {
      if (wait.daemon === undefined) continue;
      // A semaphore's TryAcquire, and an Acquire that does not wait, make one attempt: on a semaphore with free permits
      // that attempt may race another daemon's writes a few times before it gives up (seed 99: 150 ms, 62 grants of a
      // hot loop meanwhile). They do not wait in line, so they are not passed over.
      const client = this.clients.find((c) => c.id === wait.client);
      const seated = client?.resource.kind === "semaphore" || client?.resource.kind === "rwlock";
      if (seated && (client instanceof TryClient || (client instanceof AcquireClient && client.noWait))) continue;
      const end = wait.end ?? checked.observedUntil;
      // Grants during a fault of the waiter's own daemon, and for 2 s after it, do not count.
      const faulty = (t: bigint) =>
        faults.some(
          (f) => (f.affects === "all" || f.affects.includes(wait.daemon!)) && t >= f.start && t <= (f.end ?? end) + 2_000_000_000n,
        );
      // Nor those while the API server's backlog held its daemon's watch up (no watch of its open while a request of
      // its waited there, as its connection measured, until one was served again): it could hear no release and no
      // yield, and learned what it missed only then. From there the count starts again at 0 (seed 242034).
      const deaf = (t: bigint) => {
        const ms = Number(t) / 1e6;
        return this.heldUp.some((h) => h.slots.includes(wait.daemon!) && ms >= h.start && ms <= h.end);
      };
      // Nor those while a request of its daemon for this lock waited there (its announcement that it waits: it was not
      // in line yet; a write or a read: it could not act on the lock until the answer).
      const joining = (t: bigint) => {
        const ms = Number(t) / 1e6;
        return this.requestsHeldUp.some((j) => j.slot === wait.daemon && j.resource === wait.resource && ms >= j.start && ms <= j.end);
      };
      // On a semaphore, nor those before its daemon's announcement can have reached the store: two round trips of its
      // connection after it began to wait (its first try may race, then it announces). Another daemon handing permits
      // on back to back cannot know of it before (seed 192: 26 grants in the 100 ms of a 25 ms connection); after it,
      // that daemon's next write queues it (proposal 22, 1B: "Bound").
      const announcing = seated ? BigInt(Math.round((4 * (this.profile.baseLatencyMs[wait.daemon] ?? 0) + 10) * 1e6)) : 0n;
      // Nor those while the liveness oracles looked away from the name (a stall would have been excused): a daemon
      // that counts a seat from its first sight, or heard of changes late, may not take its turn and be skipped, and a
      // hand-off loop elsewhere then runs until its announcement lands (seed 485, a semaphore: 28 grants in 330 ms;
      // seed 2865, a writer that counted a killed daemon's reader seat from its thaw).
      const away = (t: bigint) => this.lookedAwayAt(wait.resource, Number(t) / 1e6);
      const excused = (t: bigint) => t < wait.start + announcing || faulty(t) || deaf(t) || joining(t) || away(t);
      if (client?.resource.kind === "rwlock" && client.mode === "exclusive") this.writerStarved(wait, end, checked, announcing, excused);
      let run = 0;
      let runDaemon: number | undefined;
      let worst = 0;
      const grants = checked.holds
        .filter((h) => h.resource === wait.resource && h.client !== wait.client && h.start > wait.start && h.start < end)
        .sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
      for (const h of grants) {
        if (excused(h.start) || h.daemon === wait.daemon) {
          run = 0;
          runDaemon = undefined;
          continue;
        }
        run = h.daemon === runDaemon ? run + 1 : 1;
        runDaemon = h.daemon;
        worst = Math.max(worst, run);
      }
      const bound = client?.resource.nonFair === true ? NON_FAIR_PASSES_IN_A_ROW_BOUND : PASSES_IN_A_ROW_BOUND;
      if (worst > bound) {
        this.violations.push({
          rule: "starvation",
          resource: wait.resource,
          at: Number(wait.start / 1000n) / 1000,
          message: `${wait.client} (daemon ${wait.daemon}) waited from t=${(Number(wait.start) / 1e9).toFixed(3)} s and saw ${worst} grants in a row to claims of one other daemon (bound ${bound})`,
        });
      }
    }
  }

  /**
   * writer-starved: a writer waiting for a read-write lock is not passed by a
   * stream of readers that asked after it. Readers whose wait began once its
   * announcement could have reached their daemon's watch count, in a row
   * without an exclusive grant between; grants while its own daemon could not
   * take its turn (the excuses of starvation) do not.
   */
  private writerStarved(
    wait: CheckResult["waits"][number],
    end: bigint,
    checked: CheckResult,
    announcing: bigint,
    excused: (t: bigint) => boolean,
  ): void {
    const lag =
      BigInt(Math.round((this.profile.apiServer?.cacheLagMs ?? 0) + 2 * Math.max(0, ...this.profile.baseLatencyMs) + 50)) * 1_000_000n;
    const askedAt = new Map<string, bigint>();
    for (const w of checked.waits) if (w.resource === wait.resource && !askedAt.has(w.client)) askedAt.set(w.client, w.start);
    // Counted in a row: an exclusive grant between is a writer's turn (its daemon's writer entry goes to the tail of
    // the line after one, behind readers already in line: seed 2508, a writer deep in its daemon's own FIFO).
    let run: typeof checked.holds = [];
    let past: typeof checked.holds = [];
    const holds = checked.holds
      .filter((h) => h.resource === wait.resource && h.start > wait.start && h.start < end)
      .sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
    for (const h of holds) {
      if (!h.shared) run = [];
      else if (!excused(h.start) && (askedAt.get(h.client) ?? h.start) > wait.start + announcing + lag) run = [...run, h];
      if (run.length > past.length) past = run;
    }
    if (past.length <= READERS_PAST_A_WRITER_BOUND) return;
    this.violations.push({
      rule: "writer-starved",
      resource: wait.resource,
      at: Number(wait.start / 1000n) / 1000,
      message: `${wait.client} (daemon ${wait.daemon}) waited to write from t=${(Number(wait.start) / 1e9).toFixed(3)} s and ${past.length} readers that asked after it were granted in a row (bound ${READERS_PAST_A_WRITER_BOUND}): ${past
        .slice(0, 5)
        .map((h) => `${h.client} at ${(Number(h.start) / 1e9).toFixed(3)} s`)
        .join(", ")}`,
    });
  }

  private result(): SimResult {
    const violations = [...this.violations].sort((a, b) => a.at - b.at);
    const storeCalls = this.shared.calls.get + this.shared.calls.create + this.shared.calls.update;
    return {
      seed: this.seed,
      violations,
      history: this.history,
      profile: describeProfile(this.profile),
      stats: {
        clients: this.clientCount,
        holds: this.history.filter((e) => e.ev === "acquired" || e.ev === "elected").length,
        storeCalls,
        simulatedMs: this.clock.now(),
        faultPhaseTicks: this.faultPhaseTicks,
        excusedTicks: this.excusedTicks,
        reads: this.reads.count,
        excusedBy: this.excusedBy,
      },
    };
  }
}

/** What changes when a holder acquires, renews or releases (and not when a daemon joins the queue). */
function renewalOf(r: LeaseRecord): string {
  return [r.holderIdentity, r.transitions, r.leaseDurationSeconds, r.renewTime?.getTime() ?? ""].join("|");
}

function describeRecord(record: LeaseRecord | undefined): string {
  if (record === undefined) return "absent";
  const seats = (record.seats ?? []).map((seat) =>
    seat.released === true
      ? `${seat.identity}#${seat.acquisition} released`
      : `${seat.identity}#${seat.acquisition} p=${seat.permits ?? "-"} ${seat.durationSeconds} s`,
  );
  const permits =
    record.permits === undefined
      ? ""
      : `, ${record.permits} permits, seats [${[...seats, ...(record.brokenSeats ?? []).map((key) => `${key} broken`)].join(", ")}]`;
  const seated = record.seated === undefined ? "" : `, seated [${record.seated.map((s) => `${s.identity}#${s.acquisition}`).join(", ")}]`;
  return `holder ${record.holderIdentity || "(none)"} (${record.holder || "-"}), token ${record.transitions}, lease ${record.leaseDurationSeconds} s${permits}${seated}, queue [${record.queue.join(", ")}], version ${record.version}`;
}

/** Runs one seed. */
export async function simulate(options: SimOptions): Promise<SimResult> {
  return new Simulation(options.seed, options).run();
}

/** The lease duration a daemon counts for `record`'s hold: the longer of the one written and the one a daemon last wrote. */
function longestDurationSeconds(record: LeaseRecord): number {
  return Math.max(record.leaseDurationSeconds, record.writtenDuration ?? 0);
}
