// The report's Soak section: what the load did, how each daemon's memory,
// descriptors and handles moved under it (slopes after the warm-up), and
// whether everything went back once the load left.
import type { SoakDaemon, SoakRow, SoakSample } from "../lib/results.js";
import { SOAK_MIX, type SoakKind } from "../lib/soak-load.js";
import { type Trend, trend } from "../lib/trend.js";

const NA = "n/a";
const MIB = 2 ** 20;

/** How far the descriptors and handles after the settle period may sit above their start-up values and still count as back. */
const SOAK_RETURN_SLACK = 3;

interface Measure {
  readonly name: string;
  readonly unit: string;
  readonly pick: (s: SoakSample) => number;
  /** Drift too small to call growth whatever the noise. */
  readonly floor: number;
  readonly digits: number;
}

const MEASURES: readonly Measure[] = [
  { name: "RSS", unit: "MiB", pick: (s) => s.rssBytes / MIB, floor: 1, digits: 1 },
  { name: "V8 heap used", unit: "MiB", pick: (s) => s.heapUsedBytes / MIB, floor: 1, digits: 1 },
  { name: "V8 heap total", unit: "MiB", pick: (s) => s.heapTotalBytes / MIB, floor: 1, digits: 1 },
  { name: "external memory", unit: "MiB", pick: (s) => s.externalBytes / MIB, floor: 1, digits: 1 },
  { name: "open file descriptors", unit: "fds", pick: (s) => s.fds, floor: 2, digits: 0 },
  { name: "active handles", unit: "handles", pick: (s) => s.activeHandles, floor: 2, digits: 0 },
];

/** The trend of one measure of one daemon over the soak's samples after the warm-up. */
function soakTrend(row: SoakRow, daemon: SoakDaemon, measure: Measure = MEASURES[0]!): Trend {
  return trend(
    daemon.samples.map((s) => s.tS),
    daemon.samples.map(measure.pick),
    row.warmupS,
    measure.floor,
  );
}

function fixed(v: number, digits: number): string {
  return Number.isFinite(v) ? v.toFixed(digits) : NA;
}

function signed(v: number, digits: number): string {
  if (!Number.isFinite(v)) return NA;
  const text = Math.abs(v).toFixed(digits);
  return Number(text) === 0 ? text : `${v < 0 ? "-" : "+"}${text}`;
}

function minutes(seconds: number): string {
  return seconds >= 120 ? `${(seconds / 60).toFixed(1)} min` : `${seconds.toFixed(0)} s`;
}

/** A Markdown table; `align` has one letter per column, l or r (default: the first left, the rest right). */
function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>, align = ""): string {
  const line = (cells: readonly string[]) => `| ${cells.join(" | ")} |`;
  const rule = header.map((_, i) => ((align[i] ?? (i === 0 ? "l" : "r")) === "l" ? "---" : "---:"));
  return [line(header), line(rule), ...rows.map(line)].join("\n");
}

function gaugesZero(s: SoakSample): boolean {
  return s.locksHeld === 0 && s.electionsLed === 0 && s.waiters === 0;
}

function back(d: SoakDaemon): boolean {
  return (
    gaugesZero(d.settled) &&
    d.settled.fds - d.before.fds <= SOAK_RETURN_SLACK &&
    d.settled.activeHandles - d.before.activeHandles <= SOAK_RETURN_SLACK
  );
}

/** The Soak section as Markdown lines; `plot` is the file name of the memory plot, if drawn. */
export function renderSoak(s: SoakRow | undefined, plot: string | undefined): string[] {
  const out: string[] = [];
  out.push("## Soak: memory, descriptors and handles under steady load");
  out.push("");
  if (!s) return [...out, NA, ""];
  const fitS = s.durationS - s.warmupS;
  out.push(
    `Two daemons (the lean build, Kubernetes backend, \`--metrics-listen\` on loopback) took a steady mix of operations from the ` +
      `harness for ${minutes(s.durationS)}${s.durationS + 1 < s.plannedS ? ` (cut from ${minutes(s.plannedS)} by the run's time budget)` : ""}: ` +
      `${s.opsPerSecondTarget} operations started per second, at most ${s.maxInFlight} at once, each on one of ${s.lockNames} lock ` +
      `and ${s.electionNames} election names, so the Leases stay few; every operation ends what it opened. Every ` +
      `${s.sampleEveryS} s the harness read each daemon's VmRSS and open descriptors from /proc and its heap, handles and gauges from ` +
      `its /metrics. Slopes are least-squares lines through the samples after a warm-up (the first ${minutes(s.warmupS)}), over ` +
      `${minutes(fitS)}; a measure counts as flat when the line's drift over that window is within twice the samples' scatter ` +
      `around it (or under a floor: 1 MiB, 2 descriptors or handles). A short window magnifies any slope: read MiB/h from a full run. ` +
      `After the load stopped, its clients closed and ${s.settleS} s passed, the gauges should read 0 and descriptors and handles ` +
      `be back at their values before the load (within ${SOAK_RETURN_SLACK}).`,
  );
  out.push("");

  const kinds = Object.keys(SOAK_MIX) as SoakKind[];
  const totalOk = kinds.reduce((n, k) => n + (s.ops[k]?.ok ?? 0), 0);
  const totalErrors = kinds.reduce((n, k) => n + (s.ops[k]?.errors ?? 0), 0);
  out.push(
    table(
      ["operation", "what it does", "done", "errors", "other outcomes"],
      [
        ...kinds.map((k) => {
          const o = s.ops[k];
          const other = o ? Object.entries(o.other).map(([name, count]) => `${name}: ${count}`) : [];
          return [k, SOAK_MIX[k].what, String(o?.ok ?? NA), String(o?.errors ?? NA), other.length === 0 ? "" : other.join(", ")];
        }),
        [
          "all",
          `${(totalOk / s.durationS).toFixed(1)} done per second`,
          String(totalOk),
          String(totalErrors),
          `skipped ticks: ${s.skipped}`,
        ],
      ],
      "llrrl",
    ),
  );
  out.push("");
  if (s.errorKinds.length > 0) {
    out.push("Errors, most frequent first (digits shown as N):");
    out.push("");
    for (const [kind, count] of s.errorKinds) out.push(`- ${count} × \`${kind}\``);
    out.push("");
  }

  const trends = s.daemons.map((d) => MEASURES.map((m) => soakTrend(s, d, m)));
  out.push(
    table(
      ["daemon", "measure", "first", "last", "max", "slope per hour (± 2 SE)", `drift over ${minutes(fitS)}`, "scatter (SD)", "flat?"],
      s.daemons.flatMap((d, i) =>
        MEASURES.map((m, j) => {
          const t = trends[i]![j]!;
          const u = m.unit === "MiB" ? " MiB" : "";
          const du = m.digits === 0 ? 1 : m.digits;
          return [
            d.identity,
            m.name,
            `${fixed(t.first, m.digits)}${u}`,
            `${fixed(t.last, m.digits)}${u}`,
            `${fixed(t.max, m.digits)}${u}`,
            `${signed(t.perHour, du)} ± ${fixed(t.perHourPlusMinus, du)} ${m.unit}/h`,
            `${signed(t.drift, du)} ${m.unit}`,
            `${fixed(t.noise, du)} ${m.unit}`,
            t.n < 3 ? NA : t.flat ? "flat" : t.drift < 0 ? "**falls**" : "**grows**",
          ];
        }),
      ),
      "llrrrrrrl",
    ),
  );
  out.push("");
  out.push(
    table(
      [
        "daemon",
        "locks held / elections led / waiters, after settle",
        "descriptors: before → after settle",
        "handles: before → after settle",
        "back?",
      ],
      s.daemons.map((d) => [
        d.identity,
        `${d.settled.locksHeld} / ${d.settled.electionsLed} / ${d.settled.waiters}`,
        `${d.before.fds} → ${d.settled.fds}`,
        `${d.before.activeHandles} → ${d.settled.activeHandles}`,
        back(d) ? "yes" : "**NO**",
      ]),
    ),
  );
  out.push("");
  const perMinute = (counts: Record<string, number> | undefined) => {
    const parts = Object.entries(counts ?? {})
      .filter(([, n]) => n !== 0)
      .map(([key, n]) => `${key} ${n} (${((60 * n) / s.durationS).toFixed(1)}/min)`);
    return parts.length === 0 ? "none" : parts.join(", ");
  };
  out.push("What each daemon asked of the API server and heard on its Lease watch while the load ran (its own counters):");
  out.push("");
  out.push(
    table(
      ["daemon", "API requests by verb", "watch restarts by reason", "watch events by type"],
      s.daemons.map((d) => [d.identity, perMinute(d.apiRequests), perMinute(d.watchRestarts), perMinute(d.watchEvents)]),
      "llll",
    ),
  );
  out.push("");
  out.push(`Daemon warnings logged during the soak: ${s.daemonWarnings}.`);
  for (const [kind, count] of s.warningKinds) out.push(`- ${count} × \`${kind}\``);
  out.push("");

  const verdicts = s.daemons.map((d, i) => {
    const of = (name: string) => trends[i]![MEASURES.findIndex((m) => m.name === name)]!;
    const [rss, heap, fds, handles] = [of("RSS"), of("V8 heap used"), of("open file descriptors"), of("active handles")];
    const flatNames = MEASURES.filter((_, j) => trends[i]![j]!.flat).map((m) => m.name);
    const growing = MEASURES.filter((_, j) => trends[i]![j]!.n >= 3 && !trends[i]![j]!.flat).map((m) => m.name);
    return (
      `${d.identity}: RSS ${fixed(rss.first, 1)} → ${fixed(rss.last, 1)} MiB (max ${fixed(rss.max, 1)}), ` +
      `slope ${signed(rss.perHour, 1)} MiB/h, drift ${signed(rss.drift, 1)} MiB against a scatter of ${fixed(rss.noise, 1)} MiB; ` +
      `heap ${signed(heap.perHour, 1)} MiB/h; descriptors ${signed(fds.perHour, 1)}/h, handles ${signed(handles.perHour, 1)}/h; ` +
      (growing.length === 0 ? `all flat within noise` : `flat: ${flatNames.join(", ") || "none"}; NOT flat: ${growing.join(", ")}`) +
      `; after ${s.settleS} s idle ${back(d) ? "everything was back" : "NOT everything was back"} ` +
      `(gauges ${gaugesZero(d.settled) ? "0" : "not 0"}, descriptors ${d.before.fds} → ${d.settled.fds}).`
    );
  });
  out.push(`**Verdict** (${minutes(s.durationS)} of load, ${totalOk} operations, ${totalErrors} errors):`);
  out.push("");
  for (const v of verdicts) out.push(`- ${v}`);
  out.push("");
  if (plot) out.push(`![Daemon memory during the soak](${plot})`, "");
  return out;
}
