// The semaphore phase keeps a sketch of its handoff samples and reports the
// API server's requests per grant by verb: a sketch that drew another CDF, or
// a division by the wrong count, would misreport ours beside Curator's.
import test from "ava";
import { countsPer, type VerbCounts } from "../../bench/lib/context.js";
import type { Results, SemaphoreRow } from "../../bench/lib/results.js";
import { cdfSketch, summarize } from "../../bench/lib/stats.js";
import { renderReport } from "../../bench/report/markdown.js";

test("cdfSketch: no more points than asked, each the quantile of an equal share, the median kept", (t) => {
  const values = Array.from({ length: 1000 }, (_, i) => 1000 - i); // 1000 .. 1, unsorted
  const sketch = cdfSketch(values, 400);
  t.is(sketch.length, 400);
  t.deepEqual(sketch.slice(0, 3), [3, 5, 8]); // ranks ceil(2.5), ceil(5), ceil(7.5)
  t.is(sketch.at(-1), 1000);
  t.deepEqual(
    [...sketch].sort((a, b) => a - b),
    sketch,
  );
  t.is(summarize(sketch).median, summarize(values).median);
});

test("cdfSketch: a few samples are kept whole, sorted", (t) => {
  t.deepEqual(cdfSketch([3, 1, 2], 400), [1, 2, 3]);
  t.deepEqual(cdfSketch([], 400), []);
});

test("countsPer: each verb's requests divided by the grants, NaN with no grant", (t) => {
  const counts: VerbCounts = { GET: 3, LIST: 0, WATCH: 2, POST: 1, PUT: 150, PATCH: 99, DELETE: 0 };
  const per = countsPer(counts, 100);
  t.is(per.PUT, 1.5);
  t.is(per.PATCH, 0.99);
  t.is(per.POST, 0.01);
  t.true(Number.isNaN(countsPer(counts, 0).PUT));
});

function semaphoreRow(system: SemaphoreRow["system"], holdMs: number, extra: Partial<SemaphoreRow>): SemaphoreRow {
  const timing = summarize([2, 3, 4]);
  return {
    system,
    sessions: 16,
    processes: 2,
    durationS: 4,
    acquired: 200,
    perSecond: 50,
    permits: 3,
    holdMs,
    handoff: timing,
    crossHandoff: timing,
    release: timing,
    maxConcurrent: 3,
    crossProcessHandoffs: 90,
    ...extra,
  };
}

function results(semaphore: SemaphoreRow[]): Results {
  return {
    meta: {
      date: "2026-12-07T00:00:00.000Z",
      quick: true,
      durationS: 60,
      nproc: 2,
      memTotalBytes: 2 ** 30,
      cpuModel: "test",
      loadBefore: "0 0 0",
      loadAfter: "0 0 0",
      node: "v22",
      go: "go",
      kubeApiServer: "v1",
      leaseWatchCache: true,
      etcdServer: "v3",
      clientGo: "v0",
      etcdClient: "v3",
      daemonVersion: "git test",
    },
    idle: {},
    handoff: {},
    crash: {},
    waiting: [],
    hot: {},
    semaphore,
    failures: [],
  };
}

/** The cells of the Hot semaphore table's row that starts with `label`. */
function rowCells(report: string, label: string): string[] {
  const section = report.slice(report.indexOf("## Hot semaphore"));
  const line = section.split("\n").find((l) => l.startsWith(`| ${label} |`));
  if (!line) throw new Error(`no row ${label}`);
  return line
    .split(" | ")
    .slice(1)
    .map((c) => c.replace(/ \|$/, ""));
}

test("Hot semaphore report: requests per grant by verb for ours, handoffs at no hold only where the asks say who waited", (t) => {
  const leaseRequests: VerbCounts = { GET: 4, LIST: 0, WATCH: 0, POST: 1, PUT: 250, PATCH: 120, DELETE: 0 };
  const report = renderReport(
    results([
      semaphoreRow("ours", 0, { leaseRequests, waitedShare: 0.995, tokensUnique: true }),
      semaphoreRow("curator", 0, { zkReadsPerAcquisition: 6, zkWritesPerAcquisition: 2 }),
      semaphoreRow("ours", 10, { leaseRequests, waitedShare: 1, tokensUnique: true }),
      semaphoreRow("curator", 10, { zkPacketsReceivedPerAcquisition: 9, zkPacketsSentPerAcquisition: 11 }),
    ]),
    {},
  );
  // Columns: ours 0 ms, Curator 0 ms, ours 10 ms, Curator 10 ms.
  t.deepEqual(rowCells(report, "API-server Lease requests per grant: PUT"), ["1.25", "n/a", "1.25", "n/a"]);
  t.deepEqual(rowCells(report, "API-server Lease requests per grant: PATCH"), ["0.60", "n/a", "0.60", "n/a"]);
  t.deepEqual(rowCells(report, "API-server Lease requests per grant: POST"), ["0.01", "n/a", "0.01", "n/a"]);
  t.deepEqual(rowCells(report, "API-server Lease requests per grant: GET"), ["0.02", "n/a", "0.02", "n/a"]);
  t.deepEqual(rowCells(report, "API-server Lease requests per grant, all verbs"), ["1.88", "n/a", "1.88", "n/a"]);
  const handoff = rowCells(report, "handoff between the processes (ours: release on one daemon → acquired on the other), median");
  t.deepEqual(handoff, ["3 ms", "n/a", "3 ms", "3 ms"]);
  t.deepEqual(rowCells(report, "next holder already waiting when the release began (share of handoffs)"), [
    "99.5 %",
    "n/a",
    "100.0 %",
    "n/a",
  ]);
  t.deepEqual(rowCells(report, "ZooKeeper requests per acquisition, reads + writes"), ["n/a", "6.0 + 2.0", "n/a", "n/a"]);
  t.deepEqual(rowCells(report, "ZooKeeper packets per acquisition, received + sent"), ["n/a", "n/a", "n/a", "9.0 + 11.0"]);
  t.deepEqual(rowCells(report, "every grant had its own fencing token"), ["yes", "n/a", "yes", "n/a"]);
});
