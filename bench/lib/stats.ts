// Summary statistics over latency samples (milliseconds).

export interface Summary {
  readonly n: number;
  readonly min: number;
  readonly median: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

/** Nearest-rank quantile of already sorted values; q in [0, 1]. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[Math.min(sorted.length, rank) - 1]!;
}

export function summarize(values: readonly number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    n: sorted.length,
    min: sorted[0] ?? NaN,
    median: quantile(sorted, 0.5),
    p99: quantile(sorted, 0.99),
    max: sorted.at(-1) ?? NaN,
    mean: sorted.length === 0 ? NaN : sorted.reduce((a, b) => a + b, 0) / sorted.length,
  };
}

/**
 * At most `points` values that draw the same CDF as `values`: the nearest-rank quantiles at 1/points,
 * 2/points, ..., 1, so that each stands for an equal share of the samples (all of them, sorted, when there
 * are no more than `points`). Keeps results.json small for runs with thousands of samples; the median of
 * the sketch is the median of the samples when `points` is even.
 */
export function cdfSketch(values: readonly number[], points: number): number[] {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length <= points) return sorted;
  return Array.from({ length: points }, (_, i) => quantile(sorted, (i + 1) / points));
}

export interface LinearFit {
  readonly n: number;
  /** Change of y per unit of x. */
  readonly slope: number;
  readonly intercept: number;
  /** Standard error of the slope (assumes independent residuals, which samples of a process's memory are not: read it as a rough scale). */
  readonly slopeSe: number;
  /** Standard deviation of the residuals around the line: the noise the trend is judged against. */
  readonly residualSd: number;
}

/** Ordinary least-squares line through (xs[i], ys[i]); NaN fields with fewer than 3 points or no spread in x. */
export function linearFit(xs: readonly number[], ys: readonly number[]): LinearFit {
  const n = Math.min(xs.length, ys.length);
  const none = { n, slope: NaN, intercept: NaN, slopeSe: NaN, residualSd: NaN };
  if (n < 3) return none;
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) {
    mx += xs[i]!;
    my += ys[i]!;
  }
  mx /= n;
  my /= n;
  let sxx = 0;
  let sxy = 0;
  for (let i = 0; i < n; i++) {
    sxx += (xs[i]! - mx) ** 2;
    sxy += (xs[i]! - mx) * (ys[i]! - my);
  }
  if (sxx === 0) return none;
  const slope = sxy / sxx;
  const intercept = my - slope * mx;
  let sse = 0;
  for (let i = 0; i < n; i++) sse += (ys[i]! - (intercept + slope * xs[i]!)) ** 2;
  const residualVariance = sse / (n - 2);
  return { n, slope, intercept, slopeSe: Math.sqrt(residualVariance / sxx), residualSd: Math.sqrt(residualVariance) };
}
