// What every benchmark phase is given: the control plane, the peer binaries,
// the sizes of this run (full or --quick) and a few shared helpers.
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { type ControlPlane, sumCounter } from "../../test/controlplane/controlplane.js";
import { OurDaemon } from "./daemon.js";
import { PeerProcess } from "./peer.js";
import { ZooKeeperServer, buildCurator, curatorPeer } from "./zookeeper.js";

export interface Params {
  /** Graceful handoff samples per system. */
  readonly handoffN: number;
  /** Rounds before sampling starts (ours and etcd, run sequentially). */
  readonly handoffWarmup: number;
  /** Pause after a new waiter is queued, before the next release. */
  readonly handoffSettleMs: number;
  /** client-go handoff rounds per candidate pair; ceil(handoffN / this) pairs (one Lease each) run in parallel. */
  readonly clientGoRoundsPerPair: number;
  /** Crash failover samples per system. */
  readonly crashN: number;
  /** Lease duration / session TTL of the crash runs, seconds. */
  readonly crashLeaseS: number;
  readonly waiters: readonly number[];
  readonly waitingWindowMs: number;
  readonly waitingSettleMs: number;
  readonly hotDurationMs: number;
  readonly hotClientsPerDaemon: number;
  /** Permits of the hot semaphore (its lockers: hotClientsPerDaemon in each of two processes, ours or Curator's). */
  readonly semaphorePermits: number;
  /**
   * How long each semaphore holder keeps its permit, one run per value. With no hold a run measures the
   * recipe's own pace, but the permits are never all taken at once (Curator's semaphore serialises
   * acquisitions on an internal lock), so no release hands over to a waiter; with a hold they are, and the
   * handoffs are timed.
   */
  readonly semaphoreHoldsMs: readonly number[];
  /** How long each read-write lock holder keeps its hold (hotClientsPerDaemon lockers in each of two processes, for hotDurationMs). */
  readonly rwlockHoldMs: number;
  /** Each read-write lock locker's every rwlockExclusiveEvery-th acquisition is exclusive, the others shared. */
  readonly rwlockExclusiveEvery: number;
  readonly scaleLocks: number;
  readonly scaleObservers: number;
  readonly scaleWindowMs: number;
  /** Fleet: daemons in one namespace; daemon 0 holds fleetLocks locks, the others one or two names each. */
  readonly fleetDaemons: number;
  readonly fleetLocks: number;
  readonly fleetSettleMs: number;
  readonly fleetWindowMs: number;
  readonly idleInstances: number;
  readonly idleSettleMs: number;
  /** CPU per operation: one daemon idle (serving, holding nothing) for this long, then holding cpuRenewLocks locks of a 3 s lease. */
  readonly cpuIdleWindowMs: number;
  readonly cpuRenewLocks: number;
  readonly cpuRenewWindowMs: number;
  /** Length of the soak's load window. */
  readonly soakDurationMs: number;
  /** The soak reads each daemon's memory, descriptors and gauges this often. */
  readonly soakSampleMs: number;
  /** Pause between the soak's load ending and the reading that should be back at the start values. */
  readonly soakSettleMs: number;
  /** Operations the soak starts per second. */
  readonly soakOpsPerSecond: number;
  /** Upper bound of the whole run; phases check it and stop early. */
  readonly budgetMs: number;
}

export const FULL: Params = {
  handoffN: 200,
  handoffWarmup: 3,
  handoffSettleMs: 100,
  clientGoRoundsPerPair: 10,
  crashN: 10,
  crashLeaseS: 5,
  waiters: [10, 100],
  waitingWindowMs: 30_000,
  waitingSettleMs: 3_000,
  hotDurationMs: 20_000,
  hotClientsPerDaemon: 8,
  semaphorePermits: 3,
  semaphoreHoldsMs: [0, 10],
  rwlockHoldMs: 2,
  rwlockExclusiveEvery: 10,
  scaleLocks: 1000,
  scaleObservers: 1000,
  scaleWindowMs: 60_000,
  fleetDaemons: 20,
  fleetLocks: 500,
  fleetSettleMs: 10_000,
  fleetWindowMs: 60_000,
  idleInstances: 3,
  idleSettleMs: 5_000,
  cpuIdleWindowMs: 30_000,
  cpuRenewLocks: 100,
  cpuRenewWindowMs: 20_000,
  soakDurationMs: 30 * 60_000,
  soakSampleMs: 10_000,
  soakSettleMs: 15_000,
  soakOpsPerSecond: 10,
  /** 15.5 min for the other phases (2 of them Curator's, 1 our semaphore's, 1 the read-write lock's), the soak's window, and 1.5 min for its settle and clean-up. */
  budgetMs: (15.5 + 30 + 1.5) * 60_000,
};

export const QUICK: Params = {
  handoffN: 20,
  handoffWarmup: 2,
  handoffSettleMs: 100,
  clientGoRoundsPerPair: 2,
  crashN: 2,
  crashLeaseS: 5,
  waiters: [10, 100],
  waitingWindowMs: 4_000,
  waitingSettleMs: 2_000,
  hotDurationMs: 4_000,
  hotClientsPerDaemon: 8,
  semaphorePermits: 3,
  semaphoreHoldsMs: [0, 10],
  rwlockHoldMs: 2,
  rwlockExclusiveEvery: 10,
  scaleLocks: 100,
  scaleObservers: 100,
  scaleWindowMs: 10_000,
  fleetDaemons: 6,
  fleetLocks: 50,
  fleetSettleMs: 3_000,
  fleetWindowMs: 10_000,
  idleInstances: 2,
  idleSettleMs: 3_000,
  cpuIdleWindowMs: 3_000,
  cpuRenewLocks: 10,
  cpuRenewWindowMs: 3_000,
  soakDurationMs: 20_000,
  soakSampleMs: 2_000,
  soakSettleMs: 5_000,
  soakOpsPerSecond: 10,
  /** As FULL: the other phases (about 45 s of them Curator's, its build included, 20 s our semaphore's, 30 s the read-write lock's), the soak, its settle. */
  budgetMs: 4.1 * 60_000 + 20_000 + 1.5 * 60_000,
};

export const LEASE_VERBS = ["GET", "LIST", "WATCH", "POST", "PUT", "PATCH", "DELETE"] as const;
export type Verb = (typeof LEASE_VERBS)[number];
export type VerbCounts = Record<Verb, number>;

export class BenchContext {
  private curatorLib: string | undefined;
  private zookeeper: ZooKeeperServer | undefined;

  constructor(
    /** Absent when only phases that need none run (`--only curator`). */
    private readonly controlPlane: ControlPlane | undefined,
    readonly params: Params,
    /** The Go peers' bin folder; empty when they were not built. */
    readonly peersBin: string,
    readonly quick: boolean,
    /** performance.now() when the run started. */
    readonly startedAt: number,
    /** The repository root, for building the Curator peer. */
    private readonly root: string,
  ) {}

  get cp(): ControlPlane {
    if (!this.controlPlane) throw new Error("this run started no control plane");
    return this.controlPlane;
  }

  log(message: string): void {
    const s = ((performance.now() - this.startedAt) / 1000).toFixed(1).padStart(6);
    process.stderr.write(`[bench +${s}s] ${message}\n`);
  }

  /** ms left of the run's budget. */
  remainingMs(): number {
    return this.params.budgetMs - (performance.now() - this.startedAt);
  }

  async newNamespace(prefix: string): Promise<string> {
    const name = `bench-${prefix}-${randomBytes(3).toString("hex")}`;
    await this.cp.createNamespace(name);
    return name;
  }

  /** apiserver_request_total{resource="leases"} by verb, from one scrape. */
  async leaseRequests(): Promise<VerbCounts> {
    const text = await this.cp.metrics();
    return Object.fromEntries(
      LEASE_VERBS.map((verb) => [verb, sumCounter(text, "apiserver_request_total", { resource: "leases", verb })]),
    ) as VerbCounts;
  }

  /** Count and total seconds of the API server's Lease writes (PUT and POST) so far, from apiserver_request_duration_seconds. */
  async leaseWriteLatency(): Promise<{ count: number; seconds: number }> {
    const text = await this.cp.metrics();
    let count = 0;
    let seconds = 0;
    for (const verb of ["PUT", "POST"]) {
      count += sumCounter(text, "apiserver_request_duration_seconds_count", { resource: "leases", verb });
      seconds += sumCounter(text, "apiserver_request_duration_seconds_sum", { resource: "leases", verb });
    }
    return { count, seconds };
  }

  /** Lease watches open right now (apiserver_longrunning_requests gauge). */
  async leaseWatchesOpen(): Promise<number> {
    return sumCounter(await this.cp.metrics(), "apiserver_longrunning_requests", { resource: "leases", verb: "WATCH" });
  }

  startDaemon(namespace: string, identity: string, flags: readonly string[] = []): Promise<OurDaemon> {
    return OurDaemon.start({ kubeconfig: this.cp.kubeconfigPath, namespace, identity, flags });
  }

  /** A client-go leader election candidate (defaults 15 s / 10 s / 2 s unless flags say otherwise). */
  clientGo(namespace: string, lease: string, identity: string, flags: readonly string[] = []): PeerProcess {
    return PeerProcess.spawn(`client-go ${identity}`, join(this.peersBin, "clientgo-candidate"), [
      `--kubeconfig=${this.cp.kubeconfigPath}`,
      `--namespace=${namespace}`,
      `--name=${lease}`,
      `--identity=${identity}`,
      ...flags,
    ]);
  }

  /**
   * Runs `fn` with a ZooKeeper server of its own (a fresh JVM on 127.0.0.1, stopped after), building the
   * Curator peer first if need be. A fresh server per measurement keeps its request counters to that measurement.
   */
  async withZooKeeper<T>(fn: (zookeeper: ZooKeeperServer) => Promise<T>): Promise<T> {
    this.curatorLib ??= buildCurator(this.root);
    this.zookeeper = await ZooKeeperServer.start(this.curatorLib);
    try {
      return await fn(this.zookeeper);
    } finally {
      await this.zookeeper.stop();
      this.zookeeper = undefined;
    }
  }

  /** A Curator peer (bench/peers/curator) on the server of withZooKeeper: election mode unless flags say otherwise. */
  curator(name: string, identity: string, flags: readonly string[] = []): PeerProcess {
    if (!this.curatorLib || !this.zookeeper) throw new Error("curator peers run inside withZooKeeper");
    return curatorPeer(this.curatorLib, this.zookeeper, name, identity, flags);
  }

  /** An etcd concurrency peer (election mode unless flags say --mode=mutex). */
  etcd(name: string, identity: string, flags: readonly string[] = []): PeerProcess {
    return PeerProcess.spawn(`etcd ${identity}`, join(this.peersBin, "etcd-peer"), [
      `--endpoints=${this.cp.etcdEndpoint}`,
      `--name=${name}`,
      `--identity=${identity}`,
      ...flags,
    ]);
  }
}

export function diffCounts(before: VerbCounts, after: VerbCounts): VerbCounts {
  return Object.fromEntries(LEASE_VERBS.map((v) => [v, after[v] - before[v]])) as VerbCounts;
}

export function totalCount(counts: VerbCounts): number {
  return LEASE_VERBS.reduce((sum, v) => sum + counts[v], 0);
}

/** Each verb's count divided by `n` (requests per grant, say); NaN for every verb when n is 0. */
export function countsPer(counts: VerbCounts, n: number): VerbCounts {
  return Object.fromEntries(LEASE_VERBS.map((v) => [v, n > 0 ? counts[v] / n : NaN])) as VerbCounts;
}
