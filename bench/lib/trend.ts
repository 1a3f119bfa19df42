// Whether a series sampled over time stays flat: a least-squares line through
// the samples after a warm-up, and its drift over that window judged against
// the samples' own scatter around the line.
import { linearFit } from "./stats.js";

export interface Trend {
  /** Samples in the fit (those at or after the warm-up). */
  readonly n: number;
  readonly first: number;
  readonly last: number;
  readonly max: number;
  /** Change per hour, from the fit. */
  readonly perHour: number;
  /** Twice the slope's standard error, per hour: a rough 95% interval (samples of one process are not independent). */
  readonly perHourPlusMinus: number;
  /** Seconds from the first to the last fitted sample. */
  readonly windowS: number;
  /** Change the fitted line makes across the window. */
  readonly drift: number;
  /** Standard deviation of the samples around the line. */
  readonly noise: number;
  /** |drift| is at most twice the noise, or at most `floor`: no trend the samples can tell from their scatter. */
  readonly flat: boolean;
}

/**
 * The trend of `values` sampled at `timesS` (seconds), fitted over samples at
 * `fromS` or later; first, last and max are over all samples. `floor` is the
 * drift no one would call growth (e.g. 1 MiB of memory, 2 descriptors).
 */
export function trend(timesS: readonly number[], values: readonly number[], fromS: number, floor: number): Trend {
  const all = values.filter((v) => Number.isFinite(v));
  const xs: number[] = [];
  const ys: number[] = [];
  timesS.forEach((t, i) => {
    if (t >= fromS && Number.isFinite(values[i]!)) {
      xs.push(t);
      ys.push(values[i]!);
    }
  });
  const fit = linearFit(xs, ys);
  const windowS = xs.length === 0 ? 0 : xs.at(-1)! - xs[0]!;
  const drift = fit.slope * windowS;
  return {
    n: fit.n,
    first: all[0] ?? NaN,
    last: all.at(-1) ?? NaN,
    max: all.length === 0 ? NaN : Math.max(...all),
    perHour: fit.slope * 3600,
    perHourPlusMinus: 2 * fit.slopeSe * 3600,
    windowS,
    drift,
    noise: fit.residualSd,
    flat: Number.isFinite(drift) && Math.abs(drift) <= Math.max(2 * fit.residualSd, floor),
  };
}
