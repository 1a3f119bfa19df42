// The handoff against its floor, daemon CPU per operation, and the goals of
// the CPU work with the figures from before it (bench/limit-before.json).
import { readFileSync } from "node:fs";
import type { HandoffRow, Results } from "../lib/results.js";
import { type Summary, summarize } from "../lib/stats.js";
import { MIB, NA, mib, ms, num, signedMs, table, verdict } from "./format.js";

/** The figures before the CPU work, from the run its goals were set against. */
const BEFORE = JSON.parse(readFileSync(new URL("../../../bench/limit-before.json", import.meta.url), "utf8")) as {
  source: string;
  lockHandoffMedianMs: number;
  lockHandoffP99Ms: number;
  releaseVisibleMs: number;
  takeoverVisibleMs: number;
  toClientMs: number;
  hotOursPerSecond: number;
  hotEtcdPerSecond: number;
  hotDaemonCpuPercent: number;
  idleRssMiB: number;
  startToServingMs: number;
  scaleRssMaxMiB: number;
};

function summary(values: readonly number[] | undefined): Summary | undefined {
  return values && values.length > 0 ? summarize(values) : undefined;
}

/** "×1.42": ours as a multiple of the floor. */
function times(ours: number | undefined, floor: number | undefined): string {
  if (ours === undefined || floor === undefined || !Number.isFinite(ours) || !Number.isFinite(floor) || floor <= 0) return NA;
  return `×${(ours / floor).toFixed(2)}`;
}

/** Ours' graceful lock handoff in steps, beside the floor's same steps (bench/phases/floor.ts) when it ran. */
export function renderHandoffSteps(r: Results): string[] {
  const ours = r.handoff.ours;
  const floor = r.floor;
  if (!ours?.steps || ours.steps.releaseVisibleMs.length === 0) return [];
  const step = (row: HandoffRow | undefined, key: "releaseVisibleMs" | "takeoverVisibleMs" | "toClientMs") => summary(row?.steps?.[key]);
  const line = (what: string, o: Summary | undefined, f: Summary | undefined, fmt: (v: number | undefined) => string) => [
    what,
    fmt(o?.median),
    fmt(o?.p99),
    fmt(f?.median),
    fmt(f?.p99),
    times(o?.median, f?.median),
  ];
  return [
    "Where ours spends a lock handoff, beside the floor of a handoff on this substrate: two minimal clients of the API " +
      "server, each with its own connection and watch, no daemon and no gRPC; one writes the release, the other sees it " +
      "on its watch and writes the take-over, and the floor's clock stops at that write's reply. A separate watch on the " +
      "Lease, opened by the harness, timestamps each write as the API server streams it, for both.",
    "",
    table(
      ["step", "ours, median", "ours, p99", "floor, median", "floor, p99", "ours ÷ floor (median)"],
      [
        line("release starts → release write seen on a watch", step(ours, "releaseVisibleMs"), step(floor, "releaseVisibleMs"), ms),
        line("release seen → take-over write seen", step(ours, "takeoverVisibleMs"), step(floor, "takeoverVisibleMs"), ms),
        line(
          "take-over seen → the next holder knows (ours: Acquired at its client; floor: the write's reply)",
          step(ours, "toClientMs"),
          step(floor, "toClientMs"),
          signedMs,
        ),
        line("the whole handoff", summary(ours.samples), summary(floor?.samples), ms),
      ],
    ),
    "",
  ];
}

/** The goals of the CPU work: the figures before it, this run's, and a verdict each. */
export function renderLimitGoals(r: Results): string[] {
  const lock = summary(r.handoff.ours?.samples);
  const floor = summary(r.floor?.samples);
  const hot = r.hot.ours;
  const etcd = r.hot.etcd;
  const idle = r.idle.ours;
  const idleRss = summary(idle?.rssBytes)?.median;
  const spawn = summary(idle?.startToServingMs)?.median;
  const beforeCpu = (10 * BEFORE.hotDaemonCpuPercent) / BEFORE.hotOursPerSecond / 2;
  const hotRatio = hot && etcd ? hot.perSecond / etcd.perSecond : undefined;
  const nonFair = r.hot.oursNonFair;
  const nonFairRatio = nonFair && etcd ? nonFair.perSecond / etcd.perSecond : undefined;
  const rows: string[][] = [
    [
      "graceful lock handoff, median ÷ the floor's",
      `${ms(BEFORE.lockHandoffMedianMs)} (floor not measured)`,
      lock && floor ? `${ms(lock.median)} ÷ ${ms(floor.median)} = ${times(lock.median, floor.median)}` : NA,
      "<= ×1.3",
      verdict(lock && floor ? lock.median <= 1.3 * floor.median : undefined),
    ],
    [
      "graceful lock handoff, p99 ÷ the floor's p99",
      `${ms(BEFORE.lockHandoffP99Ms)} (floor not measured)`,
      lock && floor ? `${ms(lock.p99)} ÷ ${ms(floor.p99)} = ${times(lock.p99, floor.p99)}` : NA,
      "<= ×2",
      verdict(lock && floor ? lock.p99 <= 2 * floor.p99 : undefined),
    ],
    [
      "daemon CPU per hot-lock handoff, per daemon",
      `${num(beforeCpu, 1)} ms (${BEFORE.hotDaemonCpuPercent} % of a core at ${num(BEFORE.hotOursPerSecond, 1)}/s, two daemons)`,
      hot?.daemonCpuMsPerAcquisition === undefined ? NA : `${num(hot.daemonCpuMsPerAcquisition)} ms`,
      "<= 1.0 ms",
      verdict(hot?.daemonCpuMsPerAcquisition === undefined ? undefined : hot.daemonCpuMsPerAcquisition <= 1.0),
    ],
    [
      "hot lock (fair), handoffs/s: ours ÷ etcd Mutex",
      `${num(BEFORE.hotOursPerSecond, 1)} ÷ ${num(BEFORE.hotEtcdPerSecond, 1)} = ×${num(BEFORE.hotOursPerSecond / BEFORE.hotEtcdPerSecond)}`,
      hot && etcd ? `${num(hot.perSecond, 1)} ÷ ${num(etcd.perSecond, 1)} = ×${num(hotRatio)}` : NA,
      ">= ×0.7",
      verdict(hotRatio === undefined ? undefined : hotRatio >= 0.7),
    ],
    [
      "hot lock (non-fair), handoffs/s: ours ÷ etcd Mutex",
      "no such mode",
      nonFair && etcd ? `${num(nonFair.perSecond, 1)} ÷ ${num(etcd.perSecond, 1)} = ×${num(nonFairRatio)}` : NA,
      ">= ×1.2",
      verdict(nonFairRatio === undefined ? undefined : nonFairRatio >= 1.2),
    ],
    [
      `RSS holding 1,000 locks for 1,000 observers, max${r.scale && r.scale.locks < 1000 ? ` (this run: ${r.scale.locks} + ${r.scale.observers})` : ""}`,
      `${num(BEFORE.scaleRssMaxMiB, 1)} MiB`,
      mib(r.scale?.rssMaxBytes),
      "<= 128 MiB",
      verdict(r.scale && r.scale.locks >= 1000 ? r.scale.rssMaxBytes <= 128 * MIB : undefined),
    ],
    [
      "idle RSS, median",
      `${num(BEFORE.idleRssMiB, 1)} MiB`,
      mib(idleRss),
      "<= 64 MiB",
      verdict(idleRss === undefined ? undefined : idleRss <= 64 * MIB),
    ],
    [
      "spawn → health SERVING, median",
      ms(BEFORE.startToServingMs),
      ms(spawn),
      "<= 200 ms",
      verdict(spawn === undefined ? undefined : spawn <= 200),
    ],
  ];
  const cpu = r.cpu;
  const cpuRows: string[][] = [
    [
      "per graceful lock handoff (handoff phase, one at a time)",
      r.handoff.ours?.daemonCpuMsPerRound === undefined ? NA : `${num(r.handoff.ours.daemonCpuMsPerRound)} ms`,
    ],
    ["per hot-lock handoff (hot phase)", hot?.daemonCpuMsPerAcquisition === undefined ? NA : `${num(hot.daemonCpuMsPerAcquisition)} ms`],
    [
      cpu
        ? `per renewal (${cpu.renewLocks} locks of a ${cpu.renewLeaseS} s lease, ${cpu.renewals} renewals in ${num(cpu.renewWindowS, 1)} s, less the idle rate)`
        : "per renewal",
      cpu ? `${num(cpu.cpuMsPerRenewal)} ms` : NA,
    ],
    [
      cpu ? `per idle minute (serving, holding nothing; ${num(cpu.idleWindowS, 0)} s measured)` : "per idle minute",
      cpu ? `${num(cpu.idleCpuMsPerMinute, 0)} ms` : NA,
    ],
  ];
  return [
    "## Near the physical limit: before and after",
    "",
    `*Before* is ${BEFORE.source}; *this run* is the run this report comes from, ratios within it. The floor of a handoff ` +
      "is measured in the same run (Graceful handoff, below).",
    "",
    table(["", "before", "this run", "goal", "verdict"], rows),
    "",
    "Daemon CPU per operation, per daemon (utime + stime from /proc):",
    "",
    table(["operation", "CPU"], cpuRows),
    "",
  ];
}
