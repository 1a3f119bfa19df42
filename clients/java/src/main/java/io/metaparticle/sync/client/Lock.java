package io.metaparticle.sync.client;

import io.grpc.StatusRuntimeException;
import io.grpc.stub.ClientCallStreamObserver;
import io.metaparticle.sync.v1.Acquired;
import io.metaparticle.sync.v1.LockServiceGrpc;
import io.metaparticle.sync.v1.ReleaseRequest;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * A held lock. It stays held, renewed by the sidecar, until {@link #release()} or {@link
 * #close()}; use it in try-with-resources. {@link #lost()} completes the moment the holder must
 * stop acting because the lock was lost: the sidecar said so, or its heartbeats stopped. A normal
 * release is not a loss and does not complete it; {@link #isHeld()} turns false on either.
 */
public final class Lock implements AutoCloseable {
  private final String name;
  private final long token;
  private final String holder;
  private final Duration leaseDuration;
  private final ClientCallStreamObserver<?> call;
  private final LockServiceGrpc.LockServiceBlockingStub locks;
  private final Executor callbacks;
  private final Watchdog watchdog;
  private final CompletableFuture<Loss> lost = new CompletableFuture<>();
  private boolean ended;
  private volatile Loss loss;

  Lock(
      String name,
      Acquired acquired,
      ClientCallStreamObserver<?> call,
      ScheduledExecutorService scheduler,
      LockServiceGrpc.LockServiceBlockingStub locks,
      Executor callbacks) {
    this.name = name;
    this.token = acquired.getFencingToken();
    this.holder = acquired.getHolder();
    this.leaseDuration = Durations.fromProto(acquired.getLeaseDuration());
    this.call = call;
    this.locks = locks;
    this.callbacks = callbacks;
    this.watchdog =
        new Watchdog(
            scheduler,
            () ->
                end(
                    new Loss(
                        Loss.HEARTBEAT_TIMEOUT,
                        "no heartbeat from the sidecar before lock " + name + " (token " + token + ") stopped being valid")));
    watchdog.extend(Durations.fromProto(acquired.getValidFor()));
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

  public Duration leaseDuration() {
    return leaseDuration;
  }

  /**
   * Completes with why the lock was lost: stop acting. Its dependent actions run on a thread of
   * the client's callback pool, never on the thread that keeps every lock's deadline.
   */
  public CompletableFuture<Loss> lost() {
    return lost;
  }

  /** True once the lock was lost (not after a normal release). */
  public boolean isLost() {
    return loss != null;
  }

  /** True until the lock is released or lost. */
  public synchronized boolean isHeld() {
    return !ended;
  }

  /** How much longer the holder may act without another heartbeat. */
  public Duration validFor() {
    return watchdog.remaining();
  }

  /** Releases the lock within {@link SyncClient#DEFAULT_CALL_TIMEOUT}; see {@link #release(Duration)}. */
  public void release() {
    release(SyncClient.DEFAULT_CALL_TIMEOUT);
  }

  /** Releases the lock within {@code time}; see {@link #release(Duration)}. */
  public void release(long time, TimeUnit unit) {
    release(Timeouts.of(time, unit));
  }

  /**
   * Releases the lock and returns once the sidecar has given it back (it acknowledges the release
   * by token), so the next waiter may act from then on. From the moment it is called, a loss is
   * no longer reported. Returns normally too if the lock was already gone (lost, or released
   * before), or if its promise ran out before the sidecar answered: the hold is over either way.
   * Throws SyncException DEADLINE_EXCEEDED if {@code timeout} passed first (a frozen sidecar),
   * and another SyncException if the sidecar could not release it; the sidecar then releases it
   * when it sees the stream end, at the latest when its lease expires.
   */
  public void release(Duration timeout) {
    Timeouts.check(timeout);
    Duration promise = validFor();
    if (!end(null)) {
      return; // released or lost before
    }
    if (promise.isZero()) {
      call.cancel("lock " + name + " was released after its promise ran out", null);
      return;
    }
    boolean untilPromiseEnds = promise.compareTo(timeout) < 0;
    try {
      SyncClient.withDeadline(locks, untilPromiseEnds ? promise : timeout)
          .release(ReleaseRequest.newBuilder().setName(name).setFencingToken(token).build());
    } catch (StatusRuntimeException e) {
      SyncException error = SyncException.from(e);
      call.cancel("lock " + name + " was released", null);
      if (error.code() == SyncException.Code.FAILED_PRECONDITION) {
        return; // the sidecar no longer held it: it was lost or had expired, so it is not held
      }
      if (error.code() == SyncException.Code.DEADLINE_EXCEEDED && untilPromiseEnds) {
        return; // the promise ran out before any answer: nobody holds it for us any more
      }
      throw error;
    }
    // The sidecar ends the stream itself; cancelling spares waiting for that.
    call.cancel("lock " + name + " was released", null);
  }

  /**
   * Releases the lock, as {@link #release()}. In try-with-resources, a failure to release never
   * hides the exception of the block: Java adds it to that one as suppressed. Safe to call more
   * than once.
   */
  @Override
  public void close() {
    release();
  }

  /** Gives back a lock nobody will use (its caller stopped waiting): ends it and the stream. */
  void abandon() {
    end(null);
    call.cancel("lock " + name + " was abandoned by its caller", null);
  }

  void heartbeat(Duration validFor) {
    watchdog.extend(validFor);
  }

  /**
   * Ends the lock on this side, as lost ({@code loss}) or released (null). A loss cancels the
   * stream, which releases it; a release leaves the stream to {@link #release(Duration)}. Returns
   * whether this call ended it.
   */
  boolean end(Loss loss) {
    synchronized (this) {
      if (ended) {
        return false;
      }
      ended = true;
      this.loss = loss;
    }
    watchdog.stop();
    if (loss != null) {
      call.cancel(loss.message(), null);
      callbacks.execute(() -> lost.complete(loss));
    }
    return true;
  }
}
