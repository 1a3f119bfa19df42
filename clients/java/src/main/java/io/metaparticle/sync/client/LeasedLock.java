package io.metaparticle.sync.client;

import io.metaparticle.sync.v1.LockServiceGrpc;
import io.metaparticle.sync.v1.ReleaseRequest;
import io.metaparticle.sync.v1.RenewRequest;
import java.time.Duration;
import java.util.concurrent.Executor;
import java.util.concurrent.ScheduledExecutorService;

/**
 * A lock taken with {@link SyncClient#tryLock}: held for its lease unless renewed, and given back
 * with {@link #release()} or {@link #close()}. Nothing renews it for you; {@link #lost()} completes
 * when the last {@link #validFor()} runs out without a renewal. Every call takes a deadline, by
 * default {@link SyncClient#DEFAULT_CALL_TIMEOUT}. Renew and release go by its token.
 */
public final class LeasedLock extends LeaseHold {
  private final LockServiceGrpc.LockServiceBlockingStub locks;

  LeasedLock(
      Grant grant,
      LockServiceGrpc.LockServiceBlockingStub locks,
      ScheduledExecutorService scheduler,
      Executor callbacks) {
    super("lock", grant, scheduler, callbacks);
    this.locks = locks;
  }

  @Override
  Duration sendRenew(Duration leaseDuration, Duration timeout) {
    RenewRequest.Builder request = RenewRequest.newBuilder().setName(name()).setFencingToken(token());
    if (leaseDuration != null) {
      request.setLeaseDuration(Durations.toProto(leaseDuration));
    }
    return Durations.fromProto(SyncClient.withDeadline(locks, timeout).renew(request.build()).getValidFor());
  }

  @Override
  void sendRelease(Duration timeout) {
    SyncClient.withDeadline(locks, timeout)
        .release(ReleaseRequest.newBuilder().setName(name()).setFencingToken(token()).build());
  }
}
