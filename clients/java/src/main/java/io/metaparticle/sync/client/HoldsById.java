package io.metaparticle.sync.client;

import io.grpc.StatusRuntimeException;
import java.time.Duration;

/**
 * What gives holds out by hold id (a {@link Semaphore}, a {@link ReadWriteLock}): renewing and
 * releasing one by its id, for a part of the program that knows only the id, or for a hold
 * released before, which its own object no longer asks the sidecar about. The subclass says how
 * to ask the sidecar; the public calls, their deadlines and their errors are the same for all.
 */
abstract class HoldsById {
  /**
   * Renews the hold {@code holdId} at the sidecar, by {@code leaseDuration} if not null, with
   * {@code timeout} as the call's deadline; returns the new valid_for.
   */
  abstract Duration sendRenew(String holdId, Duration leaseDuration, Duration timeout);

  /** Gives the hold {@code holdId} back at the sidecar, with {@code timeout} as the call's deadline. */
  abstract void sendRelease(String holdId, Duration timeout);

  /**
   * Renews a hold taken with tryAcquire by its id, within {@link SyncClient#DEFAULT_CALL_TIMEOUT};
   * see {@link #renew(String, Duration, Duration)}.
   */
  public Duration renew(String holdId) {
    return renew(holdId, null, SyncClient.DEFAULT_CALL_TIMEOUT);
  }

  /**
   * Extends a hold taken with tryAcquire, named by its id, by another lease ({@code
   * leaseDuration}, whole seconds, if not null, else its current one) counted from now, within
   * {@code timeout}; returns how long the holder may now act. A hold this sidecar does not have
   * throws SyncException FAILED_PRECONDITION ({@link SyncException#NOT_HELD}, field {@code
   * hold_id}).
   */
  public Duration renew(String holdId, Duration leaseDuration, Duration timeout) {
    try {
      return sendRenew(holdId, leaseDuration, timeout);
    } catch (StatusRuntimeException e) {
      throw SyncException.from(e);
    }
  }

  /**
   * Gives a hold back by its id, within {@link SyncClient#DEFAULT_CALL_TIMEOUT}; see {@link
   * #release(String, Duration)}.
   */
  public void release(String holdId) {
    release(holdId, SyncClient.DEFAULT_CALL_TIMEOUT);
  }

  /**
   * Gives a hold back by its id (the {@code holdId()} of what acquire or tryAcquire returned)
   * within {@code timeout}, and returns once the sidecar has: the next waiter gets it at once. The
   * stream of a hold acquire returned, so released, ends without a loss, and that hold reports
   * {@code lost()} ({@link Loss#STREAM_ENDED}). A hold this sidecar does not have (also one
   * released before) throws SyncException FAILED_PRECONDITION ({@link SyncException#NOT_HELD},
   * field {@code hold_id}).
   */
  public void release(String holdId, Duration timeout) {
    try {
      sendRelease(holdId, timeout);
    } catch (StatusRuntimeException e) {
      throw SyncException.from(e);
    }
  }
}
