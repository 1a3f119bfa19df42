// The README's configuration table must list every setting the daemon reads,
// with its environment variables and default.
import test from "ava";
import { readFileSync } from "node:fs";
import { SETTINGS } from "../../daemon/config.js";
import { MIN_YIELD_MS } from "../../daemon/engine/contender.js";
import { MAX_GRANTS_IN_A_ROW } from "../../daemon/engine/decide.js";
import { FAILURE_RESPONSES, STORE_FAILURE_POLICY } from "../../daemon/engine/store-policy.js";
import { SCENARIOS } from "../conformance/scenarios.js";

const readme = readFileSync(new URL("../../../README.md", import.meta.url), "utf8");

test("the README's configuration table matches the daemon's settings", (t) => {
  const rows = new Map(
    readme
      .split("\n")
      .filter((line) => line.startsWith("| `--"))
      .map((line) => [/`--([a-z-]+)`/.exec(line)![1]!, line]),
  );
  for (const setting of Object.values(SETTINGS) as Array<{ flag: string; env: readonly string[]; fallback: string }>) {
    const row = rows.get(setting.flag);
    if (row === undefined) {
      t.fail(`--${setting.flag} is missing from the README`);
      continue;
    }
    for (const variable of setting.env) t.true(row.includes(`\`${variable}\``), `--${setting.flag} row names ${variable}`);
    if (setting.fallback !== "") t.true(row.includes(`\`${setting.fallback}\``), `--${setting.flag} row shows default ${setting.fallback}`);
  }
  t.is(rows.size, Object.keys(SETTINGS).length, "no setting in the README that the daemon does not read");
});

const design = readFileSync(new URL("../../../docs/design.md", import.meta.url), "utf8");

test("docs/design.md states the store-failure policy the engine uses", (t) => {
  const rows = new Map([...design.matchAll(/^\| `([a-z-]+)` \| `([a-z-]+)` \|$/gm)].map((m) => [m[1]!, m[2]!] as const));
  t.deepEqual(Object.fromEntries(rows), { ...STORE_FAILURE_POLICY });
});

test("docs/design.md states the response to each store failure by what the call was for, as the engine has it", (t) => {
  const lines = design.split("\n");
  const header = lines.findIndex((line) => line.startsWith("| call | "));
  t.true(header >= 0, "the page has the table");
  const failures = lines[header]!.split("|")
    .slice(2, -1)
    .map((cell) => cell.trim());
  const table: Record<string, Record<string, string>> = {};
  for (const line of lines.slice(header + 2)) {
    if (!line.startsWith("| ")) break;
    const [role, ...responses] = line
      .split("|")
      .slice(1, -1)
      .map((cell) => cell.trim());
    table[role!] = Object.fromEntries(failures.map((failure, i) => [failure, responses[i]!]));
  }
  t.deepEqual(table, JSON.parse(JSON.stringify(FAILURE_RESPONSES)));
});

test("docs/design.md quotes the bound on grants in a row and the yield the contender uses", (t) => {
  t.true(design.includes(`\`MAX_GRANTS_IN_A_ROW\` = ${MAX_GRANTS_IN_A_ROW}`));
  t.true(design.includes(`\`MIN_YIELD_MS\` = ${MIN_YIELD_MS}`));
});

test("every test docs/design.md names exists under that name", (t) => {
  let named = 0;
  for (const paragraph of design.split("\n\n").filter((p) => p.startsWith("Tests: "))) {
    let file: string | undefined;
    for (const part of paragraph.matchAll(/`(test\/[^`]+\.test\.ts)`|"([^"]+)"/g)) {
      if (part[1] !== undefined) {
        file = part[1];
        continue;
      }
      const source = readFileSync(new URL(`../../../${file}`, import.meta.url), "utf8");
      const title = part[2]!.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
      const declared = new RegExp(`\\b(test|test\\.serial|controlPlaneTest)\\(\\s*["\`]${title}["\`]`);
      t.true(declared.test(source), `${file} has a test "${part[2]}"`);
      named += 1;
    }
  }
  t.true(named >= 20, `the page names ${named} tests`);
});

test("every conformance scenario docs/design.md names exists under that name", (t) => {
  const names = new Set(SCENARIOS.map((scenario) => scenario.name));
  const paragraphs = design.split("\n\n").filter((p) => p.startsWith("Scenarios: "));
  t.true(paragraphs.length > 0, "the page names conformance scenarios");
  for (const paragraph of paragraphs)
    for (const [, name] of paragraph.matchAll(/"([^"]+)"/g)) t.true(names.has(name!), `a scenario "${name}" exists`);
});
