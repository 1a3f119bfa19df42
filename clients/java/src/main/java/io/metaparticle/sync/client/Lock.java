package io.metaparticle.sync.client;

import io.grpc.StatusRuntimeException;
import io.grpc.stub.ClientCallStreamObserver;
import io.metaparticle.sync.v1.Acquired;
import io.metaparticle.sync.v1.GetLockRequest;
import io.metaparticle.sync.v1.GetLockResponse;
import io.metaparticle.sync.v1.LockServiceGrpc;
import io.metaparticle.sync.v1.ReadConsistency;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * A held lock. It stays held, renewed by the sidecar, until {@link #close()}; use it in
 * try-with-resources. {@link #lost()} completes the moment the holder must stop acting because the
 * lock was lost: the sidecar said so, or its heartbeats stopped. A normal {@link #close()} is not a
 * loss and does not complete it; {@link #isHeld()} turns false on either.
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

  /** True once the lock was lost (not after a normal close). */
  public boolean isLost() {
    return loss != null;
  }

  /** True until the lock is closed or lost. */
  public synchronized boolean isHeld() {
    return !ended;
  }

  /** How much longer the holder may act without another heartbeat. */
  public Duration validFor() {
    return watchdog.remaining();
  }

  /**
   * Releases the lock and returns once the sidecar has given it back, so the next waiter can have
   * it from then on. Safe to call more than once.
   */
  @Override
  public void close() {
    if (end(null)) {
      awaitReleased();
    }
  }

  /**
   * Closing the stream is what releases a lock held by Acquire, and the sidecar has no reply for
   * that: read (on the same channel, after the cancellation) until the lock no longer shows this
   * token. It gives up after the lease, when the lock is free anyway.
   */
  private void awaitReleased() {
    long deadline = System.nanoTime() + Math.max(leaseDuration.toNanos(), TimeUnit.SECONDS.toNanos(1));
    long pauseMillis = 5;
    while (System.nanoTime() < deadline) {
      GetLockResponse state;
      try {
        state =
            locks
                .withDeadlineAfter(deadline - System.nanoTime(), TimeUnit.NANOSECONDS)
                .getLock(
                    GetLockRequest.newBuilder()
                        .setName(name)
                        .setConsistency(ReadConsistency.READ_CONSISTENCY_FRESH)
                        .build());
      } catch (StatusRuntimeException e) {
        return;
      }
      if (!state.getHeld() || state.getFencingToken() != token) {
        return;
      }
      try {
        Thread.sleep(pauseMillis);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      }
      pauseMillis = Math.min(pauseMillis * 2, 200);
    }
  }

  void heartbeat(Duration validFor) {
    watchdog.extend(validFor);
  }

  /**
   * Ends the lock, as lost ({@code loss}) or closed (null), and cancels the stream, which releases
   * it. Returns whether this call ended it.
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
    call.cancel(loss != null ? loss.message() : "lock " + name + " was released", null);
    if (loss != null) {
      callbacks.execute(() -> lost.complete(loss));
    }
    return true;
  }
}
