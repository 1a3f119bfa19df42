// Start-up and idle footprint: time from spawn to serving (ours) and to
// leading a free election (all three), then resident memory and CPU while
// each instance just keeps leading its election.
import { nowMs, sleep, within } from "../lib/clock.js";
import type { BenchContext } from "../lib/context.js";
import type { OurDaemon } from "../lib/daemon.js";
import type { PeerProcess } from "../lib/peer.js";
import { CpuMeter, rssBytes } from "../lib/proc.js";
import type { IdleRow } from "../lib/results.js";

export type IdleResults = Record<"ours" | "client-go" | "etcd", IdleRow>;

export async function idle(ctx: BenchContext): Promise<IdleResults> {
  const { idleInstances, idleSettleMs } = ctx.params;
  const namespace = await ctx.newNamespace("idle");
  const daemons: OurDaemon[] = [];
  const peers: PeerProcess[] = [];
  try {
    // One at a time, so start-up is timed on an otherwise quiet machine.
    const ours: IdleRow = { instances: idleInstances, startToServingMs: [], startToLeaderMs: [], rssBytes: [], cpuPercent: [] };
    for (let i = 0; i < idleInstances; i++) {
      const daemon = await ctx.startDaemon(namespace, `idle-${i}`);
      daemons.push(daemon);
      let elected!: (at: number) => void;
      const electedAt = new Promise<number>((resolve) => (elected = resolve));
      const campaign = daemon.client.campaign(`idle-${i}`, { candidate: `app-${i}`, onElected: () => elected(nowMs()) });
      campaign.done.catch(() => {});
      const at = await within(electedAt, 30_000, "idle daemon elected");
      ours.startToServingMs!.push(daemon.startToServingMs);
      ours.startToLeaderMs.push(at - daemon.spawnedAt);
    }
    const clientGo: IdleRow = { instances: idleInstances, startToLeaderMs: [], rssBytes: [], cpuPercent: [] };
    for (let i = 0; i < idleInstances; i++) {
      const spawnedAt = nowMs();
      const peer = ctx.clientGo(namespace, `idle-cg-${i}`, `idle-cg-${i}`);
      peers.push(peer);
      clientGo.startToLeaderMs.push((await peer.waitForEvent("elected", 30_000)).at - spawnedAt);
    }
    const etcd: IdleRow = { instances: idleInstances, startToLeaderMs: [], rssBytes: [], cpuPercent: [] };
    const etcdPeers: PeerProcess[] = [];
    for (let i = 0; i < idleInstances; i++) {
      const spawnedAt = nowMs();
      const peer = ctx.etcd(`idle-${Date.now()}-${i}`, `idle-etcd-${i}`, ["--ttl=15"]);
      etcdPeers.push(peer);
      etcd.startToLeaderMs.push((await peer.waitForEvent("elected", 30_000)).at - spawnedAt);
    }
    peers.push(...etcdPeers);
    const cgPeers = peers.slice(0, idleInstances);
    // Everyone now idles, leading one election each.
    const meters = [...daemons.map((d) => d.pid), ...peers.map((p) => p.pid)].map((pid) => new CpuMeter(pid));
    await sleep(idleSettleMs);
    const pids = [...daemons.map((d) => d.pid), ...cgPeers.map((p) => p.pid), ...etcdPeers.map((p) => p.pid)];
    const rows = [ours, clientGo, etcd];
    pids.forEach((pid, k) => {
      const row = rows[Math.floor(k / idleInstances)]!;
      row.rssBytes.push(rssBytes(pid));
      row.cpuPercent.push(meters[k]!.percent());
    });
    return { ours, "client-go": clientGo, etcd };
  } finally {
    await Promise.all([...daemons.map((d) => d.stop()), ...peers.map((p) => p.stop(5_000))]);
  }
}
