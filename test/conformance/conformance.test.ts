// Every scenario of scenarios.ts against every language's driver of
// drivers.ts: one test per scenario and language, named "<scenario> [<language>]".
// A scenario a client cannot pass fails; none is skipped.
//
// Scenarios run a few at a time (MSYNC_CONFORMANCE_JOBS, default 2): each
// mostly waits on frozen sidecars and timers, and each has sidecars, drivers
// and names of its own, so they share the machine's cores and the one control
// plane well. MSYNC_CONFORMANCE_JOBS=1 runs them one after another.
import test from "ava";
import { execFile } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import pLimit from "p-limit";
import { type KubeEnv, startKubeEnv } from "../support/kube-env.js";
import { DRIVERS, type DriverSpec } from "./drivers.js";
import { Driver, Sidecars, runScenario } from "./harness.js";
import { SCENARIOS } from "./scenarios.js";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const only = process.env.MSYNC_CONFORMANCE_LANGUAGES?.split(",");
/** Runs only the scenarios whose names contain one of these (comma-separated), e.g. for a mutant. */
const scenariosWanted = process.env.MSYNC_CONFORMANCE_SCENARIOS?.split(",");

const jobs = Number(process.env.MSYNC_CONFORMANCE_JOBS ?? "2");
if (!Number.isSafeInteger(jobs) || jobs < 1)
  throw new Error(`MSYNC_CONFORMANCE_JOBS must be a whole number from 1, got ${process.env.MSYNC_CONFORMANCE_JOBS}`);
const slot = pLimit(jobs);

const builds = new Map<string, Promise<void>>();
/** Builds a language's driver once; asynchronously, so that a scenario running meanwhile keeps its clock. */
function build(spec: DriverSpec): Promise<void> {
  let built = builds.get(spec.language);
  if (built === undefined) {
    built = (async () => {
      mkdirSync(join(root, ".cache/conformance"), { recursive: true });
      if (spec.build === undefined) return;
      // The build's output, also when it fails (a Maven build says why on stdout), as the earlier inherited stdio showed it.
      const shown = (output: { stdout?: string; stderr?: string }) => process.stderr.write((output.stdout ?? "") + (output.stderr ?? ""));
      try {
        shown(
          await promisify(execFile)(spec.build[0]!, spec.build.slice(1), { cwd: join(root, spec.cwd ?? ""), maxBuffer: 64 * 1024 * 1024 }),
        );
      } catch (err) {
        shown(err as { stdout?: string; stderr?: string });
        throw err;
      }
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
    test(`${scenario.name} [${spec.language}]`, (t) =>
      slot(async () => {
        t.timeout(5 * 60_000);
        await build(spec);
        const driverNames = Object.keys(scenario.drivers);
        const sidecarCount = Math.max(...Object.values(scenario.drivers)) + 1;
        const sidecars = await Sidecars.start(scenario.sidecars, sidecarCount, kubeEnv);
        const drivers: Record<string, Driver> = {};
        // Stopped before the slot is given to the next scenario, and by ava's teardown if the test times out.
        let stopped: Promise<void> | undefined;
        const stop = () =>
          (stopped ??= (async () => {
            await Promise.all(Object.values(drivers).map((d) => d.stop()));
            await sidecars.stop();
          })());
        t.teardown(stop);
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
        } finally {
          await stop();
        }
      }));
  }
}
