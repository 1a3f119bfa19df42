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

/**
 * What stands in the way of the goals a run may not meet, measured apart from
 * the run (a CPU profile of the daemons, their memory from /proc): the
 * figures, when and how they were taken (bench/limit-in-the-way.json).
 */
const IN_THE_WAY = JSON.parse(readFileSync(new URL("../../../bench/limit-in-the-way.json", import.meta.url), "utf8")) as {
  profile: {
    taken: string;
    command: string;
    busyMs: number;
    startupMs: number;
    rounds: number;
    /** Share of the busy time after start-up, by what the stack was doing, largest first. */
    shares: Array<{ what: string; percent: number }>;
  };
  memory: {
    taken: string;
    command: string;
    daemon: { rssMiB: number; anonMiB: number; fileMiB: number; heapUsedMiB: number };
    bareNode: { rssMiB: number; anonMiB: number; fileMiB: number };
    nodeBinaryMiB: number;
  };
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
  const unmet = (name: string) => rows.some((row) => row[0]!.startsWith(name) && row[4] === verdict(false));
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
    ...renderInTheWay(unmet("graceful lock handoff"), unmet("daemon CPU per hot-lock handoff"), unmet("idle RSS")),
  ];
}

/** For the goals this run did not meet, what stands in the way, as measured (IN_THE_WAY). */
function renderInTheWay(handoff: boolean, cpu: boolean, idleRss: boolean): string[] {
  if (!handoff && !cpu && !idleRss) return [];
  const out = ["What stands in the way of the goals not met, measured apart from this run:", ""];
  if (handoff) {
    const p = IN_THE_WAY.profile;
    out.push(
      `- **The handoff against its floor.** The floor is two bare HTTP/1.1 clients; a handoff through our daemons adds ` +
        "two gRPC messages (the holder's Release in, the next holder's Acquired out) and the daemons' own step between the " +
        "watch event and the write (the steps table under Graceful handoff shows each step against the floor's). A CPU profile of both daemons over the " +
        `lock-handoff phase (${p.taken}, \`${p.command}\`; ${num(p.busyMs - p.startupMs, 0)} ms busy after start-up ` +
        `for ${p.rounds} handoffs, ${num((p.busyMs - p.startupMs) / p.rounds / 2)} ms per handoff per daemon) splits it: ` +
        p.shares.map((s) => `${s.what} ${num(s.percent, 1)} %`).join(", ") +
        ". The engine's own work is the small part; the time goes to Node's HTTP/1.1 client, which the floor pays too, and to " +
        "gRPC, which it does not.",
    );
  }
  if (cpu) {
    out.push(
      "- **CPU per hot-lock handoff.** The image's node flags, which this run's daemons ran with, trade CPU for memory: " +
        "measured apart on a quiet machine (bench/README.md), 1.00 ms per handoff without them and 1.06 ms with both, " +
        "for 162.0 against 117.4 MiB holding 1,000 locks for 1,000 observers. The young generation of 1 MiB " +
        "(--max-semi-space-size=1) collects more often; the profile above puts garbage collection at " +
        `${num(IN_THE_WAY.profile.shares.find((s) => s.what === "garbage collection")?.percent, 1)} % of the daemons' busy time.`,
    );
  }
  if (idleRss) {
    const m = IN_THE_WAY.memory;
    out.push(
      `- **Idle RSS.** From /proc of our daemons idle on the Kubernetes backend with the image's flags (${m.taken}; ` +
        `\`${m.command}\`): ${num(m.daemon.rssMiB, 1)} MiB resident = ${num(m.daemon.anonMiB, 1)} MiB anonymous ` +
        `(the JS heap holds ${num(m.daemon.heapUsedMiB, 1)} MiB of it) + ${num(m.daemon.fileMiB, 1)} MiB mapped from files, ` +
        `${num(m.nodeBinaryMiB, 1)} MiB of that the node binary's own code and read-only data (V8, OpenSSL, ICU, the ` +
        "built-in modules' sources), touched as the daemon loads what it uses. A node process that runs only that probe, " +
        `with the same flags, is ${num(m.bareNode.rssMiB, 1)} MiB (${num(m.bareNode.anonMiB, 1)} anonymous + ` +
        `${num(m.bareNode.fileMiB, 1)} from files): under 64 MiB, the daemon could add at most ` +
        `${num(64 - m.bareNode.rssMiB, 1)} MiB to it, and it adds ${num(m.daemon.rssMiB - m.bareNode.rssMiB, 1)}, ` +
        `${num(m.daemon.anonMiB - m.bareNode.anonMiB, 1)} of it its own memory (code and objects of grpc-js, protobuf, ` +
        "client-node's configuration, pino). The pages mapped from the binary are the file's: containers that run the same " +
        "image share them.",
    );
  }
  out.push("");
  return out;
}
