// The Lease watch's backoff (daemon/store/kubernetes/watch-backoff.ts): after
// an API server restart every sidecar's watch fails at once, so their retries
// must spread out instead of relisting in lockstep.
import test from "ava";
import { MAX_RETRY_MS, MIN_RETRY_MS, nextRetryMs, retryPauseMs } from "../../daemon/store/kubernetes/watch-backoff.js";

test("watch retries double from 200 ms to 5 s", (t) => {
  const steps = [MIN_RETRY_MS];
  while (steps.at(-1)! < MAX_RETRY_MS) steps.push(nextRetryMs(steps.at(-1)!));
  t.deepEqual(steps, [200, 400, 800, 1600, 3200, 5000]);
  t.is(nextRetryMs(MAX_RETRY_MS), MAX_RETRY_MS);
});

test("watch retries are jittered: sidecars that failed together retry at different times, within the step", (t) => {
  for (const step of [MIN_RETRY_MS, 1600, MAX_RETRY_MS]) {
    t.is(
      retryPauseMs(step, () => 0),
      step / 2,
      `the shortest pause for ${step} ms`,
    );
    t.true(retryPauseMs(step, () => 0.999_999) <= step, `the longest pause for ${step} ms`);
    const pauses = new Set(Array.from({ length: 100 }, () => retryPauseMs(step)));
    t.true(pauses.size > 90, `100 sidecars pause ${pauses.size} different times after a ${step} ms step`);
  }
});
