package io.metaparticle.sync.client;

import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * One side of a {@link ReadWriteLock}: {@link ReadWriteLock#readLock()} holds it shared, {@link
 * ReadWriteLock#writeLock()} exclusive. As Curator's {@code InterProcessMutex} from {@code
 * readLock()} and {@code writeLock()}, with the waits and options of a {@link Semaphore}'s
 * permits: {@link #acquire()} waits and returns an {@link RWHold} the sidecar keeps while it is
 * open; {@link #tryAcquire()} makes one attempt and returns an {@link RWAttempt}, whose {@link
 * LeasedRWHold} you renew. Thread-safe.
 */
public final class RWLockSide {
  private final ReadWriteLock lock;
  private final LockMode mode;

  RWLockSide(ReadWriteLock lock, LockMode mode) {
    this.lock = lock;
    this.mode = mode;
  }

  /** The read-write lock this is a side of. */
  public ReadWriteLock lock() {
    return lock;
  }

  /** How this side holds the lock. */
  public LockMode mode() {
    return mode;
  }

  /**
   * Waits to hold the lock in this side's mode, at most {@link SyncClient#DEFAULT_WAIT_TIMEOUT},
   * and returns the hold, kept until {@link RWHold#close()}, as Curator's {@code acquire()}. The
   * wait timeout is sent to the sidecar and kept on this client's own clock too (plus {@link
   * SyncClient#WAIT_TIMEOUT_GRACE}). Throws SyncException when the sidecar refuses
   * (INVALID_ARGUMENT naming the field) or the wait timed out (DEADLINE_EXCEEDED, {@link
   * SyncException#isWaitTimeout()}); an interrupt stops waiting.
   */
  public RWHold acquire() throws InterruptedException {
    return lock.hold(mode, LockOptions.defaults());
  }

  /**
   * Waits to hold the lock at most {@code time}, as Curator's {@code acquire(time, unit)}: the
   * hold, or empty if the wait timed out. Other failures throw SyncException.
   */
  public Optional<RWHold> acquire(long time, TimeUnit unit) throws InterruptedException {
    return acquire(Timeouts.of(time, unit));
  }

  /** Waits to hold the lock at most {@code waitTimeout}: the hold, or empty if the wait timed out. */
  public Optional<RWHold> acquire(Duration waitTimeout) throws InterruptedException {
    return acquire(LockOptions.defaults().withWaitTimeout(Timeouts.check(waitTimeout)));
  }

  /**
   * Waits to hold the lock at most {@code options.waitTimeout()} ({@link
   * SyncClient#DEFAULT_WAIT_TIMEOUT} if null; zero fails at once unless it can be held now), with
   * the holder and lease of {@code options}: the hold, or empty if the wait timed out. Other
   * failures throw SyncException.
   */
  public Optional<RWHold> acquire(LockOptions options) throws InterruptedException {
    return Acquisition.unlessTimedOut(() -> lock.hold(mode, options));
  }

  /** One attempt without waiting; see {@link #tryAcquire(LockOptions, Duration)}. */
  public RWAttempt tryAcquire() {
    return tryAcquire(LockOptions.defaults());
  }

  /** One attempt without waiting; see {@link #tryAcquire(LockOptions, Duration)}. */
  public RWAttempt tryAcquire(LockOptions options) {
    return tryAcquire(options, SyncClient.DEFAULT_CALL_TIMEOUT);
  }

  /**
   * One attempt without waiting: a hold in this side's mode kept for its lease ({@code
   * options.leaseDuration()}, else the sidecar's, 15 s) unless renewed, or, when the lock cannot be
   * held so now, how it is held ({@link RWAttempt#state()}). The wait timeout is ignored; {@code
   * timeout} is the call's deadline ({@link SyncClient#DEFAULT_CALL_TIMEOUT} in the shorter forms).
   */
  public RWAttempt tryAcquire(LockOptions options, Duration timeout) {
    return lock.tryAcquire(mode, options, timeout);
  }
}
