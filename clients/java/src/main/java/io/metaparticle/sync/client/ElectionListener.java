package io.metaparticle.sync.client;

/**
 * What happens to a candidate, called in order on a thread of the campaign's own. A deposed
 * candidate stays in the campaign and may be elected again.
 */
public interface ElectionListener {
  /** This candidate leads until {@code leadership.ended()} completes. */
  default void elected(Leadership leadership) {}

  /** This candidate's term ended. */
  default void deposed(long term, Loss loss) {}

  /** Someone else leads, or nobody does. */
  default void leaderChanged(Leader leader) {}

  /** The campaign is over: {@code error} is null after resign or close, else why the sidecar ended it. */
  default void ended(SyncException error) {}
}
