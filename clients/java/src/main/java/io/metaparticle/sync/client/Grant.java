package io.metaparticle.sync.client;

import io.metaparticle.sync.v1.Acquired;
import io.metaparticle.sync.v1.PermitAcquired;
import io.metaparticle.sync.v1.RWLockAcquired;
import java.time.Duration;

/**
 * What the sidecar granted a holder, whatever it holds: the name, the fencing token, the holder,
 * the lease, and how long the holder may act from now.
 */
record Grant(String name, long token, String holder, Duration leaseDuration, Duration validFor) {
  static Grant of(String name, Acquired a) {
    return of(name, a.getFencingToken(), a.getHolder(), a.getLeaseDuration(), a.getValidFor());
  }

  static Grant of(String name, PermitAcquired a) {
    return of(name, a.getFencingToken(), a.getHolder(), a.getLeaseDuration(), a.getValidFor());
  }

  static Grant of(String name, RWLockAcquired a) {
    return of(name, a.getFencingToken(), a.getHolder(), a.getLeaseDuration(), a.getValidFor());
  }

  private static Grant of(
      String name,
      long token,
      String holder,
      com.google.protobuf.Duration leaseDuration,
      com.google.protobuf.Duration validFor) {
    return new Grant(name, token, holder, Durations.fromProto(leaseDuration), Durations.fromProto(validFor));
  }
}
