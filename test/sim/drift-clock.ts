// One daemon's monotonic clock, running at its own rate against simulated
// time: clock drift. The engine's safety margin (lease duration minus renew
// deadline) absorbs drift up to a bound over one lease; runs keep the rate
// within 1 %, far inside it. Each daemon also starts from its own arbitrary
// reading, since monotonic clocks of different processes share no origin.
import type { Clock, Timer } from "../../daemon/engine/clock.js";

export class DriftClock implements Clock {
  constructor(
    private readonly shared: Clock,
    /** Local milliseconds per simulated millisecond, e.g. 1.005. */
    private readonly rate: number,
    private readonly origin: number,
  ) {}

  now(): number {
    return this.origin + this.shared.now() * this.rate;
  }

  wallTime(): Date {
    return this.shared.wallTime();
  }

  setTimer(delayMs: number, callback: () => void): Timer {
    return this.shared.setTimer(Math.max(0, delayMs) / this.rate, callback);
  }
}
