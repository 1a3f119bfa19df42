package io.metaparticle.sync.client;

import java.time.Duration;
import java.util.List;

/**
 * The shared holds of a {@link ReadWriteLock} through one sidecar, which share one entry in the
 * lock, as the sidecar that was asked observed them.
 *
 * @param holderIdentity the sidecar process whose clients hold the lock shared
 * @param holder the holder name of that sidecar's first reader
 * @param readers how many shared holds that sidecar has
 * @param remaining how long until the seat's lease expires unless renewed
 */
public record ReaderSeat(String holderIdentity, String holder, int readers, Duration remaining) {
  static List<ReaderSeat> fromProto(List<io.metaparticle.sync.v1.ReaderSeat> seats) {
    return seats.stream()
        .map(s -> new ReaderSeat(s.getHolderIdentity(), s.getHolder(), s.getReaders(), Durations.fromProto(s.getRemaining())))
        .toList();
  }
}
