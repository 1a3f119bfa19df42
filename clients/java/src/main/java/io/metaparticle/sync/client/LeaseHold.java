package io.metaparticle.sync.client;

import io.grpc.StatusRuntimeException;
import java.time.Duration;
import java.util.concurrent.Executor;
import java.util.concurrent.ScheduledExecutorService;

/**
 * What a hold taken for a lease does, whatever it holds: a {@link LeasedLock} (TryAcquire) or a
 * {@link LeasedPermit} (TryAcquirePermit) or a {@link LeasedRWHold} (TryAcquireRWLock). It is held for its lease unless renewed, and given back
 * with {@link #release()} or {@link #close()}. Nothing renews it for you; {@link #lost()} completes
 * when the last {@link #validFor()} runs out without a renewal. Every call takes a deadline, by
 * default {@link SyncClient#DEFAULT_CALL_TIMEOUT}.
 */
abstract class LeaseHold extends Hold implements AutoCloseable {
  private boolean released;

  /** A hold of {@code grant} for its lease; {@code kind} says what it holds. */
  LeaseHold(String kind, Grant grant, ScheduledExecutorService scheduler, Executor callbacks) {
    super(kind, grant, scheduler, callbacks);
    watchdog.extend(grant.validFor());
  }

  /**
   * Renews the hold at the sidecar (Renew by token, RenewPermit by hold), by {@code leaseDuration}
   * if not null, with {@code timeout} as the call's deadline; returns the new valid_for.
   */
  abstract Duration sendRenew(Duration leaseDuration, Duration timeout);

  /** Gives the hold back at the sidecar, with {@code timeout} as the call's deadline. */
  abstract void sendRelease(Duration timeout);

  @Override
  void expired() {
    reportLost(new Loss(Loss.HEARTBEAT_TIMEOUT, "the lease of " + what() + " ran out without a renewal"));
  }

  /**
   * Extends the lease by its duration, within {@link SyncClient#DEFAULT_CALL_TIMEOUT}; returns how
   * long the holder may now act.
   */
  public Duration renew() {
    return renew(null, SyncClient.DEFAULT_CALL_TIMEOUT);
  }

  /**
   * Extends the lease by {@code leaseDuration} (whole seconds; null keeps the current one), within
   * {@link SyncClient#DEFAULT_CALL_TIMEOUT}; see {@link #renew(Duration, Duration)}.
   */
  public Duration renew(Duration leaseDuration) {
    return renew(leaseDuration, SyncClient.DEFAULT_CALL_TIMEOUT);
  }

  /**
   * Extends the lease, by {@code leaseDuration} (whole seconds) if not null, within {@code
   * timeout}; returns how long the holder may now act. A lease that ran out and was taken throws
   * SyncException FAILED_PRECONDITION; a deadline that passed, DEADLINE_EXCEEDED (the lease may
   * or may not have been extended: act only on the last {@link #validFor()}).
   */
  public Duration renew(Duration leaseDuration, Duration timeout) {
    Duration validFor;
    try {
      validFor = sendRenew(leaseDuration, timeout);
    } catch (StatusRuntimeException e) {
      throw SyncException.from(e);
    }
    watchdog.extend(validFor);
    return validFor;
  }

  /** Gives the hold back within {@link SyncClient#DEFAULT_CALL_TIMEOUT}; see {@link #release(Duration)}. */
  public void release() {
    release(SyncClient.DEFAULT_CALL_TIMEOUT);
  }

  /**
   * Gives the hold back within {@code timeout}; the next waiter gets it at once. Returns once the
   * sidecar has released it. A lease that ran out and was taken throws SyncException
   * FAILED_PRECONDITION; a deadline that passed, DEADLINE_EXCEEDED (the lease then runs out by
   * itself). Safe to call more than once: once released, it returns at once.
   */
  public void release(Duration timeout) {
    synchronized (this) {
      if (released) {
        return;
      }
    }
    try {
      sendRelease(timeout);
    } catch (StatusRuntimeException e) {
      throw SyncException.from(e);
    }
    released();
  }

  /**
   * Gives the hold back, as {@link #release()}, except that a lease already gone (it ran out, as
   * {@link #lost()} said, and was taken) is not an error here: there is nothing left to give back.
   * In try-with-resources a failure never hides the block's own exception (Java adds it there as
   * suppressed).
   */
  @Override
  public void close() {
    try {
      release();
    } catch (SyncException e) {
      if (e.code() != SyncException.Code.FAILED_PRECONDITION) {
        throw e;
      }
      released();
    }
  }

  private void released() {
    synchronized (this) {
      released = true;
    }
    watchdog.stop();
  }
}
