// Time as the engine sees it. Every decision uses `now()`, a monotonic clock
// local to this process; the wall clock is only written into leases for people
// to read. Tests inject a FakeClock so that no test sleeps.

export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Monotonic milliseconds; only differences between two readings mean anything. */
  now(): number;
  /** Wall-clock time, for display fields only. */
  wallTime(): Date;
  /** Calls `callback` once, `delayMs` from now. */
  setTimer(delayMs: number, callback: () => void): Timer;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  wallTime: () => new Date(),
  setTimer(delayMs, callback) {
    const handle = setTimeout(callback, Math.max(0, delayMs));
    return { cancel: () => clearTimeout(handle) };
  },
};
