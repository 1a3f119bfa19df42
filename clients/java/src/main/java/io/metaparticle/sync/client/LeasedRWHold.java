package io.metaparticle.sync.client;

import io.metaparticle.sync.v1.RWLockAcquired;
import java.time.Duration;
import java.util.concurrent.Executor;
import java.util.concurrent.ScheduledExecutorService;

/**
 * A hold of a {@link ReadWriteLock}, shared or exclusive ({@link #mode()}), taken with {@link
 * RWLockSide#tryAcquire}: held for its lease unless renewed, and given back with {@link
 * #release()} or {@link #close()}, as a {@link LeasedLock}, by the same code. Nothing renews it
 * for you; {@link #lost()} completes when the last {@link #validFor()} runs out without a renewal.
 * Every call takes a deadline, by default {@link SyncClient#DEFAULT_CALL_TIMEOUT}. Renew and
 * release go by its hold ({@link #holdId()}), never by token (shared holds may share one), which
 * {@link ReadWriteLock#renew(String)} and {@link ReadWriteLock#release(String)} take too.
 */
public final class LeasedRWHold extends LeaseHold {
  private final ReadWriteLock lock;
  private final String holdId;
  private final LockMode mode;

  LeasedRWHold(
      ReadWriteLock lock, LockMode mode, RWLockAcquired hold, ScheduledExecutorService scheduler, Executor callbacks) {
    super(mode.kind(), Grant.of(lock.name(), hold), scheduler, callbacks);
    this.lock = lock;
    this.holdId = hold.getHoldId();
    this.mode = mode;
  }

  /** Names this hold; opaque, unique per hold. */
  public String holdId() {
    return holdId;
  }

  /** How the lock is held: {@link LockMode#SHARED} or {@link LockMode#EXCLUSIVE}. */
  public LockMode mode() {
    return mode;
  }

  @Override
  Duration sendRenew(Duration leaseDuration, Duration timeout) {
    return lock.sendRenew(holdId, leaseDuration, timeout);
  }

  @Override
  void sendRelease(Duration timeout) {
    lock.sendRelease(holdId, timeout);
  }
}
