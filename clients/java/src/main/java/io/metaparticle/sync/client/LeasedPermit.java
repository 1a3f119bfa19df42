package io.metaparticle.sync.client;

import io.metaparticle.sync.v1.PermitAcquired;
import java.time.Duration;
import java.util.concurrent.Executor;
import java.util.concurrent.ScheduledExecutorService;

/**
 * A permit taken with {@link Semaphore#tryAcquire}: held for its lease unless renewed, and given
 * back with {@link #release()} or {@link #close()}, as a {@link LeasedLock}. Nothing renews it for
 * you; {@link #lost()} completes when the last {@link #validFor()} runs out without a renewal.
 * Every call takes a deadline, by default {@link SyncClient#DEFAULT_CALL_TIMEOUT}. Renew and
 * release go by its hold ({@link #holdId()}).
 */
public final class LeasedPermit extends LeaseHold {
  private final Semaphore semaphore;
  private final String holdId;
  private final long token;
  private final String holder;
  private final Duration leaseDuration;
  private final int permits;

  LeasedPermit(Semaphore semaphore, PermitAcquired hold, ScheduledExecutorService scheduler, Executor callbacks) {
    super(
        "a permit of semaphore " + semaphore.name() + " (token " + hold.getFencingToken() + ")",
        Durations.fromProto(hold.getValidFor()),
        scheduler,
        callbacks);
    this.semaphore = semaphore;
    this.holdId = hold.getHoldId();
    this.token = hold.getFencingToken();
    this.holder = hold.getHolder();
    this.leaseDuration = Durations.fromProto(hold.getLeaseDuration());
    this.permits = hold.getPermits();
  }

  /** The semaphore's name. */
  public String name() {
    return semaphore.name();
  }

  /** Names this hold in {@link Semaphore#renew(String)} and {@link Semaphore#release(String)}; opaque. */
  public String holdId() {
    return holdId;
  }

  /** The fencing token: strictly greater than every earlier token of this semaphore. */
  public long token() {
    return token;
  }

  public String holder() {
    return holder;
  }

  /** The lease the permit was taken with. */
  public Duration leaseDuration() {
    return leaseDuration;
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
