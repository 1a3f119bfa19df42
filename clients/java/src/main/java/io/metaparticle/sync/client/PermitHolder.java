package io.metaparticle.sync.client;

import java.time.Duration;
import java.time.Instant;
import java.util.List;

/**
 * One hold of a semaphore's permit, as the sidecar observed it.
 *
 * @param holder the holder's name
 * @param holderIdentity the sidecar process that holds it
 * @param token the hold's fencing token; 0 for a hold of another sidecar, whose token this one
 *     does not report
 * @param acquireTime when the hold began, by the wall clock of the sidecar that wrote it; null if
 *     unknown
 * @param leaseDuration the hold's lease
 * @param remaining how long until the hold's lease expires unless renewed
 */
public record PermitHolder(
    String holder, String holderIdentity, long token, Instant acquireTime, Duration leaseDuration, Duration remaining) {

  static List<PermitHolder> fromProto(List<io.metaparticle.sync.v1.PermitHolder> holders) {
    return holders.stream()
        .map(
            h ->
                new PermitHolder(
                    h.getHolder(),
                    h.getHolderIdentity(),
                    h.getFencingToken(),
                    h.hasAcquireTime() ? Durations.fromProto(h.getAcquireTime()) : null,
                    Durations.fromProto(h.getLeaseDuration()),
                    Durations.fromProto(h.getRemaining())))
        .toList();
  }
}
