// The report's two plots, drawn on the Canvas: handoff latency CDFs (log time
// axis) and API-server requests per second against the number of waiters.
import { Canvas, type Rgb } from "./raster.js";

export interface Series {
  readonly name: string;
  readonly color: Rgb;
}

const INK: Rgb = [30, 30, 30];
const GRID: Rgb = [225, 225, 225];
const MINOR: Rgb = [242, 242, 242];
const WIDTH = 960;
const HEIGHT = 580;
const M = { left: 96, right: 30, top: 56, bottom: 72 };

interface Frame {
  readonly canvas: Canvas;
  readonly x0: number;
  readonly x1: number;
  readonly y0: number;
  readonly y1: number;
}

const LEGEND_ROW = 22;

/** The plot area, with room for a legend of `legendRows` rows under the x axis label. */
function frame(title: string, xLabel: string, yLabel: string, legendRows: number): Frame {
  const canvas = new Canvas(WIDTH, HEIGHT + legendRows * LEGEND_ROW + 10);
  canvas.text(title, WIDTH / 2, 18, INK, { align: "center" });
  const f = { canvas, x0: M.left, x1: WIDTH - M.right, y0: HEIGHT - M.bottom, y1: M.top };
  canvas.text(xLabel, (f.x0 + f.x1) / 2, HEIGHT - 30, INK, { align: "center" });
  canvas.text(yLabel, 16, (f.y0 + f.y1) / 2, INK, { align: "center", vertical: true });
  return f;
}

function box(f: Frame): void {
  f.canvas.line(f.x0, f.y0, f.x1, f.y0, INK, 1);
  f.canvas.line(f.x0, f.y1, f.x1, f.y1, INK, 1);
  f.canvas.line(f.x0, f.y0, f.x0, f.y1, INK, 1);
  f.canvas.line(f.x1, f.y0, f.x1, f.y1, INK, 1);
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
      if (axis === "x") f.canvas.line(p, f.y0, p, f.y1, MINOR, 1);
      else f.canvas.line(f.x0, p, f.x1, p, MINOR, 1);
    }
    const p = scale(10 ** d);
    if (axis === "x") {
      f.canvas.line(p, f.y0, p, f.y1, GRID, 1);
      f.canvas.line(p, f.y0, p, f.y0 + 6, INK, 1);
      f.canvas.text(label(10 ** d), p, f.y0 + 12, INK, { align: "center" });
    } else {
      f.canvas.line(f.x0, p, f.x1, p, GRID, 1);
      f.canvas.line(f.x0 - 6, p, f.x0, p, INK, 1);
      f.canvas.text(label(10 ** d), f.x0 - 10, p - 7, INK, { align: "right" });
    }
  }
}

/** The legend, under the x axis label. */
function legend(f: Frame, entries: ReadonlyArray<{ name: string; color: Rgb }>): void {
  entries.forEach((e, i) => {
    const cy = HEIGHT + i * LEGEND_ROW;
    f.canvas.line(f.x0 + 10, cy, f.x0 + 40, cy, e.color, 3);
    f.canvas.text(e.name, f.x0 + 50, cy - 7, INK);
  });
}

export function formatMs(ms: number): string {
  if (ms >= 1000) return `${+(ms / 1000).toPrecision(3)} s`;
  if (ms >= 1) return `${+ms.toPrecision(3)} ms`;
  return `${+(ms * 1000).toPrecision(3)} us`;
}

/** Empirical CDFs of latency samples (ms) on a log time axis. */
export function cdfPlot(title: string, series: ReadonlyArray<Series & { samples: readonly number[] }>): Buffer {
  const f = frame(title, "handoff latency (log scale)", "fraction of handoffs", series.length);
  const [lo, hi] = decades(series.flatMap((s) => s.samples));
  const x = logScale(lo, hi, f.x0, f.x1);
  const y = (q: number) => f.y0 + q * (f.y1 - f.y0);
  for (let q = 0; q <= 1.0001; q += 0.25) {
    f.canvas.line(f.x0, y(q), f.x1, y(q), GRID, 1);
    f.canvas.text(`${Math.round(q * 100)}%`, f.x0 - 10, y(q) - 7, INK, { align: "right" });
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
    f.canvas.polyline(points, s.color, 2);
  }
  box(f);
  legend(
    f,
    series.map((s) => {
      const sorted = [...s.samples].sort((a, b) => a - b);
      const median = sorted[Math.max(0, Math.ceil(sorted.length / 2) - 1)];
      return { name: `${s.name} (median ${median === undefined ? "n/a" : formatMs(median)}, n=${sorted.length})`, color: s.color };
    }),
  );
  return f.canvas.toPng();
}

/** Lines through (x, y) points with both axes logarithmic; each point labelled with its value. */
export function logLogPlot(
  title: string,
  xLabel: string,
  yLabel: string,
  series: ReadonlyArray<Series & { points: ReadonlyArray<readonly [number, number]> }>,
  formatY: (v: number) => string,
): Buffer {
  const f = frame(title, xLabel, yLabel, series.length);
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
    const pts = s.points.map(([px, py]) => [x(px), y(py)] as [number, number]);
    f.canvas.polyline(pts, s.color, 2);
    s.points.forEach(([px, py], i) => {
      f.canvas.disc(pts[i]![0], pts[i]![1], 5, s.color);
      const label = formatY(py);
      const right = pts[i]![0] + 10 + Canvas.textWidth(label) < f.x1;
      f.canvas.text(label, pts[i]![0] + (right ? 10 : -10), pts[i]![1] - 22, s.color, { align: right ? "left" : "right" });
      void px;
    });
  }
  box(f);
  legend(f, series);
  return f.canvas.toPng();
}
