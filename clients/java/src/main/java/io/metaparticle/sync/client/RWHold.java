package io.metaparticle.sync.client;

import io.grpc.stub.ClientCallStreamObserver;
import io.metaparticle.sync.v1.RWLockAcquired;
import java.time.Duration;
import java.util.concurrent.Executor;
import java.util.concurrent.ScheduledExecutorService;

/**
 * A held {@link ReadWriteLock}, shared or exclusive ({@link #mode()}), from {@link
 * RWLockSide#acquire()}: held as a {@link Lock} is, by the same code, renewed by the sidecar until
 * {@link #release()} or {@link #close()}; use it in try-with-resources. {@link #lost()} completes
 * the moment the holder must stop acting: the sidecar said so, or its heartbeats stopped (this
 * client's own deadline on the last valid_for, which holds even if the sidecar froze). A normal
 * release is not a loss. The release goes by {@link #holdId()}, is acknowledged, and is capped by
 * the promise, as a lock's: {@link #release(java.time.Duration)}.
 *
 * <p>{@link #token()} of an exclusive hold is greater than every earlier token of the lock; a
 * shared hold reports the last exclusive hold's token (0 if none), which other shared holds may
 * report too: tell holds apart by {@link #holdId()}.
 */
public final class RWHold extends StreamHold {
  private final ReadWriteLock lock;
  private final String holdId;
  private final LockMode mode;

  RWHold(
      ReadWriteLock lock,
      LockMode mode,
      RWLockAcquired acquired,
      ClientCallStreamObserver<?> call,
      ScheduledExecutorService scheduler,
      Executor callbacks) {
    super(mode.kind(), Grant.of(lock.name(), acquired), call, scheduler, callbacks);
    this.lock = lock;
    this.holdId = acquired.getHoldId();
    this.mode = mode;
  }

  /** Names this hold in {@link ReadWriteLock#release(String)}; opaque, unique per hold. */
  public String holdId() {
    return holdId;
  }

  /** How the lock is held: {@link LockMode#SHARED} or {@link LockMode#EXCLUSIVE}. */
  public LockMode mode() {
    return mode;
  }

  @Override
  void sendRelease(Duration deadline) {
    lock.sendRelease(holdId, deadline);
  }
}
