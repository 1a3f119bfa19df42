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
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;

/**
 * This process's candidacy in an election. It ends with {@link #resign()} or {@link #close()};
 * the listener hears every event in order on a thread of the campaign's own, so a slow listener
 * never delays the heartbeat deadline.
 */
public final class Campaign implements AutoCloseable {
  private final String name;
  private final ElectionServiceGrpc.ElectionServiceBlockingStub elections;
  private final ScheduledExecutorService scheduler;
  private final ElectionListener listener;
  private final ExecutorService events;
  private ClientCallStreamObserver<CampaignRequest> call;
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
      CampaignRequest request,
      ElectionListener listener) {
    this.name = name;
    this.elections = elections;
    this.scheduler = scheduler;
    this.listener = listener;
    this.events =
        Executors.newSingleThreadExecutor(
            runnable -> {
              Thread thread = new Thread(runnable, "msync-campaign-" + name);
              thread.setDaemon(true);
              return thread;
            });
    stub.campaign(request, new Follower());
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
    ClientCallStreamObserver<CampaignRequest> stream;
    synchronized (this) {
      depose(new Loss(Loss.RELEASED, "the campaign was closed"));
      stream = call;
    }
    stream.cancel("the campaign was closed", null);
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
    term.leadership().ended().complete(loss);
    events.execute(() -> listener.deposed(term.leadership().term(), loss));
  }

  private synchronized void finish(SyncException error) {
    if (over) {
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
    @Override
    public void beforeStart(ClientCallStreamObserver<CampaignRequest> stream) {
      synchronized (Campaign.this) {
        call = stream;
      }
    }

    @Override
    public void onNext(CampaignResponse message) {
      synchronized (Campaign.this) {
        switch (message.getEventCase()) {
          case ELECTED -> {
            depose(new Loss(Loss.TAKEN_OVER, "elected again with a new term"));
            Leadership leadership = new Leadership(message.getElected().getTerm(), new CompletableFuture<>());
            Term term =
                new Term(
                    leadership,
                    new Watchdog(
                        scheduler,
                        () -> {
                          synchronized (Campaign.this) {
                            if (leading != null && leading.leadership() == leadership) {
                              depose(
                                  new Loss(
                                      Loss.HEARTBEAT_TIMEOUT,
                                      "no heartbeat from the sidecar before leadership stopped being valid"));
                            }
                          }
                        }));
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
      finish(closed ? null : SyncException.from(error));
    }

    @Override
    public void onCompleted() {
      finish(null);
    }
  }
}
