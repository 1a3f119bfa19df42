package io.metaparticle.sync.client;

import io.grpc.StatusRuntimeException;
import io.grpc.stub.ClientResponseObserver;
import io.metaparticle.sync.v1.AcquireRWLockRequest;
import io.metaparticle.sync.v1.AcquireRWLockResponse;
import io.metaparticle.sync.v1.GetRWLockRequest;
import io.metaparticle.sync.v1.RWLockAcquired;
import io.metaparticle.sync.v1.RWLockServiceGrpc;
import io.metaparticle.sync.v1.ReadConsistency;
import io.metaparticle.sync.v1.ReleaseRWLockRequest;
import io.metaparticle.sync.v1.RenewRWLockRequest;
import io.metaparticle.sync.v1.TryAcquireRWLockRequest;
import io.metaparticle.sync.v1.TryAcquireRWLockResponse;
import java.time.Duration;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.Executor;
import java.util.concurrent.ScheduledExecutorService;

/**
 * A read-write lock: many readers at once, or one writer, across every daemon of the namespace,
 * in the shape of Curator's {@code InterProcessReadWriteLock}. Made by {@link
 * SyncClient#readWriteLock(String)}; thread-safe, and nothing to close: what you close is each
 * hold.
 *
 * <pre>{@code
 * ReadWriteLock catalog = client.readWriteLock("catalog");
 * try (RWHold read = catalog.readLock().acquire()) {
 *   serve(read.token());                  // the last writer's token
 * }
 * try (RWHold write = catalog.writeLock().acquire()) {
 *   rebuild(write.token());               // greater than every earlier writer's
 * }
 * }</pre>
 *
 * <p>A waiting writer is not starved: readers that ask after it wait behind it. Each side ({@link
 * #readLock()}, {@link #writeLock()}) holds as a lock does, with the same guarantees and
 * deadlines: {@link RWLockSide#acquire()} waits (at most {@link SyncClient#DEFAULT_WAIT_TIMEOUT}
 * unless told) and the sidecar keeps the {@link RWHold} while it is open, with {@link
 * RWHold#lost()} on a loss, also on this client's own heartbeat deadline when the sidecar froze;
 * {@link RWLockSide#tryAcquire()} takes one for a lease you renew ({@link LeasedRWHold}). An
 * exclusive hold's fencing token is greater than every earlier one; a shared hold reports the last
 * exclusive hold's token (0 if none), so a resource can fence writes and still let readers check
 * they see the latest writer. Holds are renewed and released by hold id, never by token, also
 * here by id alone: {@link #renew(String)}, {@link #release(String)}.
 */
public final class ReadWriteLock extends HoldsById {
  private final String name;
  private final RWLockServiceGrpc.RWLockServiceStub stub;
  private final RWLockServiceGrpc.RWLockServiceBlockingStub rwlocks;
  private final ScheduledExecutorService scheduler;
  private final Executor callbacks;
  private final RWLockSide readLock = new RWLockSide(this, LockMode.SHARED);
  private final RWLockSide writeLock = new RWLockSide(this, LockMode.EXCLUSIVE);

  ReadWriteLock(
      String name,
      RWLockServiceGrpc.RWLockServiceStub stub,
      RWLockServiceGrpc.RWLockServiceBlockingStub rwlocks,
      ScheduledExecutorService scheduler,
      Executor callbacks) {
    this.name = name;
    this.stub = stub;
    this.rwlocks = rwlocks;
    this.scheduler = scheduler;
    this.callbacks = callbacks;
  }

  public String name() {
    return name;
  }

  /** The side that holds the lock shared, with other readers, as Curator's {@code readLock()}. */
  public RWLockSide readLock() {
    return readLock;
  }

  /** The side that holds the lock exclusive, alone, as Curator's {@code writeLock()}. */
  public RWLockSide writeLock() {
    return writeLock;
  }

  /** The lock as the sidecar's cache has it, within {@link SyncClient#DEFAULT_CALL_TIMEOUT}. */
  public RWLockInfo get() {
    return get(false);
  }

  /**
   * The lock as the sidecar has it, within {@link SyncClient#DEFAULT_CALL_TIMEOUT}; {@code fresh}
   * reads the API server instead of the sidecar's cache.
   */
  public RWLockInfo get(boolean fresh) {
    return get(fresh, SyncClient.DEFAULT_CALL_TIMEOUT);
  }

  /**
   * The lock as the sidecar has it, within {@code timeout}; {@code fresh} reads the API server. A
   * lock never used is not an error: it is not held, with token 0.
   */
  public RWLockInfo get(boolean fresh, Duration timeout) {
    try {
      return RWLockInfo.fromProto(
          SyncClient.withDeadline(rwlocks, timeout)
              .getRWLock(
                  GetRWLockRequest.newBuilder()
                      .setName(name)
                      .setConsistency(fresh ? ReadConsistency.READ_CONSISTENCY_FRESH : ReadConsistency.READ_CONSISTENCY_CACHED)
                      .build()));
    } catch (StatusRuntimeException e) {
      throw SyncException.from(e);
    }
  }

  /** Waits to hold it in {@code mode} and returns the hold; {@link RWLockSide#acquire()} says how. */
  RWHold hold(LockMode mode, LockOptions options) throws InterruptedException {
    Duration wait = options.waitTimeoutOrDefault();
    AcquireRWLockRequest.Builder request =
        AcquireRWLockRequest.newBuilder()
            .setName(name)
            .setMode(mode.toProto())
            .setHolder(options.holderOrDefault())
            .setWaitTimeout(Durations.toProto(wait));
    if (options.leaseDuration() != null) {
      request.setLeaseDuration(Durations.toProto(options.leaseDuration()));
    }
    return Acquisition.await(
        mode.kind() + " " + name,
        wait,
        (ClientResponseObserver<AcquireRWLockRequest, AcquireRWLockResponse> observer) ->
            stub.acquireRWLock(request.build(), observer),
        m ->
            new Acquisition.Event<>(
                m.hasAcquired() ? m.getAcquired() : null,
                m.hasRenewed() ? m.getRenewed() : null,
                m.hasLost() ? m.getLost() : null),
        (acquired, call) -> new RWHold(this, granted(acquired, mode), acquired, call, scheduler, callbacks));
  }

  /** One attempt to hold it in {@code mode}; {@link RWLockSide#tryAcquire(LockOptions, Duration)} says how. */
  RWAttempt tryAcquire(LockMode mode, LockOptions options, Duration timeout) {
    TryAcquireRWLockRequest.Builder request =
        TryAcquireRWLockRequest.newBuilder().setName(name).setMode(mode.toProto()).setHolder(options.holderOrDefault());
    if (options.leaseDuration() != null) {
      request.setLeaseDuration(Durations.toProto(options.leaseDuration()));
    }
    TryAcquireRWLockResponse response;
    try {
      response = SyncClient.withDeadline(rwlocks, timeout).tryAcquireRWLock(request.build());
    } catch (StatusRuntimeException e) {
      throw SyncException.from(e);
    }
    if (!response.getAcquired()) {
      return new RWAttempt(Optional.empty(), Optional.of(RWLockInfo.fromProto(response.getState())));
    }
    RWLockAcquired hold = response.getHold();
    return new RWAttempt(
        Optional.of(new LeasedRWHold(this, granted(hold, mode), hold, scheduler, callbacks)), Optional.empty());
  }

  /** The mode the sidecar says it granted; the one asked for if it does not say. */
  private static LockMode granted(RWLockAcquired acquired, LockMode asked) {
    return Objects.requireNonNullElse(LockMode.fromProto(acquired.getMode()), asked);
  }

  @Override
  Duration sendRenew(String holdId, Duration leaseDuration, Duration timeout) {
    RenewRWLockRequest.Builder request = RenewRWLockRequest.newBuilder().setName(name).setHoldId(holdId);
    if (leaseDuration != null) {
      request.setLeaseDuration(Durations.toProto(leaseDuration));
    }
    return Durations.fromProto(SyncClient.withDeadline(rwlocks, timeout).renewRWLock(request.build()).getValidFor());
  }

  @Override
  void sendRelease(String holdId, Duration timeout) {
    SyncClient.withDeadline(rwlocks, timeout)
        .releaseRWLock(ReleaseRWLockRequest.newBuilder().setName(name).setHoldId(holdId).build());
  }
}
