package io.metaparticle.sync.client;

import java.time.Duration;

/**
 * A lock as the sidecar observed it.
 *
 * @param held whether someone holds it now
 * @param holder the holder's name, or the last holder's
 * @param token the current or last fencing token; 0 if never acquired
 * @param leaseDuration the lease duration
 * @param remaining how long until the lease expires unless renewed
 */
public record LockInfo(boolean held, String holder, long token, Duration leaseDuration, Duration remaining) {}
