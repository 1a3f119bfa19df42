package io.metaparticle.sync.client;

import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.concurrent.ScheduledExecutorService;

/**
 * What every hold is, however it is kept ({@link StreamHold}: by a stream the sidecar renews;
 * {@link LeaseHold}: for a lease the holder renews) and whatever it holds (a lock, a permit of a
 * semaphore, a read-write lock shared or exclusive): what was granted, the client's own deadline on its last valid_for (the {@link
 * Watchdog}), and the lost signal.
 */
abstract class Hold {
  private final String name;
  private final long token;
  private final String holder;
  private final Duration leaseDuration;
  /** Names the hold in messages, for example {@code lock job (token 7)}. */
  private final String what;
  private final Executor callbacks;
  private final CompletableFuture<Loss> lost = new CompletableFuture<>();
  /** Runs {@link #expired()} when the last valid_for runs out; the subclass starts it. */
  final Watchdog watchdog;

  /** {@code kind} says what it holds, for example {@code lock} or {@code a permit of semaphore}. */
  Hold(String kind, Grant grant, ScheduledExecutorService scheduler, Executor callbacks) {
    this.name = grant.name();
    this.token = grant.token();
    this.holder = grant.holder();
    this.leaseDuration = grant.leaseDuration();
    this.what = kind + " " + name + " (token " + token + ")";
    this.callbacks = callbacks;
    this.watchdog = new Watchdog(scheduler, this::expired);
  }

  /** The last valid_for ran out without a heartbeat or a renewal: the holder must stop. */
  abstract void expired();

  String what() {
    return what;
  }

  /**
   * Completes {@link #lost()}, on a thread of the client's callback pool, never on the thread that
   * keeps every hold's deadline.
   */
  void reportLost(Loss loss) {
    callbacks.execute(() -> lost.complete(loss));
  }

  /** The lock's or semaphore's name. */
  public String name() {
    return name;
  }

  /**
   * The fencing token: strictly greater than every earlier token of this lock or semaphore, or,
   * for a read-write lock, of its exclusive holds; a shared hold of a read-write lock reports the
   * last exclusive hold's token (0 if none). Pass it to every resource you write to.
   */
  public long token() {
    return token;
  }

  public String holder() {
    return holder;
  }

  /** The lease it was taken with: how long it outlives a holder that stopped renewing it. */
  public Duration leaseDuration() {
    return leaseDuration;
  }

  /**
   * Completes with why the hold was lost: stop acting. Its dependent actions run on a thread of
   * the client's callback pool, never on the thread that keeps every hold's deadline. A normal
   * release is not a loss and does not complete it.
   */
  public CompletableFuture<Loss> lost() {
    return lost;
  }

  /** How much longer the holder may act without another heartbeat or renewal. */
  public Duration validFor() {
    return watchdog.remaining();
  }
}
