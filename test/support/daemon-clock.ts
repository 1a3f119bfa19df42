// One simulated daemon's view of the shared fake clock. Freezing it is what
// SIGSTOP does to a process: time goes on for everyone else, but this
// daemon's timers run only once it is thawed.
import type { Clock, Timer } from "../../daemon/engine/clock.js";

export class DaemonClock implements Clock {
  private frozen = false;
  private held: Array<() => void> = [];
  private dead = false;

  constructor(
    private readonly shared: Clock,
    /** Offset of this daemon's wall clock from the shared one: clock skew. */
    private readonly wallOffsetMs = 0,
  ) {}

  now(): number {
    return this.shared.now();
  }

  wallTime(): Date {
    return new Date(this.shared.wallTime().getTime() + this.wallOffsetMs);
  }

  setTimer(delayMs: number, callback: () => void): Timer {
    return this.shared.setTimer(delayMs, () => {
      if (this.dead) return;
      if (this.frozen) this.held.push(callback);
      else callback();
    });
  }

  freeze(): void {
    this.frozen = true;
  }

  thaw(): void {
    this.frozen = false;
    for (const callback of this.held.splice(0)) callback();
  }

  /** No timer of this daemon ever fires again: the process is gone. */
  kill(): void {
    this.dead = true;
    this.held = [];
  }
}
