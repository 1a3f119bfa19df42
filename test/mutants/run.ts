// Mutation check: the tests that guard the engine's guarantees must fail when
// a guarantee is broken. Each test/mutants/*.patch re-creates one defect the
// engine once had (issue 11) and names the test that must catch it. For each,
// this copies the engine and its tests to a scratch folder, applies the patch,
// builds, and runs that one test: the mutant is "caught" when it fails.
//
//   node dist/test/mutants/run.js                 every mutant, two at a time (MUTANT_JOBS); TAP output
//   node dist/test/mutants/run.js --only 3        one mutant
//   node dist/test/mutants/run.js --simulate N    also run the simulator on each
//                                                 mutant (with the filters of its
//                                                 "Simulator:" line), up to N seeds,
//                                                 and report the first failing seed
import { spawn, spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const root = fileURLToPath(new URL("../../..", import.meta.url));
const folder = join(root, "test/mutants");

interface Mutant {
  readonly file: string;
  readonly breaks: string;
  readonly testFile: string;
  readonly title: string;
  /** The simulator's filters that focus it on this defect (`--faults`, `--workload`). */
  readonly simulator: readonly string[];
}

function mutants(): Mutant[] {
  return readdirSync(folder)
    .filter((name) => name.endsWith(".patch"))
    .sort((a, b) => parseInt(a) - parseInt(b))
    .map((name) => {
      const text = readFileSync(join(folder, name), "utf8");
      const field = (label: string) => {
        const value = new RegExp(`^${label}: (.*)$`, "m").exec(text)?.[1];
        if (value === undefined) throw new Error(`${name}: no "${label}:" line`);
        return value;
      };
      const simulator = /^Simulator: (.*)$/m.exec(text)?.[1]?.split(" ") ?? [];
      return { file: name, breaks: field("Breaks"), testFile: field("Caught by"), title: field("Test"), simulator };
    });
}

/** A scratch copy of what the engine's tests build from, with the patch applied. */
function scratchCopy(mutant: Mutant): string {
  const dir = mkdtempSync(join(tmpdir(), "msync-mutant-"));
  try {
    prepare(dir, mutant);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return dir;
}

function prepare(dir: string, mutant: Mutant): void {
  // bench/ too: a unit test imports the benchmark's own analysis (bench/lib/holds.ts).
  for (const path of ["daemon", "test", "bench", "tsconfig.base.json", "package.json"])
    cpSync(join(root, path), join(dir, path), { recursive: true });
  symlinkSync(join(root, "node_modules"), join(dir, "node_modules"));
  writeFileSync(
    join(dir, "tsconfig.json"),
    JSON.stringify({
      extends: "./tsconfig.base.json",
      compilerOptions: { rootDir: ".", outDir: "dist", sourceMap: false },
      include: [
        "daemon",
        "test/unit",
        "test/kube",
        // The gRPC tests only for a mutant one of them catches: compiling them for every mutant costs minutes.
        ...(mutant.testFile.startsWith("test/grpc/") ? ["test/grpc"] : []),
        "test/controlplane",
        "test/support",
        "test/sim",
        "test/faults/checker.ts",
        "test/faults/history.ts",
      ],
      exclude: ["dist", "node_modules"],
    }),
  );
  const patched = [...readFileSync(join(folder, mutant.file), "utf8").matchAll(/^\+\+\+ b\/(.*)$/gm)].map((m) => m[1]!);
  const before = patched.map((path) => readFileSync(join(dir, path), "utf8"));
  // Outside any repository: inside another work tree (a TMPDIR under one), git apply would take paths
  // relative to that tree's root and skip every file of the scratch copy.
  const env = { ...process.env, GIT_CEILING_DIRECTORIES: dirname(dir) };
  const applied = spawnSync("git", ["apply", join(folder, mutant.file)], { cwd: dir, env, encoding: "utf8" });
  if (applied.status !== 0) throw new Error(`${mutant.file} no longer applies: ${applied.stderr.trim()}`);
  // git apply run inside another work tree can skip every file and still succeed: judge only a mutant that is one.
  if (patched.length === 0 || patched.every((path, i) => readFileSync(join(dir, path), "utf8") === before[i]))
    throw new Error(`${mutant.file} applied but changed nothing`);
}

/**
 * Runs a command in a scratch copy, without blocking: several mutants are
 * judged at once. A mutant caught by a test on the real API server uses the
 * control plane already built for this repository.
 */
function runAsync(command: string, args: string[], cwd: string): Promise<{ status: number | null; output: string }> {
  const env = { ...process.env, CONTROLPLANE_CACHE_DIR: process.env.CONTROLPLANE_CACHE_DIR ?? join(root, ".cache/controlplane") };
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 10 * 60_000);
    child.on("close", (status) => {
      clearTimeout(timer);
      resolve({ status, output });
    });
  });
}

const { values } = parseArgs({
  options: { only: { type: "string" }, simulate: { type: "string" } },
});
const selected = mutants().filter((m) => values.only === undefined || m.file.startsWith(`${values.only}-`));
const node = process.execPath;
let passed = 0;
let failed = 0;
console.log("TAP version 13");

/** Judges one mutant; returns its TAP lines. Each runs in its own scratch copy, so two can run at once. */
async function judge(index: number, mutant: Mutant): Promise<{ ok: boolean; lines: string }> {
  let dir: string | undefined;
  try {
    dir = scratchCopy(mutant);
    const built = await runAsync(node, [join(root, "node_modules/typescript/bin/tsc"), "-p", "."], dir);
    if (built.status !== 0) throw new Error(`the mutant does not build:\n${built.output}`);
    const compiled = `dist/${mutant.testFile.replace(/\.ts$/, ".js")}`;
    const tested = await runAsync(node, [join(root, "node_modules/ava/entrypoints/cli.mjs"), compiled, "--match", mutant.title], dir);
    const ran = /\b1 tests? (passed|failed)\b/.exec(tested.output);
    const caught = tested.status !== 0 && ran?.[1] === "failed";
    const name = `${mutant.file}: "${mutant.title}" catches it (${mutant.breaks})`;
    let lines = caught
      ? `ok ${index + 1} - ${name}`
      : `not ok ${index + 1} - ${name}\n  # the test ${ran === null ? "did not run" : "passed"} on the mutant`;
    if (values.simulate !== undefined) {
      const simulator = join(dir, "dist/test/sim/simulate.js");
      if (!existsSync(simulator)) throw new Error("no simulator in this tree (dist/test/sim/simulate.js)");
      const sim = await runAsync(node, [simulator, "--seeds", values.simulate, "--stop-at-first", ...mutant.simulator], dir);
      const summary = /^summary (.*)$/m.exec(sim.output)?.[1] ?? sim.output.trim().split("\n").slice(-3).join(" | ");
      lines += `\n  # simulator on ${mutant.file}: ${summary}`;
    }
    return { ok: caught, lines };
  } catch (err) {
    return { ok: false, lines: `not ok ${index + 1} - ${mutant.file}\n  # ${String(err).replaceAll("\n", "\n  # ")}` };
  } finally {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  }
}

// Two at a time by default (each build and test is mostly one core); MUTANT_JOBS overrides.
const jobs = Math.max(1, Number(process.env.MUTANT_JOBS ?? 2));
let next = 0;
await Promise.all(
  Array.from({ length: Math.min(jobs, selected.length) }, async () => {
    while (next < selected.length) {
      const index = next++;
      const result = await judge(index, selected[index]!);
      if (result.ok) passed += 1;
      else failed += 1;
      console.log(result.lines);
    }
  }),
);
console.log(`1..${selected.length}\n# pass ${passed}\n# fail ${failed}`);
process.exitCode = failed === 0 ? 0 : 1;
