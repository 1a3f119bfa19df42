// Runs every test suite in turn, streams its output, and ends with one line
// that counts tests over all suites: "N passed, N failed[, N skipped]".
//
//   npm test                       every suite
//   npm test -- unit grpc          only the named suites
//
// A suite is a command and a way to count its results; suites for other
// languages add themselves to test/suites.ts.
import { spawn } from "node:child_process";
import { SUITES, type Counts, type Suite } from "./suites.js";

/**
 * Longest a suite's command may run. A test runner whose worker never exits
 * after its last test (AVA waits for it) would otherwise hold CI until its
 * own limit; past this the command's process group is killed and the suite
 * fails.
 */
const SUITE_LIMIT_MS = 30 * 60_000;

/** Runs one command, echoing its output; resolves with the exit code and everything it printed. */
async function run(
  command: readonly string[],
  cwd: string | undefined,
  env: Record<string, string> | undefined,
): Promise<{ exitCode: number | null; output: string }> {
  const child = spawn(command[0]!, command.slice(1), {
    cwd,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  // Its own process group, so the limit can kill all of it; signals to us go to it too.
  const forward = (signal: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, signal);
    } catch {
      // already gone
    }
    process.exit(130);
  };
  process.once("SIGINT", forward).once("SIGTERM", forward);
  const limit = setTimeout(() => {
    const message = `\n${command.join(" ")}: still running after ${SUITE_LIMIT_MS / 60_000} min; killed\n`;
    output += message;
    process.stderr.write(message);
    try {
      process.kill(-child.pid!, "SIGKILL");
    } catch {
      // already gone
    }
  }, SUITE_LIMIT_MS);
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => {
    output += chunk.toString();
    process.stdout.write(chunk);
  });
  child.stderr.on("data", (chunk: Buffer) => {
    output += chunk.toString();
    process.stderr.write(chunk);
  });
  const exitCode = await new Promise<number | null>((resolve) => {
    child.on("error", (err) => {
      output += `\n${err.message}`;
      console.error(`${command[0]} could not start: ${err.message}`);
      resolve(127);
    });
    child.on("close", (code) => resolve(code));
  });
  clearTimeout(limit);
  process.off("SIGINT", forward).off("SIGTERM", forward);
  return { exitCode, output };
}

async function runSuite(suite: Suite): Promise<Counts & { exitCode: number | null; seconds: number }> {
  const started = performance.now();
  const seconds = () => (performance.now() - started) / 1000;
  if (suite.prepare !== undefined) {
    console.log(`\n=== suite ${suite.name}, preparing: ${suite.prepare.join(" ")}`);
    const prepared = await run(suite.prepare, suite.cwd, suite.env);
    if (prepared.exitCode !== 0) return { passed: 0, failed: 1, skipped: 0, exitCode: prepared.exitCode, seconds: seconds() };
  }
  console.log(`\n=== suite ${suite.name}: ${suite.command.join(" ")}${suite.cwd ? ` (in ${suite.cwd})` : ""}`);
  const { exitCode, output } = await run(suite.command, suite.cwd, suite.env);
  const counts = suite.count(output);
  // A suite that failed without reporting a failed test still counts as one failure.
  if (exitCode !== 0 && counts.failed === 0) counts.failed = 1;
  return { ...counts, exitCode, seconds: seconds() };
}

async function main(): Promise<void> {
  const wanted = process.argv.slice(2);
  const unknown = wanted.filter((name) => !SUITES.some((s) => s.name === name));
  if (unknown.length > 0) {
    console.error(`unknown suite(s): ${unknown.join(", ")}; known: ${SUITES.map((s) => s.name).join(", ")}`);
    process.exit(2);
  }
  const suites = wanted.length === 0 ? SUITES : SUITES.filter((s) => wanted.includes(s.name));
  const total: Counts = { passed: 0, failed: 0, skipped: 0 };
  const rows: string[] = [];
  for (const suite of suites) {
    const result = await runSuite(suite);
    total.passed += result.passed;
    total.failed += result.failed;
    total.skipped += result.skipped;
    rows.push(
      `  ${suite.name.padEnd(14)} ${String(result.passed).padStart(4)} passed ${String(result.failed).padStart(3)} failed ${String(result.skipped).padStart(3)} skipped  ${result.seconds.toFixed(0).padStart(4)} s`,
    );
  }
  console.log(`\n=== summary\n${rows.join("\n")}`);
  console.log(`${total.passed} passed, ${total.failed} failed${total.skipped > 0 ? `, ${total.skipped} skipped` : ""}`);
  process.exit(total.failed > 0 ? 1 : 0);
}

await main();
