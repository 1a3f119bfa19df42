// Reading our daemon's Prometheus endpoint (--metrics-listen): one scrape,
// a counter's series summed by one label, and single values.
import { get } from "node:http";

/**
 * GET http://address/metrics on a connection of its own that closes after the
 * reply, so no keep-alive socket of the harness lingers in the daemon's
 * handle and descriptor counts between scrapes.
 */
export function scrapeMetrics(address: string, timeoutMs = 5_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const request = get(`http://${address}/metrics`, { agent: false, headers: { connection: "close" }, timeout: timeoutMs }, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (body += chunk));
      response.on("end", () =>
        response.statusCode === 200 ? resolve(body) : reject(new Error(`metrics at ${address}: HTTP ${response.statusCode}`)),
      );
      response.on("error", reject);
    });
    request.on("timeout", () => request.destroy(new Error(`metrics at ${address}: no reply in ${timeoutMs} ms`)));
    request.on("error", reject);
  });
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

/**
 * The sum of the samples of `metric` whose labels include `labels` (a metric
 * without labels matches only an empty `labels`); NaN if none matched, e.g. a
 * metric this build does not export.
 */
export function metricValue(text: string, metric: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  let matched = false;
  for (const line of text.split("\n")) {
    if (!line.startsWith(metric)) continue;
    const rest = line.slice(metric.length);
    let valueText: string;
    if (rest.startsWith("{")) {
      const close = rest.lastIndexOf("}");
      const got: Record<string, string> = {};
      for (const m of rest.slice(1, close).matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) got[m[1]!] = m[2]!;
      if (!Object.entries(labels).every(([k, v]) => got[k] === v)) continue;
      valueText = rest.slice(close + 1);
    } else if (rest.startsWith(" ")) {
      if (Object.keys(labels).length > 0) continue;
      valueText = rest;
    } else continue; // another metric whose name starts with this one
    sum += Number(valueText.trim().split(" ")[0]);
    matched = true;
  }
  return matched ? sum : NaN;
}
