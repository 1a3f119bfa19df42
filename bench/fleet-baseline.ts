// `node dist/bench/fleet-baseline.js DIR...`: keeps the fleet figures of
// finished runs (DIR/results.json, e.g. from `npm run bench -- --only fleet
// --out DIR`) in bench/fleet-before.json, where the report's Fleet section
// finds its "before" column. A full run replaces the full entry, a quick run
// the quick one. Refuses a run whose daemon or client had uncommitted changes,
// since the entry names the commit it was measured on.
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { FLEET_BEFORE_PATH, type FleetBeforeFile, readFleetBefore } from "./lib/fleet-before.js";
import type { Results } from "./lib/results.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

const ABOUT =
  "The fleet phase (bench/phases/fleet.ts) measured on an earlier daemon: the 'before' column of REPORT.md's Fleet section. " +
  "Written by `node dist/bench/fleet-baseline.js DIR` from a run's results.json; `commit` is the checkout the run was measured on, " +
  "`daemonCommit` the last commit before it that changed daemon/ or the TypeScript client.";

function git(args: readonly string[]): string {
  return execFileSync("git", args, { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim();
}

async function formatJson(value: unknown): Promise<string> {
  const json = JSON.stringify(value, null, 2) + "\n";
  try {
    const prettier = await import("prettier");
    const options = (await prettier.resolveConfig(FLEET_BEFORE_PATH)) ?? {};
    return await prettier.format(json, { ...options, parser: "json" });
  } catch {
    return json; // prettier is a devDependency; without it the file is still valid JSON
  }
}

async function main(dirs: readonly string[]): Promise<void> {
  if (dirs.length === 0) {
    console.error("usage: node dist/bench/fleet-baseline.js DIR... (each DIR holding the results.json of a run with the fleet phase)");
    process.exit(2);
  }
  const file: FleetBeforeFile = { ...readFleetBefore(), about: ABOUT };
  for (const dir of dirs) {
    const results = JSON.parse(readFileSync(join(dir, "results.json"), "utf8")) as Results;
    if (!results.fleet) throw new Error(`${dir}/results.json has no fleet figures`);
    const version = /^git ([0-9a-f]+)(.*)$/.exec(results.meta.daemonVersion);
    if (!version) throw new Error(`${dir}: not measured on a git checkout (${results.meta.daemonVersion})`);
    if (version[2] !== "") throw new Error(`${dir}: measured ${results.meta.daemonVersion}; commit them first`);
    const commit = version[1]!;
    const size = results.meta.quick ? "quick" : "full";
    file[size] = {
      commit,
      daemonCommit: git(["log", "-1", "--format=%h", commit, "--", "daemon", "clients/typescript/src"]),
      date: results.meta.date,
      command: `npm run bench -- --only fleet${results.meta.quick ? " --quick" : ""}`,
      leaseWatchCache: results.meta.leaseWatchCache,
      load: `${results.meta.loadBefore} / ${results.meta.loadAfter}`,
      row: results.fleet,
    };
    console.error(`fleet-baseline: ${size} entry from ${dir} (commit ${commit}, daemon ${file[size].daemonCommit})`);
  }
  const ordered: FleetBeforeFile = { about: file.about, full: file.full, quick: file.quick };
  writeFileSync(FLEET_BEFORE_PATH, await formatJson(ordered));
  console.error(`fleet-baseline: wrote ${relative(ROOT, FLEET_BEFORE_PATH)}`);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  console.error(`fleet-baseline: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
