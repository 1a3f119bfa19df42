// The README's configuration table must list every setting the daemon reads,
// with its environment variables and default.
import test from "ava";
import { readFileSync } from "node:fs";
import { SETTINGS } from "../../daemon/config.js";

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
