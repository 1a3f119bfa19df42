// Mutation check of the clients: the conformance suite must fail when a
// client breaks the guarantee. Each test/mutants/clients/*.patch breaks one
// property of one language's wrapper (a deadline that never fires, a release
// that returns early, a made-up token, ...) and names the conformance scenario
// that must catch it. For each, this copies the repository to a scratch
// folder, applies the patch, checks that it changed the code, builds what the
// patch touched, and runs that one scenario for that one language: the mutant
// is "caught" when the scenario fails.
//
//   node dist/test/mutants/clients.js                  every client mutant; TAP output
//   node dist/test/mutants/clients.js --only go-       the mutants whose file starts so
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { DRIVERS } from "../conformance/drivers.js";

const root = fileURLToPath(new URL("../../..", import.meta.url));
const folder = join(root, "test/mutants/clients");

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
  for (const cached of ["tools", "controlplane"])
    if (existsSync(join(root, ".cache", cached))) symlinkSync(join(root, ".cache", cached), join(dir, ".cache", cached));
  const before = fingerprint(dir, mutant.paths);
  const applied = spawnSync("git", ["apply", "--verbose", join(folder, mutant.file)], { cwd: dir, encoding: "utf8" });
  if (applied.status !== 0) throw new Error(`${mutant.file} no longer applies: ${applied.stderr.trim()}`);
  // git apply inside another work tree can skip files silently: make sure the code really changed.
  if (fingerprint(dir, mutant.paths) === before) throw new Error(`${mutant.file} applied but changed nothing in ${mutant.paths.join(", ")}`);
  return dir;
}

function fingerprint(dir: string, paths: readonly string[]): string {
  const hash = createHash("sha256");
  for (const path of paths) hash.update(path).update(existsSync(join(dir, path)) ? readFileSync(join(dir, path)) : "(absent)");
  return hash.digest("hex");
}

function run(command: string, args: readonly string[], cwd: string, env: Record<string, string> = {}): { status: number | null; output: string } {
  const result = spawnSync(command, args, {
    cwd,
    env: { ...process.env, ...env },
    encoding: "utf8",
    timeout: 15 * 60_000,
    maxBuffer: 64 << 20,
  });
  return { status: result.status, output: `${result.stdout}${result.stderr}${result.error ? `\n${result.error.message}` : ""}` };
}

/** Builds what the patch touched: the TypeScript projects if it changed TypeScript, and the language's driver. */
function build(dir: string, mutant: ClientMutant): void {
  const spec = DRIVERS.find((d) => d.language === mutant.language);
  if (spec === undefined) throw new Error(`${mutant.file}: no conformance driver for language ${mutant.language}`);
  if (mutant.paths.some((p) => p.endsWith(".ts"))) {
    const built = run(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-b"], dir);
    if (built.status !== 0) throw new Error(`the mutant does not build:\n${built.output}`);
  }
  if (spec.build !== undefined) {
    const built = run(spec.build[0]!, spec.build.slice(1), join(dir, spec.cwd ?? ""), rustTarget(spec.language));
    if (built.status !== 0) throw new Error(`the mutant's driver does not build:\n${built.output}`);
  }
}

/** Rust builds into a target folder kept between runs, outside the scratch copy (a cold build takes minutes). */
function rustTarget(language: string): Record<string, string> {
  return language === "rust" ? { CARGO_TARGET_DIR: join(root, ".cache/mutants/rust-target") } : {};
}

const { values } = parseArgs({ options: { only: { type: "string" } } });
const selected = clientMutants().filter((m) => values.only === undefined || m.file.startsWith(values.only));
let passed = 0;
let failed = 0;
console.log("TAP version 13");
for (const [index, mutant] of selected.entries()) {
  const name = `${mutant.file}: "${mutant.scenario}" [${mutant.language}] catches it (${mutant.breaks})`;
  let dir: string | undefined;
  try {
    dir = scratchCopy(mutant);
    build(dir, mutant);
    const tested = run(
      process.execPath,
      [join(root, "node_modules/ava/entrypoints/cli.mjs"), "--tap", "--serial", "--timeout=5m", "dist/test/conformance/conformance.test.js"],
      dir,
      {
        MSYNC_CONFORMANCE_LANGUAGES: mutant.language,
        MSYNC_CONFORMANCE_SCENARIOS: mutant.scenario,
        CONTROLPLANE_CACHE_DIR: join(root, ".cache/controlplane"),
        ...rustTarget(mutant.language),
      },
    );
    const count = (label: string) => Number(new RegExp(`^# ${label} (\\d+)$`, "m").exec(tested.output)?.[1] ?? 0);
    const ran = count("pass") + count("fail");
    if (ran === 0) throw new Error(`no scenario named "${mutant.scenario}" ran for ${mutant.language}:\n${tested.output.slice(-2000)}`);
    if (count("fail") > 0) {
      passed += 1;
      console.log(`ok ${index + 1} - ${name}`);
    } else {
      failed += 1;
      console.log(`not ok ${index + 1} - ${name}\n  # the scenario passed on the mutant`);
    }
  } catch (err) {
    failed += 1;
    console.log(`not ok ${index + 1} - ${name}\n  # ${String(err).replaceAll("\n", "\n  # ")}`);
  } finally {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  }
}
console.log(`1..${selected.length}\n# pass ${passed}\n# fail ${failed}`);
process.exitCode = failed === 0 && selected.length > 0 ? 0 : 1;
