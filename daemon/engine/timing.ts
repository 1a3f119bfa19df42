// The durations that govern one lease, all derived from its lease duration
// and the daemon's configured ratio of renew deadline to lease duration, so a
// request that asks for a longer or shorter lease keeps the same safety margin.

export interface TimingConfig {
  /** Lease duration used when a request names none. Default 15 s. */
  readonly leaseDurationMs: number;
  /** How long a holder keeps acting without a successful renewal, at the default lease. Default 10 s. */
  readonly renewDeadlineMs: number;
}

export interface LeaseTiming {
  readonly leaseMs: number;
  /**
   * A holder signals loss once this much time has passed since it SENT its
   * last successful renewal. Always shorter than the lease, so the holder stops
   * before anyone else may consider the lease expired; the gap absorbs clock
   * drift between nodes.
   */
  readonly renewDeadlineMs: number;
  /** Time between renewals while all goes well: a third of the lease, and never more than half the deadline. */
  readonly renewIntervalMs: number;
  /** Longest pause between retries of a failed renewal. */
  readonly maxRetryMs: number;
  /**
   * After a lease becomes free, how long the daemon at the head of its wait
   * queue has to take it before the others may. Live daemons take it within
   * milliseconds; this only bounds the delay a crashed waiter causes.
   */
  readonly turnGraceMs: number;
}

export function leaseTiming(config: TimingConfig, leaseMs: number): LeaseTiming {
  const renewDeadlineMs = (leaseMs * config.renewDeadlineMs) / config.leaseDurationMs;
  const renewIntervalMs = Math.min(leaseMs / 3, renewDeadlineMs / 2);
  return {
    leaseMs,
    renewDeadlineMs,
    renewIntervalMs,
    maxRetryMs: Math.min(1000, renewDeadlineMs / 5),
    turnGraceMs: Math.min(2000, leaseMs / 4),
  };
}

/** Spreads renewals of many leases over time: ±10 % around `ms`. */
export function jittered(ms: number, random: () => number): number {
  return ms * (0.9 + 0.2 * random());
}

/**
 * The shortest whole-second lease that still covers a promise running
 * `remainingMs` past the moment a write is sent: its renew deadline is at
 * least `remainingMs`, so others, who count the lease from when they see the
 * write, cannot see it expire before the promise runs out, with the usual
 * margin for clock drift.
 */
export function leaseCovering(config: TimingConfig, remainingMs: number): number {
  if (remainingMs <= 0) return 0;
  return Math.ceil((remainingMs * config.leaseDurationMs) / config.renewDeadlineMs / 1000) * 1000;
}
