// The benchmark derives a semaphore's handoffs, and its safety check, from
// holds stamped in separate processes: a wrong pairing would report
// latencies of the wrong events, a blind sweep would hide a broken recipe.
import test from "ava";
import { analyzeHolds } from "../../bench/lib/holds.js";

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
