// Everything one run measured, as written to results.json and rendered into
// the report. Times in ms, memory in bytes, rates per second.
import type { VerbCounts } from "./context.js";
import type { Summary } from "./stats.js";

export type System = "ours" | "ours-election" | "client-go" | "client-go-500ms" | "etcd" | "curator";

export interface Meta {
  date: string;
  quick: boolean;
  durationS: number;
  nproc: number;
  memTotalBytes: number;
  cpuModel: string;
  loadBefore: string;
  loadAfter: string;
  node: string;
  go: string;
  kubeApiServer: string;
  /** Whether the API server served Lease watches from its watch cache (as real clusters do). */
  leaseWatchCache: boolean;
  etcdServer: string;
  clientGo: string;
  etcdClient: string;
  daemonVersion: string;
  /** The node flags our daemons ran with (daemonNodeFlags); absent in runs before it, which ran them with none. */
  daemonNodeFlags?: string[];
  /** The Curator peer's Java, and the Curator and ZooKeeper versions it and its server run (absent in runs before the peer). */
  java?: string;
  curator?: string;
  zookeeper?: string;
}

export interface IdleRow {
  instances: number;
  /** spawn -> health SERVING (ours only). */
  startToServingMs?: number[];
  /** spawn -> leader of a free election. */
  startToLeaderMs: number[];
  rssBytes: number[];
  cpuPercent: number[];
}

/** One handoff of ours split at the moments a separate watch on the Lease saw its writes. */
export interface HandoffSteps {
  /** Client releases -> the release write arrives on a watch. */
  releaseVisibleMs: number[];
  /** Release visible -> the next holder's take-over write arrives on a watch. */
  takeoverVisibleMs: number[];
  /** Take-over visible -> Acquired at the next holder's client (negative: the client heard first). */
  toClientMs: number[];
}

/** One daemon's CPU per operation: idle (serving, holding nothing), and renewing held locks. */
export interface CpuRow {
  idleWindowS: number;
  idleCpuMsPerMinute: number;
  renewLocks: number;
  renewLeaseS: number;
  renewWindowS: number;
  /** Renewals the daemon counted in the window (msync_renew_seconds_count). */
  renewals: number;
  /** The window's CPU less the idle rate over it, per renewal. */
  cpuMsPerRenewal: number;
  renewCpuPercent: number;
}

export interface HandoffRow {
  samples: number[];
  /** How the sample is delimited, for the report. */
  from: string;
  to: string;
  /** Candidate pairs run in parallel (client-go). */
  parallel?: number;
  /** client-go/etcd: release write duration, releasing -> released. */
  releaseWriteMs?: number[];
  /** Ours: Lease writes the API server served per round (release, take-over, the old holder queueing again). */
  writesPerRound?: number;
  /** Ours: mean time the API server took per Lease write during the rounds. */
  writeMeanMs?: number;
  /** Ours (lock): the handoff in steps. */
  steps?: HandoffSteps;
  /** Ours (lock): CPU time each daemon used per round, mean of the two (utime + stime from /proc). */
  daemonCpuMsPerRound?: number;
  /** Curator: ZooKeeper requests per round, from the server's own counters (reads include watches set and pings). */
  zkReadsPerRound?: number;
  zkWritesPerRound?: number;
}

export interface CrashRow {
  leaseS: number;
  /** kill -> next holder. */
  failoverMs: number[];
  /** last successful renewal seen by the killed holder -> next holder, minus the lease. */
  excessMs: number[];
  how: string;
}

export interface WaitingRow {
  system: "ours" | "client-go";
  waiters: number;
  windowS: number;
  byVerb: VerbCounts;
  perSecond: number;
  watchesOpen: number;
  how: string;
}

export interface HotRow {
  sessions: number;
  processes: number;
  durationS: number;
  acquired: number;
  perSecond: number;
  /** Every acquisition got its own fencing token (ours). */
  tokensUnique?: boolean;
  /** CPU % of one core, summed over the daemons (ours) during the run. */
  daemonCpuPercent?: number;
  /** CPU time per acquisition and daemon (ours): both daemons' CPU over the run ÷ acquisitions ÷ daemons. */
  daemonCpuMsPerAcquisition?: number;
  /** Lease writes the API server served during the run, per acquisition (ours). */
  writesPerAcquisition?: number;
  /** Acquisitions whose previous holder was on the other daemon (ours). */
  crossDaemonHandoffs?: number;
  /** Permits of the semaphore (1 for a lock). */
  permits?: number;
  /** How long each holder kept its permit before releasing (0: at once). */
  holdMs?: number;
  /** Curator, our semaphore: a release → the acquisition it made room for, over all processes (bench/lib/holds.ts). */
  handoff?: Summary;
  /** Curator, our semaphore: the handoffs between the two processes alone (a release on one → the acquisition on the other). */
  crossHandoff?: Summary;
  /** Curator, our semaphore: time inside the release call. */
  release?: Summary;
  /** Curator, our semaphore: the most holds seen at once (from each process's own stamps); above `permits` would be a safety violation. */
  maxConcurrent?: number;
  /** Curator, our semaphore: handoffs between the two processes. */
  crossProcessHandoffs?: number;
  /** Curator: the ZooKeeper server's CPU during the run, % of one core. */
  serverCpuPercent?: number;
  /** Curator: ZooKeeper requests per acquisition, from the server's own counters. */
  zkReadsPerAcquisition?: number;
  zkWritesPerAcquisition?: number;
  /** Curator: ZooKeeper packets per acquisition, received and sent by the server (mntr's zk_packets_received, zk_packets_sent). */
  zkPacketsReceivedPerAcquisition?: number;
  zkPacketsSentPerAcquisition?: number;
}

export interface SemaphoreRow extends HotRow {
  system: "ours" | "curator";
  /** The samples of `crossHandoff` as a CDF sketch of at most a few hundred points (bench/lib/stats.ts cdfSketch), ms. */
  crossHandoffCdf?: number[];
  /**
   * Ours: of the handoffs, the share whose next holder had already asked when the release began, from the loops'
   * own stamps; near 1 means every release handed over to a waiter, at any hold.
   */
  waitedShare?: number;
  /** Ours: apiserver_request_total{resource="leases"} over the run, by verb (the grants' cost: divide by `acquired`). */
  leaseRequests?: VerbCounts;
}

/** The read-write lock's read-heavy loop, one row per system (bench/phases/rwlock.ts). */
export interface RWLockRow {
  system: "ours" | "curator";
  sessions: number;
  processes: number;
  durationS: number;
  /** How long each holder kept its hold before releasing. */
  holdMs: number;
  /** Each client's every exclusiveEvery-th acquisition was exclusive, the others shared. */
  exclusiveEvery: number;
  shared: number;
  exclusive: number;
  sharedPerSecond: number;
  exclusivePerSecond: number;
  /** The last release before a waiting writer's acquisition → that acquisition (bench/lib/rw-holds.ts). */
  toExclusive: Summary;
  /** A writer's release → the first acquisition by anyone already waiting. */
  fromExclusive: Summary;
  /** Times an exclusive hold overlapped another hold, from the holders' own stamps: above 0 would be a safety violation. */
  overlaps: number;
  maxShared: number;
  release: Summary;
  /** Ours: every exclusive hold had its own fencing token. */
  exclusiveTokensUnique?: boolean;
  /** Ours: apiserver_request_total{resource="leases"} over the run, by verb (divide by shared + exclusive for the cost per hold). */
  leaseRequests?: VerbCounts;
  /** Ours: CPU % of one core, summed over the daemons. */
  daemonCpuPercent?: number;
  /** Curator: the ZooKeeper server's requests and packets per hold, from its own counters, and its CPU. */
  zkReadsPerHold?: number;
  zkWritesPerHold?: number;
  zkPacketsReceivedPerHold?: number;
  zkPacketsSentPerHold?: number;
  serverCpuPercent?: number;
}

export interface ScaleRow {
  locks: number;
  observers: number;
  elections: number;
  windowS: number;
  acquireAllMs: number;
  lostInWindow: number;
  lostTotal: number;
  renewedPerSecond: number;
  byVerb: VerbCounts;
  writesPerSecond: number;
  rssStartBytes: number;
  rssMaxBytes: number;
  rssEndBytes: number;
  cpuPercent: number;
  /** Most sockets the daemon had open at once (gRPC clients, its watch, API requests). */
  socketsMax: number;
  observersServed: number;
  daemonWarnings: number;
  /** The most frequent warnings, with counts. */
  warningKinds: Array<[string, number]>;
}

/** What one daemon of the fleet run does with its clients. */
export type FleetRole = "many-locks" | "holder" | "leader" | "waiter";

/** One daemon of the fleet run: what it received and spent over the window. */
export interface FleetDaemonRow {
  role: FleetRole;
  /** The lock and election names its clients use, in words. */
  uses: string;
  /** msync_watch_events_total over the window, by type (ADDED, MODIFIED, DELETED, BOOKMARK, ERROR). */
  watchEvents: Record<string, number>;
  /** msync_watch_restarts_total over the window, by reason (ended, expired, error). */
  watchRestarts: Record<string, number>;
  /** msync_api_requests_total over the window, by verb (get, create, update, list). */
  apiRequests: Record<string, number>;
  /** CPU % of one core over the window (utime + stime). */
  cpuPercent: number;
  /** VmRSS at the end of the window. */
  rssBytes: number;
}

export interface FleetRow {
  /** Daemons in the fleet; fleet[0] holds the many locks. */
  daemons: number;
  /** Locks held by clients of fleet[0]. */
  locks: number;
  settleS: number;
  windowS: number;
  fleet: FleetDaemonRow[];
  /** The API server over the same window, for Leases. */
  apiServer: {
    /** apiserver_watch_events_total: events sent to Lease watchers. */
    watchEvents: number;
    /** apiserver_watch_events_sizes_sum: their bytes. */
    watchEventBytes: number;
    /** apiserver_terminated_watchers_total: Lease watchers the API server closed for not keeping up. */
    terminatedWatchers: number;
    /** apiserver_longrunning_requests{verb="WATCH"} at the end of the window. */
    watchesOpen: number;
    byVerb: VerbCounts;
    /** The kube-apiserver process, % of one core. */
    cpuPercent: number;
  };
  /** Lost events on the lock streams and depositions of the leaders during the window. */
  lostInWindow: number;
  how: string;
}

/** The fleet figures of a run on an earlier daemon, kept in bench/fleet-before.json to compare against. */
export interface FleetBaseline {
  /** The commit the run was measured on. */
  commit: string;
  /** The last commit before it that changed the daemon or the TypeScript client. */
  daemonCommit: string;
  date: string;
  command: string;
  leaseWatchCache: boolean;
  /** Load average (1, 5, 15 min) before / after that run: the machine is shared, and CPU figures depend on it. */
  load: string;
  row: FleetRow;
}

/** One reading of a daemon during the soak. NaN where the daemon did not export the value. */
export interface SoakSample {
  /** Seconds since the load started: negative before it, past the load window for the settled reading. */
  tS: number;
  /** VmRSS from /proc. */
  rssBytes: number;
  /** nodejs_heap_size_used_bytes. */
  heapUsedBytes: number;
  /** nodejs_heap_size_total_bytes: what V8 has reserved for its heap, used or not. */
  heapTotalBytes: number;
  /** nodejs_external_memory_bytes (buffers outside the V8 heap). */
  externalBytes: number;
  /** Entries of /proc/PID/fd. */
  fds: number;
  /** nodejs_active_handles_total (sockets, servers, timers with a handle), the scrape's own connection included. */
  activeHandles: number;
  /** msync_locks_held. */
  locksHeld: number;
  /** msync_elections_led. */
  electionsLed: number;
  /** msync_waiters, both kinds. */
  waiters: number;
}

export interface SoakDaemon {
  identity: string;
  /** Idle, after start-up, before any client connected. */
  before: SoakSample;
  /** Every sample period while the load ran, the first at its start and the last at its end. */
  samples: SoakSample[];
  /** After the load stopped, its clients closed and the settle period passed. */
  settled: SoakSample;
  /** msync_api_requests_total from the start of the load to its end (operations drained), by verb. */
  apiRequests: Record<string, number>;
  /** msync_watch_restarts_total over the same span, by reason. */
  watchRestarts: Record<string, number>;
  /** msync_watch_events_total over the same span, by type. */
  watchEvents: Record<string, number>;
}

export interface SoakOps {
  /** Operations that ran to the end as expected. */
  ok: number;
  errors: number;
  /** Expected outcomes other than ok, by name (e.g. a TryAcquire that found the lock held). */
  other: Record<string, number>;
}

export interface SoakRow {
  plannedS: number;
  /** Length of the load window as run. */
  durationS: number;
  sampleEveryS: number;
  /** Samples before this many seconds of load are left out of the slopes. */
  warmupS: number;
  settleS: number;
  opsPerSecondTarget: number;
  /** Most operations in flight at once; a tick that finds this many is skipped. */
  maxInFlight: number;
  lockNames: number;
  electionNames: number;
  /** By operation kind. */
  ops: Record<string, SoakOps>;
  /** Ticks that started nothing: every name of the kind was in use, or maxInFlight operations were running. */
  skipped: number;
  /** Errors by kind (digits shown as N), most frequent first. */
  errorKinds: Array<[string, number]>;
  daemons: SoakDaemon[];
  daemonWarnings: number;
  warningKinds: Array<[string, number]>;
}

export interface Results {
  meta: Meta;
  idle: Partial<Record<"ours" | "client-go" | "etcd", IdleRow>>;
  handoff: Partial<Record<System, HandoffRow>>;
  crash: Partial<Record<"ours" | "client-go" | "etcd", CrashRow>>;
  waiting: WaitingRow[];
  /** `oursNonFair`: ours with every client asking fair: false. */
  hot: Partial<Record<"ours" | "oursNonFair" | "etcd" | "curator", HotRow>>;
  /** Hot semaphore of N permits, one row per system and hold; absent in runs before it (ours: in runs since issue 22). */
  semaphore?: SemaphoreRow[];
  /** Read-heavy read-write lock loop, ours and Curator's; absent in runs before it. */
  rwlock?: RWLockRow[];
  scale?: ScaleRow;
  /** The floor of a graceful handoff: two minimal API clients, no daemon (bench/phases/floor.ts); absent in runs before it. */
  floor?: HandoffRow;
  /** One daemon's CPU idle and per renewal; absent in runs before it. */
  cpu?: CpuRow;
  fleet?: FleetRow;
  /** From bench/fleet-before.json, of the same size class (full or quick) as this run. */
  fleetBefore?: FleetBaseline;
  soak?: SoakRow;
  failures: Array<{ phase: string; error: string }>;
}
