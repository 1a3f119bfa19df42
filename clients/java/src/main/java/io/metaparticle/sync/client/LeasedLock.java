package io.metaparticle.sync.client;

import io.grpc.StatusRuntimeException;
import io.metaparticle.sync.v1.LockServiceGrpc;
import io.metaparticle.sync.v1.ReleaseRequest;
import io.metaparticle.sync.v1.RenewRequest;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.concurrent.ScheduledExecutorService;

/**
 * A lock taken with {@link SyncClient#tryLock}: held for its lease unless renewed, and given back
 * with {@link #release()} or {@link #close()}. Nothing renews it for you; {@link #lost()} completes
 * when the last {@link #validFor()} runs out without a renewal. Every call takes a deadline, by
 * default {@link SyncClient#DEFAULT_CALL_TIMEOUT}.
 */
public final class LeasedLock implements AutoCloseable {
  private final String name;
  private final long token;
  private final String holder;
  private final LockServiceGrpc.LockServiceBlockingStub locks;
  private final Watchdog watchdog;
  private final CompletableFuture<Loss> lost = new CompletableFuture<>();
  private boolean released;

  LeasedLock(
      String name,
      long token,
      String holder,
      Duration validFor,
      LockServiceGrpc.LockServiceBlockingStub locks,
      ScheduledExecutorService scheduler,
      Executor callbacks) {
    this.name = name;
    this.token = token;
    this.holder = holder;
    this.locks = locks;
    Loss loss =
        new Loss(Loss.HEARTBEAT_TIMEOUT, "the lease of lock " + name + " (token " + token + ") ran out without a renewal");
    this.watchdog = new Watchdog(scheduler, () -> callbacks.execute(() -> lost.complete(loss)));
    watchdog.extend(validFor);
  }

  public String name() {
    return name;
  }

  /** The fencing token: strictly greater than every earlier token of this lock. */
  public long token() {
    return token;
  }

  public String holder() {
    return holder;
  }

  /** Completes when the lease runs out without a renewal: stop acting. */
  public CompletableFuture<Loss> lost() {
    return lost;
  }

  /** How much longer the holder may act without renewing. */
  public Duration validFor() {
    return watchdog.remaining();
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
    RenewRequest.Builder request = RenewRequest.newBuilder().setName(name).setFencingToken(token);
    if (leaseDuration != null) {
      request.setLeaseDuration(Durations.toProto(leaseDuration));
    }
    Duration validFor;
    try {
      validFor = Durations.fromProto(SyncClient.withDeadline(locks, timeout).renew(request.build()).getValidFor());
    } catch (StatusRuntimeException e) {
      throw SyncException.from(e);
    }
    watchdog.extend(validFor);
    return validFor;
  }

  /** Gives the lock back within {@link SyncClient#DEFAULT_CALL_TIMEOUT}; see {@link #release(Duration)}. */
  public void release() {
    release(SyncClient.DEFAULT_CALL_TIMEOUT);
  }

  /**
   * Gives the lock back within {@code timeout}; the next waiter gets it at once. Returns once the
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
      SyncClient.withDeadline(locks, timeout)
          .release(ReleaseRequest.newBuilder().setName(name).setFencingToken(token).build());
    } catch (StatusRuntimeException e) {
      throw SyncException.from(e);
    }
    synchronized (this) {
      released = true;
    }
    watchdog.stop();
  }

  /**
   * Gives the lock back, as {@link #release()}, except that a lease already gone (it ran out, as
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
      synchronized (this) {
        released = true;
      }
      watchdog.stop();
    }
  }
}
