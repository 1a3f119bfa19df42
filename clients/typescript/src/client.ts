// The entry point of the TypeScript client: one object per sidecar address.
import { ChannelCredentials, credentials as grpcCredentials } from "@grpc/grpc-js";
import { hostname } from "node:os";
import { Campaign, type CampaignOptions, type Leader, observe } from "./election.js";
import { ElectionServiceClient } from "./gen/metaparticle/sync/v1/election_service.js";
import { LockServiceClient } from "./gen/metaparticle/sync/v1/lock_service.js";
import { ReadConsistency } from "./gen/metaparticle/sync/v1/types.js";
import { LeasedLock, type Lock, type LockOptions, acquire } from "./lock.js";
import { SyncClientError, fromDuration, optionalDuration } from "./internal.js";

/** Where the sidecar listens unless told otherwise. */
export const DEFAULT_ADDRESS = "127.0.0.1:13131";

export interface SyncClientOptions {
  /** Sidecar address; default MSYNC_ADDRESS or 127.0.0.1:13131. */
  readonly address?: string;
  readonly credentials?: ChannelCredentials;
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

export interface ReadOptions {
  /** Read from the API server instead of the sidecar's watch cache. */
  readonly fresh?: boolean;
}

export class SyncClient {
  readonly locks: LockServiceClient;
  readonly elections: ElectionServiceClient;
  readonly address: string;

  constructor(options: SyncClientOptions = {}) {
    this.address = options.address ?? process.env.MSYNC_ADDRESS ?? DEFAULT_ADDRESS;
    const creds = options.credentials ?? grpcCredentials.createInsecure();
    this.locks = new LockServiceClient(this.address, creds);
    this.elections = new ElectionServiceClient(this.address, creds, { channelOverride: this.locks.getChannel() });
  }

  /**
   * Waits for the lock and holds it until released or disposed:
   *
   *     await using lock = await client.lock("db-migration");
   *     await migrate({ fencingToken: lock.token, signal: lock.signal });
   */
  lock(name: string, options: LockOptions = {}): Promise<Lock> {
    return acquire(this.locks, name, options.holder ?? defaultName("MSYNC_HOLDER"), options);
  }

  /** One attempt without waiting; the lock is then held for its lease unless renewed. Undefined if held by someone else. */
  tryLock(name: string, options: Pick<LockOptions, "holder" | "leaseDurationMs" | "leaseDuration"> = {}): Promise<LeasedLock | undefined> {
    const holder = options.holder ?? defaultName("MSYNC_HOLDER");
    return new Promise((resolve, reject) =>
      this.locks.tryAcquire(
        { name, holder, leaseDuration: optionalDuration(options.leaseDurationMs ?? options.leaseDuration) },
        (err, response) => {
          if (err) return reject(SyncClientError.from(err));
          if (!response.acquired) return resolve(undefined);
          resolve(new LeasedLock(this.locks, name, response.fencingToken, holder, fromDuration(response.validFor)));
        },
      ),
    );
  }

  getLock(name: string, options: ReadOptions = {}): Promise<LockInfo> {
    return new Promise((resolve, reject) =>
      this.locks.getLock({ name, consistency: consistency(options) }, (err, r) => {
        if (err) return reject(SyncClientError.from(err));
        resolve({
          held: r.held,
          holder: r.holder,
          token: r.fencingToken,
          acquireTime: r.acquireTime,
          leaseDurationMs: fromDuration(r.leaseDuration),
          remainingMs: fromDuration(r.remaining),
          leaseDuration: fromDuration(r.leaseDuration),
          remaining: fromDuration(r.remaining),
        });
      }),
    );
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

  /** The current leader at once, then every change, without campaigning. */
  observe(name: string, options: { signal?: AbortSignal } = {}): AsyncIterableIterator<Leader> {
    return observe(this.elections, name, options.signal);
  }

  getLeader(name: string, options: ReadOptions = {}): Promise<Leader> {
    return new Promise((resolve, reject) =>
      this.elections.getLeader({ name, consistency: consistency(options) }, (err, r) =>
        err ? reject(SyncClientError.from(err)) : resolve({ leader: r.leader, value: r.value, term: r.term }),
      ),
    );
  }

  close(): void {
    this.locks.close();
    this.elections.close();
  }
}

function consistency(options: ReadOptions): ReadConsistency {
  return options.fresh ? ReadConsistency.READ_CONSISTENCY_FRESH : ReadConsistency.READ_CONSISTENCY_CACHED;
}

function defaultName(...variables: string[]): string {
  for (const variable of variables) {
    const value = process.env[variable];
    if (value) return value;
  }
  return `${hostname()}/${process.pid}`;
}
