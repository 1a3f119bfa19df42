// One daemon's clocks. Its monotonic clock runs at its own rate against
// simulated time: clock drift. The engine's safety margin (lease duration
// minus renew deadline) absorbs drift up to a bound over one lease; runs keep
// each rate within 11.7 %, so two clocks part by at most 80 % of it. Each daemon also starts from its own
// arbitrary reading, since monotonic clocks of different processes share no
// origin. Its wall clock (its node's, kept across restarts) may stop for a
// while or step back: no decision may depend on it, yet every renewal must
// still be seen by the other daemons (docs/design.md 3.1).
import type { Clock, Timer } from "../../daemon/engine/clock.js";

/** A fault of a node's wall clock: it stands still for `ms` and is then set right, or it steps back by `ms`. */
export interface WallFault {
  readonly kind: "stop" | "step-back";
  /** Simulated ms at which it happens. */
  readonly at: number;
  readonly ms: number;
}

/** One node's wall clock: the shared one, offset, except that it may stop for a while or step back. */
export class NodeWallClock {
  private back = 0;
  private frozen: { readonly reading: number; readonly until: number } | undefined;

  constructor(
    private readonly shared: Clock,
    /** Offset from the shared wall clock: clock skew. */
    private readonly offsetMs: number,
  ) {}

  read(): Date {
    const frozen = this.frozen;
    if (frozen !== undefined && this.shared.now() < frozen.until) return new Date(frozen.reading);
    return new Date(this.shared.wallTime().getTime() + this.offsetMs - this.back);
  }

  /** The clock stands still for `ms`, then reads the right time again. */
  stop(ms: number): void {
    this.frozen = { reading: this.read().getTime(), until: this.shared.now() + ms };
  }

  /** The clock is set back by `ms` and runs on from there. */
  stepBack(ms: number): void {
    this.back += ms;
  }
}

export class DriftClock implements Clock {
  constructor(
    private readonly shared: Clock,
    /** Local milliseconds per simulated millisecond, e.g. 1.005. */
    private readonly rate: number,
    private readonly origin: number,
    private readonly wall: NodeWallClock = new NodeWallClock(shared, 0),
  ) {}

  now(): number {
    return this.origin + this.shared.now() * this.rate;
  }

  wallTime(): Date {
    return this.wall.read();
  }

  setTimer(delayMs: number, callback: () => void): Timer {
    return this.shared.setTimer(Math.max(0, delayMs) / this.rate, callback);
  }
}
