// Reading our daemon's Prometheus endpoint (--metrics-listen): one scrape,
// and a counter's series summed by one label.

/** GET http://ADDRESS/metrics, failing after `timeoutMs`. */
export async function scrapeMetrics(address: string, timeoutMs = 5_000): Promise<string> {
  const response = await fetch(`http://${address}/metrics`, { signal: AbortSignal.timeout(timeoutMs) });
  if (!response.ok) throw new Error(`GET http://${address}/metrics: HTTP ${response.status}`);
  return response.text();
}

/** The series of `metric` summed by the value of `label`, e.g. msync_api_requests_total by verb (codes summed). */
export function countersBy(text: string, metric: string, label: string): Record<string, number> {
  const sums: Record<string, number> = {};
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${metric}{`)) continue;
    const close = line.lastIndexOf("}");
    const value = new RegExp(`(?:^|,)${label}="((?:[^"\\\\]|\\\\.)*)"`).exec(line.slice(metric.length + 1, close))?.[1];
    if (value === undefined) continue;
    sums[value] =
      (sums[value] ?? 0) +
      Number(
        line
          .slice(close + 1)
          .trim()
          .split(" ")[0],
      );
  }
  return sums;
}

/** after − before for every key of either (a key missing on one side counts as 0). */
export function diffBy(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
  return Object.fromEntries(keys.map((k) => [k, (after[k] ?? 0) - (before[k] ?? 0)]));
}

export function sumOf(counts: Record<string, number>): number {
  return Object.values(counts).reduce((a, b) => a + b, 0);
}
