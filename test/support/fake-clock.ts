// A clock for engine tests that moves only when the test advances it.
import type { Clock, Timer } from "../../daemon/engine/clock.js";

interface PendingTimer {
  readonly at: number;
  readonly seq: number;
  readonly callback: () => void;
  cancelled: boolean;
}

/** A clock that moves only when a test advances it. */
export class FakeClock implements Clock {
  private current = 0;
  private seq = 0;
  private pending: PendingTimer[] = [];

  constructor(private readonly wallEpochMs = Date.UTC(2026, 0, 1)) {}

  now(): number {
    return this.current;
  }

  wallTime(): Date {
    return new Date(this.wallEpochMs + this.current);
  }

  setTimer(delayMs: number, callback: () => void): Timer {
    const timer: PendingTimer = { at: this.current + Math.max(0, delayMs), seq: this.seq++, callback, cancelled: false };
    this.pending.push(timer);
    return { cancel: () => void (timer.cancelled = true) };
  }

  /** Number of timers still waiting to fire. */
  get pendingTimers(): number {
    return this.pending.filter((t) => !t.cancelled).length;
  }

  /**
   * Moves time forward by `ms`, firing due timers in order. After each timer
   * it lets promise callbacks and store events run, so chains of work caused by
   * one timer finish before the next fires.
   */
  async advance(ms: number): Promise<void> {
    const target = this.current + ms;
    for (;;) {
      await settle();
      this.pending = this.pending.filter((t) => !t.cancelled);
      const due = this.pending.filter((t) => t.at <= target).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (due === undefined) break;
      this.pending.splice(this.pending.indexOf(due), 1);
      this.current = Math.max(this.current, due.at);
      due.callback();
    }
    this.current = target;
    await settle();
  }
}

/**
 * Lets every queued promise callback and immediate (store watch events) run,
 * up to `rounds` turns of the event loop. It stops early once a turn leaves no
 * immediate queued: no work remains then, since every promise callback queued
 * before this one resumes has run.
 */
export async function settle(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (!process.getActiveResourcesInfo().includes("Immediate")) return;
  }
}
