// Waiting cost: what one holder and W waiters cost the API server, counted by
// the API server itself (apiserver_request_total{resource="leases"}, read
// before and after a window in which nothing else touches Leases).
import { sleep, within } from "../lib/clock.js";
import { type BenchContext, diffCounts, totalCount } from "../lib/context.js";
import type { OurDaemon } from "../lib/daemon.js";
import type { PeerProcess } from "../lib/peer.js";
import type { WaitingRow } from "../lib/results.js";

async function window(ctx: BenchContext, row: Omit<WaitingRow, "byVerb" | "perSecond" | "watchesOpen" | "windowS">): Promise<WaitingRow> {
  const { waitingWindowMs } = ctx.params;
  const before = await ctx.leaseRequests();
  const t0 = performance.now();
  await sleep(waitingWindowMs);
  const after = await ctx.leaseRequests();
  const seconds = (performance.now() - t0) / 1000;
  const watchesOpen = await ctx.leaseWatchesOpen();
  const byVerb = diffCounts(before, after);
  return { ...row, windowS: seconds, byVerb, perSecond: totalCount(byVerb) / seconds, watchesOpen };
}

/** Ours: the holder is a client of daemon A; the waiters are clients spread over daemons A and B. */
export async function waitingOurs(ctx: BenchContext, waiters: number): Promise<WaitingRow> {
  const namespace = await ctx.newNamespace(`wait-ours-${waiters}`);
  const daemons: OurDaemon[] = [await ctx.startDaemon(namespace, "wait-a"), await ctx.startDaemon(namespace, "wait-b")];
  const aborts = new AbortController();
  try {
    const holder = await daemons[0]!.client.lock("wait", { holder: "holder" });
    const waiting = Array.from({ length: waiters }, (_, i) =>
      daemons[i % 2]!.client.lock("wait", { holder: `waiter-${i}`, signal: aborts.signal }).then(
        () => {
          throw new Error(`waiter-${i} acquired the lock while it was held`);
        },
        () => undefined,
      ),
    );
    await sleep(ctx.params.waitingSettleMs);
    const row = await window(ctx, {
      system: "ours",
      waiters,
      how: `1 holder (client of daemon A) + ${waiters} waiting clients over 2 daemons; default 15 s lease`,
    });
    if (holder.lost) throw new Error("the holder lost its lock during the window");
    aborts.abort();
    await Promise.all(waiting);
    await holder.release();
    return row;
  } finally {
    aborts.abort();
    await Promise.all(daemons.map((d) => d.stop()));
  }
}

/** client-go: 1 + W candidate processes (one Go process per candidate, as in one candidate per pod), defaults 15 s / 10 s / 2 s. */
export async function waitingClientGo(ctx: BenchContext, waiters: number): Promise<WaitingRow> {
  const namespace = await ctx.newNamespace(`wait-cg-${waiters}`);
  const peers: PeerProcess[] = [];
  try {
    const holder = ctx.clientGo(namespace, "wait", "holder");
    peers.push(holder);
    await holder.waitForEvent("elected", 60_000);
    for (let i = 0; i < waiters; i++) {
      peers.push(ctx.clientGo(namespace, "wait", `waiter-${i}`));
      if (i % 10 === 9) await sleep(100); // spread the start-up a little
    }
    await within(
      Promise.all(peers.slice(1).map((p) => p.waitFor((e) => e.event === "leader" && e.leader === "holder", 60_000))),
      90_000,
      "client-go waiters observing the holder",
    );
    await sleep(ctx.params.waitingSettleMs);
    const row = await window(ctx, {
      system: "client-go",
      waiters,
      how: `1 holder + ${waiters} candidates, each its own Go process; LeaseDuration 15 s, RenewDeadline 10 s, RetryPeriod 2 s`,
    });
    if (peers.slice(1).some((p) => p.events.some((e) => e.event === "elected")))
      throw new Error("a waiter was elected while the holder lived");
    return row;
  } finally {
    await Promise.all(peers.map((p, i) => p.stop(5_000, i === 0 ? "SIGTERM" : "SIGKILL")));
  }
}
