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
import io.metaparticle.sync.v1.GetLeaderRequest;
import io.metaparticle.sync.v1.GetLeaderResponse;
import io.metaparticle.sync.v1.GetLockRequest;
import io.metaparticle.sync.v1.GetLockResponse;
import io.metaparticle.sync.v1.LockServiceGrpc;
import io.metaparticle.sync.v1.ObserveRequest;
import io.metaparticle.sync.v1.ObserveResponse;
import io.metaparticle.sync.v1.ReadConsistency;
import io.metaparticle.sync.v1.TryAcquireRequest;
import io.metaparticle.sync.v1.TryAcquireResponse;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.concurrent.CompletableFuture;
import java.util.Optional;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;

/**
 * The Java client of the metaparticle-sync sidecar: distributed locks with fencing tokens and
 * leader election, held for this process by a daemon on loopback. Thread-safe; close it to
 * release everything it holds.
 *
 * <pre>{@code
 * try (SyncClient client = SyncClient.create();
 *     Lock lock = client.lock("db-migration")) {
 *   migrate(lock.token(), lock.lost());
 * }
 * }</pre>
 */
public final class SyncClient implements AutoCloseable {
  /** Where the sidecar listens unless told otherwise. */
  public static final String DEFAULT_ADDRESS = "127.0.0.1:13131";

  private final ManagedChannel channel;
  private final LockServiceGrpc.LockServiceStub locks;
  private final LockServiceGrpc.LockServiceBlockingStub blockingLocks;
  private final ElectionServiceGrpc.ElectionServiceStub elections;
  private final ElectionServiceGrpc.ElectionServiceBlockingStub blockingElections;
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
    channel = Grpc.newChannelBuilder(address, InsecureChannelCredentials.create()).build();
    locks = LockServiceGrpc.newStub(channel);
    blockingLocks = LockServiceGrpc.newBlockingStub(channel);
    elections = ElectionServiceGrpc.newStub(channel);
    blockingElections = ElectionServiceGrpc.newBlockingStub(channel);
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

  /** The channel, for tools that need it; every call of the API is wrapped here. */
  public ManagedChannel channel() {
    return channel;
  }

  /** Waits for the lock and returns it held; see {@link #lock(String, LockOptions)}. */
  public Lock lock(String name) throws InterruptedException {
    return lock(name, LockOptions.defaults());
  }

  /**
   * Waits for the lock and returns it held, until {@link Lock#close()}. Throws SyncException when
   * the sidecar refuses (INVALID_ARGUMENT naming the field, DEADLINE_EXCEEDED after {@code
   * waitTimeout}); an interrupt stops waiting.
   */
  public Lock lock(String name, LockOptions options) throws InterruptedException {
    AcquireRequest.Builder request =
        AcquireRequest.newBuilder()
            .setName(name)
            .setHolder(options.holder() != null ? options.holder() : defaultName("MSYNC_HOLDER"));
    if (options.leaseDuration() != null) {
      request.setLeaseDuration(Durations.toProto(options.leaseDuration()));
    }
    if (options.waitTimeout() != null) {
      request.setWaitTimeout(Durations.toProto(options.waitTimeout()));
    }
    CompletableFuture<Lock> acquired = new CompletableFuture<>();
    AtomicReference<ClientCallStreamObserver<AcquireRequest>> call = new AtomicReference<>();
    locks.acquire(
        request.build(),
        new ClientResponseObserver<AcquireRequest, AcquireResponse>() {
          private Lock lock;

          @Override
          public void beforeStart(ClientCallStreamObserver<AcquireRequest> stream) {
            call.set(stream);
          }

          @Override
          public void onNext(AcquireResponse message) {
            switch (message.getEventCase()) {
              case ACQUIRED -> {
                lock = new Lock(name, message.getAcquired(), call.get(), scheduler, blockingLocks, callbacks);
                if (!acquired.complete(lock)) {
                  lock.end(null); // the caller stopped waiting just as the lock arrived
                }
              }
              case RENEWED -> lock.heartbeat(Durations.fromProto(message.getRenewed().getValidFor()));
              case LOST -> lock.end(Loss.from(message.getLost().getReason(), message.getLost().getMessage()));
              default -> {}
            }
          }

          @Override
          public void onError(Throwable error) {
            if (lock == null) {
              acquired.completeExceptionally(SyncException.from(error));
            } else {
              // Nothing changes if the lock already ended, which cancelled the stream.
              lock.end(new Loss(Loss.STREAM_ENDED, "the sidecar ended the stream of lock " + name + ": " + error));
            }
          }

          @Override
          public void onCompleted() {
            if (lock == null) {
              acquired.completeExceptionally(
                  new SyncException(
                      Status.Code.UNAVAILABLE, "the sidecar ended the stream before lock " + name + " was acquired", null));
            } else {
              lock.end(new Loss(Loss.STREAM_ENDED, "the sidecar ended the stream of lock " + name));
            }
          }
        });
    try {
      return acquired.get();
    } catch (InterruptedException e) {
      acquired.cancel(false);
      call.get().cancel("the caller stopped waiting", null);
      throw e;
    } catch (ExecutionException e) {
      throw (SyncException) e.getCause();
    }
  }

  /** One attempt without waiting; see {@link #tryLock(String, LockOptions)}. */
  public Optional<LeasedLock> tryLock(String name) {
    return tryLock(name, LockOptions.defaults());
  }

  /**
   * One attempt without waiting: a lock held for its lease ({@code options.leaseDuration()}, else
   * the sidecar's) unless renewed, or empty if someone else holds it. The wait timeout is ignored.
   */
  public Optional<LeasedLock> tryLock(String name, LockOptions options) {
    String holder = options.holder() != null ? options.holder() : defaultName("MSYNC_HOLDER");
    TryAcquireRequest.Builder request = TryAcquireRequest.newBuilder().setName(name).setHolder(holder);
    if (options.leaseDuration() != null) {
      request.setLeaseDuration(Durations.toProto(options.leaseDuration()));
    }
    TryAcquireResponse response;
    try {
      response = blockingLocks.tryAcquire(request.build());
    } catch (StatusRuntimeException e) {
      throw SyncException.from(e);
    }
    if (!response.getAcquired()) {
      return Optional.empty();
    }
    return Optional.of(
        new LeasedLock(
            name,
            response.getFencingToken(),
            holder,
            Durations.fromProto(response.getValidFor()),
            blockingLocks,
            scheduler,
            callbacks));
  }

  /** Inspects a lock from the sidecar's cache; a lock nobody holds is not an error. */
  public LockInfo getLock(String name) {
    return getLock(name, false);
  }

  /** Inspects a lock; {@code fresh} reads the API server instead of the sidecar's cache. */
  public LockInfo getLock(String name, boolean fresh) {
    try {
      GetLockResponse r =
          blockingLocks.getLock(GetLockRequest.newBuilder().setName(name).setConsistency(consistency(fresh)).build());
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

  /** The current leader of an election, from the sidecar's cache. */
  public Leader getLeader(String name) {
    return getLeader(name, false);
  }

  /** The current leader of an election; {@code fresh} reads the API server. */
  public Leader getLeader(String name, boolean fresh) {
    try {
      GetLeaderResponse r =
          blockingElections.getLeader(
              GetLeaderRequest.newBuilder().setName(name).setConsistency(consistency(fresh)).build());
      return new Leader(r.getLeader(), r.getValue(), r.getTerm());
    } catch (StatusRuntimeException e) {
      throw SyncException.from(e);
    }
  }

  private static ReadConsistency consistency(boolean fresh) {
    return fresh ? ReadConsistency.READ_CONSISTENCY_FRESH : ReadConsistency.READ_CONSISTENCY_CACHED;
  }

  /**
   * Joins an election as a candidate; {@code listener} hears what happens. A refused request (for
   * example a bad name) ends the campaign at once with {@link ElectionListener#ended} and the
   * error.
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
   * campaigning, until the returned observation is closed.
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
              done.complete(null);
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

  /** Closes the connection, which releases every lock and ends every campaign of this client. */
  @Override
  public void close() {
    channel.shutdownNow();
    scheduler.shutdownNow();
    callbacks.shutdown();
  }

  /** The first of the environment variables that is set, else host/pid: what others see. */
  private static String defaultName(String... variables) {
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
