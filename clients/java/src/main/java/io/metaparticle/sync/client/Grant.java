package io.metaparticle.sync.client;

import io.metaparticle.sync.v1.Acquired;
import io.metaparticle.sync.v1.PermitAcquired;
import java.time.Duration;

/**
 * What the sidecar granted a holder, whatever it holds: the name, the fencing token, the holder,
 * the lease, and how long the holder may act from now.
 */
record Grant(String name, long token, String holder, Duration leaseDuration, Duration validFor) {
  static Grant of(String name, Acquired a) {
    return new Grant(
        name,
        a.getFencingToken(),
        a.getHolder(),
        Durations.fromProto(a.getLeaseDuration()),
        Durations.fromProto(a.getValidFor()));
  }

  static Grant of(String name, PermitAcquired a) {
    return new Grant(
        name,
        a.getFencingToken(),
        a.getHolder(),
        Durations.fromProto(a.getLeaseDuration()),
        Durations.fromProto(a.getValidFor()));
  }
}
