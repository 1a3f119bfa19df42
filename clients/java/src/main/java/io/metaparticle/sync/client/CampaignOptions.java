package io.metaparticle.sync.client;

import java.time.Duration;

/**
 * Options of {@link SyncClient#campaign}; start from {@link #defaults()}.
 *
 * @param candidate this candidate's name, as others see it; null means $MSYNC_CANDIDATE, else
 *     $POD_NAME, else host/pid
 * @param value proclaimed when elected, for example this candidate's address
 * @param leaseDuration how long leadership outlives a sidecar that stopped renewing it, whole
 *     seconds; null means the sidecar's default (15 s)
 */
public record CampaignOptions(String candidate, String value, Duration leaseDuration) {
  public static CampaignOptions defaults() {
    return new CampaignOptions(null, "", null);
  }

  public CampaignOptions withCandidate(String candidate) {
    return new CampaignOptions(candidate, value, leaseDuration);
  }

  public CampaignOptions withValue(String value) {
    return new CampaignOptions(candidate, value, leaseDuration);
  }

  public CampaignOptions withLeaseDuration(Duration leaseDuration) {
    return new CampaignOptions(candidate, value, leaseDuration);
  }
}
