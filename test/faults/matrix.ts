// The full fault matrix: every scenario in full (longer runs, more rounds of
// each fault), the full fuzz, and the tests that pin down known findings,
// then test/faults/REPORT.md from exactly those results.
//
//   npm run faults                         everything, writes REPORT.md
//   node dist/test/faults/matrix.js NAME…  only these scenarios, no report
//
// FAULTS_SEED fixes the seed of every part (printed either way).
import { execFileSync, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { cpus, freemem, loadavg, totalmem } from "node:os";
import { fileURLToPath } from "node:url";
import { startFaultEnv } from "./cluster.js";
import { type FuzzResult, runFuzz } from "./fuzz.js";
import { seedFrom } from "./prng.js";
import { renderReport, type FindingRun } from "./report.js";
import { SCENARIOS, type ScenarioResult, describeResult, runScenario } from "./scenarios.js";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const reportPath = fileURLToPath(new URL("../../../test/faults/REPORT.md", import.meta.url));

/** The tests that pin down findings, run with ava; each must currently fail or pass as reported. */
const FINDING_TESTS = [
  "dist/test/faults/resign-freeze.test.js",
  "dist/test/faults/watch-stall.test.js",
  "dist/test/faults/stream-churn.test.js",
  "dist/test/faults/fuzz.test.js",
];

async function runFindingTests(): Promise<FindingRun[]> {
  const ava = fileURLToPath(new URL("../../../node_modules/ava/entrypoints/cli.mjs", import.meta.url));
  const output = await new Promise<string>((resolve) => {
    const child = spawn(
      process.execPath,
      [ava, "--tap", "--serial", "--concurrency=1", "--timeout=5m", ...FINDING_TESTS, "--match", "!fuzzed*"],
      { cwd: root, stdio: ["ignore", "pipe", "pipe"] },
    );
    let text = "";
    child.stdout.on("data", (c: Buffer) => (text += c.toString()));
    child.stderr.on("data", (c: Buffer) => process.stderr.write(c));
    child.on("close", () => resolve(text));
  });
  const runs: FindingRun[] = [];
  for (const match of output.matchAll(/^(not ok|ok) \d+ - (.*)$/gm)) {
    runs.push({ title: match[2]!.replace(/^[^›]*› /, "").trim(), passed: match[1] === "ok" });
  }
  return runs;
}

async function main(): Promise<void> {
  const wanted = process.argv.slice(2);
  const unknown = wanted.filter((name) => !SCENARIOS.some((s) => s.name === name));
  if (unknown.length > 0) throw new Error(`unknown scenario(s) ${unknown.join(", ")}; known: ${SCENARIOS.map((s) => s.name).join(", ")}`);
  const scenarios = wanted.length === 0 ? SCENARIOS : SCENARIOS.filter((s) => wanted.includes(s.name));
  const writeReport = wanted.length === 0;
  const seed = seedFrom("FAULTS_SEED");
  console.log(
    `fault matrix: seed ${seed} (replay with FAULTS_SEED=${seed}), ${scenarios.length} scenarios${writeReport ? ", then the fuzz and the findings' tests" : ""}`,
  );
  const started = new Date();
  const loadBefore = loadavg();
  const cp = await startFaultEnv();
  const results: ScenarioResult[] = [];
  let fuzz: FuzzResult | undefined;
  try {
    for (const scenario of scenarios) {
      console.log(`\n=== ${scenario.name}: ${scenario.title}`);
      const result = await runScenario(cp, scenario, "full", seed);
      results.push(result);
      console.log(describeResult(result));
      console.log(result.ok ? "=> as expected" : "=> NOT as expected");
    }
    if (writeReport) {
      console.log("\n=== fuzz (full)");
      fuzz = await runFuzz(cp, { seed, full: true });
      console.log(
        `${Object.values(fuzz.calls).reduce((a, b) => a + b, 0)} requests, ${fuzz.mismatches.length} mismatches, ${fuzz.problems.length} problems`,
      );
      for (const m of [...fuzz.mismatches, ...fuzz.problems]) console.log(`  ${m}`);
    }
  } finally {
    await cp.stop();
  }
  let findings: FindingRun[] = [];
  if (writeReport) {
    console.log("\n=== the findings' tests");
    findings = await runFindingTests();
    for (const f of findings) console.log(`  ${f.passed ? "pass" : "FAIL"}: ${f.title}`);
  }
  const finished = new Date();
  if (writeReport) {
    let commit = "unknown";
    try {
      commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: root, encoding: "utf8" }).trim();
      // What was tested is the daemon, the clients and the proto: say whether they are as committed.
      // trimEnd: each porcelain line starts with its two status columns, a space among them.
      const tested = execFileSync("git", ["status", "--porcelain", "--", "daemon", "clients", "proto"], {
        cwd: root,
        encoding: "utf8",
      }).trimEnd();
      const elsewhere = execFileSync("git", ["status", "--porcelain"], { cwd: root, encoding: "utf8" }).trim();
      commit +=
        tested === ""
          ? `, with daemon/, clients/ and proto/ exactly as committed${elsewhere === "" ? "" : " (uncommitted changes elsewhere: the tests themselves and others' work)"}`
          : `, with uncommitted changes in ${tested
              .split("\n")
              .map((l) => l.slice(3))
              .join(", ")}`;
    } catch {
      // not a git checkout
    }
    writeFileSync(
      reportPath,
      renderReport({
        started,
        finished,
        seed,
        commit,
        machine: {
          cores: cpus().length,
          cpu: cpus()[0]?.model ?? "?",
          memoryGiB: totalmem() / 2 ** 30,
          freeGiB: freemem() / 2 ** 30,
          node: process.version,
          loadBefore,
          loadAfter: loadavg(),
        },
        results,
        fuzz,
        findings,
      }),
    );
    console.log(`\nwrote ${reportPath}`);
  }
  const bad = results.filter((r) => !r.ok);
  console.log(
    `\n${results.length - bad.length} of ${results.length} scenarios as expected${bad.length ? `; not: ${bad.map((r) => r.name).join(", ")}` : ""}`,
  );
  process.exit(bad.length > 0 || (fuzz !== undefined && fuzz.mismatches.length + fuzz.problems.length > 0) ? 1 : 0);
}

await main();
