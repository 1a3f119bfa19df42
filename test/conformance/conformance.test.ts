// Every scenario of scenarios.ts against every language's driver of
// drivers.ts: one test per scenario and language, named "<scenario> [<language>]".
// A scenario a client cannot pass fails; none is skipped.
import test from "ava";
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type KubeEnv, startKubeEnv } from "../support/kube-env.js";
import { DRIVERS, type DriverSpec } from "./drivers.js";
import { Driver, Sidecars, runScenario } from "./harness.js";
import { SCENARIOS } from "./scenarios.js";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const only = process.env.MSYNC_CONFORMANCE_LANGUAGES?.split(",");
/** Runs only the scenarios whose names contain one of these (comma-separated), e.g. for a mutant. */
const scenariosWanted = process.env.MSYNC_CONFORMANCE_SCENARIOS?.split(",");

const builds = new Map<string, Promise<void>>();
function build(spec: DriverSpec): Promise<void> {
  let built = builds.get(spec.language);
  if (built === undefined) {
    built = (async () => {
      mkdirSync(join(root, ".cache/conformance"), { recursive: true });
      if (spec.build !== undefined)
        execFileSync(spec.build[0]!, spec.build.slice(1), { cwd: join(root, spec.cwd ?? ""), stdio: ["ignore", "inherit", "inherit"] });
    })();
    builds.set(spec.language, built);
  }
  return built;
}

let kube: Promise<KubeEnv> | undefined;
const kubeEnv = () => (kube ??= startKubeEnv());
test.after.always(async () => {
  if (kube !== undefined) await (await kube).stop();
});

for (const spec of DRIVERS.filter((d) => only === undefined || only.includes(d.language))) {
  for (const scenario of SCENARIOS.filter((s) => scenariosWanted === undefined || scenariosWanted.some((w) => s.name.includes(w)))) {
    test.serial(`${scenario.name} [${spec.language}]`, async (t) => {
      t.timeout(5 * 60_000);
      await build(spec);
      const driverNames = Object.keys(scenario.drivers);
      const sidecarCount = Math.max(...Object.values(scenario.drivers)) + 1;
      const sidecars = await Sidecars.start(scenario.sidecars, sidecarCount, kubeEnv);
      const drivers: Record<string, Driver> = {};
      t.teardown(async () => {
        await Promise.all(Object.values(drivers).map((d) => d.stop()));
        await sidecars.stop();
      });
      for (const name of driverNames) drivers[name] = new Driver(name, spec, root);
      try {
        for (const [name, driver] of Object.entries(drivers)) {
          await driver.ready;
          const reply = await driver.send("connect", { as: name, address: sidecars.daemons[scenario.drivers[name]!]!.address });
          if (reply.ok !== true) throw new Error(`connect ${name}: ${JSON.stringify(reply)}`);
        }
        await runScenario(scenario, drivers, sidecars);
        t.pass();
      } catch (err) {
        for (const driver of Object.values(drivers)) t.log(`driver ${driver.name}:\n  ${driver.transcript()}`);
        throw err;
      }
    });
  }
}
