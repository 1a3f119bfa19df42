package io.metaparticle.sync.client;

import java.util.concurrent.CompletableFuture;

/**
 * One term of leadership.
 *
 * @param term strictly greater than every earlier term of the election; usable as a fencing token
 * @param ended completes with why the term ended: stop leading (a resign or close gives {@link
 *     Loss#RELEASED}); what is chained on it runs on the client's callback pool
 */
public record Leadership(long term, CompletableFuture<Loss> ended) {}
