package io.metaparticle.sync.client;

import java.util.Optional;

/**
 * What {@link RWLockSide#tryAcquire} found: the hold it took, or, when the lock could not be held
 * in that mode now, how it is held.
 *
 * @param hold the hold taken; empty when refused
 * @param state when refused, the lock as the sidecar saw it then; empty when taken
 */
public record RWAttempt(Optional<LeasedRWHold> hold, Optional<RWLockInfo> state) {
  /** True when the hold was taken. */
  public boolean acquired() {
    return hold.isPresent();
  }
}
