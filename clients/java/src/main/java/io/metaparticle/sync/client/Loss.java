package io.metaparticle.sync.client;

import io.metaparticle.sync.v1.LossReason;

/**
 * Why a lock or a term of leadership ended.
 *
 * @param reason one of the constants below
 * @param message the cause, for people
 */
public record Loss(String reason, String message) {
  /** The sidecar could not renew in time. */
  public static final String RENEW_DEADLINE_EXCEEDED = "renew-deadline-exceeded";
  /** The lease shows another holder. */
  public static final String TAKEN_OVER = "taken-over";
  /** The sidecar is shutting down and released it. */
  public static final String SHUTDOWN = "shutdown";
  /** Someone deleted the Lease. */
  public static final String DELETED = "deleted";
  /** No heartbeat arrived before the last one ran out: the sidecar may be frozen or gone. */
  public static final String HEARTBEAT_TIMEOUT = "heartbeat-timeout";
  /** The sidecar ended the stream without saying why. */
  public static final String STREAM_ENDED = "stream-ended";
  /** This candidate resigned or closed the campaign: a term's normal end, not a loss. */
  public static final String RELEASED = "released";

  static Loss from(LossReason reason, String message) {
    String name =
        switch (reason) {
          case LOSS_REASON_RENEW_DEADLINE_EXCEEDED -> RENEW_DEADLINE_EXCEEDED;
          case LOSS_REASON_TAKEN_OVER -> TAKEN_OVER;
          case LOSS_REASON_SHUTDOWN -> SHUTDOWN;
          case LOSS_REASON_DELETED -> DELETED;
          default -> "unknown";
        };
    return new Loss(name, message);
  }
}
