package io.metaparticle.sync.client;

import io.grpc.stub.ClientCallStreamObserver;
import io.metaparticle.sync.v1.PermitAcquired;
import java.time.Duration;
import java.util.concurrent.Executor;
import java.util.concurrent.ScheduledExecutorService;

/**
 * A held permit of a {@link Semaphore}, from {@link Semaphore#acquire()}: held as a {@link Lock}
 * is, by the same code, renewed by the sidecar until {@link #release()} or {@link #close()}; use it
 * in try-with-resources. {@link #lost()} completes the moment the holder must stop acting: the
 * sidecar said so, or its heartbeats stopped (this client's own deadline on the last valid_for,
 * which holds even if the sidecar froze). A normal release is not a loss. The release is by hold,
 * acknowledged, and capped by the promise, as a lock's: {@link #release(java.time.Duration)}.
 */
public final class Permit extends StreamHold {
  private final Semaphore semaphore;
  private final String holdId;
  private final int permits;

  Permit(
      Semaphore semaphore,
      PermitAcquired acquired,
      ClientCallStreamObserver<?> call,
      ScheduledExecutorService scheduler,
      Executor callbacks) {
    super(Semaphore.KIND, Grant.of(semaphore.name(), acquired), call, scheduler, callbacks);
    this.semaphore = semaphore;
    this.holdId = acquired.getHoldId();
    this.permits = acquired.getPermits();
  }

  /** Names this hold in {@link Semaphore#release(String)}; opaque. */
  public String holdId() {
    return holdId;
  }

  /** The semaphore's N, as the sidecar granted it. */
  public int permits() {
    return permits;
  }

  @Override
  void sendRelease(Duration deadline) {
    semaphore.sendRelease(holdId, deadline);
  }
}
