package io.metaparticle.sync.client;

import java.util.List;

/**
 * A semaphore as the sidecar observed it, from {@link SyncClient#getSemaphore}.
 *
 * @param permits its N; 0 if it was never used
 * @param holders the holds whose lease has not expired as the sidecar observed them
 * @param token the last fencing token granted; 0 if none was
 * @param waitingDaemons the sidecars waiting for a permit, in the order they will be served
 */
public record SemaphoreInfo(int permits, List<PermitHolder> holders, long token, List<String> waitingDaemons) {
  public SemaphoreInfo {
    holders = List.copyOf(holders);
    waitingDaemons = List.copyOf(waitingDaemons);
  }
}
