package io.metaparticle.sync.client;

import io.grpc.stub.ClientCallStreamObserver;
import io.metaparticle.sync.v1.Acquired;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ScheduledExecutorService;

/**
 * A held lock. It stays held, renewed by the sidecar, until {@link #close()}; use it in
 * try-with-resources. {@link #lost()} completes the moment the holder must stop acting: the
 * sidecar reported the lock lost, its heartbeats stopped, or the lock was released.
 */
public final class Lock implements AutoCloseable {
  private final String name;
  private final long token;
  private final String holder;
  private final Duration leaseDuration;
  private final ClientCallStreamObserver<?> call;
  private final Watchdog watchdog;
  private final CompletableFuture<Loss> lost = new CompletableFuture<>();

  Lock(String name, Acquired acquired, ClientCallStreamObserver<?> call, ScheduledExecutorService scheduler) {
    this.name = name;
    this.token = acquired.getFencingToken();
    this.holder = acquired.getHolder();
    this.leaseDuration = Durations.fromProto(acquired.getLeaseDuration());
    this.call = call;
    this.watchdog =
        new Watchdog(
            scheduler,
            () ->
                end(
                    new Loss(
                        Loss.HEARTBEAT_TIMEOUT,
                        "no heartbeat from the sidecar before lock " + name + " (token " + token + ") stopped being valid")));
    watchdog.extend(Durations.fromProto(acquired.getValidFor()));
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

  /** Completes with why the lock ended, when it is lost or released: stop acting. */
  public CompletableFuture<Loss> lost() {
    return lost;
  }

  public boolean isLost() {
    return lost.isDone();
  }

  /** How much longer the holder may act without another heartbeat. */
  public Duration validFor() {
    return watchdog.remaining();
  }

  /** Releases the lock; the next waiter gets it at once. Safe to call more than once. */
  @Override
  public void close() {
    end(new Loss(Loss.RELEASED, "lock " + name + " was released"));
  }

  void heartbeat(Duration validFor) {
    watchdog.extend(validFor);
  }

  /** Records the first reason the lock ended and cancels the stream, which releases it. */
  void end(Loss loss) {
    if (!lost.complete(loss)) {
      return;
    }
    watchdog.stop();
    call.cancel(loss.message(), null);
  }
}
