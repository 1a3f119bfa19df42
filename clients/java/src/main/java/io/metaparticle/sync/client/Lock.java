package io.metaparticle.sync.client;

import io.grpc.stub.ClientCallStreamObserver;
import io.metaparticle.sync.v1.LockServiceGrpc;
import io.metaparticle.sync.v1.ReleaseRequest;
import java.time.Duration;
import java.util.concurrent.Executor;
import java.util.concurrent.ScheduledExecutorService;

/**
 * A held lock. It stays held, renewed by the sidecar, until {@link #release()} or {@link
 * #close()}; use it in try-with-resources. {@link #lost()} completes the moment the holder must
 * stop acting because the lock was lost: the sidecar said so, or its heartbeats stopped. A normal
 * release is not a loss and does not complete it; {@link #isHeld()} turns false on either. The
 * release is by token, acknowledged: {@link #release(java.time.Duration)}.
 */
public final class Lock extends StreamHold {
  private final LockServiceGrpc.LockServiceBlockingStub locks;

  Lock(
      Grant grant,
      ClientCallStreamObserver<?> call,
      ScheduledExecutorService scheduler,
      LockServiceGrpc.LockServiceBlockingStub locks,
      Executor callbacks) {
    super("lock", grant, call, scheduler, callbacks);
    this.locks = locks;
  }

  @Override
  void sendRelease(Duration deadline) {
    SyncClient.withDeadline(locks, deadline)
        .release(ReleaseRequest.newBuilder().setName(name()).setFencingToken(token()).build());
  }
}
