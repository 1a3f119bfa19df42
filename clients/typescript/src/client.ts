// The entry point of the TypeScript client: one object per sidecar address.
import { type ChannelCredentials, type ChannelOptions, credentials as grpcCredentials } from "@grpc/grpc-js";
import { Campaign, type CampaignOptions, type Leader, observe } from "./election.js";
import { ElectionServiceClient, type GetLeaderResponse } from "./gen/metaparticle/sync/v1/election_service.js";
import { type GetLockResponse, LockServiceClient, type TryAcquireResponse } from "./gen/metaparticle/sync/v1/lock_service.js";
import { RWLockServiceClient } from "./gen/metaparticle/sync/v1/rwlock_service.js";
import { SemaphoreServiceClient } from "./gen/metaparticle/sync/v1/semaphore_service.js";
import { KEEPALIVE_CHANNEL_OPTIONS, timeoutOf, unary } from "./deadlines.js";
import type { LeaseOptions } from "./hold.js";
import { LeasedLock, type Lock, type LockOptions, acquire } from "./lock.js";
import { RWLock } from "./rwlock.js";
import { Semaphore, type SemaphoreInfo, getSemaphore } from "./semaphore.js";
import { type ReadOptions, defaultName, fromDuration, optionalDuration, readConsistency } from "./internal.js";

export type { ReadOptions } from "./internal.js";

/** Where the sidecar listens unless told otherwise. */
export const DEFAULT_ADDRESS = "127.0.0.1:13131";

export interface SyncClientOptions {
  /** Sidecar address; default MSYNC_ADDRESS or 127.0.0.1:13131. */
  readonly address?: string;
  readonly credentials?: ChannelCredentials;
  /**
   * grpc-js channel options, merged over the client's own: keepalive every
   * KEEPALIVE_TIME_MS (10 s), KEEPALIVE_TIMEOUT_MS (5 s) to answer, also
   * without calls, so that streams notice a sidecar that stopped answering.
   */
  readonly channelOptions?: ChannelOptions;
}

export interface LockInfo {
  readonly held: boolean;
  readonly holder: string;
  readonly token: number;
  readonly acquireTime: Date | undefined;
  readonly leaseDurationMs: number;
  /** ms until the lease expires unless renewed, as the sidecar observed it. */
  readonly remainingMs: number;
  /** @deprecated The same as `leaseDurationMs`. */
  readonly leaseDuration: number;
  /** @deprecated The same as `remainingMs`. */
  readonly remaining: number;
}

/** What `tryLock()` takes. */
export interface TryLockOptions extends LeaseOptions {
  /** @deprecated The same as `leaseDurationMs`. */
  readonly leaseDuration?: number;
}

export class SyncClient {
  readonly locks: LockServiceClient;
  readonly elections: ElectionServiceClient;
  readonly semaphores: SemaphoreServiceClient;
  readonly rwlocks: RWLockServiceClient;
  readonly address: string;

  constructor(options: SyncClientOptions = {}) {
    this.address = options.address ?? process.env.MSYNC_ADDRESS ?? DEFAULT_ADDRESS;
    const creds = options.credentials ?? grpcCredentials.createInsecure();
    this.locks = new LockServiceClient(this.address, creds, { ...KEEPALIVE_CHANNEL_OPTIONS, ...options.channelOptions });
    this.elections = new ElectionServiceClient(this.address, creds, { channelOverride: this.locks.getChannel() });
    this.semaphores = new SemaphoreServiceClient(this.address, creds, { channelOverride: this.locks.getChannel() });
    this.rwlocks = new RWLockServiceClient(this.address, creds, { channelOverride: this.locks.getChannel() });
  }

  /**
   * Waits for the lock and holds it until released or disposed:
   *
   *     await using lock = await client.lock("db-migration");
   *     await migrate({ fencingToken: lock.token, signal: lock.signal });
   *
   * Waits at most `waitTimeoutMs` (default 5 min) or `timeoutMs`, whichever is
   * shorter, then rejects with DEADLINE_EXCEEDED, also when the sidecar does
   * not answer (see LockOptions).
   */
  lock(name: string, options: LockOptions = {}): Promise<Lock> {
    return acquire(this.locks, name, options.holder ?? defaultName("MSYNC_HOLDER"), options);
  }

  /**
   * One attempt without waiting; the lock is then held for its lease unless
   * renewed. Undefined if someone else holds it. Deadline `timeoutMs`, default 10 s.
   */
  async tryLock(name: string, options: TryLockOptions = {}): Promise<LeasedLock | undefined> {
    const holder = options.holder ?? defaultName("MSYNC_HOLDER");
    const request = { name, holder, leaseDuration: optionalDuration(options.leaseDurationMs ?? options.leaseDuration) };
    const response = await unary<TryAcquireResponse>(
      `TryAcquire of lock ${name}`,
      { signal: options.signal, timeoutMs: timeoutOf(options) },
      (metadata, callOptions, callback) => this.locks.tryAcquire(request, metadata, callOptions, callback),
    );
    if (!response.acquired) return undefined;
    return new LeasedLock(this.locks, name, response.fencingToken, holder, fromDuration(response.validFor));
  }

  /** Who holds a lock. Deadline `timeoutMs`, default 10 s. */
  async getLock(name: string, options: ReadOptions = {}): Promise<LockInfo> {
    const r = await unary<GetLockResponse>(
      `GetLock of lock ${name}`,
      { signal: options.signal, timeoutMs: timeoutOf(options) },
      (metadata, callOptions, callback) =>
        this.locks.getLock({ name, consistency: readConsistency(options) }, metadata, callOptions, callback),
    );
    return {
      held: r.held,
      holder: r.holder,
      token: r.fencingToken,
      acquireTime: r.acquireTime,
      leaseDurationMs: fromDuration(r.leaseDuration),
      remainingMs: fromDuration(r.remaining),
      leaseDuration: fromDuration(r.leaseDuration),
      remaining: fromDuration(r.remaining),
    };
  }

  /**
   * Semaphore `name` with `permits` (N) permits: at most N holders at once,
   * across every daemon of the namespace. Every caller of a name must use the
   * same N (else PERMITS_MISMATCH). Nothing is sent until you call one of its
   * methods:
   *
   *     const exporters = client.semaphore("export", 3);
   *     await using permit = await exporters.acquire({ waitTimeoutMs: 60_000 });
   *     const { permit: leased, holders } = await exporters.tryAcquire();
   */
  semaphore(name: string, permits: number): Semaphore {
    return new Semaphore(this.semaphores, name, permits);
  }

  /** Who holds semaphore `name`'s permits, whatever its N; `permits` is 0 if it was never used. Deadline `timeoutMs`, default 10 s. */
  getSemaphore(name: string, options: ReadOptions = {}): Promise<SemaphoreInfo> {
    return getSemaphore(this.semaphores, name, options);
  }

  /**
   * Read-write lock `name`: many shared holds at once, or one exclusive hold,
   * across every daemon of the namespace; readers that ask while a writer
   * waits queue behind it. It is a lock of its own, not lock `name` of
   * `lock()`. Nothing is sent until you call one of its methods:
   *
   *     const catalog = client.rwlock("catalog");
   *     await using reading = await catalog.acquire("shared", { waitTimeoutMs: 60_000 });
   *     const { hold, state } = await catalog.tryAcquire("exclusive");
   *
   * The defaults are those of `lock()` and `tryLock()`: a wait of at most 5
   * min, 10 s for every other call, the sidecar's lease (15 s).
   */
  rwlock(name: string): RWLock {
    return new RWLock(this.rwlocks, name);
  }

  /**
   * Joins an election. Use callbacks, or iterate the events:
   *
   *     const campaign = client.campaign("scheduler", { value: myAddress });
   *     for await (const event of campaign) if (event.type === "elected") lead(event.signal);
   */
  campaign(name: string, options: CampaignOptions = {}): Campaign {
    return new Campaign(this.elections, name, options.candidate ?? defaultName("MSYNC_CANDIDATE", "POD_NAME"), options);
  }

  /**
   * The current leader at once, then every change, without campaigning. It
   * has no deadline: it lasts until the loop ends or `signal` aborts, and ends
   * with an UNAVAILABLE error when the sidecar goes away or stops answering
   * (noticed by keepalive within KEEPALIVE_TIME_MS + KEEPALIVE_TIMEOUT_MS).
   */
  observe(name: string, options: { signal?: AbortSignal } = {}): AsyncIterableIterator<Leader> {
    return observe(this.elections, name, options.signal);
  }

  /** The current leader. Deadline `timeoutMs`, default 10 s. */
  async getLeader(name: string, options: ReadOptions = {}): Promise<Leader> {
    const r = await unary<GetLeaderResponse>(
      `GetLeader of election ${name}`,
      { signal: options.signal, timeoutMs: timeoutOf(options) },
      (metadata, callOptions, callback) =>
        this.elections.getLeader({ name, consistency: readConsistency(options) }, metadata, callOptions, callback),
    );
    return { leader: r.leader, value: r.value, term: r.term };
  }

  close(): void {
    this.locks.close();
    this.elections.close();
    this.semaphores.close();
    this.rwlocks.close();
  }
}
