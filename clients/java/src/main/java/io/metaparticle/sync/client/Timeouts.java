package io.metaparticle.sync.client;

import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.TimeUnit;

/** Checks and conversions of the deadlines callers pass. */
final class Timeouts {
  private Timeouts() {}

  /** A caller's timeout: not null, not negative. */
  static Duration check(Duration timeout) {
    Objects.requireNonNull(timeout, "timeout");
    if (timeout.isNegative()) {
      throw new IllegalArgumentException("timeout must not be negative, got " + timeout);
    }
    return timeout;
  }

  static Duration of(long time, TimeUnit unit) {
    return check(Duration.ofNanos(Objects.requireNonNull(unit, "unit").toNanos(time)));
  }

  /** Nanoseconds, saturated: a timeout of centuries is as good as Long.MAX_VALUE ns. */
  static long nanos(Duration duration) {
    try {
      return duration.toNanos();
    } catch (ArithmeticException e) {
      return duration.isNegative() ? Long.MIN_VALUE : Long.MAX_VALUE;
    }
  }

  static Duration min(Duration a, Duration b) {
    return a.compareTo(b) <= 0 ? a : b;
  }
}
