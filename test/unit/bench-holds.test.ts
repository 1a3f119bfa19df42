// The benchmark derives a semaphore's handoffs, and its safety check, from
// holds stamped in separate processes: a wrong pairing would report
// latencies of the wrong events, a blind sweep would hide a broken recipe.
import test from "ava";
import { analyzeHolds, handoffsTimed } from "../../bench/lib/holds.js";

test("holds: each release is paired with the acquisition it made room for, across processes", (t) => {
  // Two permits. Process 0 holds [0, 10) and [25, 30); process 1 holds [1, 12), [14, 20) and [16, 40). µs.
  const holds = [
    [0, 10, 11, 25, 30, 31],
    [1, 12, 13, 14, 20, 21, 16, 40, 41],
  ];
  const a = analyzeHolds(holds, 2);
  t.is(a.acquisitions, 5);
  // Releases in time: 10 (p0), 12 (p1), 20 (p1), 30, 40; acquisitions from the third on: 14 (p1), 16 (p1), 25 (p0).
  // So 10 -> 14 and 20 -> 25 cross between processes, 12 -> 16 does not; the last two releases made room for nobody.
  t.is(a.handoff.n, 3);
  t.deepEqual([a.handoff.min, a.handoff.median, a.handoff.max], [0.004, 0.004, 0.005]);
  t.is(a.crossProcess, 2);
  t.is(a.maxConcurrent, 2);
  t.is(a.release.n, 5);
  // Between the processes: 10 (p0) -> 14 (p1) and 20 (p1) -> 25 (p0), in the order of the releases.
  t.deepEqual(a.crossHandoffMs, [0.004, 0.005]);
  t.is(a.crossHandoff.n, 2);
  t.is(a.crossHandoff.max, 0.005);
  t.is(a.waitedShare, undefined, "no asks stamped, so nothing to say about waiting");
});

test("holds: a handoff counts as to a waiter when its next holder asked before the release began", (t) => {
  // The holds of the first test; the asks are in each process's order of holds.
  const holds = [
    [0, 10, 11, 25, 30, 31],
    [1, 12, 13, 14, 20, 21, 16, 40, 41],
  ];
  // Acquisition 14 was asked at 9 (before release 10): waited. 16 asked at 13 (after release 12): did not.
  // 25 asked at 19 (before release 20): waited. So 2 of the 3 handoffs.
  const asked = [
    [0, 19],
    [1, 9, 13],
  ];
  const a = analyzeHolds(holds, 2, asked);
  t.is(a.waitedShare, 2 / 3);
  t.deepEqual(a.crossHandoffMs, [0.004, 0.005], "the asks change no latency");
});

test("holds: asks that do not match the holds one for one are refused", (t) => {
  t.throws(() => analyzeHolds([[0, 10, 11, 20, 30, 31]], 1, [[0]]), { message: /1 asks for 2 holds/ });
});

test("holds: a semaphore's paired handoffs are timed with a hold, or with no hold only where the asks were stamped", (t) => {
  t.true(handoffsTimed(10, undefined));
  t.false(handoffsTimed(0, undefined));
  t.true(handoffsTimed(0, 0.97));
});

test("holds: more holders at once than permits shows as a count above the permits", (t) => {
  // A broken mutex: process 1 acquires at 5 while process 0 holds until 10.
  const a = analyzeHolds(
    [
      [0, 10, 11],
      [5, 15, 16],
    ],
    1,
  );
  t.is(a.maxConcurrent, 2);
  t.true(a.handoff.min < 0);
});
