// A simulated cluster for engine tests: several daemons (engines) on one
// shared memory store and one fake clock, each with its own connection and
// clock view so a test can partition, freeze or kill one of them.
import { Engine, type EngineOptions } from "../../daemon/engine/index.js";
import type { AcquireSink, CampaignSink, Grant, LeaderState, LossReason, SyncError, TryAcquireResult } from "../../daemon/engine/index.js";
import { MemoryStore } from "../../daemon/store/memory/memory-store.js";
import { ConnectionStore } from "./connection-store.js";
import { DaemonClock } from "./daemon-clock.js";
import { FakeClock, settle } from "./fake-clock.js";

export class SimCluster {
  readonly clock = new FakeClock();
  readonly store = new MemoryStore();
  private count = 0;

  /** Starts a daemon; `options` override the engine defaults (15 s lease, 10 s deadline). */
  async daemon(name = `d${this.count + 1}`, options: Partial<EngineOptions> & { wallOffsetMs?: number } = {}): Promise<SimDaemon> {
    this.count += 1;
    const conn = new ConnectionStore(this.store);
    const clock = new DaemonClock(this.clock, options.wallOffsetMs ?? 0);
    const engine = new Engine({ random: () => 0.5, ...options, store: conn, clock, identity: `${name}_${this.count}` });
    const started = engine.start();
    await settle();
    await started;
    return new SimDaemon(name, engine, conn, clock);
  }

  /** Advances the shared clock, letting every daemon react. */
  advance(ms: number): Promise<void> {
    return this.clock.advance(ms);
  }
}

export class SimDaemon {
  constructor(
    readonly name: string,
    readonly engine: Engine,
    readonly conn: ConnectionStore,
    readonly clock: DaemonClock,
  ) {}

  /** SIGKILL: nothing of this daemon runs again and its leases are not released. */
  kill(): void {
    this.clock.kill();
    this.conn.partition();
  }

  lockName(name: string): string {
    return this.engine.locks.prefix() + name;
  }

  electionName(name: string): string {
    return this.engine.elections.prefix() + name;
  }

  /** Starts a blocking Acquire and records what happens to it. */
  acquire(name: string, options: { holder?: string; leaseMs?: number; waitTimeoutMs?: number; nonFair?: boolean } = {}): LockHandle {
    const handle = new LockHandle(this.engine.clock);
    this.engine.locks.acquire(
      {
        leaseName: this.lockName(name),
        holder: options.holder ?? this.name,
        leaseMs: options.leaseMs ?? this.engine.leaseDurationMs,
        waitTimeoutMs: options.waitTimeoutMs,
        nonFair: options.nonFair,
      },
      handle.sink,
      handle.controller.signal,
    );
    return handle;
  }

  /** One TryAcquire; resolves with its result, stamped with when it came. */
  async tryAcquire(name: string, options: { holder?: string; leaseMs?: number } = {}): Promise<TryAcquireResult & { at: number }> {
    const result = await this.engine.locks.tryAcquire({
      leaseName: this.lockName(name),
      holder: options.holder ?? this.name,
      leaseMs: options.leaseMs ?? this.engine.leaseDurationMs,
    });
    return { ...result, at: this.engine.clock.now() };
  }

  semaphoreName(name: string): string {
    return this.engine.semaphores.prefix() + name;
  }

  /** Starts a blocking AcquirePermit of one of `permits` and records what happens to it. */
  acquirePermit(name: string, permits: number, options: { holder?: string; leaseMs?: number; waitTimeoutMs?: number } = {}): LockHandle {
    const handle = new LockHandle(this.engine.clock);
    this.engine.semaphores.acquire(
      {
        leaseName: this.semaphoreName(name),
        holder: options.holder ?? this.name,
        leaseMs: options.leaseMs ?? this.engine.leaseDurationMs,
        permits,
        waitTimeoutMs: options.waitTimeoutMs,
      },
      handle.sink,
      handle.controller.signal,
    );
    return handle;
  }

  /** One TryAcquirePermit. */
  tryAcquirePermit(name: string, permits: number, options: { holder?: string; leaseMs?: number } = {}) {
    return this.engine.semaphores.tryAcquire({
      leaseName: this.semaphoreName(name),
      holder: options.holder ?? this.name,
      leaseMs: options.leaseMs ?? this.engine.leaseDurationMs,
      permits,
    });
  }

  rwlockName(name: string): string {
    return this.engine.rwlocks.prefix() + name;
  }

  /** Starts a blocking AcquireRWLock in `mode` and records what happens to it. */
  acquireRW(
    name: string,
    mode: "shared" | "exclusive",
    options: { holder?: string; leaseMs?: number; waitTimeoutMs?: number } = {},
  ): LockHandle {
    const handle = new LockHandle(this.engine.clock);
    this.engine.rwlocks.acquire(
      {
        leaseName: this.rwlockName(name),
        holder: options.holder ?? this.name,
        leaseMs: options.leaseMs ?? this.engine.leaseDurationMs,
        mode,
        waitTimeoutMs: options.waitTimeoutMs,
      },
      handle.sink,
      handle.controller.signal,
    );
    return handle;
  }

  /** One TryAcquireRWLock. */
  tryAcquireRW(name: string, mode: "shared" | "exclusive", options: { holder?: string; leaseMs?: number } = {}) {
    return this.engine.rwlocks.tryAcquire({
      leaseName: this.rwlockName(name),
      holder: options.holder ?? this.name,
      leaseMs: options.leaseMs ?? this.engine.leaseDurationMs,
      mode,
    });
  }

  campaign(name: string, candidate: string, options: { value?: string; leaseMs?: number } = {}): CampaignHandle {
    const handle = new CampaignHandle(this.engine.clock);
    this.engine.elections.campaign(
      {
        leaseName: this.electionName(name),
        candidate,
        value: options.value ?? "",
        leaseMs: options.leaseMs ?? this.engine.leaseDurationMs,
      },
      handle.sink,
      handle.controller.signal,
    );
    return handle;
  }

  observe(name: string): LeaderState[] {
    const seen: LeaderState[] = [];
    this.engine.elections.observe(this.electionName(name), (state) => seen.push(state), new AbortController().signal);
    return seen;
  }
}

type Stamped<T> = T & { at: number };

/** What happened to one Acquire, as its stream would have reported it. */
export class LockHandle {
  readonly controller = new AbortController();
  grant: Stamped<Grant> | undefined;
  loss: Stamped<{ reason: LossReason; message: string }> | undefined;
  failure: SyncError | undefined;
  /** The hold ended through a Release by its token. */
  released = false;
  readonly renewals: number[] = [];
  /** Local time until which the last valid_for heard lets the holder act. */
  validUntil = 0;
  readonly sink: AcquireSink;

  constructor(clock: { now(): number }) {
    this.sink = {
      acquired: (grant) => {
        this.grant = { ...grant, at: clock.now() };
        this.validUntil = clock.now() + grant.validForMs;
      },
      renewed: (validForMs) => {
        this.renewals.push(validForMs);
        this.validUntil = clock.now() + validForMs;
      },
      lost: (reason, message) => void (this.loss = { reason, message, at: clock.now() }),
      failed: (error) => void (this.failure = error),
      released: () => void (this.released = true),
    };
  }

  /** Closes the stream: releases the lock or stops waiting. */
  close(): void {
    this.controller.abort();
  }
}

export type CampaignEvent =
  | { type: "elected"; term: number; at: number }
  | { type: "renewed"; at: number }
  | { type: "leader"; state: LeaderState; at: number }
  | { type: "deposed"; term: number; reason: LossReason; at: number }
  | { type: "ended"; error?: SyncError; at: number };

/** What happened to one Campaign, as its stream would have reported it. */
export class CampaignHandle {
  readonly controller = new AbortController();
  readonly events: CampaignEvent[] = [];
  readonly sink: CampaignSink;

  constructor(clock: { now(): number }) {
    this.sink = {
      elected: (term) => void this.events.push({ type: "elected", term, at: clock.now() }),
      renewed: () => void this.events.push({ type: "renewed", at: clock.now() }),
      leaderChanged: (state) => void this.events.push({ type: "leader", state, at: clock.now() }),
      deposed: (term, reason) => void this.events.push({ type: "deposed", term, reason, at: clock.now() }),
      ended: (error) => void this.events.push({ type: "ended", error, at: clock.now() }),
    };
  }

  /** True between the last `elected` and any later `deposed` or `ended`. */
  get leading(): boolean {
    for (let i = this.events.length - 1; i >= 0; i--) {
      const type = this.events[i]!.type;
      if (type === "elected") return true;
      if (type === "deposed" || type === "ended") return false;
    }
    return false;
  }

  get term(): number | undefined {
    const elected = this.events.filter((e) => e.type === "elected").at(-1);
    return elected?.type === "elected" ? elected.term : undefined;
  }

  of<T extends CampaignEvent["type"]>(type: T): Extract<CampaignEvent, { type: T }>[] {
    return this.events.filter((e): e is Extract<CampaignEvent, { type: T }> => e.type === type);
  }

  close(): void {
    this.controller.abort();
  }
}
