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
 * with {@link #close()}. Nothing renews it for you; {@link #lost()} completes when the last {@link
 * #validFor()} runs out without a renewal.
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

  /** Extends the lease by its duration; returns how long the holder may now act. */
  public Duration renew() {
    return renew(null);
  }

  /**
   * Extends the lease, by {@code leaseDuration} (whole seconds) if not null; returns how long the
   * holder may now act. A lease that ran out and was taken throws SyncException
   * FAILED_PRECONDITION.
   */
  public Duration renew(Duration leaseDuration) {
    RenewRequest.Builder request = RenewRequest.newBuilder().setName(name).setFencingToken(token);
    if (leaseDuration != null) {
      request.setLeaseDuration(Durations.toProto(leaseDuration));
    }
    Duration validFor;
    try {
      validFor = Durations.fromProto(locks.renew(request.build()).getValidFor());
    } catch (StatusRuntimeException e) {
      throw SyncException.from(e);
    }
    watchdog.extend(validFor);
    return validFor;
  }

  /**
   * Gives the lock back; the next waiter gets it at once. A lease that ran out and was taken
   * throws SyncException FAILED_PRECONDITION. Safe to call more than once.
   */
  @Override
  public void close() {
    synchronized (this) {
      if (released) {
        return;
      }
    }
    try {
      locks.release(ReleaseRequest.newBuilder().setName(name).setFencingToken(token).build());
    } catch (StatusRuntimeException e) {
      throw SyncException.from(e);
    }
    synchronized (this) {
      released = true;
    }
    watchdog.stop();
  }
}
