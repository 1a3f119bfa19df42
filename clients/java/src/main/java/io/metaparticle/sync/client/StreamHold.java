package io.metaparticle.sync.client;

import io.grpc.StatusRuntimeException;
import io.grpc.stub.ClientCallStreamObserver;
import java.time.Duration;
import java.util.concurrent.Executor;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * What a hold kept by an open stream does, whatever it holds: a {@link Lock}
 * (LockService.Acquire), a {@link Permit} (SemaphoreService.AcquirePermit) or an {@link RWHold}
 * (RWLockService.AcquireRWLock). The sidecar renews it until {@link #release()} or {@link
 * #close()}; use it in try-with-resources. {@link #lost()} completes the
 * moment the holder must stop acting because the hold was lost: the sidecar said so, or its
 * heartbeats stopped. A normal release is not a loss and does not complete it; {@link #isHeld()}
 * turns false on either.
 */
abstract class StreamHold extends Hold implements AutoCloseable {
  private final ClientCallStreamObserver<?> call;
  private boolean ended;
  private volatile Loss loss;

  /** A hold of {@code grant}, kept by {@code call}; {@code kind} says what it holds. */
  StreamHold(
      String kind,
      Grant grant,
      ClientCallStreamObserver<?> call,
      ScheduledExecutorService scheduler,
      Executor callbacks) {
    super(kind, grant, scheduler, callbacks);
    this.call = call;
    watchdog.extend(grant.validFor());
  }

  /**
   * Asks the sidecar to give the hold back (Release by token, ReleasePermit by hold), with {@code
   * deadline} as the call's deadline; returns once it has.
   */
  abstract void sendRelease(Duration deadline);

  @Override
  void expired() {
    end(new Loss(Loss.HEARTBEAT_TIMEOUT, "no heartbeat from the sidecar before " + what() + " stopped being valid"));
  }

  /** True once the hold was lost (not after a normal release). */
  public boolean isLost() {
    return loss != null;
  }

  /** True until the hold is released or lost. */
  public synchronized boolean isHeld() {
    return !ended;
  }

  /** Releases the hold within {@link SyncClient#DEFAULT_CALL_TIMEOUT}; see {@link #release(Duration)}. */
  public void release() {
    release(SyncClient.DEFAULT_CALL_TIMEOUT);
  }

  /** Releases the hold within {@code time}; see {@link #release(Duration)}. */
  public void release(long time, TimeUnit unit) {
    release(Timeouts.of(time, unit));
  }

  /**
   * Releases the hold and returns once the sidecar has given it back (it acknowledges the release),
   * so the next waiter may act from then on. From the moment it is called, a loss is no longer
   * reported. Returns normally too if the hold was already gone (lost, or released before), or if
   * its promise ran out before the sidecar answered: the hold is over either way. Throws
   * SyncException DEADLINE_EXCEEDED if {@code timeout} passed first (a frozen sidecar), and another
   * SyncException if the sidecar could not release it; the sidecar then releases it when it sees
   * the stream end, at the latest when its lease expires.
   */
  public void release(Duration timeout) {
    Timeouts.check(timeout);
    Duration promise = validFor();
    if (!end(null)) {
      return; // released or lost before
    }
    if (promise.isZero()) {
      call.cancel(what() + " was released after its promise ran out", null);
      return;
    }
    boolean untilPromiseEnds = promise.compareTo(timeout) < 0;
    try {
      sendRelease(untilPromiseEnds ? promise : timeout);
    } catch (StatusRuntimeException e) {
      SyncException error = SyncException.from(e);
      call.cancel(what() + " was released", null);
      if (error.code() == SyncException.Code.FAILED_PRECONDITION) {
        return; // the sidecar no longer held it: it was lost or had expired, so it is not held
      }
      if (error.code() == SyncException.Code.DEADLINE_EXCEEDED && untilPromiseEnds) {
        return; // the promise ran out before any answer: nobody holds it for us any more
      }
      throw error;
    }
    // The sidecar ends the stream itself; cancelling spares waiting for that.
    call.cancel(what() + " was released", null);
  }

  /**
   * Releases the hold, as {@link #release()}. In try-with-resources, a failure to release never
   * hides the exception of the block: Java adds it to that one as suppressed. Safe to call more
   * than once.
   */
  @Override
  public void close() {
    release();
  }

  /** Gives back a hold nobody will use (its caller stopped waiting): ends it and the stream. */
  void abandon() {
    end(null);
    call.cancel(what() + " was abandoned by its caller", null);
  }

  void heartbeat(Duration validFor) {
    watchdog.extend(validFor);
  }

  /**
   * Ends the hold on this side, as lost ({@code loss}) or released (null). A loss cancels the
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
      reportLost(loss);
    }
    return true;
  }
}
