package io.metaparticle.sync.client;

import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import io.metaparticle.sync.v1.AcquireRequest;
import io.metaparticle.sync.v1.AcquireResponse;
import io.metaparticle.sync.v1.CampaignRequest;
import io.metaparticle.sync.v1.ElectionServiceGrpc;
import io.metaparticle.sync.v1.Fairness;
import io.metaparticle.sync.v1.GetLeaderRequest;
import io.metaparticle.sync.v1.GetLeaderResponse;
import io.metaparticle.sync.v1.GetLockRequest;
import io.metaparticle.sync.v1.GetLockResponse;
import io.metaparticle.sync.v1.GetSemaphoreRequest;
import io.metaparticle.sync.v1.GetSemaphoreResponse;
import io.metaparticle.sync.v1.LockServiceGrpc;
import io.metaparticle.sync.v1.ObserveRequest;
import io.metaparticle.sync.v1.ObserveResponse;
import io.metaparticle.sync.v1.RWLockServiceGrpc;
import io.metaparticle.sync.v1.ReadConsistency;
import io.metaparticle.sync.v1.SemaphoreServiceGrpc;
import io.metaparticle.sync.v1.TryAcquireRequest;
import io.metaparticle.sync.v1.TryAcquireResponse;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;

/**
 * The Java client of the metaparticle-sync sidecar: distributed locks, read-write locks and
 * counting semaphores with fencing tokens, and leader election, held for this process by a daemon on loopback.
 * Thread-safe; close it to release everything it holds.
 *
 * <pre>{@code
 * try (SyncClient client = SyncClient.create();
 *     Lock lock = client.lock("db-migration")) {
 *   migrate(lock.token(), lock.lost());
 * }
 * }</pre>
 *
 * <p>No call waits forever. Every call that talks to the sidecar has an overload that takes its
 * deadline ({@code Duration timeout}, and for waiting for a lock also {@code (long, TimeUnit)});
 * without one, a call gets {@link #DEFAULT_CALL_TIMEOUT} and a lock's wait {@link
 * #DEFAULT_WAIT_TIMEOUT}. A call whose deadline passes throws {@link SyncException} with {@link
 * SyncException.Code#DEADLINE_EXCEEDED}. What lasts until you end it (a held {@link Lock} or
 * {@link Permit}, a {@link Campaign}, an {@link Observation}) has no deadline, but a sidecar that
 * stops answering is noticed by the client's own heartbeat deadline, and on the connection by gRPC
 * keepalive ({@link #KEEPALIVE_TIME}, {@link #KEEPALIVE_TIMEOUT}).
 */
public final class SyncClient implements AutoCloseable {
  /** Where the sidecar listens unless told otherwise. */
  public static final String DEFAULT_ADDRESS = "127.0.0.1:13131";

  /**
   * The deadline of a call given none: tryLock, renew, release, getLock, getLeader, proclaim,
   * resign, a semaphore's tryAcquire, renew, release and getSemaphore, and a read-write lock's
   * tryAcquire, renew, release and get.
   */
  public static final Duration DEFAULT_CALL_TIMEOUT = Duration.ofSeconds(10);

  /**
   * How long {@link #lock} and {@link #acquire} wait for a lock, {@link Semaphore#acquire} for a
   * permit, and {@link RWLockSide#acquire} for a read-write lock, unless told otherwise.
   */
  public static final Duration DEFAULT_WAIT_TIMEOUT = Duration.ofMinutes(5);

  /**
   * A lock's wait timeout is sent to the sidecar, and also kept on this client's own clock: if
   * the sidecar has not answered by the wait timeout plus this grace (it froze, say), the wait
   * ends here with DEADLINE_EXCEEDED all the same.
   */
  public static final Duration WAIT_TIMEOUT_GRACE = Duration.ofSeconds(1);

  /**
   * The connection of the streams pings the sidecar after this long without reading from it,
   * streams or not.
   */
  public static final Duration KEEPALIVE_TIME = Duration.ofSeconds(10);

  /**
   * A ping unanswered for this long closes the connection: streams on it (a held lock, a
   * campaign, an observation) end with UNAVAILABLE.
   */
  public static final Duration KEEPALIVE_TIMEOUT = Duration.ofSeconds(5);

  /**
   * The connection of the streams (held locks, campaigns, observations), which keepalive watches.
   * The unary calls go on a connection of their own, bounded by their deadlines: a keepalive that
   * closes the streams' connection while a call waits on a frozen sidecar must not turn that
   * call's DEADLINE_EXCEEDED into UNAVAILABLE.
   */
  private final ManagedChannel streams;
  private final ManagedChannel calls;
  private final LockServiceGrpc.LockServiceStub locks;
  private final LockServiceGrpc.LockServiceBlockingStub blockingLocks;
  private final ElectionServiceGrpc.ElectionServiceStub elections;
  private final ElectionServiceGrpc.ElectionServiceBlockingStub blockingElections;
  private final SemaphoreServiceGrpc.SemaphoreServiceStub semaphores;
  private final SemaphoreServiceGrpc.SemaphoreServiceBlockingStub blockingSemaphores;
  private final RWLockServiceGrpc.RWLockServiceStub rwlocks;
  private final RWLockServiceGrpc.RWLockServiceBlockingStub blockingRWLocks;
  /** Runs the heartbeat deadlines of every lock and leadership of this client. */
  private final ScheduledExecutorService scheduler =
      Executors.newSingleThreadScheduledExecutor(
          runnable -> {
            Thread thread = new Thread(runnable, "msync-watchdog");
            thread.setDaemon(true);
            return thread;
          });
  /**
   * Runs what users chain on {@link Lock#lost()}, {@link LeasedLock#lost()} and {@link
   * Leadership#ended()}, so that a slow callback never delays another lock's deadline.
   */
  private final ExecutorService callbacks =
      Executors.newCachedThreadPool(
          runnable -> {
            Thread thread = new Thread(runnable, "msync-callback");
            thread.setDaemon(true);
            return thread;
          });

  private SyncClient(String address) {
    streams =
        Grpc.newChannelBuilder(address, InsecureChannelCredentials.create())
            .keepAliveTime(KEEPALIVE_TIME.toNanos(), TimeUnit.NANOSECONDS)
            .keepAliveTimeout(KEEPALIVE_TIMEOUT.toNanos(), TimeUnit.NANOSECONDS)
            .keepAliveWithoutCalls(true)
            .build();
    calls = Grpc.newChannelBuilder(address, InsecureChannelCredentials.create()).build();
    locks = LockServiceGrpc.newStub(streams);
    blockingLocks = LockServiceGrpc.newBlockingStub(calls);
    elections = ElectionServiceGrpc.newStub(streams);
    blockingElections = ElectionServiceGrpc.newBlockingStub(calls);
    semaphores = SemaphoreServiceGrpc.newStub(streams);
    blockingSemaphores = SemaphoreServiceGrpc.newBlockingStub(calls);
    rwlocks = RWLockServiceGrpc.newStub(streams);
    blockingRWLocks = RWLockServiceGrpc.newBlockingStub(calls);
  }

  /** A client of the sidecar at $MSYNC_ADDRESS, else {@value #DEFAULT_ADDRESS}. */
  public static SyncClient create() {
    String address = System.getenv("MSYNC_ADDRESS");
    return create(address == null || address.isEmpty() ? DEFAULT_ADDRESS : address);
  }

  /** A client of the sidecar at {@code host:port}. It connects on the first call. */
  public static SyncClient create(String address) {
    return new SyncClient(address);
  }

  /**
   * Waits for the lock, at most {@link #DEFAULT_WAIT_TIMEOUT}, and returns it held; see {@link
   * #lock(String, LockOptions)}.
   */
  public Lock lock(String name) throws InterruptedException {
    return lock(name, LockOptions.defaults());
  }

  /** Waits for the lock at most {@code waitTimeout} and returns it held; see {@link #lock(String, LockOptions)}. */
  public Lock lock(String name, Duration waitTimeout) throws InterruptedException {
    return lock(name, LockOptions.defaults().withWaitTimeout(Timeouts.check(waitTimeout)));
  }

  /** Waits for the lock at most {@code time} and returns it held; see {@link #lock(String, LockOptions)}. */
  public Lock lock(String name, long time, TimeUnit unit) throws InterruptedException {
    return lock(name, Timeouts.of(time, unit));
  }

  /**
   * Waits for the lock and returns it held, until {@link Lock#close()}. The wait lasts at most
   * {@code options.waitTimeout()} ({@link #DEFAULT_WAIT_TIMEOUT} if null): the sidecar is told,
   * and this client keeps the same deadline on its own clock, so that a sidecar that stopped
   * answering cannot make it wait longer than the wait timeout plus {@link #WAIT_TIMEOUT_GRACE}.
   * Throws SyncException when the sidecar refuses (INVALID_ARGUMENT naming the field) or the
   * wait timed out (DEADLINE_EXCEEDED, {@link SyncException#isWaitTimeout()}); an interrupt stops
   * waiting. To get an empty result instead of the exception on a timeout, use {@link #acquire}.
   */
  public Lock lock(String name, LockOptions options) throws InterruptedException {
    Duration wait = options.waitTimeoutOrDefault();
    AcquireRequest.Builder request =
        AcquireRequest.newBuilder()
            .setName(name)
            .setHolder(options.holderOrDefault())
            .setWaitTimeout(Durations.toProto(wait));
    if (options.leaseDuration() != null) {
      request.setLeaseDuration(Durations.toProto(options.leaseDuration()));
    }
    // Unset is fair, the sidecar's default.
    if (!options.fair()) {
      request.setFairness(Fairness.FAIRNESS_NON_FAIR);
    }
    return Acquisition.await(
        "lock " + name,
        wait,
        (ClientResponseObserver<AcquireRequest, AcquireResponse> observer) -> locks.acquire(request.build(), observer),
        m ->
            new Acquisition.Event<>(
                m.hasAcquired() ? m.getAcquired() : null,
                m.hasRenewed() ? m.getRenewed() : null,
                m.hasLost() ? m.getLost() : null),
        (acquired, call) -> new Lock(Grant.of(name, acquired), call, scheduler, blockingLocks, callbacks));
  }

  /**
   * Waits for the lock at most {@code time}, as Curator's {@code InterProcessMutex.acquire(time,
   * unit)}: the held lock, or empty if the wait timed out. Other failures throw SyncException.
   */
  public Optional<Lock> acquire(String name, long time, TimeUnit unit) throws InterruptedException {
    return acquire(name, Timeouts.of(time, unit));
  }

  /** Waits for the lock at most {@code waitTimeout}: the held lock, or empty if the wait timed out. */
  public Optional<Lock> acquire(String name, Duration waitTimeout) throws InterruptedException {
    return acquire(name, LockOptions.defaults().withWaitTimeout(Timeouts.check(waitTimeout)));
  }

  /**
   * Waits for the lock at most {@code options.waitTimeout()} ({@link #DEFAULT_WAIT_TIMEOUT} if
   * null), as {@link #lock(String, LockOptions)}: the held lock, or empty if the wait timed out.
   */
  public Optional<Lock> acquire(String name, LockOptions options) throws InterruptedException {
    return Acquisition.unlessTimedOut(() -> lock(name, options));
  }

  /** One attempt without waiting; see {@link #tryLock(String, LockOptions, Duration)}. */
  public Optional<LeasedLock> tryLock(String name) {
    return tryLock(name, LockOptions.defaults());
  }

  /** One attempt without waiting; see {@link #tryLock(String, LockOptions, Duration)}. */
  public Optional<LeasedLock> tryLock(String name, LockOptions options) {
    return tryLock(name, options, DEFAULT_CALL_TIMEOUT);
  }

  /**
   * One attempt without waiting: a lock held for its lease ({@code options.leaseDuration()}, else
   * the sidecar's) unless renewed, or empty if someone else holds it. The wait timeout is ignored;
   * {@code timeout} is the call's deadline. (Unlike {@code java.util.concurrent.locks.Lock}, no
   * {@code tryLock(time, unit)} waits here: that is {@link #acquire(String, long, TimeUnit)}.)
   */
  public Optional<LeasedLock> tryLock(String name, LockOptions options, Duration timeout) {
    String holder = options.holderOrDefault();
    TryAcquireRequest.Builder request = TryAcquireRequest.newBuilder().setName(name).setHolder(holder);
    if (options.leaseDuration() != null) {
      request.setLeaseDuration(Durations.toProto(options.leaseDuration()));
    }
    TryAcquireResponse response;
    try {
      response = withDeadline(blockingLocks, timeout).tryAcquire(request.build());
    } catch (StatusRuntimeException e) {
      throw SyncException.from(e);
    }
    if (!response.getAcquired()) {
      return Optional.empty();
    }
    Grant grant =
        new Grant(
            name,
            response.getFencingToken(),
            holder,
            Durations.fromProto(response.getLeaseDuration()),
            Durations.fromProto(response.getValidFor()));
    return Optional.of(new LeasedLock(grant, blockingLocks, scheduler, callbacks));
  }

  /** Inspects a lock from the sidecar's cache; a lock nobody holds is not an error. */
  public LockInfo getLock(String name) {
    return getLock(name, false);
  }

  /** Inspects a lock; {@code fresh} reads the API server instead of the sidecar's cache. */
  public LockInfo getLock(String name, boolean fresh) {
    return getLock(name, fresh, DEFAULT_CALL_TIMEOUT);
  }

  /** Inspects a lock, within {@code timeout}; {@code fresh} reads the API server. */
  public LockInfo getLock(String name, boolean fresh, Duration timeout) {
    try {
      GetLockResponse r =
          withDeadline(blockingLocks, timeout)
              .getLock(GetLockRequest.newBuilder().setName(name).setConsistency(consistency(fresh)).build());
      return new LockInfo(
          r.getHeld(),
          r.getHolder(),
          r.getFencingToken(),
          Durations.fromProto(r.getLeaseDuration()),
          Durations.fromProto(r.getRemaining()));
    } catch (StatusRuntimeException e) {
      throw SyncException.from(e);
    }
  }

  /**
   * The counting semaphore {@code name}, which grants up to {@code permits} holds at once across
   * every daemon of the namespace; see {@link Semaphore}. It returns at once: nothing is asked of
   * the sidecar until a permit is. Every caller of one name must give the same {@code permits}
   * (1 to 32): the sidecar refuses another with FAILED_PRECONDITION, {@link
   * SyncException#isPermitsMismatch()}.
   */
  public Semaphore semaphore(String name, int permits) {
    return new Semaphore(name, permits, semaphores, blockingSemaphores, scheduler, callbacks);
  }

  /** Inspects a semaphore from the sidecar's cache; one never used is not an error (permits 0). */
  public SemaphoreInfo getSemaphore(String name) {
    return getSemaphore(name, false);
  }

  /** Inspects a semaphore; {@code fresh} reads the API server instead of the sidecar's cache. */
  public SemaphoreInfo getSemaphore(String name, boolean fresh) {
    return getSemaphore(name, fresh, DEFAULT_CALL_TIMEOUT);
  }

  /** Inspects a semaphore, within {@code timeout}; {@code fresh} reads the API server. */
  public SemaphoreInfo getSemaphore(String name, boolean fresh, Duration timeout) {
    try {
      GetSemaphoreResponse r =
          withDeadline(blockingSemaphores, timeout)
              .getSemaphore(GetSemaphoreRequest.newBuilder().setName(name).setConsistency(consistency(fresh)).build());
      return new SemaphoreInfo(
          r.getPermits(), PermitHolder.fromProto(r.getHoldersList()), r.getFencingToken(), r.getWaitingDaemonsList());
    } catch (StatusRuntimeException e) {
      throw SyncException.from(e);
    }
  }

  /**
   * The read-write lock {@code name}: {@link ReadWriteLock#readLock()} holds it shared, with
   * other readers, {@link ReadWriteLock#writeLock()} exclusive, alone, across every daemon of the
   * namespace; see {@link ReadWriteLock}. It returns at once: nothing is asked of the sidecar until
   * a hold is.
   */
  public ReadWriteLock readWriteLock(String name) {
    return new ReadWriteLock(name, rwlocks, blockingRWLocks, scheduler, callbacks);
  }

  /** The current leader of an election, from the sidecar's cache. */
  public Leader getLeader(String name) {
    return getLeader(name, false);
  }

  /** The current leader of an election; {@code fresh} reads the API server. */
  public Leader getLeader(String name, boolean fresh) {
    return getLeader(name, fresh, DEFAULT_CALL_TIMEOUT);
  }

  /** The current leader of an election, within {@code timeout}; {@code fresh} reads the API server. */
  public Leader getLeader(String name, boolean fresh, Duration timeout) {
    try {
      GetLeaderResponse r =
          withDeadline(blockingElections, timeout)
              .getLeader(GetLeaderRequest.newBuilder().setName(name).setConsistency(consistency(fresh)).build());
      return new Leader(r.getLeader(), r.getValue(), r.getTerm());
    } catch (StatusRuntimeException e) {
      throw SyncException.from(e);
    }
  }

  /** A stub whose next call has {@code timeout} as its deadline. */
  static <S extends io.grpc.stub.AbstractStub<S>> S withDeadline(S stub, Duration timeout) {
    return stub.withDeadlineAfter(Timeouts.nanos(Timeouts.check(timeout)), TimeUnit.NANOSECONDS);
  }

  private static ReadConsistency consistency(boolean fresh) {
    return fresh ? ReadConsistency.READ_CONSISTENCY_FRESH : ReadConsistency.READ_CONSISTENCY_CACHED;
  }

  /**
   * Joins an election as a candidate; {@code listener} hears what happens, and {@link
   * Campaign#await()} waits to lead, as Curator's LeaderLatch. A refused request (for example a
   * bad name) ends the campaign at once with {@link ElectionListener#ended} and the error. It
   * returns at once; the campaign lasts until {@link Campaign#resign()} or {@link
   * Campaign#close()}.
   */
  public Campaign campaign(String name, CampaignOptions options, ElectionListener listener) {
    CampaignRequest.Builder request =
        CampaignRequest.newBuilder()
            .setName(name)
            .setCandidate(
                options.candidate() != null ? options.candidate() : defaultName("MSYNC_CANDIDATE", "POD_NAME"))
            .setValue(options.value());
    if (options.leaseDuration() != null) {
      request.setLeaseDuration(Durations.toProto(options.leaseDuration()));
    }
    return new Campaign(name, elections, blockingElections, scheduler, callbacks, request.build(), listener);
  }

  /**
   * Calls {@code onLeader} with the current leader at once and then every change, without
   * campaigning, until the returned observation is closed. A sidecar that stops answering ends it
   * (UNAVAILABLE, by keepalive) within {@link #KEEPALIVE_TIME} plus {@link #KEEPALIVE_TIMEOUT} or
   * so.
   */
  public Observation observe(String name, Consumer<Leader> onLeader) {
    CompletableFuture<Void> done = new CompletableFuture<>();
    AtomicReference<ClientCallStreamObserver<ObserveRequest>> call = new AtomicReference<>();
    elections.observe(
        ObserveRequest.newBuilder().setName(name).build(),
        new ClientResponseObserver<ObserveRequest, ObserveResponse>() {
          @Override
          public void beforeStart(ClientCallStreamObserver<ObserveRequest> stream) {
            call.set(stream);
          }

          @Override
          public void onNext(ObserveResponse message) {
            onLeader.accept(new Leader(message.getLeader(), message.getValue(), message.getTerm()));
          }

          @Override
          public void onError(Throwable error) {
            if (Status.fromThrowable(error).getCode() == Status.Code.CANCELLED) {
              done.complete(null); // closed
            } else {
              done.completeExceptionally(SyncException.from(error));
            }
          }

          @Override
          public void onCompleted() {
            done.complete(null);
          }
        });
    return new Observation(() -> call.get().cancel("the observation was closed", null), done);
  }

  /**
   * Closes the connection, which releases every lock and ends every campaign of this client (the
   * sidecar gives them back when it sees the streams end). Returns at once and never throws.
   */
  @Override
  public void close() {
    streams.shutdownNow();
    calls.shutdownNow();
    scheduler.shutdownNow();
    callbacks.shutdown();
  }

  /** The first of the environment variables that is set, else host/pid: what others see. */
  static String defaultName(String... variables) {
    for (String variable : variables) {
      String value = System.getenv(variable);
      if (value != null && !value.isEmpty()) {
        return value;
      }
    }
    String host;
    try {
      host = InetAddress.getLocalHost().getHostName();
    } catch (UnknownHostException e) {
      host = "unknown-host";
    }
    return host + "/" + ProcessHandle.current().pid();
  }
}
