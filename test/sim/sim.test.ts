// The simulator in CI: a fixed budget of seeds, in batches, each batch one
// test; a failing batch names its failing seeds and the command that replays
// each. Plus the promise everything rests on: a seed replays exactly.
import test, { type ExecutionContext } from "ava";
import { serializeHistory } from "../faults/history.js";
import { replayCommand } from "./replay.js";
import { type WorkloadKind, simulate } from "./world.js";

/** Seeds CI runs: about 2-3 minutes on a 2-core machine (README.md). */
const SEEDS = Number(process.env.SIM_SEEDS ?? 300);
const BATCH = 10;
const FIRST_SEED = Number(process.env.SIM_FIRST_SEED ?? 1);

test("a seed replays exactly: the same seed gives the same history, byte for byte", async (t) => {
  const seed = 7;
  const first = await simulate({ seed });
  const second = await simulate({ seed });
  t.true(first.history.length > 100, "the run did something");
  t.is(serializeHistory(second.history), serializeHistory(first.history));
  t.deepEqual(second.violations, first.violations);
  const other = await simulate({ seed: seed + 1 });
  t.not(serializeHistory(other.history), serializeHistory(first.history), "another seed gives another run");
});

/**
 * Seeds that found a defect outside the batches' range or workload, replayed as they found it: each failed on the
 * engine before its fix (test/sim/README.md).
 */
async function replaysClean(t: ExecutionContext, seed: number, workload: readonly WorkloadKind[]): Promise<void> {
  const result = await simulate({ seed, workload: new Set(workload) });
  for (const v of result.violations) t.log(`${v.rule}: ${v.resource}: ${v.message.slice(0, 400)}`);
  t.is(result.violations.length, 0, `replay: ${replayCommand(seed, { workload: new Set(workload) })}`);
}

test("seed 12864 (--workload semaphore, a grant after a seat removed by hand left it out of seated): no violation of any rule", (t) =>
  replaysClean(t, 12864, ["semaphore"]));

test("seed 174 (--workload semaphore,rwlock, a seat another daemon's write left out, having seen its end, was carried on): no violation of any rule", (t) =>
  replaysClean(t, 174, ["semaphore", "rwlock"]));

for (let from = FIRST_SEED; from < FIRST_SEED + SEEDS; from += BATCH) {
  const to = Math.min(from + BATCH, FIRST_SEED + SEEDS) - 1;
  test.serial(`seeds ${from}..${to}: no violation of any rule`, async (t) => {
    const failures: string[] = [];
    for (let seed = from; seed <= to; seed++) {
      const result = await simulate({ seed });
      if (result.violations.length === 0) continue;
      const rules = [...new Set(result.violations.map((v) => v.rule))].join(", ");
      const first = result.violations[0]!;
      failures.push(`seed ${seed} (${rules}): ${first.resource}: ${first.message.slice(0, 400)}\n  replay: ${replayCommand(seed, {})}`);
    }
    for (const failure of failures) t.log(failure);
    t.is(failures.length, 0, `${failures.length} of ${to - from + 1} seeds failed`);
  });
}
