package io.metaparticle.sync.client;

import io.metaparticle.sync.v1.PermitAcquired;
import java.time.Duration;
import java.util.concurrent.Executor;
import java.util.concurrent.ScheduledExecutorService;

/**
 * A permit taken with {@link Semaphore#tryAcquire}: held for its lease unless renewed, and given
 * back with {@link #release()} or {@link #close()}, as a {@link LeasedLock}, by the same code.
 * Nothing renews it for you; {@link #lost()} completes when the last {@link #validFor()} runs out
 * without a renewal. Every call takes a deadline, by default {@link
 * SyncClient#DEFAULT_CALL_TIMEOUT}. Renew and release go by its hold ({@link #holdId()}), which
 * {@link Semaphore#renew(String)} and {@link Semaphore#release(String)} take too.
 */
public final class LeasedPermit extends LeaseHold {
  private final Semaphore semaphore;
  private final String holdId;
  private final int permits;

  LeasedPermit(Semaphore semaphore, PermitAcquired hold, ScheduledExecutorService scheduler, Executor callbacks) {
    super(Semaphore.KIND, Grant.of(semaphore.name(), hold), scheduler, callbacks);
    this.semaphore = semaphore;
    this.holdId = hold.getHoldId();
    this.permits = hold.getPermits();
  }

  /** Names this hold; opaque. */
  public String holdId() {
    return holdId;
  }

  /** The semaphore's N, as the sidecar granted it. */
  public int permits() {
    return permits;
  }

  @Override
  Duration sendRenew(Duration leaseDuration, Duration timeout) {
    return semaphore.sendRenew(holdId, leaseDuration, timeout);
  }

  @Override
  void sendRelease(Duration timeout) {
    semaphore.sendRelease(holdId, timeout);
  }
}
