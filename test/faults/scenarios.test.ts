// The CI subset of the fault matrix (the full matrix: `npm run faults`, which
// writes REPORT.md). Each scenario runs the workload on three daemons against
// a real kube-apiserver and etcd, breaks something, and checks the whole
// history; see scenarios.ts for what each one promises. The buggy-client run
// shows the checker failing when it must.
import anyTest, { type TestFn } from "ava";
import type { ControlPlane } from "../controlplane/controlplane.js";
import { startFaultEnv } from "./cluster.js";
import { seedFrom } from "./prng.js";
import { SCENARIOS, describeResult, runScenario } from "./scenarios.js";

const test = anyTest as TestFn<{ cp: ControlPlane }>;

test.before(async (t) => {
  t.context.cp = await startFaultEnv();
});

test.after.always(async (t) => {
  await t.context.cp?.stop();
});

for (const scenario of SCENARIOS.filter((s) => s.ci)) {
  const title = scenario.expectsViolations ? `${scenario.title}: the checker flags it` : `${scenario.title}: the history checks out`;
  test.serial(title, async (t) => {
    const seed = seedFrom("FAULTS_SEED");
    console.log(`${scenario.name}: seed ${seed} (replay with FAULTS_SEED=${seed})`);
    const result = await runScenario(t.context.cp, scenario, "ci", seed);
    t.log(describeResult(result));
    t.true(result.operations > 100, `${result.operations} operations`);
    if (scenario.expectsViolations) t.true(result.violations.length > 0, "the checker found the violations it had to");
    else
      t.deepEqual(
        result.violations.map((v) => `${v.rule} ${v.resource}: ${v.message}`).slice(0, 20),
        [],
        `seed ${seed}, history kept in ${result.dir}`,
      );
    t.deepEqual(result.problems, [], `seed ${seed}, history kept in ${result.dir}`);
  });
}
