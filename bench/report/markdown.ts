// Renders one run's Results as the Markdown report. Every number in it comes
// from `results`; the prose around the tables describes the method only.
import { readFileSync } from "node:fs";
import { LEASE_VERBS, countsPer, totalCount, type VerbCounts } from "../lib/context.js";
import { sumOf } from "../lib/daemon-metrics.js";
import type {
  CrashRow,
  FleetDaemonRow,
  FleetRole,
  FleetRow,
  HandoffRow,
  HotRow,
  Results,
  SemaphoreRow,
  WaitingRow,
} from "../lib/results.js";
import { handoffsTimed } from "../lib/holds.js";
import { type Summary, summarize } from "../lib/stats.js";
import { MIB, NA, cpuRows, loopRows, mib, ms, num, plus, signedMs, table, verbs, verdict } from "./format.js";
import type { Plots } from "./plots.js";
import { renderHandoffSteps, renderLimitGoals } from "./limit.js";
import { renderRWLock } from "./rwlock.js";
import { renderSoak } from "./soak.js";

/** "×12.3": how many times `theirs` is `ours`; n/a when either is missing or ours is not positive. */
function ratio(theirs: number | undefined, ours: number | undefined): string {
  if (theirs === undefined || ours === undefined || !Number.isFinite(theirs) || !Number.isFinite(ours) || ours <= 0) return NA;
  const r = theirs / ours;
  return `×${r >= 100 ? r.toFixed(0) : r >= 10 ? r.toFixed(1) : r.toFixed(2)}`;
}

function median(values: readonly number[] | undefined): number | undefined {
  return values && values.length > 0 ? summarize(values).median : undefined;
}

export function renderReport(r: Results, plots: Plots): string {
  const m = r.meta;
  const out: string[] = [];
  const hs = (row: HandoffRow | undefined) => (row && row.samples.length > 0 ? summarize(row.samples) : undefined);
  const curatorRan = Boolean(
    r.handoff.curator ||
    r.hot.curator ||
    r.semaphore?.some((row) => row.system === "curator") ||
    r.rwlock?.some((row) => row.system === "curator"),
  );

  out.push(`# metaparticle-sync benchmarks${m.quick ? " (quick run)" : ""}`);
  out.push("");
  out.push(
    `Written by \`npm run bench${m.quick ? " -- --quick" : ""}\` on ${m.date}; the run took ${Math.round(m.durationS)} s. ` +
      "Ours, client-go's leader election and etcd's concurrency recipes ran on the same machine, in the same run, against one " +
      "control plane (a real kube-apiserver and etcd on loopback, started by `test/controlplane`)" +
      (curatorRan ? "; Apache Curator's recipes ran in the same run against a real ZooKeeper server on loopback" : "") +
      ". Every number below comes from that run.",
  );
  out.push("");
  out.push(
    table(
      ["machine", ""],
      [
        ["CPU", `${m.nproc} × ${m.cpuModel}`],
        ["memory", mib(m.memTotalBytes).replace(" MiB", "") + " MiB"],
        ["load average (1, 5, 15 min) before / after", `${m.loadBefore} / ${m.loadAfter}`],
        ["Node (daemon and harness)", m.node],
        ["Go (peers)", m.go],
        ["kube-apiserver / etcd server", `${m.kubeApiServer} / ${m.etcdServer}`],
        [
          "Lease watches served from",
          m.leaseWatchCache ? "the API server's watch cache (as in a real cluster)" : "etcd directly (`--no-watch-cache`)",
        ],
        ["client-go / etcd client (peers)", `${m.clientGo} / ${m.etcdClient}`],
        ["Curator / ZooKeeper server (peer), Java", m.curator ? `${m.curator} / ${m.zookeeper ?? NA}, ${m.java ?? NA}` : NA],
        ["metaparticle-sync", m.daemonVersion],
        [
          "our daemons run as",
          `node ${[...(m.daemonNodeFlags ?? []), "dist/lean/main.mjs"].join(" ")}${m.daemonNodeFlags === undefined ? " (no flags recorded)" : ""}`,
        ],
      ],
    ),
  );
  out.push("");

  // ---- headline ----------------------------------------------------------
  const ours = hs(r.handoff.ours);
  const cg = hs(r.handoff["client-go"]);
  const crashOursExcess = median(r.crash.ours?.excessMs);
  const crashCgExcess = median(r.crash["client-go"]?.excessMs);
  const maxWaiters = r.waiting.length === 0 ? undefined : Math.max(...r.waiting.map((w) => w.waiters));
  const waitOurs = r.waiting.find((w) => w.system === "ours" && w.waiters === maxWaiters);
  const waitCg = r.waiting.find((w) => w.system === "client-go" && w.waiters === maxWaiters);
  out.push("## Headline: ours against client-go");
  out.push("");
  out.push(
    table(
      ["measure", "ours", "client-go", "client-go ÷ ours"],
      [
        [
          "graceful handoff, median (client-go at its default RetryPeriod 2 s)",
          ms(ours?.median),
          ms(cg?.median),
          ratio(cg?.median, ours?.median),
        ],
        [
          `crash failover, excess over the ${r.crash.ours?.leaseS ?? 5} s lease, median`,
          signedMs(crashOursExcess),
          signedMs(crashCgExcess),
          ratio(crashCgExcess, crashOursExcess),
        ],
        [
          `API-server requests/s with 1 holder and ${maxWaiters ?? NA} waiters`,
          num(waitOurs?.perSecond),
          num(waitCg?.perSecond),
          ratio(waitCg?.perSecond, waitOurs?.perSecond),
        ],
      ],
    ),
  );
  out.push("");
  if (r.failures.length > 0) {
    out.push("**Some measurements could not run:**");
    out.push("");
    for (const f of r.failures) out.push(`- ${f.phase}: ${f.error.split("\n")[0]}`);
    out.push("");
  }

  // ---- handoff -----------------------------------------------------------
  out.push(...renderLimitGoals(r));
  out.push(...renderCostGoals(r));

  out.push("## Graceful handoff");
  out.push("");
  out.push(
    "The holder lets go and the next holder, in another process, is told it holds. Ours: two daemons (separate processes); a client " +
      "of daemon A holds, a client of daemon B waits; the holder releases (closes its Acquire stream) or resigns, and the clock stops " +
      "when Acquired / Elected reaches B's client. client-go: two candidate processes; the leader gets SIGTERM and, with " +
      "`ReleaseOnCancel`, clears the holder; the clock stops at `OnStartedLeading` in the other process; the old leader is then " +
      "restarted as a follower. etcd: the leader calls `Election.Resign`; the clock stops when the other process's `Campaign` " +
      "returns. Curator: the leader closes its `LeaderLatch` (and joins again with a new one); the clock stops when the other " +
      "process's `LeaderLatch.await()` returns. Timestamps are CLOCK_MONOTONIC in every process. Ours and etcd ran one handoff at a time, after a few warm-up rounds; " +
      `client-go's latency is set by its RetryPeriod timer, not by CPU, so ${r.handoff["client-go"]?.parallel ?? NA} candidate pairs ` +
      "(one Lease each) ran in parallel to collect its samples in reasonable time.",
  );
  out.push("");
  const handoffCols: Array<[string, HandoffRow | undefined]> = [
    ["ours (lock)", r.handoff.ours],
    ["ours (election)", r.handoff["ours-election"]],
    ["client-go, RetryPeriod 2 s", r.handoff["client-go"]],
    ["client-go, RetryPeriod 500 ms", r.handoff["client-go-500ms"]],
    ["etcd Election", r.handoff.etcd],
    ["Curator LeaderLatch", r.handoff.curator],
  ];
  const sums = handoffCols.map(([, row]) => hs(row));
  const cg500 = hs(r.handoff["client-go-500ms"]);
  const etcd = hs(r.handoff.etcd);
  const curator = hs(r.handoff.curator);
  // One statistic: each column's figure, then each peer's over ours.
  const statRow = (stat: "median" | "p99" | "max") => [
    stat,
    ...sums.map((s) => ms(s?.[stat])),
    ...[cg, cg500, etcd, curator].map((peer) => ratio(peer?.[stat], ours?.[stat])),
  ];
  const peerCols = (row: HandoffRow | undefined, show: (row: HandoffRow | undefined) => string) => [
    ...[r.handoff["client-go"], r.handoff["client-go-500ms"], r.handoff.etcd].map(() => NA),
    show(row),
  ];
  out.push(
    table(
      ["", ...handoffCols.map(([name]) => name), "client-go 2 s ÷ ours", "client-go 500 ms ÷ ours", "etcd ÷ ours", "Curator ÷ ours"],
      [
        ["samples", ...sums.map((s) => String(s?.n ?? 0)), "", "", "", ""],
        statRow("median"),
        statRow("p99"),
        statRow("max"),
        ["min", ...sums.map((s) => ms(s?.min)), "", "", "", ""],
        [
          "Lease writes per round (release, take-over, re-queue)",
          num(r.handoff.ours?.writesPerRound, 1),
          num(r.handoff["ours-election"]?.writesPerRound, 1),
          ...peerCols(undefined, () => NA),
          "",
          "",
          "",
          "",
        ],
        [
          "API server time per Lease write, mean",
          ms(r.handoff.ours?.writeMeanMs),
          ms(r.handoff["ours-election"]?.writeMeanMs),
          ...peerCols(undefined, () => NA),
          "",
          "",
          "",
          "",
        ],
        [
          "ZooKeeper requests per round, reads + writes (the server's own counters)",
          NA,
          NA,
          ...peerCols(r.handoff.curator, (row) =>
            row?.zkReadsPerRound === undefined ? NA : `${num(row.zkReadsPerRound, 1)} + ${num(row.zkWritesPerRound, 1)}`,
          ),
          "",
          "",
          "",
          "",
        ],
        [
          "release write (releasing → released), median",
          NA,
          NA,
          ...[r.handoff["client-go"], r.handoff["client-go-500ms"], r.handoff.etcd, r.handoff.curator].map((row) =>
            ms(median(row?.releaseWriteMs)),
          ),
          "",
          "",
          "",
          "",
        ],
      ],
    ),
  );
  out.push("");
  out.push(...renderHandoffSteps(r));
  if (plots.handoffCdf) out.push(`![Handoff latency CDF](${plots.handoffCdf})`, "");

  // ---- crash -------------------------------------------------------------
  out.push("## Crash failover");
  out.push("");
  out.push(
    "The holder's process is SIGKILLed (our daemon, or the peer's candidate process) at a random point of its renewal cycle, and " +
      "the clock stops when the next holder, in another process, is told it holds. *Failover* is measured from the kill. *Excess* " +
      "is measured from the holder's last successful renewal before the kill (the Renewed event its client got; the peers print " +
      "one per successful Lease write or etcd keep-alive reply), minus the lease duration: how long past the lease's true end the " +
      "next holder waited.",
  );
  out.push("");
  const crashCols: Array<[string, CrashRow | undefined]> = [
    ["ours", r.crash.ours],
    ["client-go", r.crash["client-go"]],
    ["etcd", r.crash.etcd],
  ];
  const cf = crashCols.map(([, row]) => (row && row.failoverMs.length > 0 ? summarize(row.failoverMs) : undefined));
  const ce = crashCols.map(([, row]) => (row && row.excessMs.length > 0 ? summarize(row.excessMs) : undefined));
  out.push(
    table(
      ["", ...crashCols.map(([name]) => name), "client-go ÷ ours", "etcd ÷ ours"],
      [
        ["lease / session TTL", ...crashCols.map(([, row]) => (row ? `${row.leaseS} s` : NA)), "", ""],
        ["samples", ...cf.map((s) => String(s?.n ?? 0)), "", ""],
        [
          "failover (kill → next holder), median",
          ...cf.map((s) => ms(s?.median)),
          ratio(cf[1]?.median, cf[0]?.median),
          ratio(cf[2]?.median, cf[0]?.median),
        ],
        ["failover, max", ...cf.map((s) => ms(s?.max)), ratio(cf[1]?.max, cf[0]?.max), ratio(cf[2]?.max, cf[0]?.max)],
        [
          "excess over the lease, median",
          ...ce.map((s) => signedMs(s?.median)),
          ratio(ce[1]?.median, ce[0]?.median),
          ratio(ce[2]?.median, ce[0]?.median),
        ],
        ["excess over the lease, max", ...ce.map((s) => signedMs(s?.max)), ratio(ce[1]?.max, ce[0]?.max), ratio(ce[2]?.max, ce[0]?.max)],
      ],
    ),
  );
  out.push("");
  for (const [name, row] of crashCols) if (row) out.push(`- ${name}: ${row.how}.`);
  out.push("");

  // ---- waiting -----------------------------------------------------------
  out.push("## Waiting cost");
  out.push("");
  out.push(
    'Requests the API server served for Leases (its own `apiserver_request_total{resource="leases"}`, summed over verbs, read ' +
      "before and after the window) while one holder held and W others waited. The control plane runs with the API server's own " +
      "identity Lease disabled and no controller manager, and nothing else ran during the window, so the count is exactly this " +
      "traffic. A watch is counted when it ends, so the open Lease watches are shown separately.",
  );
  out.push("");
  const waiterCounts = [...new Set(r.waiting.map((w) => w.waiters))].sort((a, b) => a - b);
  const find = (system: WaitingRow["system"], w: number) => r.waiting.find((row) => row.system === system && row.waiters === w);
  out.push(
    table(
      [
        "waiters",
        "ours: requests/s",
        "client-go: requests/s",
        "client-go ÷ ours",
        "ours: requests in window",
        "client-go: requests in window",
        "open Lease watches (ours / client-go)",
      ],
      waiterCounts.map((w) => {
        const o = find("ours", w);
        const c = find("client-go", w);
        return [
          String(w),
          num(o?.perSecond, 3),
          num(c?.perSecond, 3),
          ratio(c?.perSecond, o?.perSecond),
          o ? `${totalCount(o.byVerb)} in ${o.windowS.toFixed(1)} s (${verbs(o.byVerb)})` : NA,
          c ? `${totalCount(c.byVerb)} in ${c.windowS.toFixed(1)} s (${verbs(c.byVerb)})` : NA,
          `${o?.watchesOpen ?? NA} / ${c?.watchesOpen ?? NA}`,
        ];
      }),
    ),
  );
  out.push("");
  if (waiterCounts.length >= 2) {
    const [w0, w1] = [waiterCounts[0]!, waiterCounts.at(-1)!];
    const slope = (s: WaitingRow["system"]) => {
      const a = find(s, w0);
      const b = find(s, w1);
      if (!a || !b) return undefined;
      const v = (b.perSecond - a.perSecond) / (w1 - w0);
      return Math.abs(v) < 5e-5 ? 0 : v; // no "-0.0000"
    };
    out.push(
      `Cost of one more waiter (slope between ${w0} and ${w1} waiters): ours ${num(slope("ours"), 4)} requests/s, client-go ${num(slope("client-go"), 4)} requests/s.`,
    );
    out.push("");
  }
  for (const row of r.waiting.filter((w) => w.waiters === waiterCounts[0])) out.push(`- ${row.system}: ${row.how}.`);
  out.push("");
  if (plots.waiting) out.push(`![API-server requests per second against waiters](${plots.waiting})`, "");

  // ---- hot ---------------------------------------------------------------
  out.push("## Hot lock throughput");
  out.push("");
  out.push(
    "Lockers take one lock and release it at once, in a loop, for a fixed time; every acquisition after the first is a handoff. " +
      "Ours: two daemons, each with an app process of 8 clients. etcd: two processes, each with 8 sessions, each session looping " +
      "`concurrency.Mutex` Lock/Unlock. Curator: two processes, each with 8 sessions (a Curator client and ZooKeeper session " +
      "each), each looping `InterProcessMutex` acquire/release. client-go has no lock primitive: n/a. " +
      "Ours, non-fair: the same, every client asking `fair: false` (a daemon hands the lock to its own waiters, one write, " +
      "up to 16 grants in a row while the other daemon waits).",
  );
  out.push("");
  const ho = r.hot.ours;
  const he = r.hot.etcd;
  const hc = r.hot.curator;
  const hn = r.hot.oursNonFair;
  const who = (row: HotRow | undefined) => (row ? `${row.sessions} (${row.processes})` : NA);
  const secs = (row: HotRow | undefined) => (row ? `${row.durationS.toFixed(1)} s` : NA);
  const crossDaemon = (row: HotRow | undefined) =>
    row?.crossDaemonHandoffs === undefined ? NA : `${row.crossDaemonHandoffs} (${percentOf(row.crossDaemonHandoffs, row.acquired)})`;
  const oursRow = (label: string, row: HotRow | undefined) => [
    label,
    num(row?.perSecond, 1),
    ratio(he?.perSecond, row?.perSecond),
    crossDaemon(row),
    num(row?.writesPerAcquisition, 2),
    row?.daemonCpuMsPerAcquisition === undefined ? NA : `${num(row.daemonCpuMsPerAcquisition)} ms`,
    row?.tokensUnique === undefined ? NA : row.tokensUnique ? "yes" : "NO",
  ];
  out.push(
    table(
      ["", "ours", "client-go", "etcd Mutex", "Curator InterProcessMutex", "etcd ÷ ours", "Curator ÷ ours"],
      [
        ["lockers (processes)", who(ho), NA, who(he), who(hc), "", ""],
        ["duration", secs(ho), NA, secs(he), secs(hc), "", ""],
        [
          "acquisitions",
          String(ho?.acquired ?? NA),
          NA,
          String(he?.acquired ?? NA),
          String(hc?.acquired ?? NA),
          ratio(he?.acquired, ho?.acquired),
          ratio(hc?.acquired, ho?.acquired),
        ],
        [
          "handoffs per second",
          num(ho?.perSecond, 1),
          NA,
          num(he?.perSecond, 1),
          num(hc?.perSecond, 1),
          ratio(he?.perSecond, ho?.perSecond),
          ratio(hc?.perSecond, ho?.perSecond),
        ],
        [
          "every acquisition had its own fencing token",
          ho?.tokensUnique === undefined ? NA : ho.tokensUnique ? "yes" : "NO",
          NA,
          NA,
          NA,
          "",
          "",
        ],
        ["never two holders at once (from the holders' own stamps)", NA, NA, NA, exclusive(hc), "", ""],
        ["handoff (release → next acquisition), median / p99", NA, NA, NA, handoffCell(hc), "", ""],
        ["daemon CPU (sum of both, % of one core)", num(ho?.daemonCpuPercent, 0), NA, NA, NA, "", ""],
        ["ZooKeeper server CPU (% of one core)", NA, NA, NA, num(hc?.serverCpuPercent, 0), "", ""],
        [
          "handoffs between the two processes (daemons)",
          crossDaemon(ho),
          NA,
          NA,
          hc?.crossProcessHandoffs === undefined ? NA : `${hc.crossProcessHandoffs} (${percentOf(hc.crossProcessHandoffs, hc.acquired)})`,
          "",
          "",
        ],
        [
          "Lease writes per acquisition (2 for a handoff between daemons, 1 within one)",
          num(ho?.writesPerAcquisition, 2),
          NA,
          NA,
          NA,
          "",
          "",
        ],
        ["ZooKeeper requests per acquisition, reads + writes", NA, NA, NA, zkCell(hc), "", ""],
      ],
    ),
  );
  if (hn) {
    out.push("");
    out.push(
      table(
        [
          "ours",
          "handoffs per second",
          "etcd ÷ ours",
          "handoffs between daemons",
          "Lease writes per acquisition",
          "daemon CPU per acquisition, per daemon",
          "own tokens",
        ],
        [oursRow("fair (default)", ho), oursRow("non-fair", hn)],
      ),
    );
  }
  out.push("");
  out.push(...renderSemaphore(r, plots.semaphoreHandoffCdf));
  out.push(...renderRWLock(r.rwlock));

  // ---- scale -------------------------------------------------------------
  out.push("## Scale: one daemon, many locks and observers");
  out.push("");
  const s = r.scale;
  if (s) {
    const holderPut = r.waiting.filter((w) => w.system === "client-go").map((w) => w.byVerb.PUT / w.windowS);
    const cgPerLease = holderPut.length > 0 ? summarize(holderPut).median : undefined;
    const leases = s.locks + s.elections;
    out.push(
      `One daemon held ${s.locks} locks (one Acquire stream each, spread over ${10} client channels) and led ${s.elections} elections ` +
        `followed by ${s.observers} Observe streams, for ${s.windowS.toFixed(0)} s, at the default 15 s lease (renewal every ~5 s).`,
    );
    out.push("");
    out.push(
      table(
        ["", "ours", "client-go (same Leases held)", "client-go ÷ ours"],
        [
          ["time to acquire all locks", ms(s.acquireAllMs), NA, ""],
          ["renewals missed in the window (Lost events)", String(s.lostInWindow), NA, ""],
          ["Lost events since start", String(s.lostTotal), NA, ""],
          ["Renewed events per second", num(s.renewedPerSecond, 1), NA, ""],
          [
            "API writes per second (PUT + POST + PATCH)",
            num(s.writesPerSecond, 1),
            cgPerLease === undefined
              ? NA
              : `${num(cgPerLease * leases, 1)} (extrapolated: ${num(cgPerLease, 3)} PUT/s measured for one held Lease × ${leases})`,
            ratio(cgPerLease === undefined ? undefined : cgPerLease * leases, s.writesPerSecond),
          ],
          [
            "API writes per held Lease per second",
            num(s.writesPerSecond / leases, 3),
            num(cgPerLease, 3),
            ratio(cgPerLease, s.writesPerSecond / leases),
          ],
          ["all Lease requests in the window", verbs(s.byVerb), NA, ""],
          ["observers that got the leader", `${s.observersServed} of ${s.observers}`, NA, ""],
          ["daemon RSS start / max / end", `${mib(s.rssStartBytes)} / ${mib(s.rssMaxBytes)} / ${mib(s.rssEndBytes)}`, NA, ""],
          ["daemon CPU (% of one core)", num(s.cpuPercent, 1), NA, ""],
          ["daemon open sockets, most at once (gRPC clients, its watch, API requests)", String(s.socketsMax), NA, ""],
          ["daemon warnings logged in the window", String(s.daemonWarnings), NA, ""],
        ],
      ),
    );
    out.push("");
    if (s.warningKinds.length > 0) {
      out.push("The daemon's warnings in the window, most frequent first (digits shown as N):");
      out.push("");
      for (const [kind, count] of s.warningKinds) out.push(`- ${count} × \`${kind}\``);
      out.push("");
    }
    out.push(
      "client-go's column is not a separate run: client-go holds one Lease per LeaderElector and renews it every RetryPeriod, so its " +
        "write rate for the same Leases is the measured write rate of one client-go holder (waiting-cost run) times the number of Leases. " +
        "etcd keeps one lease per session however many keys hang off it, and its keep-alives are not API-server requests: n/a.",
    );
  } else out.push(NA);
  out.push("");

  out.push(...renderFleet(r));
  out.push(...renderSoak(r.soak, plots.soakMemory));

  // ---- idle --------------------------------------------------------------
  out.push("## Start-up and idle footprint");
  out.push("");
  out.push(
    "Each instance was started alone and timed from spawn; then all of them idled for a few seconds, each leading one election, " +
      "and their resident memory (VmRSS) and CPU were read from /proc. Ours is the whole sidecar (a Node process); the peers are " +
      "small Go programs linking client-go or the etcd client, i.e. what the library adds to an application's own process.",
  );
  out.push("");
  const io = r.idle.ours;
  const ic = r.idle["client-go"];
  const ie = r.idle.etcd;
  out.push(
    table(
      ["", "ours (sidecar daemon)", "client-go candidate", "etcd peer", "ours ÷ client-go", "ours ÷ etcd"],
      [
        ["instances", String(io?.instances ?? NA), String(ic?.instances ?? NA), String(ie?.instances ?? NA), "", ""],
        ["spawn → health SERVING, median", ms(median(io?.startToServingMs)), NA, NA, "", ""],
        [
          "spawn → leading a free election, median",
          ms(median(io?.startToLeaderMs)),
          ms(median(ic?.startToLeaderMs)),
          ms(median(ie?.startToLeaderMs)),
          ratio(median(io?.startToLeaderMs), median(ic?.startToLeaderMs)),
          ratio(median(io?.startToLeaderMs), median(ie?.startToLeaderMs)),
        ],
        [
          "idle RSS, median",
          mib(median(io?.rssBytes)),
          mib(median(ic?.rssBytes)),
          mib(median(ie?.rssBytes)),
          ratio(median(io?.rssBytes), median(ic?.rssBytes)),
          ratio(median(io?.rssBytes), median(ie?.rssBytes)),
        ],
        ["idle CPU, median (% of one core)", num(median(io?.cpuPercent)), num(median(ic?.cpuPercent)), num(median(ie?.cpuPercent)), "", ""],
      ],
    ),
  );
  out.push("");
  out.push("## Reproduce");
  out.push("");
  out.push("```sh");
  out.push("npm ci && npm run bench            # full run, writes bench/REPORT.md and bench/*.svg");
  out.push("npm run bench -- --quick           # CI-sized run, writes .cache/bench/quick/REPORT-quick.md");
  out.push("```");
  out.push("");
  out.push("Raw samples of this run: `results.json` next to this report. Method and caveats: `bench/README.md`.");
  out.push("");
  return out.join("\n");
}

function percentOf(part: number, whole: number): string {
  return `${Math.round((100 * part) / Math.max(1, whole))} %`;
}

/** Whether the holds of a run never exceeded its permits, from the peers' own stamps. */
function exclusive(row: HotRow | undefined): string {
  if (row?.maxConcurrent === undefined) return NA;
  const permits = row.permits ?? 1;
  return row.maxConcurrent <= permits ? `yes (at most ${row.maxConcurrent})` : `**NO**: ${row.maxConcurrent} at once`;
}

function handoffCell(row: HotRow | undefined): string {
  return row?.handoff && row.handoff.n > 0 ? `${ms(row.handoff.median)} / ${ms(row.handoff.p99)}` : NA;
}

function zkCell(row: HotRow | undefined): string {
  return plus(row?.zkReadsPerAcquisition, row?.zkWritesPerAcquisition);
}

/** The hot semaphore, by hold time: ours on two daemons beside Curator's InterProcessSemaphoreV2 on ZooKeeper. */
function renderSemaphore(r: Results, plot: string | undefined): string[] {
  const out = ["## Hot semaphore", ""];
  const rows = r.semaphore ?? [];
  if (rows.length === 0) return [...out, NA, ""];
  const permits = rows[0]!.permits;
  out.push(
    `Lockers share a semaphore of ${permits ?? NA} permits: each takes a permit, keeps it for the hold time and gives it back, ` +
      "in a loop, for a fixed time. Ours: two daemons (separate processes), each with an app process of 8 clients, each client " +
      "looping `AcquirePermit` (a stream), the hold, and `ReleasePermit` (answered once the permit is given back). Curator: two " +
      "processes, each with 8 sessions (a Curator client and ZooKeeper session each), each looping `InterProcessSemaphoreV2` " +
      "acquire / `Lease.close()`; every caller passes N itself, and nothing checks that they agree unless they share it through " +
      "a `SharedCount` (ours refuses another N with `PERMITS_MISMATCH`). Every process stamps each hold (CLOCK_MONOTONIC: acquire " +
      "returned, release began, release returned) and the harness merges them in time: with every permit held and lockers " +
      "waiting, the (N + k)-th acquisition waits for the k-th release, and a handoff is timed from that release to that " +
      "acquisition. *Between the processes* keeps the handoffs whose release and acquisition were in different processes: for " +
      "ours, a release on one daemon until `acquired` at a client of the other. Ours also stamps when each acquisition was asked " +
      "for, which tells whether the next holder was already waiting when the release began. With no hold Curator's semaphore " +
      "never has all its permits taken (its acquisitions pass through an internal lock), so no release hands over to a waiter: " +
      "its handoff is n/a there. Ours' cost is the API server's Lease requests during the run " +
      '(`apiserver_request_total{resource="leases"}`, read before and after), per grant, by verb; Curator\'s is the ZooKeeper ' +
      "server's own counters (`mntr`), requests and packets, per acquisition: a different unit.",
  );
  out.push("");
  const holds = [...new Set(rows.map((row) => row.holdMs ?? 0))].sort((a, b) => a - b);
  const cols = holds.flatMap((hold) =>
    (["ours", "curator"] as const).map((system) => ({
      name: `${system === "ours" ? "ours" : "Curator InterProcessSemaphoreV2"}, hold ${hold} ms`,
      hold,
      row: rows.find((row) => row.system === system && (row.holdMs ?? 0) === hold),
    })),
  );
  const cell = (show: (row: SemaphoreRow, hold: number) => string) => cols.map(({ row, hold }) => (row ? show(row, hold) : NA));
  const summary = (pick: (row: SemaphoreRow) => Summary | undefined, stat: (s: Summary) => number) => (row: SemaphoreRow, hold: number) => {
    const s = pick(row);
    return handoffsTimed(hold, row.waitedShare) && s && s.n > 0 ? ms(stat(s)) : NA;
  };
  const perGrant = (verb: (typeof GRANT_VERBS)[number]) => (row: SemaphoreRow) =>
    row.leaseRequests ? num(countsPer(row.leaseRequests, row.acquired)[verb], 2) : NA;
  out.push(
    table(
      ["", ...cols.map((c) => c.name)],
      [
        ...loopRows(cell),
        ["acquisitions (grants)", ...cell((row) => String(row.acquired))],
        ["grants per second", ...cell((row) => num(row.perSecond, 1))],
        [
          "handoff (release → the acquisition it made room for), median",
          ...cell(
            summary(
              (row) => row.handoff,
              (s) => s.median,
            ),
          ),
        ],
        [
          "handoff, p99",
          ...cell(
            summary(
              (row) => row.handoff,
              (s) => s.p99,
            ),
          ),
        ],
        [
          "handoff, max",
          ...cell(
            summary(
              (row) => row.handoff,
              (s) => s.max,
            ),
          ),
        ],
        [
          "handoff between the processes (ours: release on one daemon → acquired on the other), median",
          ...cell(
            summary(
              (row) => row.crossHandoff,
              (s) => s.median,
            ),
          ),
        ],
        [
          "handoff between the processes, p99",
          ...cell(
            summary(
              (row) => row.crossHandoff,
              (s) => s.p99,
            ),
          ),
        ],
        [
          "handoffs between the two processes",
          ...cell((row, hold) =>
            handoffsTimed(hold, row.waitedShare) && row.crossProcessHandoffs !== undefined
              ? `${row.crossProcessHandoffs} (${percentOf(row.crossProcessHandoffs, row.handoff?.n ?? 0)} of handoffs)`
              : NA,
          ),
        ],
        [
          "next holder already waiting when the release began (share of handoffs)",
          ...cell((row) => (row.waitedShare === undefined ? NA : `${(100 * row.waitedShare).toFixed(1)} %`)),
        ],
        ["never more holders than permits (from the holders' own stamps)", ...cell((row) => exclusive(row))],
        [
          "every grant had its own fencing token",
          ...cell((row) => (row.tokensUnique === undefined ? NA : row.tokensUnique ? "yes" : "**NO**")),
        ],
        ["release call, median", ...cell((row) => ms(row.release?.median))],
        ...GRANT_VERBS.map((verb) => [`API-server Lease requests per grant: ${verb}`, ...cell(perGrant(verb))]),
        [
          "API-server Lease requests per grant, all verbs",
          ...cell((row) => (row.leaseRequests ? num(totalCount(row.leaseRequests) / row.acquired, 2) : NA)),
        ],
        ["API-server Lease requests in the run", ...cell((row) => (row.leaseRequests ? verbs(row.leaseRequests) : NA))],
        ["ZooKeeper requests per acquisition, reads + writes", ...cell((row) => zkCell(row))],
        [
          "ZooKeeper packets per acquisition, received + sent",
          ...cell((row) => plus(row.zkPacketsReceivedPerAcquisition, row.zkPacketsSentPerAcquisition)),
        ],
        ...cpuRows(cell),
      ],
    ),
  );
  out.push("");
  if (plot) out.push(`![Semaphore handoff between the processes, CDF](${plot})`, "");
  return out;
}

/** The verbs whose requests per grant the Hot semaphore section shows one by one. */
const GRANT_VERBS = ["PUT", "POST", "PATCH", "GET"] as const;

const FLEET_ROLES: ReadonlyArray<[Exclude<FleetRole, "many-locks">, string]> = [
  ["holder", "holds 1 lock"],
  ["leader", "leads 1 election"],
  ["waiter", "waits on 1 lock held elsewhere, follows 1 election"],
];

/** The Fleet section: this run's figures beside those of bench/fleet-before.json (an earlier daemon, same phase). */
function renderFleet(r: Results): string[] {
  const out = ["## Fleet: what idle sidecars pay for Leases they never use", ""];
  const now = r.fleet;
  if (!now) return [...out, NA, ""];
  const before = r.fleetBefore;
  const small = (row: FleetRow | undefined) => row?.fleet.slice(1) ?? [];
  const events = (d: FleetDaemonRow) => sumOf(d.watchEvents);
  const requests = (d: FleetDaemonRow) => sumOf(d.apiRequests);
  const stat = (row: FleetRow | undefined, pick: (d: FleetDaemonRow) => number, role?: FleetRole) => {
    const values = small(row)
      .filter((d) => role === undefined || d.role === role)
      .map(pick);
    return values.length === 0 ? undefined : summarize(values);
  };
  const count = (v: number | undefined, row: FleetRow | undefined) =>
    v === undefined || row === undefined || !Number.isFinite(v)
      ? NA
      : `${Math.round(v).toLocaleString("en-US")} (${num(v / row.windowS, 1)}/s)`;
  const byKey = (counts: Record<string, number>) => {
    const parts = Object.entries(counts).filter(([, n]) => n !== 0);
    return parts.length === 0 ? "none" : parts.map(([k, n]) => `${k} ${n}`).join(", ");
  };
  const sumByKey = (rows: readonly FleetDaemonRow[], pick: (d: FleetDaemonRow) => Record<string, number>) => {
    const sums: Record<string, number> = {};
    for (const d of rows) for (const [k, n] of Object.entries(pick(d))) sums[k] = (sums[k] ?? 0) + n;
    return sums;
  };
  const n = now.daemons - 1;
  out.push(
    `${now.daemons} of our daemons (separate processes, the lean build) share one namespace. Daemon 0's clients hold ${now.locks} ` +
      "locks through Acquire streams, which the daemon renews every ~5 s (default 15 s lease). The other " +
      `${n} *small* daemons serve clients that use one or two names of their own, in turn: a holder holds one lock, a leader leads ` +
      "one election, a waiter waits on a holder's lock and follows a leader's election. Nobody else uses Leases. After a " +
      `${now.settleS} s settle, everything is read before and after a ${now.windowS.toFixed(0)} s window: each daemon's own ` +
      "counters from its `/metrics` (`msync_watch_events_total`, the events its Lease watch received; `msync_api_requests_total`, " +
      "its requests to the API server), its CPU time (utime + stime, /proc) and its RSS at the end; and the API server's " +
      '`apiserver_watch_events_total` and `apiserver_watch_events_sizes_sum` for `{group="coordination.k8s.io",resource="leases"}` ' +
      "(the events and bytes it sent to all Lease watchers), its Lease requests and its own CPU. The *before* column is the same " +
      "phase run on an earlier daemon, kept in `bench/fleet-before.json`; the other column is this run.",
  );
  out.push("");
  const beforeHead = before ? `before (daemon of git ${before.daemonCommit}, ${before.date.slice(0, 10)})` : "before";
  const nowHead = `this run (${r.meta.daemonVersion})`;
  const both = (f: (row: FleetRow) => string): [string, string] => [before ? f(before.row) : NA, f(now)];
  const rate = (f: (row: FleetRow) => number | undefined): [string, string, string] => {
    const [b, a] = [before ? f(before.row) : undefined, f(now)];
    return [count(b, before?.row), count(a, now), ratio(b, a)];
  };
  const plain = (f: (row: FleetRow) => number | undefined, show: (v: number | undefined) => string): [string, string, string] => {
    const [b, a] = [before ? f(before.row) : undefined, f(now)];
    return [show(b), show(a), ratio(b, a)];
  };
  const pct = (v: number | undefined) => num(v, 1);
  out.push(
    table(
      ["", beforeHead, nowHead, "before ÷ this run"],
      [
        ["daemons; locks held through daemon 0; window", ...both((row) => `${row.daemons}; ${row.locks}; ${row.windowS.toFixed(0)} s`), ""],
        ["watch events received by daemon 0", ...rate((row) => events(row.fleet[0]!))],
        ["watch events received per small daemon, median", ...rate((row) => stat(row, events)?.median)],
        ["watch events received per small daemon, max", ...rate((row) => stat(row, events)?.max)],
        ["watch events received, all small daemons together", ...rate((row) => small(row).reduce((t, d) => t + events(d), 0))],
        ["the same, by type", ...both((row) => byKey(sumByKey(small(row), (d) => d.watchEvents))), ""],
        ["API server: Lease watch events sent (all watchers)", ...rate((row) => row.apiServer.watchEvents)],
        ["API server: bytes of those events", ...plain((row) => row.apiServer.watchEventBytes, mib)],
        ["watch restarts, all daemons together, by reason", ...both((row) => byKey(sumByKey(row.fleet, (d) => d.watchRestarts))), ""],
        ["API server: Lease watchers it closed for not keeping up", ...both((row) => String(row.apiServer.terminatedWatchers)), ""],
        ["API server: Lease watches open at the end", ...both((row) => String(row.apiServer.watchesOpen)), ""],
        ["API server: Lease requests in the window", ...both((row) => verbs(row.apiServer.byVerb)), ""],
        ["kube-apiserver CPU (% of one core)", ...plain((row) => row.apiServer.cpuPercent, pct)],
        ["CPU per small daemon, median (% of one core)", ...plain((row) => stat(row, (d) => d.cpuPercent)?.median, pct)],
        ["CPU per small daemon, max", ...plain((row) => stat(row, (d) => d.cpuPercent)?.max, pct)],
        ["CPU of daemon 0", ...plain((row) => row.fleet[0]!.cpuPercent, pct)],
        ["RSS per small daemon, median", ...plain((row) => stat(row, (d) => d.rssBytes)?.median, mib)],
        ["RSS per small daemon, max", ...plain((row) => stat(row, (d) => d.rssBytes)?.max, mib)],
        ["RSS of daemon 0", ...plain((row) => row.fleet[0]!.rssBytes, mib)],
        ["API requests of daemon 0 in the window", ...both((row) => byKey(row.fleet[0]!.apiRequests)), ""],
        [
          "API requests per small daemon in the window, max: holder / leader / waiter",
          ...both((row) => FLEET_ROLES.map(([role]) => String(stat(row, requests, role)?.max ?? NA)).join(" / ")),
          "",
        ],
        ["Lost events and depositions in the window", ...both((row) => String(row.lostInWindow)), ""],
      ],
    ),
  );
  out.push("");
  out.push(
    "When a watcher falls behind, the API server closes its watch (`apiserver_terminated_watchers_total`) and the daemon resumes " +
      "it (a restart with reason `ended`); how often that happens depends on how busy the machine is, so compare the load averages.",
  );
  out.push("");
  out.push("The small daemons by role (medians over the daemons of each role, over the window):");
  out.push("");
  out.push(
    table(
      [
        "role",
        "daemons",
        "its clients",
        "watch events received, before / this run",
        "API requests, before / this run",
        "CPU % of one core, before / this run",
      ],
      FLEET_ROLES.map(([role, what]) => {
        const pair = (pick: (d: FleetDaemonRow) => number, show: (v: number | undefined) => string) =>
          `${show(stat(before?.row, pick, role)?.median)} / ${show(stat(now, pick, role)?.median)}`;
        return [
          role,
          String(small(now).filter((d) => d.role === role).length),
          what,
          pair(events, (v) => (v === undefined ? NA : String(v))),
          pair(requests, (v) => (v === undefined ? NA : String(v))),
          pair((d) => d.cpuPercent, pct),
        ];
      }),
    ),
  );
  out.push("");
  if (!before) out.push(`No ${r.meta.quick ? "quick" : "full"} run in \`bench/fleet-before.json\`: the before column is empty.`, "");
  else if (before.row.daemons !== now.daemons || before.row.locks !== now.locks || Math.abs(before.row.windowS - now.windowS) > 1)
    out.push("The before run had another size (see the first row): compare rates, not counts.", "");
  if (before)
    out.push(
      `- before: ${before.row.how === now.how ? "the same fleet" : before.row.how}; measured at commit ${before.commit} ` +
        `with \`${before.command}\`, load average ${before.load}.`,
    );
  out.push(`- this run: ${now.how}.`);
  out.push("");
  return out;
}

/** The fleet-cost goals, each with the committed report's figure before the work and this run's. */
function renderCostGoals(r: Results): string[] {
  const before = COST_BEFORE;
  const idle = r.idle.ours;
  const lock = r.handoff.ours;
  const hot = r.hot.ours;
  const etcd = r.hot.etcd;
  // Watch events per minute received by the median daemon of the fleet other than the one with many locks.
  const idleEventsPerMinute = (row: FleetRow | undefined) => {
    const small = row?.fleet.slice(1).map((d) => sumOf(d.watchEvents)) ?? [];
    return row === undefined || small.length === 0 ? undefined : (60 * summarize(small).median) / row.windowS;
  };
  const p99 = lock ? summarize(lock.samples).p99 : undefined;
  const rows: string[][] = [
    [
      "idle RSS, Kubernetes backend, median",
      mib(before.idleRssMiB * MIB),
      mib(median(idle?.rssBytes)),
      "<= 64 MiB",
      verdict(idle && median(idle.rssBytes)! <= 64 * MIB),
    ],
    [
      "spawn → health SERVING, median",
      ms(before.startToServingMs),
      ms(median(idle?.startToServingMs)),
      "<= 200 ms",
      verdict(idle?.startToServingMs && median(idle.startToServingMs)! <= 200),
    ],
    [
      `RSS holding 1,000 locks for 1,000 observers, max${r.scale && r.scale.locks < 1000 ? ` (this run: ${r.scale.locks} + ${r.scale.observers})` : ""}`,
      mib(before.scaleRssMaxMiB * MIB),
      mib(r.scale?.rssMaxBytes),
      "<= 128 MiB",
      verdict(r.scale && r.scale.locks >= 1000 ? r.scale.rssMaxBytes <= 128 * MIB : undefined),
    ],
    [
      "watch events an idle sidecar receives, per minute (fleet phase, median small daemon)",
      num(idleEventsPerMinute(r.fleetBefore?.row), 0),
      num(idleEventsPerMinute(r.fleet), 0),
      "only its own names",
      NA,
    ],
    [
      "Lease writes per acquisition, hot lock",
      `${num(before.lockHandoffWritesPerRound, 1)} per graceful handoff round`,
      num(hot?.writesPerAcquisition, 2),
      "2 per handoff",
      verdict(hot?.writesPerAcquisition === undefined ? undefined : hot.writesPerAcquisition <= 2.05),
    ],
    [
      "hot lock, handoffs/s: ours ÷ etcd Mutex",
      `${num(before.hotOursPerSecond, 1)} ÷ ${num(before.hotEtcdPerSecond, 1)} = ×${num(before.hotOursPerSecond / before.hotEtcdPerSecond, 2)}`,
      hot && etcd ? `${num(hot.perSecond, 1)} ÷ ${num(etcd.perSecond, 1)} = ×${num(hot.perSecond / etcd.perSecond, 2)}` : NA,
      ">= ×1.0",
      verdict(hot && etcd ? hot.perSecond >= etcd.perSecond : undefined),
    ],
    [
      "graceful lock handoff, median",
      ms(before.lockHandoffMedianMs),
      ms(median(lock?.samples)),
      "<= 10.7 ms",
      verdict(lock && median(lock.samples)! <= 10.7),
    ],
    ["graceful lock handoff, p99", ms(before.lockHandoffP99Ms), ms(p99), "<= 30 ms", verdict(p99 === undefined ? undefined : p99 <= 30)],
    [
      "Lease writes per graceful handoff round (release, take-over, the old holder asking again)",
      num(before.lockHandoffWritesPerRound, 1),
      num(lock?.writesPerRound, 1),
      "",
      NA,
    ],
  ];
  return [
    "## Cost at fleet scale: before and after",
    "",
    `*Before* is ${before.source}; *this run* is the run this report comes from. Each goal's verdict is read off this run alone; the machine's load (top of the page) moves the latency rows.`,
    "",
    table(["", "before", "this run", "goal", "verdict"], rows),
    "",
  ];
}

/** The committed report's figures before the fleet-cost work (bench/cost-before.json). */
const COST_BEFORE = JSON.parse(readFileSync(new URL("../../../bench/cost-before.json", import.meta.url), "utf8")) as {
  source: string;
  idleRssMiB: number;
  startToServingMs: number;
  scaleRssMaxMiB: number;
  hotOursPerSecond: number;
  hotEtcdPerSecond: number;
  lockHandoffMedianMs: number;
  lockHandoffP99Ms: number;
  lockHandoffWritesPerRound: number;
};
