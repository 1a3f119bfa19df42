package io.metaparticle.sync.client;

import java.time.Duration;

/**
 * Options of {@link SyncClient#lock(String, LockOptions)}; start from {@link #defaults()}.
 *
 * @param holder names the holder for people and tools; null means $MSYNC_HOLDER, else host/pid
 * @param leaseDuration how long the lock outlives a sidecar that stopped renewing it, whole
 *     seconds; null means the sidecar's default (15 s)
 * @param waitTimeout how long to wait before failing with DEADLINE_EXCEEDED; zero fails at once
 *     if the lock is held; null waits until interrupted
 */
public record LockOptions(String holder, Duration leaseDuration, Duration waitTimeout) {
  public static LockOptions defaults() {
    return new LockOptions(null, null, null);
  }

  public LockOptions withHolder(String holder) {
    return new LockOptions(holder, leaseDuration, waitTimeout);
  }

  public LockOptions withLeaseDuration(Duration leaseDuration) {
    return new LockOptions(holder, leaseDuration, waitTimeout);
  }

  public LockOptions withWaitTimeout(Duration waitTimeout) {
    return new LockOptions(holder, leaseDuration, waitTimeout);
  }
}
