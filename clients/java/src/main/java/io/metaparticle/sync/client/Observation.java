package io.metaparticle.sync.client;

import java.util.concurrent.CompletableFuture;

/** A running {@link SyncClient#observe}; close it to stop. */
public final class Observation implements AutoCloseable {
  private final Runnable cancel;
  private final CompletableFuture<Void> done;

  Observation(Runnable cancel, CompletableFuture<Void> done) {
    this.cancel = cancel;
    this.done = done;
  }

  /** Completes when the observation ends; exceptionally with a SyncException if the sidecar ended it. */
  public CompletableFuture<Void> done() {
    return done;
  }

  @Override
  public void close() {
    cancel.run();
  }
}
