package io.metaparticle.sync.client;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import io.metaparticle.sync.v1.CampaignRequest;
import io.metaparticle.sync.v1.CampaignResponse;
import io.metaparticle.sync.v1.ElectionServiceGrpc;
import io.metaparticle.sync.v1.LeaderChanged;
import io.metaparticle.sync.v1.ProclaimRequest;
import io.metaparticle.sync.v1.ResignRequest;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;

/**
 * This process's candidacy in an election. It ends with {@link #resign()} or {@link #close()};
 * the listener hears every event in order on a thread of the campaign's own, and what is chained on
 * {@link Leadership#ended()} runs on the client's callback pool, so neither delays a heartbeat
 * deadline.
 *
 * <p>If no heartbeat comes before leadership stops being valid (the sidecar froze, or this process
 * was paused), the candidate stops leading at once, closes its stream, so the sidecar gives the
 * term up instead of renewing a leadership nobody acts on, and campaigns again on a new stream.
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
  private boolean resigning;
  private boolean over;

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
    if (resigning || over) {
      return;
    }
    Follower stale = current;
    join();
    stale.cancel("replaced after the heartbeat deadline");
  }

  public String name() {
    return name;
  }

  /** The current term, if this candidate leads. */
  public synchronized Leadership leadership() {
    return leading == null ? null : leading.leadership();
  }

  /** Publishes a new value to observers; only the leader may. */
  public void proclaim(String value) {
    long term = currentTerm("proclaim");
    try {
      elections.proclaim(ProclaimRequest.newBuilder().setName(name).setTerm(term).setValue(value).build());
    } catch (StatusRuntimeException e) {
      throw SyncException.from(e);
    }
  }

  /** Steps down now and ends the campaign; another candidate is elected at once. */
  public void resign() {
    long term = currentTerm("resign");
    synchronized (this) {
      resigning = true;
    }
    try {
      elections.resign(ResignRequest.newBuilder().setName(name).setTerm(term).build());
    } catch (StatusRuntimeException e) {
      synchronized (this) {
        resigning = false;
      }
      throw SyncException.from(e);
    }
    synchronized (this) {
      depose(new Loss(Loss.RELEASED, "this candidate resigned"));
    }
  }

  /** Leaves the campaign, giving up leadership at once if leading. */
  @Override
  public void close() {
    Follower stream;
    synchronized (this) {
      depose(new Loss(Loss.RELEASED, "the campaign was closed"));
      over = true;
      stream = current;
    }
    stream.cancel("the campaign was closed");
    finish(stream, null);
  }

  private synchronized long currentTerm(String action) {
    if (leading == null) {
      throw new SyncException(
          Status.Code.FAILED_PRECONDITION,
          "cannot " + action + " election " + name + ": this candidate is not the leader",
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
    if (stream != current || events.isShutdown()) {
      return;
    }
    over = true;
    depose(
        error != null
            ? new Loss(Loss.STREAM_ENDED, error.getMessage())
            : new Loss(resigning ? Loss.RELEASED : Loss.STREAM_ENDED, "the campaign ended"));
    events.execute(() -> listener.ended(error));
    events.shutdown();
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
        if (this != current) {
          return;
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
          }
          case LEADER_CHANGED -> {
            // The sidecar tells a candidate only of others' terms, so ours is over; say so
            // first, in order.
            depose(
                resigning
                    ? new Loss(Loss.RELEASED, "this candidate resigned")
                    : new Loss(Loss.TAKEN_OVER, "another term began"));
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
