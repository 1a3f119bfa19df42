package io.metaparticle.sync.client;

import io.metaparticle.sync.v1.GetRWLockResponse;
import java.time.Duration;
import java.time.Instant;
import java.util.List;

/**
 * A read-write lock as the sidecar observed it, from {@link ReadWriteLock#get()} or a refused
 * {@link RWLockSide#tryAcquire()} ({@link RWAttempt#state()}). A lock never used is not held, with
 * token 0.
 *
 * @param held whether some hold's lease has not expired
 * @param mode how it is held; null when it is not
 * @param holder the exclusive holder's name when held exclusive, else empty
 * @param holderIdentity the sidecar process of the exclusive holder when held exclusive, else
 *     empty
 * @param token the current or last exclusive hold's fencing token; 0 if never held exclusive
 * @param acquireTime when the exclusive holder took it, by the wall clock of the sidecar that
 *     wrote it; null when not held exclusive
 * @param remaining how long until the exclusive hold's lease expires unless renewed
 * @param readers one seat per sidecar whose clients hold it shared
 * @param waitingDaemons the sidecars waiting for it, in the order they will be served
 */
public record RWLockInfo(
    boolean held,
    LockMode mode,
    String holder,
    String holderIdentity,
    long token,
    Instant acquireTime,
    Duration remaining,
    List<ReaderSeat> readers,
    List<String> waitingDaemons) {
  public RWLockInfo {
    readers = List.copyOf(readers);
    waitingDaemons = List.copyOf(waitingDaemons);
  }

  /** The shared holds, summed over every sidecar's seat. */
  public int readerCount() {
    return readers.stream().mapToInt(ReaderSeat::readers).sum();
  }

  static RWLockInfo fromProto(GetRWLockResponse r) {
    return new RWLockInfo(
        r.getHeld(),
        LockMode.fromProto(r.getMode()),
        r.getHolder(),
        r.getHolderIdentity(),
        r.getFencingToken(),
        r.hasAcquireTime() ? Durations.fromProto(r.getAcquireTime()) : null,
        Durations.fromProto(r.getRemaining()),
        ReaderSeat.fromProto(r.getReadersList()),
        r.getWaitingDaemonsList());
  }
}
