package io.metaparticle.sync.client;

import io.grpc.StatusRuntimeException;
import io.grpc.stub.ClientResponseObserver;
import io.metaparticle.sync.v1.AcquirePermitRequest;
import io.metaparticle.sync.v1.AcquirePermitResponse;
import io.metaparticle.sync.v1.ReleasePermitRequest;
import io.metaparticle.sync.v1.RenewPermitRequest;
import io.metaparticle.sync.v1.SemaphoreServiceGrpc;
import io.metaparticle.sync.v1.TryAcquirePermitRequest;
import io.metaparticle.sync.v1.TryAcquirePermitResponse;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.Executor;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * A counting semaphore: up to {@link #permits()} holds of {@link #name()} at once, across every
 * daemon of the namespace ("at most 3 replicas run the export"), in the shape of Curator's {@code
 * InterProcessSemaphoreV2}. Made by {@link SyncClient#semaphore(String, int)}; thread-safe, and
 * nothing to close: what you close is each {@link Permit}.
 *
 * <pre>{@code
 * try (Permit permit = client.semaphore("export", 3).acquire()) {
 *   export(permit.token(), permit.lost());
 * }
 * }</pre>
 *
 * <p>A permit is held as a lock is, with the same guarantees: {@link #acquire()} waits for one and
 * the sidecar keeps it while the {@link Permit} is open ({@link Permit#lost()} on a loss, also on
 * this client's own heartbeat deadline when the sidecar froze); {@link #tryAcquire()} takes one for
 * a lease you renew ({@link LeasedPermit}). Each hold has a fencing token strictly greater than
 * every earlier token of the semaphore. The deadlines and their defaults are those of locks. A
 * permit can also be renewed or released by its hold id alone: {@link #renew(String)}, {@link
 * #release(String)}.
 */
public final class Semaphore extends HoldsById {
  /** What a permit is called in messages, before the semaphore's name. */
  static final String KIND = "a permit of semaphore";

  private final String name;
  private final int permits;
  private final SemaphoreServiceGrpc.SemaphoreServiceStub stub;
  private final SemaphoreServiceGrpc.SemaphoreServiceBlockingStub semaphores;
  private final ScheduledExecutorService scheduler;
  private final Executor callbacks;

  Semaphore(
      String name,
      int permits,
      SemaphoreServiceGrpc.SemaphoreServiceStub stub,
      SemaphoreServiceGrpc.SemaphoreServiceBlockingStub semaphores,
      ScheduledExecutorService scheduler,
      Executor callbacks) {
    this.name = name;
    this.permits = permits;
    this.stub = stub;
    this.semaphores = semaphores;
    this.scheduler = scheduler;
    this.callbacks = callbacks;
  }

  public String name() {
    return name;
  }

  /** N, the number of holds granted at once, as this client asks for it. */
  public int permits() {
    return permits;
  }

  /**
   * Waits for a permit, at most {@link SyncClient#DEFAULT_WAIT_TIMEOUT}, and returns it held until
   * {@link Permit#close()}, as Curator's {@code acquire()}. The wait timeout is sent to the sidecar
   * and kept on this client's own clock too (plus {@link SyncClient#WAIT_TIMEOUT_GRACE}). Throws
   * SyncException when the sidecar refuses (INVALID_ARGUMENT naming the field; FAILED_PRECONDITION
   * {@link SyncException#isPermitsMismatch()} when the semaphore has another N) or the wait timed
   * out (DEADLINE_EXCEEDED, {@link SyncException#isWaitTimeout()}); an interrupt stops waiting.
   */
  public Permit acquire() throws InterruptedException {
    return hold(LockOptions.defaults());
  }

  /**
   * Waits for a permit at most {@code time}, as Curator's {@code acquire(time, unit)}: the held
   * permit, or empty if the wait timed out. Other failures throw SyncException.
   */
  public Optional<Permit> acquire(long time, TimeUnit unit) throws InterruptedException {
    return acquire(Timeouts.of(time, unit));
  }

  /** Waits for a permit at most {@code waitTimeout}: the held permit, or empty if the wait timed out. */
  public Optional<Permit> acquire(Duration waitTimeout) throws InterruptedException {
    return acquire(LockOptions.defaults().withWaitTimeout(Timeouts.check(waitTimeout)));
  }

  /**
   * Waits for a permit at most {@code options.waitTimeout()} ({@link
   * SyncClient#DEFAULT_WAIT_TIMEOUT} if null), with the holder and lease of {@code options}: the
   * held permit, or empty if the wait timed out. Other failures throw SyncException.
   */
  public Optional<Permit> acquire(LockOptions options) throws InterruptedException {
    return Acquisition.unlessTimedOut(() -> hold(options));
  }

  private Permit hold(LockOptions options) throws InterruptedException {
    Duration wait = options.waitTimeoutOrDefault();
    AcquirePermitRequest.Builder request =
        AcquirePermitRequest.newBuilder()
            .setName(name)
            .setPermits(permits)
            .setHolder(options.holderOrDefault())
            .setWaitTimeout(Durations.toProto(wait));
    if (options.leaseDuration() != null) {
      request.setLeaseDuration(Durations.toProto(options.leaseDuration()));
    }
    return Acquisition.await(
        KIND + " " + name,
        wait,
        (ClientResponseObserver<AcquirePermitRequest, AcquirePermitResponse> observer) ->
            stub.acquirePermit(request.build(), observer),
        m ->
            new Acquisition.Event<>(
                m.hasAcquired() ? m.getAcquired() : null,
                m.hasRenewed() ? m.getRenewed() : null,
                m.hasLost() ? m.getLost() : null),
        (acquired, call) -> new Permit(this, acquired, call, scheduler, callbacks));
  }

  /** One attempt without waiting; see {@link #tryAcquire(LockOptions, Duration)}. */
  public PermitAttempt tryAcquire() {
    return tryAcquire(LockOptions.defaults());
  }

  /** One attempt without waiting; see {@link #tryAcquire(LockOptions, Duration)}. */
  public PermitAttempt tryAcquire(LockOptions options) {
    return tryAcquire(options, SyncClient.DEFAULT_CALL_TIMEOUT);
  }

  /**
   * One attempt without waiting: a permit held for its lease ({@code options.leaseDuration()},
   * else the sidecar's) unless renewed, or, when none is free, who holds them ({@link
   * PermitAttempt#holders()}). The wait timeout is ignored; {@code timeout} is the call's
   * deadline.
   */
  public PermitAttempt tryAcquire(LockOptions options, Duration timeout) {
    TryAcquirePermitRequest.Builder request =
        TryAcquirePermitRequest.newBuilder().setName(name).setPermits(permits).setHolder(options.holderOrDefault());
    if (options.leaseDuration() != null) {
      request.setLeaseDuration(Durations.toProto(options.leaseDuration()));
    }
    TryAcquirePermitResponse response;
    try {
      response = SyncClient.withDeadline(semaphores, timeout).tryAcquirePermit(request.build());
    } catch (StatusRuntimeException e) {
      throw SyncException.from(e);
    }
    if (!response.getAcquired()) {
      return new PermitAttempt(Optional.empty(), PermitHolder.fromProto(response.getHoldersList()));
    }
    return new PermitAttempt(Optional.of(new LeasedPermit(this, response.getHold(), scheduler, callbacks)), List.of());
  }

  @Override
  Duration sendRenew(String holdId, Duration leaseDuration, Duration timeout) {
    RenewPermitRequest.Builder request = RenewPermitRequest.newBuilder().setName(name).setHoldId(holdId);
    if (leaseDuration != null) {
      request.setLeaseDuration(Durations.toProto(leaseDuration));
    }
    return Durations.fromProto(
        SyncClient.withDeadline(semaphores, timeout).renewPermit(request.build()).getValidFor());
  }

  @Override
  void sendRelease(String holdId, Duration timeout) {
    SyncClient.withDeadline(semaphores, timeout)
        .releasePermit(ReleasePermitRequest.newBuilder().setName(name).setHoldId(holdId).build());
  }
}
