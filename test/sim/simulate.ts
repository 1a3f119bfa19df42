// The simulator's command line: explores many seeds, or replays one.
//
//   npm run simulate -- --seeds 100000            seeds 1..100000
//   npm run simulate -- --seeds 500 --start 9000  seeds 9000..9499
//   npm run simulate -- --seed 4711 --verbose     replay one seed, print its trace
//   --faults freeze,kill --workload campaign,observe   only these kinds (--faults none: no faults)
//   --scale names|daemons|none                    only worlds of this scale
//   --backend kubernetes                          only this backend (memory, kubernetes; default: half each)
//   --overload                                    only runs whose API server cannot keep up (Kubernetes)
//   --stop-at-first [RULE]                        stop at the first failing seed (of RULE)
//   --json FILE                                   write the summary as JSON too
import { writeFileSync } from "node:fs";
import { replayCommand } from "./replay.js";
import { formatEvent } from "./trace.js";
import {
  type Backend,
  FAULT_KINDS,
  type FaultKind,
  SCALE_KINDS,
  type ScaleKind,
  type SimResult,
  ALL_WORKLOAD_KINDS,
  type WorkloadKind,
  simulate,
} from "./world.js";

interface Args {
  start: number;
  seeds: number;
  verbose: boolean;
  faults: Set<FaultKind> | undefined;
  workload: Set<WorkloadKind> | undefined;
  scale: ScaleKind | undefined;
  stopAtFirst: boolean;
  stopRule: string | undefined;
  json: string | undefined;
  backend: Backend | undefined;
  overload: boolean;
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = {
    start: 1,
    seeds: 100,
    verbose: false,
    faults: undefined,
    workload: undefined,
    scale: undefined,
    stopAtFirst: false,
    stopRule: undefined,
    json: undefined,
    backend: undefined,
    overload: false,
  };
  const integer = (flag: string, text: string | undefined): number => {
    const n = Number(text);
    if (text === undefined || !Number.isSafeInteger(n) || n < 0) throw new Error(`${flag} needs a whole number, got ${text ?? "nothing"}`);
    return n;
  };
  const kinds = <T extends string>(flag: string, text: string | undefined, known: readonly T[]): Set<T> => {
    if (text === "none") return new Set<T>();
    const list = (text ?? "").split(",").filter((k) => k !== "");
    const bad = list.filter((k) => !known.includes(k as T));
    if (list.length === 0 || bad.length > 0)
      throw new Error(`${flag} takes a comma-separated list of ${known.join(", ")}; got ${text ?? "nothing"}`);
    return new Set(list as T[]);
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    switch (flag) {
      case "--seed":
        args.start = integer(flag, argv[++i]);
        args.seeds = 1;
        break;
      case "--seeds":
        args.seeds = integer(flag, argv[++i]);
        break;
      case "--start":
        args.start = integer(flag, argv[++i]);
        break;
      case "--verbose":
        args.verbose = true;
        break;
      case "--faults":
        args.faults = kinds(flag, argv[++i], FAULT_KINDS);
        break;
      case "--workload":
        args.workload = kinds(flag, argv[++i], ALL_WORKLOAD_KINDS);
        break;
      case "--scale": {
        const kind = argv[++i];
        if (!SCALE_KINDS.includes(kind as ScaleKind))
          throw new Error(`--scale takes one of ${SCALE_KINDS.join(", ")}; got ${kind ?? "nothing"}`);
        args.scale = kind as ScaleKind;
        break;
      }
      case "--stop-at-first":
        args.stopAtFirst = true;
        if (argv[i + 1] !== undefined && !argv[i + 1]!.startsWith("--")) args.stopRule = argv[++i];
        break;
      case "--backend": {
        const backend = argv[++i];
        if (backend !== "memory" && backend !== "kubernetes")
          throw new Error(`--backend takes memory or kubernetes; got ${backend ?? "nothing"}`);
        args.backend = backend;
        break;
      }
      case "--overload":
        args.overload = true;
        break;
      case "--json":
        args.json = argv[++i];
        if (args.json === undefined) throw new Error("--json needs a file name");
        break;
      default:
        throw new Error(`unknown option ${flag}; see the head of test/sim/simulate.ts`);
    }
  }
  return args;
}

export interface RuleSummary {
  /** Seeds in which the rule fired. */
  seeds: number;
  firstSeed: number;
  /** Seeds run up to and including the first failing one. */
  seedsToFind: number;
  firstMessage: string;
}

async function main(): Promise<void> {
  let args: Args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    console.error((err as Error).message);
    process.exit(2);
  }
  const rules = new Map<string, RuleSummary>();
  const failing: Array<{ seed: number; rules: string[] }> = [];
  const started = performance.now();
  let ran = 0;
  let simulatedMs = 0;
  let faultPhaseTicks = 0;
  let excusedTicks = 0;
  let reads = 0;
  const excusedBy = new Map<string, number>();
  for (let seed = args.start; seed < args.start + args.seeds; seed++) {
    let result: SimResult;
    try {
      result = await simulate({
        seed,
        faults: args.faults,
        workload: args.workload,
        scale: args.scale,
        trace: args.verbose,
        backend: args.backend,
        overload: args.overload,
      });
    } catch (err) {
      result = {
        seed,
        violations: [{ rule: "crash", resource: "-", at: 0, message: (err as Error).stack ?? String(err) }],
        history: [],
        profile: "",
        stats: { clients: 0, holds: 0, storeCalls: 0, simulatedMs: 0, faultPhaseTicks: 0, excusedTicks: 0, reads: 0, excusedBy: {} },
      };
    }
    ran += 1;
    simulatedMs += result.stats.simulatedMs;
    faultPhaseTicks += result.stats.faultPhaseTicks;
    excusedTicks += result.stats.excusedTicks;
    reads += result.stats.reads;
    for (const [why, ticks] of Object.entries(result.stats.excusedBy)) excusedBy.set(why, (excusedBy.get(why) ?? 0) + ticks);
    if (args.verbose) {
      console.log(`seed ${seed}: ${result.profile}`);
      for (const event of result.history) console.log(formatEvent(event));
      console.log(
        `seed ${seed}: ${result.stats.clients} clients, ${result.stats.holds} holds, ${result.stats.storeCalls} store calls, ${
          result.stats.simulatedMs / 1000
        } s simulated`,
      );
    }
    const fired = [...new Set(result.violations.map((v) => v.rule))];
    for (const v of result.violations)
      if (args.verbose || args.seeds === 1) console.log(`VIOLATION ${v.rule} ${v.resource} t=${(v.at / 1000).toFixed(3)} s: ${v.message}`);
    for (const rule of fired) {
      const entry = rules.get(rule);
      if (entry === undefined) {
        const first = result.violations.find((v) => v.rule === rule)!;
        rules.set(rule, { seeds: 1, firstSeed: seed, seedsToFind: ran, firstMessage: `${first.resource}: ${first.message}` });
      } else entry.seeds += 1;
    }
    if (fired.length > 0) {
      failing.push({ seed, rules: fired });
      console.log(`seed ${seed} FAILED (${fired.join(", ")}): replay with ${replayCommand(seed, args)}`);
    }
    if (args.stopAtFirst && (args.stopRule === undefined ? fired.length > 0 : fired.includes(args.stopRule))) break;
  }
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `\n${ran} seeds run (${args.start}..${args.start + ran - 1}), ${failing.length} failed, in ${seconds.toFixed(1)} s: ${(ran / seconds).toFixed(2)} seeds/s, ${(simulatedMs / 1000 / seconds).toFixed(0)}x real time`,
  );
  const excusedShare = faultPhaseTicks === 0 ? 0 : excusedTicks / faultPhaseTicks;
  console.log(
    `liveness looked away for ${(excusedShare * 100).toFixed(1)} % of the fault phase's name-ticks (${excusedTicks} of ${faultPhaseTicks})`,
  );
  console.log(`${reads} read answers judged (GetLock, GetLeader, and leaders told to Observe streams and candidates)`);
  if (excusedTicks > 0) {
    const shares = [...excusedBy]
      .sort((a, b) => b[1] - a[1])
      .map(([why, ticks]) => `${why} ${((ticks / faultPhaseTicks) * 100).toFixed(1)} %`);
    console.log(`  by the fault that excused them: ${shares.join(", ")}`);
  }
  for (const [rule, s] of [...rules].sort((a, b) => a[1].firstSeed - b[1].firstSeed)) {
    console.log(
      `  ${rule.padEnd(22)} ${String(s.seeds).padStart(6)} seeds; first seed ${s.firstSeed} (found after ${s.seedsToFind} seeds): ${s.firstMessage.slice(0, 300)}`,
    );
  }
  const summary = {
    start: args.start,
    seedsRun: ran,
    failedSeeds: failing.length,
    seconds: Number(seconds.toFixed(1)),
    excusedShare: Number(excusedShare.toFixed(4)),
    rules: Object.fromEntries(rules),
  };
  console.log(
    `summary ${JSON.stringify({ ...summary, rules: Object.fromEntries([...rules].map(([r, s]) => [r, { firstSeed: s.firstSeed, seedsToFind: s.seedsToFind, seeds: s.seeds }])) })}`,
  );
  if (args.json !== undefined) writeFileSync(args.json, JSON.stringify({ ...summary, failing }, null, 2) + "\n");
  process.exit(failing.length > 0 ? 1 : 0);
}

await main();
