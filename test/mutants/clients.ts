// Mutation check of the clients: the conformance suite must fail when a
// client breaks the guarantee. Each test/mutants/clients/*.patch breaks one
// property of one language's wrapper (a deadline that never fires, a release
// that returns early, a made-up token, ...) and names the conformance scenario
// that must catch it. For each, this copies the repository to a scratch
// folder, applies the patch, checks that it changed the code, builds what the
// patch touched, and runs that one scenario for that one language: the mutant
// is "caught" when the scenario fails.
//
// Mutants run a few at a time (`--jobs`, default 3): a scenario mostly waits
// on frozen sidecars and timers, so they share the machine's cores well.
//
//   node dist/test/mutants/clients.js                  every client mutant; TAP output
//   node dist/test/mutants/clients.js --only go-       the mutants whose file starts so
//   node dist/test/mutants/clients.js --jobs 1         one at a time
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { DRIVERS } from "../conformance/drivers.js";

const root = fileURLToPath(new URL("../../..", import.meta.url));
const folder = join(root, "test/mutants/clients");
/** Where every scratch copy's clients/rust/target points: Rust mutants take turns in it. */
const RUST_TARGET = join(root, ".cache/mutants/rust-target");

interface ClientMutant {
  readonly file: string;
  readonly breaks: string;
  readonly language: string;
  readonly scenario: string;
  /** Repository paths the patch changes. */
  readonly paths: readonly string[];
}

export function clientMutants(): ClientMutant[] {
  if (!existsSync(folder)) return [];
  return readdirSync(folder)
    .filter((name) => name.endsWith(".patch"))
    .sort()
    .map((name) => {
      const text = readFileSync(join(folder, name), "utf8");
      const field = (label: string) => {
        const value = new RegExp(`^${label}: (.*)$`, "m").exec(text)?.[1]?.trim();
        if (value === undefined) throw new Error(`${name}: no "${label}:" line`);
        return value;
      };
      const paths = [...text.matchAll(/^\+\+\+ b\/(.*)$/gm)].map((m) => m[1]!);
      if (paths.length === 0) throw new Error(`${name}: no file is patched`);
      return { file: name, breaks: field("Breaks"), language: field("Language"), scenario: field("Scenario"), paths };
    });
}

/** Folders not copied: version control, build outputs that are rebuilt, and caches linked instead. */
const SKIPPED = new Set([".git", "node_modules", ".cache", "target", "__pycache__", ".pytest_cache"]);

/**
 * A scratch copy of the repository with the patch applied. node_modules is a
 * folder of links to the real one's packages, except the workspace's own
 * client, which must be the scratch copy's; .cache links the installed tools
 * and the control plane, and keeps its own build outputs.
 */
function scratchCopy(mutant: ClientMutant): string {
  const dir = mkdtempSync(join(tmpdir(), "msync-client-mutant-"));
  cpSync(root, dir, {
    recursive: true,
    filter: (source) => !SKIPPED.has(source.split("/").at(-1)!) || source === root,
  });
  mkdirSync(join(dir, "node_modules"));
  for (const entry of readdirSync(join(root, "node_modules"))) {
    if (entry === "metaparticle-sync-client") symlinkSync(join(dir, "clients/typescript"), join(dir, "node_modules", entry));
    else symlinkSync(join(root, "node_modules", entry), join(dir, "node_modules", entry));
  }
  mkdirSync(join(dir, ".cache/conformance"), { recursive: true });
  // Rust builds into a target folder kept between runs, where the harness looks for the driver. The
  // first one starts from the repository's own build (the rust and conformance suites made it), so
  // that only the client itself is compiled again: a cold build of its dependencies takes minutes.
  const built = join(root, "clients/rust/target/debug");
  if (!existsSync(RUST_TARGET) && existsSync(built))
    cpSync(built, join(RUST_TARGET, "debug"), { recursive: true, preserveTimestamps: true });
  mkdirSync(RUST_TARGET, { recursive: true });
  symlinkSync(RUST_TARGET, join(dir, "clients/rust/target"));
  for (const cached of ["tools", "controlplane"])
    if (existsSync(join(root, ".cache", cached))) symlinkSync(join(root, ".cache", cached), join(dir, ".cache", cached));
  const before = fingerprint(dir, mutant.paths);
  const applied = spawnSync("git", ["apply", "--verbose", join(folder, mutant.file)], { cwd: dir, encoding: "utf8" });
  if (applied.status !== 0) throw new Error(`${mutant.file} no longer applies: ${applied.stderr.trim()}`);
  // git apply inside another work tree can skip files silently: make sure the code really changed.
  if (fingerprint(dir, mutant.paths) === before)
    throw new Error(`${mutant.file} applied but changed nothing in ${mutant.paths.join(", ")}`);
  return dir;
}

function fingerprint(dir: string, paths: readonly string[]): string {
  const hash = createHash("sha256");
  for (const path of paths) hash.update(path).update(existsSync(join(dir, path)) ? readFileSync(join(dir, path)) : "(absent)");
  return hash.digest("hex");
}

/** Runs a command to its end (at most 15 minutes) without blocking the other mutants. */
function run(
  command: string,
  args: readonly string[],
  cwd: string,
  env: Record<string, string> = {},
): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const limit = setTimeout(() => child.kill("SIGKILL"), 15 * 60_000);
    child.on("error", (err) => (output += `\n${err.message}`));
    child.on("close", (status) => {
      clearTimeout(limit);
      resolve({ status, output });
    });
  });
}

/** Builds what the patch touched: the TypeScript projects if it changed TypeScript, and the language's driver. */
async function build(dir: string, mutant: ClientMutant): Promise<void> {
  const spec = DRIVERS.find((d) => d.language === mutant.language);
  if (spec === undefined) throw new Error(`${mutant.file}: no conformance driver for language ${mutant.language}`);
  if (mutant.paths.some((p) => p.endsWith(".ts"))) {
    const built = await run(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-b"], dir);
    if (built.status !== 0) throw new Error(`the mutant does not build:\n${built.output}`);
  }
  if (spec.build !== undefined) {
    const built = await run(spec.build[0]!, spec.build.slice(1), join(dir, spec.cwd ?? ""));
    if (built.status !== 0) throw new Error(`the mutant's driver does not build:\n${built.output}`);
  }
}

/** Applies, builds and runs one mutant: undefined when its scenario caught it, else why not. */
async function judge(mutant: ClientMutant): Promise<string | undefined> {
  let dir: string | undefined;
  try {
    dir = scratchCopy(mutant);
    await build(dir, mutant);
    const tested = await run(
      process.execPath,
      [
        join(root, "node_modules/ava/entrypoints/cli.mjs"),
        "--tap",
        "--serial",
        "--timeout=5m",
        "dist/test/conformance/conformance.test.js",
      ],
      dir,
      {
        MSYNC_CONFORMANCE_LANGUAGES: mutant.language,
        MSYNC_CONFORMANCE_SCENARIOS: mutant.scenario,
        CONTROLPLANE_CACHE_DIR: join(root, ".cache/controlplane"),
      },
    );
    const count = (label: string) => Number(new RegExp(`^# ${label} (\\d+)$`, "m").exec(tested.output)?.[1] ?? 0);
    if (count("pass") + count("fail") === 0)
      return `no scenario named "${mutant.scenario}" ran for ${mutant.language}:\n${tested.output.slice(-2000)}`;
    return count("fail") > 0 ? undefined : "the scenario passed on the mutant";
  } catch (err) {
    return String(err);
  } finally {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  }
}

const { values } = parseArgs({ options: { only: { type: "string" }, jobs: { type: "string", default: "3" } } });
const selected = clientMutants().filter((m) => values.only === undefined || m.file.startsWith(values.only));
// Rust mutants share one target folder: they take turns.
const rust = selected.filter((m) => m.language === "rust");
const others = selected.filter((m) => m.language !== "rust");
const queues = [rust, ...Array.from({ length: Math.max(1, Number(values.jobs) - (rust.length > 0 ? 1 : 0)) }, () => [] as ClientMutant[])];
others.forEach((mutant, i) => queues[1 + (i % (queues.length - 1))]!.push(mutant));
let passed = 0;
let failed = 0;
let reported = 0;
console.log("TAP version 13");
await Promise.all(
  queues.map(async (queue) => {
    for (const mutant of queue) {
      const problem = await judge(mutant);
      const name = `${mutant.file}: "${mutant.scenario}" [${mutant.language}] catches it (${mutant.breaks})`;
      reported += 1;
      if (problem === undefined) {
        passed += 1;
        console.log(`ok ${reported} - ${name}`);
      } else {
        failed += 1;
        console.log(`not ok ${reported} - ${name}\n  # ${problem.replaceAll("\n", "\n  # ")}`);
      }
    }
  }),
);
console.log(`1..${selected.length}\n# pass ${passed}\n# fail ${failed}`);
process.exitCode = failed === 0 && selected.length > 0 ? 0 : 1;
