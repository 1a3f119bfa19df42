// The report's plots as SVG documents: handoff latency CDFs (log time axis)
// of the graceful handoff and of the semaphore's permits, API-server requests
// per second against the number of waiters, and the daemons' memory over the
// soak.
// SVG is text, so the plots need no rasterizer or font of our own: the
// viewer (a browser, GitHub, an editor) draws the lines and the type.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { handoffsTimed } from "../lib/holds.js";
import type { Results } from "../lib/results.js";

export interface Series {
  readonly name: string;
  /** A CSS color. */
  readonly color: string;
}

const INK = "#1e1e1e";
const GRID = "#e1e1e1";
const MINOR = "#f2f2f2";
const WIDTH = 960;
const HEIGHT = 580;
const M = { left: 96, right: 30, top: 56, bottom: 72 };
const LEGEND_ROW = 22;
const FONT = 'font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="14"';

/** A plot under construction: SVG elements in drawing order, and the plot area. */
class Frame {
  readonly x0 = M.left;
  readonly x1 = WIDTH - M.right;
  readonly y0 = HEIGHT - M.bottom;
  readonly y1 = M.top;
  private readonly elements: string[] = [];

  /** The plot area, with room for a legend of `legendRows` rows under the x axis label. */
  constructor(
    title: string,
    xLabel: string,
    yLabel: string,
    private readonly legendRows: number,
  ) {
    this.text(title, WIDTH / 2, 24, INK, "middle", 'font-weight="bold"');
    this.text(xLabel, (this.x0 + this.x1) / 2, HEIGHT - 24, INK, "middle");
    const cy = (this.y0 + this.y1) / 2;
    this.text(yLabel, 24, cy, INK, "middle", `transform="rotate(-90 24 ${cy})"`);
  }

  line(x1: number, y1: number, x2: number, y2: number, color: string, width: number): void {
    this.elements.push(`<line x1="${n(x1)}" y1="${n(y1)}" x2="${n(x2)}" y2="${n(y2)}" stroke="${color}" stroke-width="${width}"/>`);
  }

  polyline(points: ReadonlyArray<readonly [number, number]>, color: string, width: number): void {
    const coordinates = points.map(([x, y]) => `${n(x)},${n(y)}`).join(" ");
    this.elements.push(`<polyline points="${coordinates}" fill="none" stroke="${color}" stroke-width="${width}" stroke-linejoin="round"/>`);
  }

  disc(x: number, y: number, r: number, color: string): void {
    this.elements.push(`<circle cx="${n(x)}" cy="${n(y)}" r="${r}" fill="${color}"/>`);
  }

  text(content: string, x: number, y: number, color: string, anchor: "start" | "middle" | "end" = "start", extra = ""): void {
    this.elements.push(
      `<text x="${n(x)}" y="${n(y)}" fill="${color}" text-anchor="${anchor}" dominant-baseline="middle" ${extra}>${escape(content)}</text>`,
    );
  }

  box(): void {
    this.elements.push(
      `<rect x="${this.x0}" y="${this.y1}" width="${this.x1 - this.x0}" height="${this.y0 - this.y1}" fill="none" stroke="${INK}"/>`,
    );
  }

  legend(entries: ReadonlyArray<{ name: string; color: string }>): void {
    entries.forEach((e, i) => {
      const cy = HEIGHT + i * LEGEND_ROW;
      this.line(this.x0 + 10, cy, this.x0 + 40, cy, e.color, 3);
      this.text(e.name, this.x0 + 50, cy, INK);
    });
  }

  svg(): string {
    const height = HEIGHT + this.legendRows * LEGEND_ROW + 10;
    return [
      `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" ${FONT}>`,
      `<rect width="100%" height="100%" fill="#ffffff"/>`,
      ...this.elements,
      "</svg>",
      "",
    ].join("\n");
  }
}

/** Coordinates to a tenth of a pixel: enough for the eye, and stable text from run to run. */
function n(v: number): string {
  return String(Math.round(v * 10) / 10);
}

function escape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** A log10 scale from 10^lo to 10^hi onto [p0, p1]. */
function logScale(lo: number, hi: number, p0: number, p1: number): (v: number) => number {
  return (v) => p0 + ((Math.log10(Math.max(v, 10 ** lo)) - lo) / (hi - lo)) * (p1 - p0);
}

function decades(values: readonly number[]): [number, number] {
  const positive = values.filter((v) => v > 0 && Number.isFinite(v));
  if (positive.length === 0) return [0, 1];
  const lo = Math.floor(Math.log10(Math.min(...positive)));
  const hi = Math.ceil(Math.log10(Math.max(...positive)));
  return [lo, hi === lo ? lo + 1 : hi];
}

function logGrid(f: Frame, axis: "x" | "y", lo: number, hi: number, label: (v: number) => string): void {
  const scale = axis === "x" ? logScale(lo, hi, f.x0, f.x1) : logScale(lo, hi, f.y0, f.y1);
  for (let d = lo; d <= hi; d++) {
    for (let m = 2; m <= 9 && d < hi; m++) {
      const p = scale(m * 10 ** d);
      if (axis === "x") f.line(p, f.y0, p, f.y1, MINOR, 1);
      else f.line(f.x0, p, f.x1, p, MINOR, 1);
    }
    const p = scale(10 ** d);
    if (axis === "x") {
      f.line(p, f.y0, p, f.y1, GRID, 1);
      f.line(p, f.y0, p, f.y0 + 6, INK, 1);
      f.text(label(10 ** d), p, f.y0 + 18, INK, "middle");
    } else {
      f.line(f.x0, p, f.x1, p, GRID, 1);
      f.line(f.x0 - 6, p, f.x0, p, INK, 1);
      f.text(label(10 ** d), f.x0 - 10, p, INK, "end");
    }
  }
}

export function formatMs(ms: number): string {
  if (ms >= 1000) return `${+(ms / 1000).toPrecision(3)} s`;
  if (ms >= 1) return `${+ms.toPrecision(3)} ms`;
  return `${+(ms * 1000).toPrecision(3)} us`;
}

export interface CdfSeries extends Series {
  readonly samples: readonly number[];
  /** How many samples `samples` stands for when it is a sketch of them (stats.ts cdfSketch); the legend shows it. */
  readonly n?: number | undefined;
}

/** Empirical CDFs of latency samples (ms) on a log time axis, as an SVG document. */
export function cdfPlot(title: string, series: readonly CdfSeries[]): string {
  const f = new Frame(title, "handoff latency (log scale)", "fraction of handoffs", series.length);
  const [lo, hi] = decades(series.flatMap((s) => s.samples));
  const x = logScale(lo, hi, f.x0, f.x1);
  const y = (q: number) => f.y0 + q * (f.y1 - f.y0);
  for (let q = 0; q <= 1.0001; q += 0.25) {
    f.line(f.x0, y(q), f.x1, y(q), GRID, 1);
    f.text(`${Math.round(q * 100)}%`, f.x0 - 10, y(q), INK, "end");
  }
  logGrid(f, "x", lo, hi, formatMs);
  for (const s of series) {
    const sorted = [...s.samples].sort((a, b) => a - b);
    const points: Array<[number, number]> = [];
    sorted.forEach((v, i) => {
      points.push([x(v), y(i / sorted.length)]);
      points.push([x(v), y((i + 1) / sorted.length)]);
    });
    if (sorted.length > 0) points.push([f.x1, y(1)]);
    f.polyline(points, s.color, 2);
  }
  f.box();
  f.legend(
    series.map((s) => {
      const sorted = [...s.samples].sort((a, b) => a - b);
      const median = sorted[Math.max(0, Math.ceil(sorted.length / 2) - 1)];
      return { name: `${s.name} (median ${median === undefined ? "n/a" : formatMs(median)}, n=${s.n ?? sorted.length})`, color: s.color };
    }),
  );
  return f.svg();
}

/** Lines through (x, y) points with both axes logarithmic, each point labelled with its value, as an SVG document. */
export function logLogPlot(
  title: string,
  xLabel: string,
  yLabel: string,
  series: ReadonlyArray<Series & { points: ReadonlyArray<readonly [number, number]> }>,
  formatY: (v: number) => string,
): string {
  const f = new Frame(title, xLabel, yLabel, series.length);
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1]));
  // Half a decade of room around the points, so none sits on the frame.
  const [xlo, xhi] = decades([...xs.map((v) => v / 3), ...xs.map((v) => v * 3)]);
  const [ylo, yhi] = decades([...ys.map((v) => v / 3), ...ys.map((v) => v * 3)]);
  const x = logScale(xlo, xhi, f.x0, f.x1);
  const y = logScale(ylo, yhi, f.y0, f.y1);
  logGrid(f, "x", xlo, xhi, (v) => String(+v.toPrecision(3)));
  logGrid(f, "y", ylo, yhi, (v) => String(+v.toPrecision(3)));
  for (const s of series) {
    const pts = s.points.map(([px, py]) => [x(px), y(py)] as const);
    f.polyline(pts, s.color, 2);
    pts.forEach(([px, py], i) => {
      f.disc(px, py, 5, s.color);
      // Labels go right of their point, or left of it near the right edge (about 8 px per character at 14 px).
      const label = formatY(s.points[i]![1]);
      const right = px + 10 + label.length * 8 < f.x1;
      f.text(label, px + (right ? 10 : -10), py - 16, s.color, right ? "start" : "end");
    });
  }
  f.box();
  f.legend(series);
  return f.svg();
}

/** About `count` round values from at or below `lo` to at or above `hi`, evenly spaced. */
function linearTicks(lo: number, hi: number, count = 6): number[] {
  const span = hi - lo > 0 ? hi - lo : Math.abs(hi) || 1;
  const magnitude = 10 ** Math.floor(Math.log10(span / count));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => span / s <= count) ?? 10 * magnitude;
  const ticks: number[] = [];
  for (let v = Math.floor(lo / step) * step; v < hi + step * 0.999 && ticks.length < 4 * count; v += step) ticks.push(+v.toPrecision(12));
  return ticks.length >= 2 ? ticks : [lo, lo + step];
}

/** Lines through (x, y) points on linear axes, the y axis from zero, as an SVG document. */
export function linePlot(
  title: string,
  xLabel: string,
  yLabel: string,
  series: ReadonlyArray<Series & { points: ReadonlyArray<readonly [number, number]> }>,
): string {
  const f = new Frame(title, xLabel, yLabel, series.length);
  const xs = series.flatMap((s) => s.points.map((p) => p[0])).filter(Number.isFinite);
  const ys = series.flatMap((s) => s.points.map((p) => p[1])).filter(Number.isFinite);
  const xTicks = linearTicks(Math.min(...xs, 0), Math.max(...xs, 0));
  const yTicks = linearTicks(0, Math.max(...ys, 0) * 1.1);
  const [xlo, xhi] = [xTicks[0]!, xTicks.at(-1)!];
  const [ylo, yhi] = [yTicks[0]!, yTicks.at(-1)!];
  const x = (v: number) => f.x0 + ((v - xlo) / (xhi - xlo)) * (f.x1 - f.x0);
  const y = (v: number) => f.y0 + ((v - ylo) / (yhi - ylo)) * (f.y1 - f.y0);
  for (const t of xTicks) {
    f.line(x(t), f.y0, x(t), f.y1, GRID, 1);
    f.line(x(t), f.y0, x(t), f.y0 + 6, INK, 1);
    f.text(String(t), x(t), f.y0 + 18, INK, "middle");
  }
  for (const t of yTicks) {
    f.line(f.x0, y(t), f.x1, y(t), GRID, 1);
    f.line(f.x0 - 6, y(t), f.x0, y(t), INK, 1);
    f.text(String(t), f.x0 - 10, y(t), INK, "end");
  }
  for (const s of series) {
    const points = s.points.filter(([px, py]) => Number.isFinite(px) && Number.isFinite(py)).map(([px, py]) => [x(px), y(py)] as const);
    f.polyline(points, s.color, 2);
  }
  f.box();
  f.legend(series);
  return f.svg();
}

/** File names of the plots written next to the report, for its image links. */
export interface Plots {
  handoffCdf?: string;
  semaphoreHandoffCdf?: string;
  waiting?: string;
  soakMemory?: string;
}

const COLORS = {
  ours: "#1f77b4",
  oursElection: "#72aade",
  clientGo: "#e66e00",
  clientGo500: "#fab45a",
  etcd: "#2ca02c",
  curator: "#9467bd",
} as const;

/** Draws the plots of a run into `dir`; returns their names for the report. */
export function writePlots(results: Results, dir: string): Plots {
  const plots: Plots = {};
  const handoffSeries = [
    { name: "ours (lock)", color: COLORS.ours, samples: results.handoff.ours?.samples },
    { name: "ours (election)", color: COLORS.oursElection, samples: results.handoff["ours-election"]?.samples },
    { name: "client-go, RetryPeriod 2 s", color: COLORS.clientGo, samples: results.handoff["client-go"]?.samples },
    { name: "client-go, RetryPeriod 500 ms", color: COLORS.clientGo500, samples: results.handoff["client-go-500ms"]?.samples },
    { name: "etcd Election", color: COLORS.etcd, samples: results.handoff.etcd?.samples },
    { name: "Curator LeaderLatch", color: COLORS.curator, samples: results.handoff.curator?.samples },
  ].filter((s): s is typeof s & { samples: number[] } => (s.samples?.length ?? 0) > 0);
  if (handoffSeries.length > 0) {
    plots.handoffCdf = "handoff-cdf.svg";
    writeFileSync(join(dir, plots.handoffCdf), cdfPlot("Graceful handoff: holder lets go → next holder told, CDF", handoffSeries));
  }
  // The semaphore's handoffs between the processes, for the runs whose handoffs the report times (holds.ts handoffsTimed).
  const semaphoreSeries = (results.semaphore ?? [])
    .filter((row) => handoffsTimed(row.holdMs ?? 0, row.waitedShare) && (row.crossHandoffCdf?.length ?? 0) > 0)
    .sort((a, b) => (a.system === b.system ? 0 : a.system === "ours" ? -1 : 1) || (a.holdMs ?? 0) - (b.holdMs ?? 0))
    .map((row) => ({
      name: `${row.system === "ours" ? "ours" : "Curator InterProcessSemaphoreV2"}, hold ${row.holdMs ?? 0} ms`,
      color: row.system === "ours" ? ((row.holdMs ?? 0) > 0 ? COLORS.ours : COLORS.oursElection) : COLORS.curator,
      samples: row.crossHandoffCdf!,
      n: row.crossHandoff?.n,
    }));
  if (semaphoreSeries.length > 0) {
    plots.semaphoreHandoffCdf = "semaphore-handoff-cdf.svg";
    writeFileSync(
      join(dir, plots.semaphoreHandoffCdf),
      cdfPlot(`Semaphore (N = ${results.semaphore![0]!.permits}): release in one process → acquired in the other, CDF`, semaphoreSeries),
    );
  }
  const waitingSeries = (["ours", "client-go"] as const)
    .map((system) => ({
      name: system === "ours" ? "ours (watch, no polling)" : "client-go (RetryPeriod 2 s)",
      color: system === "ours" ? COLORS.ours : COLORS.clientGo,
      points: results.waiting
        .filter((w) => w.system === system && w.perSecond > 0)
        .sort((a, b) => a.waiters - b.waiters)
        .map((w) => [w.waiters, w.perSecond] as const),
    }))
    .filter((s) => s.points.length > 0);
  if (waitingSeries.length > 0) {
    plots.waiting = "waiting-requests.svg";
    writeFileSync(
      join(dir, plots.waiting),
      logLogPlot(
        "Lease requests the API server served: 1 holder + W waiters",
        "waiters W (log scale)",
        "requests per second (log scale)",
        waitingSeries,
        (v) => `${v.toFixed(v < 1 ? 2 : 1)}/s`,
      ),
    );
  }
  const soak = results.soak;
  if (soak && soak.daemons.some((d) => d.samples.length >= 2)) {
    // Minutes on the x axis for a long soak, seconds for a short one.
    const inMinutes = soak.durationS >= 300;
    const at = (tS: number) => (inMinutes ? tS / 60 : tS);
    const palette = [
      [COLORS.ours, COLORS.etcd],
      [COLORS.oursElection, "#98df8a"],
    ];
    const soakSeries = soak.daemons.flatMap((d, i) => {
      const [rssColor, heapColor] = palette[i % palette.length]!;
      return [
        { name: `${d.identity}: RSS`, color: rssColor!, points: d.samples.map((s) => [at(s.tS), s.rssBytes / 2 ** 20] as const) },
        {
          name: `${d.identity}: V8 heap used`,
          color: heapColor!,
          points: d.samples.map((s) => [at(s.tS), s.heapUsedBytes / 2 ** 20] as const),
        },
      ];
    });
    plots.soakMemory = "soak-memory.svg";
    writeFileSync(
      join(dir, plots.soakMemory),
      linePlot("Soak: daemon memory under steady load", inMinutes ? "minutes of load" : "seconds of load", "MiB", soakSeries),
    );
  }
  return plots;
}
