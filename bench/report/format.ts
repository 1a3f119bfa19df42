// The small formatters every section of the report shares.
import { LEASE_VERBS, type VerbCounts } from "../lib/context.js";
import { formatMs } from "./plots.js";

export const NA = "n/a";

/** A duration in ms as the plots write it; n/a when missing or not finite. */
export function ms(v: number | undefined): string {
  return v === undefined || !Number.isFinite(v) ? NA : formatMs(v);
}

/** A signed duration: "+1.2 ms", "-300 us". */
export function signedMs(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return NA;
  return v < 0 ? `-${formatMs(-v)}` : `+${formatMs(v)}`;
}

export const MIB = 1024 * 1024;

export function mib(bytes: number | undefined): string {
  return bytes === undefined || !Number.isFinite(bytes) ? NA : `${(bytes / MIB).toFixed(1)} MiB`;
}

/** A goal's verdict: met, not met, or n/a when it was not measured. */
export function verdict(met: boolean | undefined): string {
  return met === undefined ? NA : met ? "met" : "not met";
}

export function num(v: number | undefined, digits = 2): string {
  return v === undefined || !Number.isFinite(v) ? NA : v.toFixed(digits);
}

/** A Markdown table, the first column left-aligned and the others right-aligned. */
export function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const line = (cells: readonly string[]) => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map((_, i) => (i === 0 ? "---" : "---:"))), ...rows.map(line)].join("\n");
}

/** Request counts by verb, the verbs with none left out: "PUT 12, GET 3". */
export function verbs(counts: VerbCounts): string {
  const parts = LEASE_VERBS.filter((v) => counts[v] !== 0).map((v) => `${v} ${counts[v]}`);
  return parts.length === 0 ? "none" : parts.join(", ");
}

/** "a + b", each to one decimal (ZooKeeper reads + writes, packets received + sent); n/a when `a` is missing. */
export function plus(a: number | undefined, b: number | undefined): string {
  return a === undefined ? NA : `${num(a, 1)} + ${num(b, 1)}`;
}

/** Fills one table row: a cell per column, from the column's row. */
export type Cells<R> = (show: (row: R) => string) => string[];

interface LoopRow {
  sessions: number;
  processes: number;
  durationS: number;
}

/** The rows a loop section's table opens with: who ran and for how long. */
export function loopRows<R extends LoopRow>(cell: Cells<R>): string[][] {
  return [
    ["lockers (processes)", ...cell((row) => `${row.sessions} (${row.processes})`)],
    ["duration", ...cell((row) => `${row.durationS.toFixed(1)} s`)],
  ];
}

interface CpuRow {
  daemonCpuPercent?: number;
  serverCpuPercent?: number;
}

/** The rows a loop section's table closes with: what the servers spent. */
export function cpuRows<R extends CpuRow>(cell: Cells<R>): string[][] {
  return [
    ["daemon CPU (sum of both, % of one core)", ...cell((row) => num(row.daemonCpuPercent, 0))],
    ["ZooKeeper server CPU (% of one core)", ...cell((row) => num(row.serverCpuPercent, 0))],
  ];
}
