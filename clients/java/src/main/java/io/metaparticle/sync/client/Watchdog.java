package io.metaparticle.sync.client;

import java.time.Duration;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;

/**
 * The client's own deadline (DESIGN 3.1): a frozen or dead sidecar cannot say
 * that a lock was lost, so if no heartbeat arrives before the last
 * {@code valid_for} runs out, on this JVM's monotonic clock ({@link
 * System#nanoTime}, which the scheduler uses too), {@code onExpired} runs.
 */
final class Watchdog {
  private final ScheduledExecutorService scheduler;
  private final Runnable onExpired;
  private ScheduledFuture<?> timer;
  private long deadlineNanos;
  private boolean stopped;

  Watchdog(ScheduledExecutorService scheduler, Runnable onExpired) {
    this.scheduler = scheduler;
    this.onExpired = onExpired;
  }

  synchronized void extend(Duration validFor) {
    if (stopped) {
      return;
    }
    if (timer != null) {
      if (System.nanoTime() - deadlineNanos >= 0) {
        // A heartbeat read after the deadline (say, this process was paused) does not revive what
        // already stopped being valid: the timer runs out as it would have.
        return;
      }
      timer.cancel(false);
    }
    deadlineNanos = System.nanoTime() + validFor.toNanos();
    timer = scheduler.schedule(onExpired, validFor.toNanos(), TimeUnit.NANOSECONDS);
  }

  synchronized void stop() {
    stopped = true;
    if (timer != null) {
      timer.cancel(false);
    }
  }

  synchronized Duration remaining() {
    return stopped ? Duration.ZERO : Duration.ofNanos(Math.max(0, deadlineNanos - System.nanoTime()));
  }
}
