// `npm run bench [-- --quick] [--out DIR] [--only PHASE,...] [--soak-minutes N]`: benchmarks
// metaparticle-sync against client-go's leader election, etcd's concurrency
// recipes and Apache Curator's recipes on ZooKeeper, in one run against one
// control plane, and writes the report with its plots. Exits non-zero if any
// measurement could not run.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { availableParallelism, totalmem } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { startControlPlane } from "../test/controlplane/controlplane.js";
import { BenchContext, FULL, type Params, QUICK } from "./lib/context.js";
import { daemonNodeFlags } from "./lib/daemon.js";
import { loadAverage } from "./lib/proc.js";
import type { Results } from "./lib/results.js";
import { crashClientGo, crashEtcd, crashOurs } from "./phases/crash.js";
import { fleetOurs } from "./phases/fleet.js";
import { curatorVersions } from "./lib/zookeeper.js";
import { cpuOurs } from "./phases/cpu.js";
import { handoffFloor } from "./phases/floor.js";
import { handoffClientGo, handoffCurator, handoffEtcd, handoffOursElection, handoffOursLock } from "./phases/handoff.js";
import { hotCurator, hotEtcd, hotOurs } from "./phases/hot.js";
import { idle } from "./phases/idle.js";
import { scaleOurs } from "./phases/scale.js";
import { describeRWLock, rwlockCurator, rwlockOurs } from "./phases/rwlock.js";
import { semaphoreCurator, semaphoreOurs } from "./phases/semaphore.js";
import { soakOurs } from "./phases/soak.js";
import { waitingClientGo, waitingOurs } from "./phases/waiting.js";
import { renderReport } from "./report/markdown.js";
import { writePlots } from "./report/plots.js";

/** The repository root (dist/bench/main.js -> ../..). */
const ROOT = fileURLToPath(new URL("../..", import.meta.url));
/** "curator" is not a phase of its own: it picks Curator's measurements out of handoff, hot, semaphore and rwlock. */
const PHASES = ["idle", "handoff", "peers", "crash", "waiting", "hot", "semaphore", "rwlock", "scale", "fleet", "soak", "curator"] as const;
type Phase = (typeof PHASES)[number];
/** Phases whose measurements need no control plane and no Go peers. */
const ZOOKEEPER_ONLY: ReadonlySet<Phase> = new Set<Phase>(["curator"]);

interface Args {
  quick: boolean;
  /** Measure nothing: draw the report and plots again from the results.json in `out`. */
  rerender: boolean;
  /** Keep the API server's Lease watch cache on, as in a real cluster (the test harness turns it off by default). */
  watchCache: boolean;
  out: string;
  only: Set<Phase>;
  /** The soak's load window in minutes, instead of the run's default. */
  soakMinutes: number | undefined;
}

function parseArgs(argv: readonly string[]): Args {
  let quick = false;
  let rerender = false;
  let watchCache = true;
  let out: string | undefined;
  let only = new Set<Phase>(PHASES);
  let soakMinutes: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.includes("=") ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)] : [arg, undefined];
    const value = () => inline ?? argv[++i] ?? usage(`${flag} needs a value`);
    if (flag === "--quick") quick = true;
    else if (flag === "--rerender") rerender = true;
    else if (flag === "--no-watch-cache") watchCache = false;
    else if (flag === "--out") out = value();
    else if (flag === "--only") {
      const names = value().split(",");
      for (const n of names) if (!PHASES.includes(n as Phase)) usage(`unknown phase ${n}; phases: ${PHASES.join(", ")}`);
      only = new Set(names as Phase[]);
    } else if (flag === "--soak-minutes") {
      soakMinutes = Number(value());
      if (!(soakMinutes > 0)) usage(`--soak-minutes needs a positive number of minutes`);
    } else if (flag === "--help" || flag === "-h") usage();
    else usage(`unknown argument ${arg}`);
  }
  return {
    quick,
    rerender,
    watchCache,
    out: out ?? (quick ? join(ROOT, ".cache", "bench", "quick") : join(ROOT, "bench")),
    only,
    soakMinutes,
  };
}

function usage(problem?: string): never {
  if (problem) console.error(`bench: ${problem}`);
  console.error(
    `usage: npm run bench -- [--quick] [--out DIR] [--only ${PHASES.join(",")}] [--soak-minutes N] [--no-watch-cache] [--rerender]\n` +
      "  --quick           CI-sized run (about 3 min) writing to .cache/bench/quick/ instead of bench/\n" +
      "  --only curator    Curator's measurements alone (the mutex of hot, the latch of handoff, the semaphore, the read-write lock)\n" +
      "  --rerender        measure nothing; write the report and plots again from results.json in the output folder\n" +
      "  --soak-minutes N  run the soak's load for N minutes (default 30; --quick 1/3) and stretch the run's time budget to match\n" +
      "  --no-watch-cache  serve Lease watches straight from etcd (the test harness's default) instead of the API server's watch cache",
  );
  process.exit(problem ? 2 : 0);
}

function sh(command: string, args: readonly string[], cwd = ROOT): string {
  return execFileSync(command, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim();
}

function goModVersion(module: string): string {
  const goMod = readFileSync(join(ROOT, "bench", "peers", "go.mod"), "utf8");
  return goMod.match(new RegExp(`^\\s*(?:require\\s+)?${module.replace(/[./]/g, "\\$&")}\\s+(\\S+)`, "m"))?.[1] ?? "unknown";
}

function javaVersion(): string {
  // `java -version` writes to stderr; its first line names the version.
  const run = spawnSync("java", ["-version"], { encoding: "utf8" });
  return run.stderr?.split("\n")[0]?.trim() || "unknown";
}

function cpuModel(): string {
  try {
    return (
      readFileSync("/proc/cpuinfo", "utf8")
        .match(/^model name\s*:\s*(.+)$/m)?.[1]
        ?.trim() ?? "unknown"
    );
  } catch {
    return "unknown";
  }
}

function daemonVersion(): string {
  try {
    const head = sh("git", ["rev-parse", "--short", "HEAD"]);
    const dirty = sh("git", ["status", "--porcelain", "--", "daemon", "clients/typescript/src"]) !== "";
    return `git ${head}${dirty ? " with uncommitted changes in daemon/ or clients/" : ""}`;
  } catch {
    return "unknown (not a git checkout)";
  }
}

/** JSON as the repository's formatter would write it, so `prettier --check .` passes on a committed results.json. */
async function formatJson(value: unknown): Promise<string> {
  const json = JSON.stringify(value, null, 2) + "\n";
  try {
    const prettier = await import("prettier");
    const options = (await prettier.resolveConfig(join(ROOT, "bench", "results.json"))) ?? {};
    return await prettier.format(json, { ...options, parser: "json" });
  } catch {
    return json; // prettier is a devDependency; without it the file is still valid JSON
  }
}

/** The report and plots of a finished run, drawn again from its results.json (after a change to the report code). */
function rerender(args: Args): void {
  const results = JSON.parse(readFileSync(join(args.out, "results.json"), "utf8")) as Results;
  const reportName = results.meta.quick ? "REPORT-quick.md" : "REPORT.md";
  writeFileSync(join(args.out, reportName), renderReport(results, writePlots(results, args.out)));
  process.stderr.write(`[bench] wrote ${relative(ROOT, join(args.out, reportName)) || reportName} from results.json\n`);
}

/** The sizes of this run: full or quick, with the soak's length as asked and the time budget stretched by the difference. */
function params(args: Args): Params {
  const base = args.quick ? QUICK : FULL;
  if (args.soakMinutes === undefined) return base;
  const soakDurationMs = args.soakMinutes * 60_000;
  return { ...base, soakDurationMs, budgetMs: base.budgetMs + soakDurationMs - base.soakDurationMs };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.rerender) return rerender(args);
  const startedAt = performance.now();
  const loadBefore = loadAverage();
  const log = (m: string) => process.stderr.write(`[bench] ${m}\n`);
  log(`${args.quick ? "quick" : "full"} run; phases ${[...args.only].join(", ")}; report to ${args.out}; load average ${loadBefore}`);

  const needsControlPlane = [...args.only].some((p) => !ZOOKEEPER_ONLY.has(p));
  const peersBin = needsControlPlane ? sh("bash", [join(ROOT, "bench", "peers", "build.sh")]) : "";
  const cp = needsControlPlane ? await startControlPlane({ namespace: "bench", leaseWatchCache: args.watchCache }) : undefined;
  const ctx = new BenchContext(cp, params(args), peersBin, args.quick, startedAt, ROOT);
  const curatorPinned = curatorVersions(ROOT);
  const results: Results = {
    meta: {
      date: new Date().toISOString(),
      quick: args.quick,
      durationS: 0,
      nproc: availableParallelism(),
      memTotalBytes: totalmem(),
      cpuModel: cpuModel(),
      loadBefore,
      loadAfter: "",
      node: process.version,
      go: sh("go", ["version"]).replace(/^go version /, ""),
      kubeApiServer: cp ? String((await cp.request("GET", "/version")).json?.gitVersion ?? "unknown") : "not started",
      leaseWatchCache: args.watchCache,
      etcdServer: cp
        ? await fetch(`${cp.etcdEndpoint}/version`)
            .then((r) => r.json() as Promise<{ etcdserver?: string }>)
            .then((v) => `v${v.etcdserver}`)
            .catch(() => "unknown")
        : "not started",
      clientGo: goModVersion("k8s.io/client-go"),
      etcdClient: goModVersion("go.etcd.io/etcd/client/v3"),
      daemonVersion: daemonVersion(),
      daemonNodeFlags: daemonNodeFlags(),
      java: javaVersion(),
      curator: curatorPinned.curator,
      zookeeper: curatorPinned.zookeeper,
    },
    idle: {},
    handoff: {},
    crash: {},
    waiting: [],
    hot: {},
    failures: [],
  };

  const run = async <T>(name: string, fn: () => Promise<T>, accept: (value: T) => void): Promise<void> => {
    const t0 = performance.now();
    ctx.log(`${name}: start`);
    try {
      const value = await fn();
      accept(value);
      ctx.log(`${name}: done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    } catch (err) {
      const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
      results.failures.push({ phase: name, error: message });
      ctx.log(`${name}: FAILED: ${message}`);
    }
  };
  const nonEmpty = <T extends { samples?: number[]; failoverMs?: number[] }>(name: string, row: T): T => {
    if ((row.samples ?? row.failoverMs ?? []).length === 0) throw new Error(`${name}: no samples (time budget exhausted?)`);
    return row;
  };

  try {
    const want = (p: Phase) => args.only.has(p);
    const wantCurator = (p: Phase) => want(p) || want("curator");
    if (want("idle")) {
      await run(
        "idle footprint",
        () => idle(ctx),
        (v) => (results.idle = v),
      );
      await run(
        "CPU idle and per renewal",
        () => cpuOurs(ctx),
        (v) => (results.cpu = v),
      );
    }
    if (want("handoff")) {
      await run(
        "handoff ours (lock)",
        () => handoffOursLock(ctx),
        (v) => (results.handoff.ours = nonEmpty("ours", v)),
      );
      await run(
        "handoff floor (two minimal API clients)",
        () => handoffFloor(ctx),
        (v) => (results.floor = nonEmpty("floor", v)),
      );
      await run(
        "handoff ours (election)",
        () => handoffOursElection(ctx),
        (v) => (results.handoff["ours-election"] = nonEmpty("ours-election", v)),
      );
      await run(
        "handoff etcd",
        () => handoffEtcd(ctx),
        (v) => (results.handoff.etcd = nonEmpty("etcd", v)),
      );
    }
    if (wantCurator("handoff"))
      await run(
        "handoff Curator LeaderLatch",
        () => handoffCurator(ctx),
        (v) => (results.handoff.curator = nonEmpty("curator", v)),
      );
    const crashOursRun = () =>
      run(
        "crash ours",
        () => crashOurs(ctx),
        (v) => (results.crash.ours = nonEmpty("ours", v)),
      );
    // --quick (CI) checks that everything runs, not how fast: it also runs ours' crash runs in parallel with the peers'.
    const crashWithPeers = args.quick && want("crash") && want("peers");
    if (want("peers")) {
      // Timer-bound peer measurements run side by side; in a full run ours never runs during them.
      await Promise.all([
        run(
          "handoff client-go (RetryPeriod 2s)",
          () => handoffClientGo(ctx, 2000),
          (v) => (results.handoff["client-go"] = nonEmpty("client-go", v)),
        ),
        run(
          "handoff client-go (RetryPeriod 500ms)",
          () => handoffClientGo(ctx, 500),
          (v) => (results.handoff["client-go-500ms"] = nonEmpty("client-go-500ms", v)),
        ),
        run(
          "crash client-go",
          () => crashClientGo(ctx),
          (v) => (results.crash["client-go"] = nonEmpty("client-go", v)),
        ),
        run(
          "crash etcd",
          () => crashEtcd(ctx),
          (v) => (results.crash.etcd = nonEmpty("etcd", v)),
        ),
        ...(crashWithPeers ? [crashOursRun()] : []),
      ]);
    }
    if (want("crash") && !crashWithPeers) await crashOursRun();
    if (want("waiting")) {
      for (const w of ctx.params.waiters) {
        await run(
          `waiting ours (${w} waiters)`,
          () => waitingOurs(ctx, w),
          (v) => results.waiting.push(v),
        );
        await run(
          `waiting client-go (${w} waiters)`,
          () => waitingClientGo(ctx, w),
          (v) => results.waiting.push(v),
        );
      }
    }
    if (want("hot")) {
      await run(
        "hot lock ours",
        () => hotOurs(ctx),
        (v) => (results.hot.ours = v),
      );
      await run(
        "hot lock ours, non-fair",
        () => hotOurs(ctx, false),
        (v) => (results.hot.oursNonFair = v),
      );
      await run(
        "hot lock etcd",
        () => hotEtcd(ctx),
        (v) => (results.hot.etcd = v),
      );
    }
    if (wantCurator("hot"))
      await run(
        "hot lock Curator InterProcessMutex",
        () => hotCurator(ctx, "mutex"),
        (v) => (results.hot.curator = v),
      );
    for (const holdMs of ctx.params.semaphoreHoldsMs) {
      const permits = ctx.params.semaphorePermits;
      if (want("semaphore"))
        await run(
          `hot semaphore ours (${permits} permits, hold ${holdMs} ms)`,
          () => semaphoreOurs(ctx, holdMs),
          (v) => (results.semaphore ??= []).push({ system: "ours", ...v }),
        );
      if (wantCurator("semaphore"))
        await run(
          `hot semaphore Curator InterProcessSemaphoreV2 (${permits} permits, hold ${holdMs} ms)`,
          () => semaphoreCurator(ctx, holdMs),
          (v) => (results.semaphore ??= []).push({ system: "curator", ...v }),
        );
    }
    const rwlockLoad = `1 in ${ctx.params.rwlockExclusiveEvery} exclusive, hold ${ctx.params.rwlockHoldMs} ms`;
    if (want("rwlock"))
      await run(
        `read-write lock ours (${rwlockLoad})`,
        () => rwlockOurs(ctx),
        (v) => {
          (results.rwlock ??= []).push({ system: "ours", ...v });
          ctx.log(`read-write lock ours: ${describeRWLock(v)}`);
        },
      );
    if (wantCurator("rwlock"))
      await run(
        `read-write lock Curator InterProcessReadWriteLock (${rwlockLoad})`,
        () => rwlockCurator(ctx),
        (v) => {
          (results.rwlock ??= []).push({ system: "curator", ...v });
          ctx.log(`read-write lock Curator: ${describeRWLock(v)}`);
        },
      );
    if (want("scale"))
      await run(
        "scale ours",
        () => scaleOurs(ctx),
        (v) => (results.scale = v),
      );
    if (want("fleet"))
      await run(
        "fleet ours",
        () => fleetOurs(ctx),
        (v) => Object.assign(results, v),
      );
    if (want("soak"))
      await run(
        "soak ours",
        () => soakOurs(ctx),
        (v) => (results.soak = v),
      );
  } finally {
    await cp?.stop();
  }

  results.meta.durationS = (performance.now() - startedAt) / 1000;
  results.meta.loadAfter = loadAverage();
  mkdirSync(args.out, { recursive: true });
  const plots = writePlots(results, args.out);
  const reportName = args.quick ? "REPORT-quick.md" : "REPORT.md";
  writeFileSync(join(args.out, reportName), renderReport(results, plots));
  writeFileSync(join(args.out, "results.json"), await formatJson(results));
  const took = results.meta.durationS.toFixed(0);
  log(`wrote ${relative(ROOT, join(args.out, reportName)) || reportName} in ${took} s; load average now ${results.meta.loadAfter}`);
  if (results.failures.length > 0) {
    log(`${results.failures.length} measurement(s) could not run: ${results.failures.map((f) => f.phase).join("; ")}`);
    process.exit(1);
  }
  process.exit(0);
}

main().catch((err: unknown) => {
  console.error(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exit(1);
});
