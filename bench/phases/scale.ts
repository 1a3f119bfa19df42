// Scale: one daemon holding many locks (each renewed every lease/3) and
// serving many Observe streams, for a fixed window: missed renewals, API
// writes, memory and CPU.
import { SyncClient } from "metaparticle-sync-client";
import { nowMs, sleep, within } from "../lib/clock.js";
import { type BenchContext, diffCounts } from "../lib/context.js";
import { LockStream } from "../lib/lock-stream.js";
import { CpuMeter, rssBytes, socketCount } from "../lib/proc.js";
import type { ScaleRow } from "../lib/results.js";

const ELECTIONS = 10;
const CHANNELS = 10;

export async function scaleOurs(ctx: BenchContext): Promise<ScaleRow> {
  const { scaleLocks, scaleObservers, scaleWindowMs } = ctx.params;
  const namespace = await ctx.newNamespace("scale");
  const daemon = await ctx.startDaemon(namespace, "scale");
  const clients = Array.from({ length: CHANNELS }, () => new SyncClient({ address: daemon.address }));
  const observers: Array<{ cancel(): void; messages: number }> = [];
  const streams: LockStream[] = [];
  const campaigns: Array<{ close(): void }> = [];
  try {
    // Take the locks, at most 50 acquisitions in flight.
    const t0 = nowMs();
    for (let i = 0; i < scaleLocks; i += 50) {
      const batch = Array.from({ length: Math.min(50, scaleLocks - i) }, (_, j) => {
        const stream = new LockStream(clients[(i + j) % CHANNELS]!, `scale-${i + j}`, `holder-${i + j}`);
        streams.push(stream);
        return stream.acquired;
      });
      await within(Promise.all(batch), 120_000, `acquiring locks ${i}..${i + batch.length - 1}`);
    }
    const acquireAllMs = nowMs() - t0;
    ctx.log(`scale: ${scaleLocks} locks acquired in ${Math.round(acquireAllMs)} ms`);
    // Leaders of a few elections, and the observers following them.
    for (let e = 0; e < ELECTIONS; e++) {
      const campaign = clients[e % CHANNELS]!.campaign(`scale-e${e}`, { candidate: `leader-${e}` });
      campaign.done.catch(() => {});
      campaigns.push(campaign);
    }
    const firstMessages: Array<Promise<void>> = [];
    for (let o = 0; o < scaleObservers; o++) {
      const call = clients[o % CHANNELS]!.elections.observe({ name: `scale-e${o % ELECTIONS}` });
      const entry = { cancel: () => call.cancel(), messages: 0 };
      observers.push(entry);
      firstMessages.push(
        new Promise<void>((resolve, reject) => {
          call.on("data", (m: { leader: string }) => {
            entry.messages += 1;
            if (m.leader !== "") resolve();
          });
          call.on("error", (err: Error & { code?: number }) => (err.code === 1 ? undefined : reject(err)));
        }),
      );
    }
    await within(Promise.all(firstMessages), 60_000, "every observer hearing its leader");
    await sleep(2_000);

    const lostBefore = streams.reduce((n, s) => n + s.losses.length, 0);
    const renewedBefore = streams.reduce((n, s) => n + s.renewals.length, 0);
    const warningsBefore = daemon.warnings.length;
    const before = await ctx.leaseRequests();
    const cpu = new CpuMeter(daemon.pid);
    const rssStart = rssBytes(daemon.pid);
    let rssMax = rssStart;
    let socketsMax = socketCount(daemon.pid);
    const windowStart = performance.now();
    while (performance.now() - windowStart < scaleWindowMs) {
      await sleep(Math.min(1000, scaleWindowMs - (performance.now() - windowStart)));
      rssMax = Math.max(rssMax, rssBytes(daemon.pid));
      socketsMax = Math.max(socketsMax, socketCount(daemon.pid));
    }
    const seconds = (performance.now() - windowStart) / 1000;
    const cpuPercent = cpu.percent();
    const after = await ctx.leaseRequests();
    const rssEnd = rssBytes(daemon.pid);
    const lostTotal = streams.reduce((n, s) => n + s.losses.length, 0);
    const renewed = streams.reduce((n, s) => n + s.renewals.length, 0) - renewedBefore;
    const byVerb = diffCounts(before, after);
    return {
      locks: scaleLocks,
      observers: scaleObservers,
      elections: ELECTIONS,
      windowS: seconds,
      acquireAllMs,
      lostInWindow: lostTotal - lostBefore,
      lostTotal,
      renewedPerSecond: renewed / seconds,
      byVerb,
      writesPerSecond: (byVerb.PUT + byVerb.POST + byVerb.PATCH) / seconds,
      rssStartBytes: rssStart,
      rssMaxBytes: rssMax,
      rssEndBytes: rssEnd,
      cpuPercent,
      socketsMax,
      observersServed: observers.filter((o) => o.messages > 0).length,
      daemonWarnings: daemon.warnings.length - warningsBefore,
      warningKinds: countKinds(daemon.warnings.slice(warningsBefore)),
    };
  } finally {
    for (const o of observers) o.cancel();
    for (const c of campaigns) c.close();
    for (const s of streams) s.cancel();
    for (const c of clients) c.close();
    await daemon.stop(20_000);
  }
}

/** Daemon warnings grouped by message and error text (digits masked), most frequent first. */
export function countKinds(warnings: ReadonlyArray<Record<string, unknown>>): Array<[string, number]> {
  const counts = new Map<string, number>();
  for (const w of warnings) {
    const err =
      typeof w.err === "string"
        ? w.err
        : typeof w.err === "object" && w.err !== null
          ? String((w.err as { message?: unknown }).message)
          : "";
    const key = `${String(w.msg)}${err ? `: ${err}` : ""}${w.reason ? ` (${String(w.reason)})` : ""}`.replace(/\d+/g, "N").slice(0, 160);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].sort((a, b) => b[1] - a[1]).slice(0, 8);
}
