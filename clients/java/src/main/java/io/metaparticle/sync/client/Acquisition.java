package io.metaparticle.sync.client;

import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import io.metaparticle.sync.v1.Lost;
import io.metaparticle.sync.v1.Renewed;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * The wait for a hold kept by a stream, and the stream's later news, the same for every such
 * stream (LockService.Acquire, SemaphoreService.AcquirePermit): first the grant, then heartbeats,
 * then a loss. The wait timeout is sent to the sidecar by the caller and kept here on this
 * client's own clock too, so that a sidecar that stopped answering cannot make it wait longer than
 * the wait timeout plus {@link SyncClient#WAIT_TIMEOUT_GRACE}.
 */
final class Acquisition {
  private Acquisition() {}

  /**
   * One message of such a stream, as the hold reads it: the grant, a heartbeat or a loss; all null
   * for an event this client does not know.
   */
  record Event<A>(A acquired, Renewed renewed, Lost lost) {}

  /** Makes the hold from its grant, on the stream that keeps it. */
  interface Holds<A, H extends StreamHold> {
    H hold(A acquired, ClientCallStreamObserver<?> call);
  }

  /**
   * Starts the stream ({@code start} calls the stub with the observer) and waits at most {@code
   * wait} plus the grace for its grant; returns the hold. {@code what} names it in messages, for
   * example {@code lock job}. Throws SyncException when the sidecar refuses or the wait timed out
   * (DEADLINE_EXCEEDED, {@link SyncException#isWaitTimeout()}); an interrupt stops waiting.
   */
  static <Q, R, A, H extends StreamHold> H await(
      String what,
      Duration wait,
      Consumer<ClientResponseObserver<Q, R>> start,
      Function<R, Event<A>> events,
      Holds<A, H> holds)
      throws InterruptedException {
    CompletableFuture<H> acquired = new CompletableFuture<>();
    AtomicReference<ClientCallStreamObserver<Q>> call = new AtomicReference<>();
    start.accept(
        new ClientResponseObserver<Q, R>() {
          private H hold;

          @Override
          public void beforeStart(ClientCallStreamObserver<Q> stream) {
            call.set(stream);
          }

          @Override
          public void onNext(R message) {
            Event<A> event = events.apply(message);
            if (event.acquired() != null) {
              hold = holds.hold(event.acquired(), call.get());
              if (!acquired.complete(hold)) {
                hold.abandon(); // the caller stopped waiting just as the hold arrived
              }
            } else if (event.renewed() != null) {
              hold.heartbeat(Durations.fromProto(event.renewed().getValidFor()));
            } else if (event.lost() != null) {
              hold.end(Loss.from(event.lost().getReason(), event.lost().getMessage()));
            }
          }

          @Override
          public void onError(Throwable error) {
            if (hold == null) {
              SyncException refused = SyncException.from(error);
              if (refused.code() == SyncException.Code.DEADLINE_EXCEEDED && refused.reason() == null) {
                // This stream has no gRPC deadline: its only DEADLINE_EXCEEDED is the wait timeout
                // (a sidecar older than the standard error details does not say so).
                refused = refused.withReason(SyncException.WAIT_TIMEOUT);
              }
              acquired.completeExceptionally(refused);
            } else {
              // Nothing changes if the hold already ended, which cancelled the stream.
              hold.end(new Loss(Loss.STREAM_ENDED, "the sidecar ended the stream of " + what + ": " + error));
            }
          }

          @Override
          public void onCompleted() {
            if (hold == null) {
              acquired.completeExceptionally(
                  new SyncException(
                      SyncException.Code.UNAVAILABLE,
                      "the sidecar ended the stream before " + what + " was acquired"));
            } else {
              hold.end(new Loss(Loss.STREAM_ENDED, "the sidecar ended the stream of " + what));
            }
          }
        });
    long waitNanos = Timeouts.nanos(wait);
    long graceNanos = SyncClient.WAIT_TIMEOUT_GRACE.toNanos();
    try {
      return acquired.get(
          waitNanos > Long.MAX_VALUE - graceNanos ? Long.MAX_VALUE : waitNanos + graceNanos, TimeUnit.NANOSECONDS);
    } catch (TimeoutException e) {
      SyncException timeout =
          new SyncException(
              SyncException.Code.DEADLINE_EXCEEDED,
              what + " was not had within its wait timeout of " + wait + ", and the sidecar did not say so",
              SyncException.WAIT_TIMEOUT,
              null,
              null);
      if (acquired.completeExceptionally(timeout)) {
        call.get().cancel("the wait timeout passed", null);
        throw timeout;
      }
      return outcome(acquired); // it came just now
    } catch (InterruptedException e) {
      if (acquired.cancel(false)) {
        call.get().cancel("the caller stopped waiting", null);
      } else if (!acquired.isCompletedExceptionally()) {
        acquired.join().abandon(); // it came just now, for nobody: give it back
      }
      throw e;
    } catch (ExecutionException e) {
      throw (SyncException) e.getCause();
    }
  }

  /** A wait for a hold that may time out. */
  interface Wait<H> {
    H get() throws InterruptedException;
  }

  /**
   * The hold, or empty if the wait timed out, as Curator's {@code acquire(time, unit)}; other
   * failures throw SyncException.
   */
  static <H> Optional<H> unlessTimedOut(Wait<H> wait) throws InterruptedException {
    try {
      return Optional.of(wait.get());
    } catch (SyncException e) {
      if (e.isWaitTimeout()) {
        return Optional.empty();
      }
      throw e;
    }
  }

  private static <H> H outcome(CompletableFuture<H> done) {
    try {
      return done.join();
    } catch (CompletionException e) {
      throw (SyncException) e.getCause();
    }
  }
}
