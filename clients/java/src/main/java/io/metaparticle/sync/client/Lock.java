package io.metaparticle.sync.client;

import io.grpc.stub.ClientCallStreamObserver;
import io.metaparticle.sync.v1.Acquired;
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
  private final String name;
  private final long token;
  private final String holder;
  private final Duration leaseDuration;
  private final LockServiceGrpc.LockServiceBlockingStub locks;

  Lock(
      String name,
      Acquired acquired,
      ClientCallStreamObserver<?> call,
      ScheduledExecutorService scheduler,
      LockServiceGrpc.LockServiceBlockingStub locks,
      Executor callbacks) {
    super(
        "lock " + name + " (token " + acquired.getFencingToken() + ")",
        Durations.fromProto(acquired.getValidFor()),
        call,
        scheduler,
        callbacks);
    this.name = name;
    this.token = acquired.getFencingToken();
    this.holder = acquired.getHolder();
    this.leaseDuration = Durations.fromProto(acquired.getLeaseDuration());
    this.locks = locks;
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

  @Override
  void sendRelease(Duration deadline) {
    SyncClient.withDeadline(locks, deadline)
        .release(ReleaseRequest.newBuilder().setName(name).setFencingToken(token).build());
  }
}
