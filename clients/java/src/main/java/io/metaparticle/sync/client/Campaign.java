package io.metaparticle.sync.client;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import io.metaparticle.sync.v1.CampaignRequest;
import io.metaparticle.sync.v1.CampaignResponse;
import io.metaparticle.sync.v1.ElectionServiceGrpc;
import io.metaparticle.sync.v1.LeaderChanged;
import io.metaparticle.sync.v1.LossReason;
import io.metaparticle.sync.v1.ProclaimRequest;
import io.metaparticle.sync.v1.ResignRequest;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * This process's candidacy in an election, until {@link #resign()} or {@link #close()}. As with
 * Curator's {@code LeaderLatch}, {@link #await()} waits until this candidate leads and {@link
 * #hasLeadership()} says whether it does now; the listener hears every event in order on a thread
 * of the campaign's own, and what is chained on {@link Leadership#ended()} runs on the client's
 * callback pool, so neither delays a heartbeat deadline.
 *
 * <p>If no heartbeat comes before leadership stops being valid (the sidecar froze, or this process
 * was paused), the candidate stops leading at once, closes its stream, so the sidecar gives the
 * term up instead of renewing a leadership nobody acts on, and campaigns again on a new stream.
 *
 * <p>From the moment {@link #resign()} or {@link #close()} is called, this candidate is never
 * said to be elected again, whatever the sidecar does: the term's end is reported once, then the
 * campaign's.
 *
 * <p>A sidecar shutting down deposes its leaders with {@link Loss#SHUTDOWN} and keeps the lease
 * until the leader's stream closes: the campaign then closes it at once, so the term passes on,
 * and ends with UNAVAILABLE ({@link SyncException#SHUTTING_DOWN}).
 */
public final class Campaign implements AutoCloseable {
  private final String name;
  private final ElectionServiceGrpc.ElectionServiceStub stub;
  private final ElectionServiceGrpc.ElectionServiceBlockingStub elections;
  private final CampaignRequest request;
  private final ScheduledExecutorService scheduler;
  private final Executor callbacks;
  private final ElectionListener listener;
  private final ExecutorService events;
  /** The stream followed now; events of a replaced one are ignored. */
  private Follower current;
  private Term leading;
  /** Set for good by resign() and close(): no event of the sidecar makes this candidate lead again. */
  private boolean leaving;
  private boolean resigned;
  private boolean over;
  private SyncException failure;

  /** One term of leadership, ended by the sidecar or by the client's own deadline. */
  private record Term(Leadership leadership, Watchdog watchdog) {}

  Campaign(
      String name,
      ElectionServiceGrpc.ElectionServiceStub stub,
      ElectionServiceGrpc.ElectionServiceBlockingStub elections,
      ScheduledExecutorService scheduler,
      Executor callbacks,
      CampaignRequest request,
      ElectionListener listener) {
    this.name = name;
    this.stub = stub;
    this.elections = elections;
    this.request = request;
    this.scheduler = scheduler;
    this.callbacks = callbacks;
    this.listener = listener;
    this.events =
        Executors.newSingleThreadExecutor(
            runnable -> {
              Thread thread = new Thread(runnable, "msync-campaign-" + name);
              thread.setDaemon(true);
              return thread;
            });
    synchronized (this) {
      join();
    }
  }

  /** Opens a Campaign stream and follows it. */
  private void join() {
    current = new Follower();
    stub.campaign(request, current);
  }

  /** No heartbeat before {@code term}'s deadline: stop leading, and campaign again on a new stream. */
  private synchronized void expired(Term term) {
    if (leading != term) {
      return;
    }
    depose(new Loss(Loss.HEARTBEAT_TIMEOUT, "no heartbeat from the sidecar before leadership stopped being valid"));
    if (leaving || over) {
      return;
    }
    Follower stale = current;
    join();
    stale.cancel("replaced after the heartbeat deadline");
  }

  public String name() {
    return name;
  }

  /** The current term, if this candidate leads; else null. */
  public synchronized Leadership leadership() {
    return leading == null ? null : leading.leadership();
  }

  /** Whether this candidate leads now (as Curator's {@code LeaderLatch.hasLeadership()}). */
  public synchronized boolean hasLeadership() {
    return leading != null;
  }

  /**
   * Waits until this candidate leads (as Curator's {@code LeaderLatch.await()}) and returns its
   * term. Throws SyncException if the campaign ends first: the sidecar's error, or
   * FAILED_PRECONDITION after {@link #resign()} or {@link #close()}.
   */
  public synchronized Leadership await() throws InterruptedException {
    while (leading == null && !over) {
      wait();
    }
    if (leading != null) {
      return leading.leadership();
    }
    throw ended();
  }

  /**
   * Waits at most {@code timeout} for this candidate to lead (as Curator's {@code
   * LeaderLatch.await(timeout, unit)}): true if it leads, false if the time passed or the campaign
   * is over.
   */
  public boolean await(Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + Timeouts.nanos(Timeouts.check(timeout));
    synchronized (this) {
      while (leading == null && !over) {
        long left = deadline - System.nanoTime();
        if (left <= 0) {
          return false;
        }
        TimeUnit.NANOSECONDS.timedWait(this, left);
      }
      return leading != null;
    }
  }

  /** Waits at most {@code time} for this candidate to lead; see {@link #await(Duration)}. */
  public boolean await(long time, TimeUnit unit) throws InterruptedException {
    return await(Timeouts.of(time, unit));
  }

  private SyncException ended() {
    return failure != null
        ? failure
        : new SyncException(
            SyncException.Code.FAILED_PRECONDITION, "the campaign of election " + name + " is over");
  }

  /** Publishes a new value to observers within {@link SyncClient#DEFAULT_CALL_TIMEOUT}; only the leader may. */
  public void proclaim(String value) {
    proclaim(value, SyncClient.DEFAULT_CALL_TIMEOUT);
  }

  /**
   * Publishes a new value to observers within {@code timeout}; only the leader may
   * (FAILED_PRECONDITION otherwise).
   */
  public void proclaim(String value, Duration timeout) {
    long term = currentTerm("proclaim");
    try {
      SyncClient.withDeadline(elections, timeout)
          .proclaim(ProclaimRequest.newBuilder().setName(name).setTerm(term).setValue(value).build());
    } catch (StatusRuntimeException e) {
      throw SyncException.from(e);
    }
  }

  /** Steps down and leaves the campaign, within {@link SyncClient#DEFAULT_CALL_TIMEOUT}; see {@link #resign(Duration)}. */
  public void resign() {
    resign(SyncClient.DEFAULT_CALL_TIMEOUT);
  }

  /**
   * Steps down, if leading, and leaves the campaign; another candidate is elected at once. The
   * term ends on this side before anything is sent ({@link Leadership#ended()} completes with
   * {@link Loss#RELEASED}); then the sidecar is asked to give the term back, and the call returns
   * once it has, so the next leader may act from then on. Whatever happens (the sidecar answers,
   * fails or is frozen past {@code timeout}), the campaign is over from the moment this is called,
   * and no term is reported won again. Throws SyncException DEADLINE_EXCEEDED if the sidecar did
   * not answer within {@code timeout} (it gives the term up when it sees the stream end, at the
   * latest when the lease expires), or another SyncException if it could not give it back; a term
   * already over is no error. Returns at once if the campaign was already over.
   */
  public void resign(Duration timeout) {
    Timeouts.check(timeout);
    Term term;
    Follower stream;
    synchronized (this) {
      if (over || leaving) {
        return;
      }
      leaving = true;
      resigned = true;
      term = leading;
      stream = current;
      depose(new Loss(Loss.RELEASED, "this candidate resigned"));
    }
    SyncException error = null;
    if (term != null) {
      try {
        SyncClient.withDeadline(elections, timeout)
            .resign(ResignRequest.newBuilder().setName(name).setTerm(term.leadership().term()).build());
      } catch (StatusRuntimeException e) {
        error = SyncException.from(e);
      }
    }
    stream.cancel("this candidate resigned");
    finish(stream, null);
    if (error != null && error.code() != SyncException.Code.FAILED_PRECONDITION) {
      throw error;
    }
  }

  /**
   * Leaves the campaign, giving up leadership if leading; the sidecar hands the term on when it
   * sees the stream end. Returns at once and never throws. Use {@link #resign()} to return only
   * once the sidecar has given the term back.
   */
  @Override
  public void close() {
    Follower stream;
    synchronized (this) {
      if (over) {
        return;
      }
      leaving = true;
      depose(new Loss(Loss.RELEASED, "the campaign was closed"));
      stream = current;
    }
    stream.cancel("the campaign was closed");
    finish(stream, null);
  }

  private synchronized long currentTerm(String action) {
    if (leading == null) {
      throw new SyncException(
          SyncException.Code.FAILED_PRECONDITION,
          "cannot " + action + " election " + name + ": this candidate is not the leader",
          SyncException.NOT_HELD,
          null,
          null);
    }
    return leading.leadership().term();
  }

  /** Ends the current term, if any, on this side: complete its future, then tell the listener. */
  private void depose(Loss loss) {
    Term term = leading;
    if (term == null) {
      return;
    }
    leading = null;
    term.watchdog().stop();
    callbacks.execute(() -> term.leadership().ended().complete(loss));
    events.execute(() -> listener.deposed(term.leadership().term(), loss));
  }

  private synchronized void finish(Follower stream, SyncException error) {
    if (stream != current || over) {
      return;
    }
    over = true;
    failure = error;
    depose(
        error != null
            ? new Loss(Loss.STREAM_ENDED, error.getMessage())
            : new Loss(resigned ? Loss.RELEASED : Loss.STREAM_ENDED, "the campaign ended"));
    events.execute(() -> listener.ended(error));
    events.shutdown();
    notifyAll();
  }

  private final class Follower implements ClientResponseObserver<CampaignRequest, CampaignResponse> {
    private ClientCallStreamObserver<CampaignRequest> call;

    @Override
    public void beforeStart(ClientCallStreamObserver<CampaignRequest> stream) {
      synchronized (Campaign.this) {
        call = stream;
      }
    }

    void cancel(String why) {
      ClientCallStreamObserver<CampaignRequest> stream;
      synchronized (Campaign.this) {
        stream = call;
      }
      stream.cancel(why, null);
    }

    @Override
    public void onNext(CampaignResponse message) {
      synchronized (Campaign.this) {
        if (this != current || leaving || over) {
          return; // a replaced stream, or a campaign being left: nothing it says counts
        }
        switch (message.getEventCase()) {
          case ELECTED -> {
            depose(new Loss(Loss.TAKEN_OVER, "elected again with a new term"));
            Leadership leadership = new Leadership(message.getElected().getTerm(), new CompletableFuture<>());
            Term[] self = new Term[1];
            Term term = new Term(leadership, new Watchdog(scheduler, () -> expired(self[0])));
            self[0] = term;
            leading = term;
            term.watchdog().extend(Durations.fromProto(message.getElected().getValidFor()));
            events.execute(() -> listener.elected(leadership));
            Campaign.this.notifyAll();
          }
          case RENEWED -> {
            if (leading != null) {
              leading.watchdog().extend(Durations.fromProto(message.getRenewed().getValidFor()));
            }
          }
          case DEPOSED -> {
            if (leading != null && leading.leadership().term() == message.getDeposed().getTerm()) {
              depose(Loss.from(message.getDeposed().getReason(), message.getDeposed().getMessage()));
            }
            if (message.getDeposed().getReason() == LossReason.LOSS_REASON_SHUTDOWN) {
              // The sidecar is going away and keeps the lease until this stream closes (or the
              // promise runs out): close it now, so the term passes on at once. The campaign is over.
              cancel("the sidecar is shutting down");
              finish(
                  this,
                  new SyncException(
                      SyncException.Code.UNAVAILABLE,
                      "the sidecar is shutting down: " + message.getDeposed().getMessage(),
                      SyncException.SHUTTING_DOWN,
                      null,
                      null));
            }
          }
          case LEADER_CHANGED -> {
            // The sidecar tells a candidate only of others' terms, so ours is over; say so
            // first, in order.
            depose(new Loss(Loss.TAKEN_OVER, "another term began"));
            LeaderChanged changed = message.getLeaderChanged();
            Leader leader = new Leader(changed.getLeader(), changed.getValue(), changed.getTerm());
            events.execute(() -> listener.leaderChanged(leader));
          }
          default -> {}
        }
      }
    }

    @Override
    public void onError(Throwable error) {
      boolean closed = Status.fromThrowable(error).getCode() == Status.Code.CANCELLED;
      finish(this, closed ? null : SyncException.from(error));
    }

    @Override
    public void onCompleted() {
      finish(this, null);
    }
  }
}
