// The fault scenarios: each runs the workload (cluster.ts) on three daemons,
// breaks something while it runs, and checks the whole history (checker.ts),
// plus what the scenario itself promises. Both the CI subset
// (scenarios.test.ts) and the full matrix (matrix.ts) run them from here.
import { loadavg } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import type { ControlPlane } from "../controlplane/controlplane.js";
import { type CheckResult, type Hold, type Violation, check } from "./checker.js";
import { DEFAULT_RUN, Run, type RunConfig } from "./cluster.js";
import { type HistoryEvent, ms } from "./history.js";

export type Mode = "ci" | "full";

export interface Scenario {
  readonly name: string;
  readonly title: string;
  /** What breaks, and what must still hold. */
  readonly description: string;
  /** Part of the CI subset. */
  readonly ci: boolean;
  readonly config?: Partial<RunConfig>;
  /** Breaks things while the workload runs (after a warm-up); the workload goes on for a tail after it returns. */
  readonly fault?: (run: Run, mode: Mode) => Promise<void>;
  /** Scenario-specific promises: returns what was broken. */
  readonly verify?: (run: Run, result: CheckResult, events: readonly HistoryEvent[]) => string[];
  /** The run is meant to show the checker failing: these violations are expected instead of none. */
  readonly expectsViolations?: (violations: readonly Violation[]) => string[];
  /** Extra numbers for the report. */
  readonly extra?: Record<string, unknown>;
}

export interface Failover {
  readonly fault: string;
  readonly resource: string;
  readonly holder: string;
  /** Fault start to the holder being told (Lost/Deposed, or its death). */
  readonly toldAfterMs: number | undefined;
  /** Fault start to the next grant to someone else. */
  readonly takeoverAfterMs: number | undefined;
  /** Told to stop this long before the next grant (must be positive). */
  readonly marginMs: number | undefined;
  readonly endReason: string;
}

export interface ScenarioResult {
  readonly name: string;
  readonly title: string;
  readonly mode: Mode;
  readonly seed: number;
  readonly wallMs: number;
  readonly workloadMs: number;
  readonly operations: number;
  readonly lockHolds: number;
  readonly terms: number;
  readonly violations: readonly Violation[];
  /** Scenario-specific problems (verify) and, for a run meant to fail, expectation mismatches. */
  readonly problems: readonly string[];
  readonly handover: { count: number; p50Ms: number; p99Ms: number; maxMs: number; maxDuringFaultMs: number };
  readonly maxPasses: number;
  readonly maxPassesAllowed: number | undefined;
  readonly failovers: readonly Failover[];
  /** Per fault window that stopped grants: its end to the first grant after it, worst resource. */
  readonly recoveries: ReadonlyArray<{ fault: string; afterEndMs: number | undefined }>;
  readonly leaseVersions: number;
  readonly tokensVerified: number;
  readonly tokensUnverified: number;
  readonly openHolds: number;
  readonly load: { start: number; end: number };
  readonly dir: string;
  readonly extra: Record<string, unknown>;
  /** True when the run met its expectation (no violations, or exactly the expected ones). */
  readonly ok: boolean;
}

const WARMUP_MS = 3_000;

function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Holds that were in progress when a fault began, and who got each resource next. */
export function failovers(result: CheckResult, faultName: (f: string) => boolean, match: (hold: Hold) => boolean): Failover[] {
  const out: Failover[] = [];
  for (const f of result.faults.filter((f) => faultName(f.fault))) {
    for (const hold of result.holds) {
      if (!(hold.start <= f.start && (hold.end === undefined || hold.end > f.start) && match(hold))) continue;
      const next = result.holds
        .filter((h) => h.resource === hold.resource && h.client !== hold.client && h.start > f.start)
        .sort((a, b) => (a.start < b.start ? -1 : 1))[0];
      out.push({
        fault: f.fault,
        resource: hold.resource,
        holder: hold.client,
        toldAfterMs: hold.end === undefined ? undefined : ms(hold.end - f.start),
        takeoverAfterMs: next === undefined ? undefined : ms(next.start - f.start),
        marginMs: next === undefined || hold.end === undefined ? undefined : ms(next.start - hold.end),
        endReason: hold.endReason,
      });
    }
  }
  return out;
}

function recoveries(result: CheckResult, workload: ReadonlySet<string>): Array<{ fault: string; afterEndMs: number | undefined }> {
  return result.faults
    .filter((f) => f.end !== undefined && (f.affects === "all" || f.affects.length > 0))
    .map((f) => {
      const resources = [...workload];
      let worst: number | undefined = 0;
      for (const resource of resources) {
        const first = result.holds
          .filter((h) => h.resource === resource && h.start >= f.end!)
          .sort((a, b) => (a.start < b.start ? -1 : 1))[0];
        if (first === undefined) {
          worst = undefined;
          break;
        }
        worst = Math.max(worst, ms(first.start - f.end!));
      }
      return { fault: f.fault, afterEndMs: worst };
    });
}

/** Asks `client` to hold `lock` for `holdMs` and resolves once it holds it. */
export async function holdLong(run: Run, client: string, lock: string, holdMs: number): Promise<number> {
  const c = run.client(client);
  const since = c.eventCount;
  c.send({ cmd: "hold", name: lock, ms: holdMs });
  const event = await c.waitFor((e) => e.event === "holding" && e.name === lock, 60_000, since);
  return Number(event.token);
}

/** Asks `client` to lead `election` for `leadMs` once elected, and resolves once it leads. */
export async function leadLong(run: Run, client: string, election: string, leadMs: number): Promise<number> {
  const c = run.client(client);
  const since = c.eventCount;
  c.send({ cmd: "lead", name: election, ms: leadMs });
  const event = await c.waitFor((e) => e.event === "leading" && e.name === election, 60_000, since);
  return Number(event.term);
}

export async function runScenario(cp: ControlPlane, scenario: Scenario, mode: Mode, seed: number): Promise<ScenarioResult> {
  const wallStart = performance.now();
  const loadStart = loadavg()[0]!;
  const durationMs = mode === "ci" ? 20_000 : 45_000;
  const tailMs = mode === "ci" ? 8_000 : 20_000;
  const config: RunConfig = { ...DEFAULT_RUN, name: scenario.name, seed, durationMs, ...scenario.config };
  const run = await Run.start(cp, config);
  let events: HistoryEvent[] = [];
  let faultError: unknown;
  try {
    run.startWorkload();
    const until = performance.now() + config.durationMs;
    if (scenario.fault !== undefined) {
      await sleep(WARMUP_MS);
      try {
        await scenario.fault(run, mode);
      } catch (err) {
        faultError = err;
      }
      await sleep(Math.max(tailMs, until - performance.now()));
    } else {
      await sleep(config.durationMs);
    }
  } finally {
    try {
      if (!cp.pids().apiServer) await cp.startApiServer();
      cp.resumeEtcd();
    } finally {
      events = await run.finish();
    }
  }
  const options = run.checkOptions();
  const result = check(events, options);
  const problems: string[] = [];
  if (faultError !== undefined)
    problems.push(`the fault itself failed: ${faultError instanceof Error ? faultError.stack : String(faultError)}`);
  for (const client of run.clients) {
    const code = await client.exited;
    const killed = events.some((e) => e.ev === "client-killed" && e.target === client.id);
    if (code !== 0 && !killed) problems.push(`client ${client.id} exited with ${code}: ${client.stderr.slice(-5).join(" | ")}`);
  }
  problems.push(...(scenario.verify?.(run, result, events) ?? []));
  const expected = scenario.expectsViolations !== undefined;
  if (expected) problems.push(...scenario.expectsViolations!(result.violations));
  const ok = problems.length === 0 && (expected || result.violations.length === 0);
  // The workload's own locks and elections (not the storm's, whose abandoned streams may hold them for a while).
  const workload = new Set([...config.locks.map((n) => `lock/${n}`), ...config.elections.map((n) => `election/${n}`)]);
  const handovers = result.handovers.filter((h) => workload.has(h.resource) && h.gapMs !== undefined);
  const calm = handovers.filter((h) => !h.duringFault).map((h) => h.gapMs!);
  const faulted = handovers.filter((h) => h.duringFault).map((h) => h.gapMs!);
  const started = events.find((e) => e.ev === "client-start")?.ts ?? 0n;
  const ended = events.find((e) => e.ev === "workload-end")?.ts ?? started;
  const holdsOf = (kind: string) => result.holds.filter((h) => h.resource.startsWith(`${kind}/`)).length;
  const res: ScenarioResult = {
    name: scenario.name,
    title: scenario.title,
    mode,
    seed,
    wallMs: performance.now() - wallStart,
    workloadMs: ms(ended - started),
    operations: result.operations,
    lockHolds: holdsOf("lock"),
    terms: holdsOf("election"),
    violations: result.violations,
    problems,
    handover: {
      count: calm.length + faulted.length,
      p50Ms: percentile(calm, 50),
      p99Ms: percentile(calm, 99),
      maxMs: percentile(calm, 100),
      maxDuringFaultMs: percentile(faulted, 100),
    },
    maxPasses: Math.max(
      0,
      ...Object.entries(result.resources)
        .filter(([r]) => workload.has(r))
        .map(([, s]) => s.maxPasses),
    ),
    maxPassesAllowed: options.maxPasses,
    failovers: failovers(
      result,
      () => true,
      () => true,
    ).filter((f) => {
      const window = result.faults.find((w) => w.fault === f.fault)!;
      const target = events.find((e) => e.ev === "fault-start" && e.fault === f.fault)?.target;
      const hold = result.holds.find((h) => h.client === f.holder && h.resource === f.resource && h.start <= window.start);
      if (target !== undefined) return f.holder === target;
      return window.affects === "all" || (hold?.daemon !== undefined && window.affects.includes(hold.daemon));
    }),
    recoveries: recoveries(result, workload),
    leaseVersions: result.leaseVersions,
    tokensVerified: result.tokensVerified,
    tokensUnverified: result.tokensUnverified,
    openHolds: result.openHolds,
    load: { start: loadStart, end: loadavg()[0]! },
    dir: run.dir,
    extra: { ...(scenario.extra ?? {}), ...run.extra },
    ok,
  };
  if (ok && process.env.FAULTS_KEEP !== "1") run.cleanUp();
  return res;
}

// ---- the scenarios ---------------------------------------------------------

/** Holds in progress at a fault on `daemon` must have been told to stop, by `reasons`, before anyone else got the resource. */
function toldBeforeTakeover(result: CheckResult, fault: string, daemon: number | "all", reasons: readonly string[]): string[] {
  const problems: string[] = [];
  const list = failovers(
    result,
    (f) => f.startsWith(fault),
    (h) => (daemon === "all" || h.daemon === daemon) && h.client.startsWith("c"),
  );
  if (list.length === 0) problems.push(`${fault}: no hold of daemon ${daemon} was in progress when the fault began`);
  for (const f of list) {
    const voluntary = ["release", "resign", "close"].includes(f.endReason); // it stopped by itself, during the fault
    if (!voluntary && !reasons.some((r) => f.endReason.endsWith(r)))
      problems.push(`${f.fault}: ${f.holder}'s hold of ${f.resource} ended by ${f.endReason}, expected ${reasons.join(" or ")}`);
    if (f.marginMs !== undefined && f.marginMs <= 0)
      problems.push(`${f.fault}: ${f.holder} was told ${-f.marginMs} ms AFTER ${f.resource} was granted to someone else`);
  }
  return problems;
}

/** The daemons that faults named `${prefix}N#…` hit, in order. */
function faultedDaemons(result: CheckResult, prefix: string): number[] {
  return [
    ...new Set(result.faults.filter((f) => f.fault.startsWith(prefix)).map((f) => Number(f.fault.slice(prefix.length).split("#")[0]))),
  ];
}

/** Clients of `daemon` were granted something after the last fault ended: the daemon works again. */
function servesAgain(run: Run, result: CheckResult, daemon: number): string[] {
  const lastEnd = result.faults.reduce((t, f) => (f.end !== undefined && f.end > t ? f.end : t), 0n);
  const granted = result.holds.some((h) => h.daemon === daemon && h.start > lastEnd && h.client.startsWith("c"));
  return granted ? [] : [`no client of daemon ${daemon} was granted anything after the last fault ended`];
}

export const SCENARIOS: readonly Scenario[] = [
  {
    name: "baseline",
    title: "No faults",
    description: "The workload alone: the reference for operation counts and handover gaps.",
    ci: false,
  },
  {
    name: "daemon-sigkill",
    title: "Daemon SIGKILLed and restarted",
    description:
      "A client of daemon 1 holds l0 and another leads e0; daemon 1 is killed with SIGKILL and restarted on the same port 3 s later (a new process identity). Its clients are told the stream ended; the others take over after the lease expires; the restarted daemon serves again. In the full matrix every daemon is killed once.",
    ci: true,
    async fault(run, mode) {
      const victims = mode === "ci" ? [1] : [1, 2, 0];
      for (const d of victims) {
        await Promise.all([holdLong(run, `c${d}.0`, "l0", 60_000), leadLong(run, `c${d}.1`, "e0", 60_000)]);
        await run.window(`sigkill-d${d}`, [d], async () => {
          await run.killDaemon(d);
          await sleep(3_000);
          await run.restartDaemon(d);
        });
        if (mode === "full") await sleep(8_000);
      }
    },
    verify(run, result) {
      return faultedDaemons(result, "sigkill-d").flatMap((d) => [
        ...toldBeforeTakeover(result, `sigkill-d${d}#`, d, ["stream-ended"]),
        ...servesAgain(run, result, d),
      ]);
    },
  },
  {
    name: "daemon-sigstop",
    title: "Daemon SIGSTOPped past the lease, then resumed",
    description:
      "A client of daemon 1 holds l0 and another leads e0; daemon 1 is frozen with SIGSTOP for lease + 3 s (8 s) and then resumed. Its clients' wrappers must signal lost on their own heartbeat deadline (reason heartbeat-timeout) BEFORE anyone else is granted l0 or elected for e0; once resumed, the daemon never acts as holder (the Lease history shows no write of the old token after it was taken over) and serves again.",
    ci: true,
    async fault(run, mode) {
      const victims = mode === "ci" ? [1] : [1, 0];
      for (const d of victims) {
        await Promise.all([holdLong(run, `c${d}.0`, "l0", 60_000), leadLong(run, `c${d}.1`, "e0", 60_000)]);
        await run.window(`sigstop-d${d}`, [d], async () => {
          run.pauseDaemon(d);
          await sleep(run.leaseMs + 3_000);
          run.resumeDaemon(d);
        });
        if (mode === "full") await sleep(8_000);
      }
    },
    verify(run, result) {
      return faultedDaemons(result, "sigstop-d").flatMap((d) => [
        ...toldBeforeTakeover(result, `sigstop-d${d}#`, d, ["heartbeat-timeout"]),
        ...servesAgain(run, result, d),
      ]);
    },
  },
  {
    name: "client-killed",
    title: "Client process SIGKILLed while holding",
    description:
      "Client c1.0 holds l0 and client c2.0 leads e0; both processes are killed with SIGKILL. Their daemons see the connections close and give the lock and the leadership back; a waiter takes over without waiting for the lease to expire (reported, not asserted: no speed claims).",
    ci: true,
    async fault(run) {
      await holdLong(run, "c1.0", "l0", 60_000);
      await run.window("kill-c1.0", [1], async () => run.killClient("c1.0"), "c1.0");
      await leadLong(run, "c2.0", "e0", 60_000);
      await run.window("kill-c2.0", [2], async () => run.killClient("c2.0"), "c2.0");
    },
    verify(run, result) {
      const problems: string[] = [];
      for (const [client, resource] of [
        ["c1.0", "lock/l0"],
        ["c2.0", "election/e0"],
      ] as const) {
        const f = failovers(
          result,
          (name) => name.startsWith(`kill-${client}`),
          (h) => h.client === client && h.resource === resource,
        )[0];
        if (f === undefined) problems.push(`${client} did not hold ${resource} when it was killed`);
        else if (f.takeoverAfterMs === undefined) problems.push(`nobody took ${resource} over after ${client} was killed`);
      }
      return problems;
    },
  },
  {
    name: "apiserver-restart",
    title: "kube-apiserver killed and restarted",
    description:
      "A client holds l0 and another leads e0 for a long time; the API server is killed with SIGKILL, stays down for 6 s (longer than the renew deadline), and is started again (twice in the full matrix). The holders are told Lost (renew deadline, or the wrapper's own heartbeat deadline) before anyone else is granted; nobody is granted anything while it is down; grants resume after it is back, and every daemon serves again.",
    ci: true,
    async fault(run, mode) {
      const rounds = mode === "ci" ? 1 : 2;
      for (let i = 0; i < rounds; i++) {
        // Long holds in progress, so that their holders must be told Lost by the deadline.
        await Promise.all([holdLong(run, `c${i}.0`, "l0", 60_000), leadLong(run, `c${i + 1}.1`, "e0", 60_000)]);
        await run.window("apiserver-kill", "all", async () => {
          await run.cp.stopApiServer("SIGKILL");
          await sleep(6_000);
          await run.cp.startApiServer();
        });
        if (i + 1 < rounds) await sleep(10_000);
      }
    },
    verify(run, result) {
      return [
        ...toldBeforeTakeover(result, "apiserver-kill#", "all", ["renew-deadline-exceeded", "heartbeat-timeout"]),
        ...[0, 1, 2].flatMap((d) => servesAgain(run, result, d)),
      ];
    },
  },
  {
    name: "etcd-pause",
    title: "etcd paused (SIGSTOP) and resumed",
    description:
      "A client holds l0 and another leads e0 for a long time; etcd is frozen for 8 s, so the API server's requests hang rather than fail. The holders are told Lost on their renew deadline before anyone else is granted; after etcd resumes, grants resume and every daemon serves again.",
    ci: true,
    async fault(run) {
      await Promise.all([holdLong(run, "c0.0", "l0", 60_000), leadLong(run, "c1.1", "e0", 60_000)]);
      await run.window("etcd-pause", "all", async () => {
        run.cp.pauseEtcd();
        await sleep(8_000);
        run.cp.resumeEtcd();
      });
    },
    verify(run, result) {
      return [
        ...toldBeforeTakeover(result, "etcd-pause#", "all", ["renew-deadline-exceeded", "heartbeat-timeout"]),
        ...[0, 1, 2].flatMap((d) => servesAgain(run, result, d)),
      ];
    },
  },
  {
    name: "proxy-latency-resets",
    title: "Latency and connection resets between the daemons and the API server",
    description:
      "Every daemon talks to the API server through its own fault proxy. For 12 s all proxies add 150 ms each way, and daemon 0's connections are reset every 2 s; then the proxies heal.",
    ci: false,
    config: { proxy: true },
    async fault(run) {
      await run.window("latency-resets", "all", async () => {
        for (const p of run.proxies) p.latencyMs = 150;
        for (let i = 0; i < 6; i++) {
          await sleep(2_000);
          run.proxies[0]!.resetAll();
        }
        for (const p of run.proxies) p.heal();
      });
    },
    verify(run, result) {
      run.extra.proxyResets = run.proxies.map((p) => p.resets);
      run.extra.proxyConnections = run.proxies.map((p) => p.connections);
      return [0, 1, 2].flatMap((d) => servesAgain(run, result, d));
    },
  },
  {
    name: "one-way-partition",
    title: "One-way partitions between daemon 0 and the API server",
    description:
      "Through daemon 0's fault proxy: first every byte from the daemon to the API server is dropped for 8 s (its renewals never arrive), then, after healing, every byte from the API server to the daemon for 8 s (its renewals are written but it never hears so, nor sees the watch). A client of daemon 0 holds l0 and another leads e0 each time: they must be told Lost before anyone else is granted them, and daemon 0 must serve again after healing.",
    ci: true,
    config: { proxy: true },
    async fault(run) {
      for (const direction of ["up", "down"] as const) {
        await Promise.all([holdLong(run, "c0.0", "l0", 60_000), leadLong(run, "c0.1", "e0", 60_000)]);
        await run.window(`partition-${direction}-d0`, [0], async () => {
          run.proxies[0]!.drop(direction, true);
          await sleep(8_000);
          run.proxies[0]!.heal();
        });
        await sleep(3_000);
      }
      run.extra.droppedBytes = { up: run.proxies[0]!.bytes.droppedUp, down: run.proxies[0]!.bytes.droppedDown };
    },
    verify(run, result) {
      return [
        ...toldBeforeTakeover(result, "partition-up-d0", 0, ["renew-deadline-exceeded", "heartbeat-timeout"]),
        ...toldBeforeTakeover(result, "partition-down-d0", 0, ["renew-deadline-exceeded", "heartbeat-timeout"]),
        ...servesAgain(run, result, 0),
      ];
    },
  },
  {
    name: "stream-storm",
    title: "1,000 clients opening and abandoning streams",
    description:
      "While the workload runs, 10 storm processes (2 at a time) open 100 clients each (every one its own TCP connection, up to 25 at a time per process) with an Acquire (on the workload's locks without waiting, or on storm-only locks, waiting), Campaign (storm-only elections) or Observe (the workload's elections) stream, and abandon it after 0 to 400 ms: by cancelling it, by closing the channel under it, or by exiting with it open. Storm holds are checked like the workload's (ending at the latest when their valid_for runs out).",
    ci: false,
    async fault(run) {
      const summaries = await run.window("storm", [], () =>
        run.storm(10, 2, {
          count: 100,
          concurrency: 25,
          maxMs: 90_000,
          leaseMs: run.leaseMs,
          stormLocks: ["sl0", "sl1"],
          stormElections: ["se0"],
          lifetimeMs: [0, 400],
        }),
      );
      const total = summaries.reduce<Record<string, number>>((sum, s) => {
        for (const [k, v] of Object.entries(s)) if (typeof v === "number") sum[k] = (sum[k] ?? 0) + v;
        return sum;
      }, {});
      run.extra.storm = total;
    },
    verify(run, result) {
      const storm = run.extra.storm as Record<string, number> | undefined;
      const problems = [0, 1, 2].flatMap((d) => servesAgain(run, result, d));
      if (storm?.opened !== 1000) problems.push(`the storm opened ${storm?.opened} streams, not 1000`);
      return problems;
    },
  },
  {
    name: "buggy-ignores-lost",
    title: "A buggy client that ignores Lost (the checker must flag it)",
    description:
      "An extra client on daemon 1 takes l0 for 15 s and, unlike a correct app, keeps acting when its wrapper signals lost. Daemon 1 is frozen for 8 s meanwhile, so the lease expires and a client of another daemon is granted l0 while the buggy client still acts. The checker must report that overlap, and only violations involving the buggy client.",
    ci: true,
    config: { buggyOn: 1 },
    async fault(run) {
      await holdLong(run, "buggy", "l0", 15_000);
      await run.window("sigstop-d1", [1], async () => {
        run.pauseDaemon(1);
        await sleep(run.leaseMs + 3_000);
        run.resumeDaemon(1);
      });
    },
    expectsViolations(violations) {
      const problems: string[] = [];
      if (!violations.some((v) => v.rule === "overlap" && v.clients.includes("buggy") && v.resource === "lock/l0")) {
        problems.push("the checker did not flag the buggy client's overlap on l0");
      }
      for (const v of violations.filter((v) => !v.clients.includes("buggy")))
        problems.push(`unexpected violation: ${v.rule} ${v.resource}: ${v.message}`);
      return problems;
    },
  },
];

export function scenario(name: string): Scenario {
  const found = SCENARIOS.find((s) => s.name === name);
  if (found === undefined) throw new Error(`no scenario ${name}`);
  return found;
}

/** One line per violation or problem, for test output. */
export function describeResult(r: ScenarioResult): string {
  const lines = [
    `${r.name} (seed ${r.seed}): ${r.operations} operations, ${r.lockHolds} lock holds, ${r.terms} terms, ${r.violations.length} violations, handover p50 ${r.handover.p50Ms.toFixed(1)} ms max ${r.handover.maxMs.toFixed(0)} ms, history in ${r.dir}`,
    ...r.violations.slice(0, 20).map((v) => `  violation ${v.rule} ${v.resource}: ${v.message}`),
    ...r.problems.map((p) => `  problem: ${p}`),
    ...r.failovers.map(
      (f) =>
        `  failover ${f.fault} ${f.resource} (${f.holder}): told after ${f.toldAfterMs?.toFixed(0)} ms (${f.endReason}), taken over after ${f.takeoverAfterMs?.toFixed(0)} ms, margin ${f.marginMs?.toFixed(0)} ms`,
    ),
  ];
  return lines.join("\n");
}
