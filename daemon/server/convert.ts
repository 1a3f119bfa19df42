// Conversions between protobuf messages and engine values. Durations arrive
// as google.protobuf.Duration and are checked here, since only this layer
// knows the request field names.
import type { Duration } from "metaparticle-sync-client/gen/google/protobuf/duration";
import { Fairness } from "metaparticle-sync-client/gen/metaparticle/sync/v1/lock_service";
import { LossReason, ReadConsistency } from "metaparticle-sync-client/gen/metaparticle/sync/v1/types";
import { type LossReason as EngineLossReason, invalidArgument } from "../engine/index.js";

/** Milliseconds of a Duration, or undefined when unset. Rejects malformed and negative ones. */
export function durationMs(duration: Duration | undefined, field: string): number | undefined {
  if (duration === undefined) return undefined;
  const { seconds, nanos } = duration;
  if (
    !Number.isSafeInteger(seconds) ||
    !Number.isInteger(nanos) ||
    Math.abs(nanos) > 999_999_999 ||
    (seconds > 0 && nanos < 0) ||
    (seconds < 0 && nanos > 0)
  ) {
    throw invalidArgument(field, `is not a valid duration (seconds ${seconds}, nanos ${nanos})`);
  }
  if (seconds < 0 || nanos < 0) throw invalidArgument(field, `must not be negative, got ${seconds + nanos / 1e9} s`);
  return seconds * 1000 + nanos / 1e6;
}

export function toDuration(ms: number): Duration {
  const whole = Math.max(0, Math.round(ms));
  return { seconds: Math.floor(whole / 1000), nanos: (whole % 1000) * 1_000_000 };
}

const lossReasons: Record<EngineLossReason, LossReason> = {
  "renew-deadline-exceeded": LossReason.LOSS_REASON_RENEW_DEADLINE_EXCEEDED,
  "taken-over": LossReason.LOSS_REASON_TAKEN_OVER,
  shutdown: LossReason.LOSS_REASON_SHUTDOWN,
  deleted: LossReason.LOSS_REASON_DELETED,
};

export function toLossReason(reason: EngineLossReason): LossReason {
  return lossReasons[reason];
}

/** True for a non-fair lock claim; rejects enum numbers this version does not know. */
export function isNonFair(fairness: Fairness, field: string): boolean {
  switch (fairness) {
    case Fairness.FAIRNESS_UNSPECIFIED:
    case Fairness.FAIRNESS_FAIR:
      return false;
    case Fairness.FAIRNESS_NON_FAIR:
      return true;
    default:
      throw invalidArgument(field, `unknown value ${fairness as number}; use FAIRNESS_FAIR or FAIRNESS_NON_FAIR`);
  }
}

/** True for a fresh read; rejects enum numbers this version does not know. */
export function wantsFresh(consistency: ReadConsistency, field: string): boolean {
  switch (consistency) {
    case ReadConsistency.READ_CONSISTENCY_UNSPECIFIED:
    case ReadConsistency.READ_CONSISTENCY_CACHED:
      return false;
    case ReadConsistency.READ_CONSISTENCY_FRESH:
      return true;
    default:
      throw invalidArgument(field, `unknown value ${consistency as number}; use READ_CONSISTENCY_CACHED or READ_CONSISTENCY_FRESH`);
  }
}
