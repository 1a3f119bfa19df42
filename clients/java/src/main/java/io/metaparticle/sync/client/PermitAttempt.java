package io.metaparticle.sync.client;

import java.util.List;
import java.util.Optional;

/**
 * What {@link Semaphore#tryAcquire} found: the permit it took, or, when none was free, who holds
 * them all.
 *
 * @param permit the permit taken; empty when none was free
 * @param holders when none was free, the current holds; empty otherwise
 */
public record PermitAttempt(Optional<LeasedPermit> permit, List<PermitHolder> holders) {
  public PermitAttempt {
    holders = List.copyOf(holders);
  }

  /** True when a permit was taken. */
  public boolean acquired() {
    return permit.isPresent();
  }
}
