package io.metaparticle.sync.client;

import java.time.Duration;

/**
 * Options of {@link SyncClient#lock(String, LockOptions)}, and of a semaphore's permits ({@link
 * Semaphore#acquire(LockOptions)}, {@link Semaphore#tryAcquire(LockOptions)}) and of a read-write
 * lock's holds ({@link RWLockSide#acquire(LockOptions)}, {@link RWLockSide#tryAcquire(LockOptions)}),
 * which the same rules apply to; start from {@link #defaults()}.
 *
 * @param holder names the holder for people and tools; null means $MSYNC_HOLDER, else host/pid
 * @param leaseDuration how long the lock outlives a sidecar that stopped renewing it, whole
 *     seconds; null means the sidecar's default (15 s)
 * @param waitTimeout how long {@link SyncClient#lock} waits before failing with DEADLINE_EXCEEDED
 *     (and {@link SyncClient#acquire} before returning empty); zero fails at once if the lock is
 *     held; null means {@link SyncClient#DEFAULT_WAIT_TIMEOUT} (5 min). Never forever: pass a
 *     longer one (the sidecar accepts up to 24 h) to wait longer. {@link SyncClient#tryLock}
 *     ignores it.
 * @param fair how {@link SyncClient#lock} (and {@link SyncClient#acquire}) waits its turn when
 *     the lock is released by a caller of the same sidecar while callers of other sidecars wait.
 *     True, the default: first come, first served across sidecars (two Lease writes per handoff
 *     to another sidecar). False: non-fair, the holder's sidecar may hand the lock straight to
 *     this waiter, with one Lease write, ahead of other sidecars' waiters, up to 16 grants in a
 *     row before the lock goes to the next sidecar in line; more handoffs per second on a hot
 *     lock, at the cost of order. {@link SyncClient#tryLock}, semaphores and read-write locks
 *     ignore it.
 */
public record LockOptions(String holder, Duration leaseDuration, Duration waitTimeout, boolean fair) {
  /** The options as they were before {@code fair}: fair. */
  public LockOptions(String holder, Duration leaseDuration, Duration waitTimeout) {
    this(holder, leaseDuration, waitTimeout, true);
  }

  public static LockOptions defaults() {
    return new LockOptions(null, null, null, true);
  }

  public LockOptions withHolder(String holder) {
    return new LockOptions(holder, leaseDuration, waitTimeout, fair);
  }

  public LockOptions withLeaseDuration(Duration leaseDuration) {
    return new LockOptions(holder, leaseDuration, waitTimeout, fair);
  }

  public LockOptions withWaitTimeout(Duration waitTimeout) {
    return new LockOptions(holder, leaseDuration, waitTimeout, fair);
  }

  public LockOptions withFair(boolean fair) {
    return new LockOptions(holder, leaseDuration, waitTimeout, fair);
  }

  /** The holder to send: the one given, else $MSYNC_HOLDER, else host/pid. */
  String holderOrDefault() {
    return holder != null ? holder : SyncClient.defaultName("MSYNC_HOLDER");
  }

  /** The wait to send and keep: the one given (checked), else {@link SyncClient#DEFAULT_WAIT_TIMEOUT}. */
  Duration waitTimeoutOrDefault() {
    return waitTimeout != null ? Timeouts.check(waitTimeout) : SyncClient.DEFAULT_WAIT_TIMEOUT;
  }
}
