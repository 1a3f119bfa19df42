// The report's Read-write lock section: ours on two daemons beside Curator's
// InterProcessReadWriteLock on ZooKeeper, under the same read-heavy loop.
import { totalCount } from "../lib/context.js";
import type { RWLockRow } from "../lib/results.js";
import type { Summary } from "../lib/stats.js";
import { type Cells, NA, cpuRows, loopRows, ms, num, plus, table, verbs } from "./format.js";

export function renderRWLock(rows: readonly RWLockRow[] | undefined): string[] {
  const out = ["## Read-write lock, read-heavy", ""];
  if (!rows || rows.length === 0) return [...out, NA, ""];
  const first = rows[0]!;
  out.push(
    `Lockers share one read-write lock: each client's every ${first.exclusiveEvery}th acquisition (offset by the client's ` +
      `number, so the writers are spread over the clients) is exclusive and the others shared, each kept ${first.holdMs} ms and ` +
      "given back, in a loop, for a fixed time. Ours: two daemons, each with an app process of 8 clients looping " +
      "`AcquireRWLock` (a stream), the hold and `ReleaseRWLock`. Curator: two processes, each with 8 sessions (a Curator " +
      "client and ZooKeeper session each) on one `InterProcessReadWriteLock`, looping `readLock()` or `writeLock()` " +
      "acquire / release. Every process stamps each hold (when it was asked for, acquire returned, release began, release " +
      "returned) and the harness merges them in time. *Into exclusive* is the last release that began before a writer's " +
      "acquisition returned → that acquisition, for the writers already waiting when that release began; *out of exclusive* " +
      "is a writer's release → the first acquisition by a locker that had asked by then. *Overlaps* counts the times an " +
      "exclusive hold overlapped any other hold in the stamps (which lie inside the real holds): anything above 0 is a " +
      "safety violation. Ours' cost is the API server's Lease requests during the run (`apiserver_request_total{resource=\"leases\"}`, " +
      "read before and after) per hold, both modes counted; Curator's is the ZooKeeper server's own counters (`mntr`) per " +
      "hold: a different unit.",
  );
  out.push("");
  const cols = (["ours", "curator"] as const).map((system) => ({
    name: system === "ours" ? "ours" : "Curator InterProcessReadWriteLock",
    row: rows.find((row) => row.system === system),
  }));
  const cell: Cells<RWLockRow> = (show) => cols.map(({ row }) => (row ? show(row) : NA));
  const stat = (pick: (row: RWLockRow) => Summary, take: (s: Summary) => number) => (row: RWLockRow) =>
    pick(row).n > 0 ? ms(take(pick(row))) : NA;
  const holds = (row: RWLockRow) => row.shared + row.exclusive;
  out.push(
    table(
      ["", ...cols.map((c) => c.name)],
      [
        ...loopRows(cell),
        ["shared holds (per second)", ...cell((row) => `${row.shared} (${num(row.sharedPerSecond, 1)})`)],
        ["exclusive holds (per second)", ...cell((row) => `${row.exclusive} (${num(row.exclusivePerSecond, 1)})`)],
        [
          "into exclusive, median",
          ...cell(
            stat(
              (row) => row.toExclusive,
              (s) => s.median,
            ),
          ),
        ],
        [
          "into exclusive, p99",
          ...cell(
            stat(
              (row) => row.toExclusive,
              (s) => s.p99,
            ),
          ),
        ],
        ["into exclusive, samples (writers that waited)", ...cell((row) => String(row.toExclusive.n))],
        [
          "out of exclusive, median",
          ...cell(
            stat(
              (row) => row.fromExclusive,
              (s) => s.median,
            ),
          ),
        ],
        [
          "out of exclusive, p99",
          ...cell(
            stat(
              (row) => row.fromExclusive,
              (s) => s.p99,
            ),
          ),
        ],
        ["most shared holds at once", ...cell((row) => String(row.maxShared))],
        [
          "overlaps of an exclusive hold (from the holders' own stamps)",
          ...cell((row) => (row.overlaps === 0 ? "none" : `**${row.overlaps}**`)),
        ],
        [
          "every exclusive hold had its own fencing token",
          ...cell((row) => (row.exclusiveTokensUnique === undefined ? NA : row.exclusiveTokensUnique ? "yes" : "**NO**")),
        ],
        ["release call, median", ...cell((row) => ms(row.release.median))],
        [
          "API-server Lease requests per hold, all verbs",
          ...cell((row) => (row.leaseRequests ? num(totalCount(row.leaseRequests) / holds(row), 2) : NA)),
        ],
        ["API-server Lease requests in the run", ...cell((row) => (row.leaseRequests ? verbs(row.leaseRequests) : NA))],
        ["ZooKeeper requests per hold, reads + writes", ...cell((row) => plus(row.zkReadsPerHold, row.zkWritesPerHold))],
        ["ZooKeeper packets per hold, received + sent", ...cell((row) => plus(row.zkPacketsReceivedPerHold, row.zkPacketsSentPerHold))],
        ...cpuRows(cell),
      ],
    ),
  );
  out.push("");
  return out;
}
