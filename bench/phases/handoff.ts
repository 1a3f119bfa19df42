// Graceful handoff: the holder lets go (release, resign, or a clean exit on
// SIGTERM) and the next holder, in another process, is elected. Each system
// is measured the way its users would hand over.
import type { Lock } from "metaparticle-sync-client";
import { nowMs, sleep, within } from "../lib/clock.js";
import type { BenchContext } from "../lib/context.js";
import type { OurDaemon } from "../lib/daemon.js";
import type { PeerProcess } from "../lib/peer.js";
import { LeaseWatch } from "../lib/lease-watch.js";
import { CpuMeter } from "../lib/proc.js";
import { assertSameClock } from "../lib/zookeeper.js";
import type { HandoffRow, HandoffSteps } from "../lib/results.js";

/**
 * Ours, locks: a client of daemon A holds the lock, a client of daemon B
 * waits; A's client releases (closes its Acquire stream) and B's client gets
 * Acquired. Then A's client queues again and the roles swap.
 */
export async function handoffOursLock(ctx: BenchContext): Promise<HandoffRow> {
  const { handoffN, handoffWarmup, handoffSettleMs } = ctx.params;
  const namespace = await ctx.newNamespace("handoff-lock");
  const daemons = [await ctx.startDaemon(namespace, "handoff-a"), await ctx.startDaemon(namespace, "handoff-b")];
  const aborts = new AbortController();
  try {
    const lock = (side: number): Promise<Lock> =>
      daemons[side]!.client.lock("handoff", { holder: `client-${side}`, waitTimeout: 60_000, signal: aborts.signal });
    let holder = await lock(0);
    const watch = await LeaseWatch.start(ctx.cp, namespace, "msync-lock-handoff");
    const steps: HandoffSteps = { releaseVisibleMs: [], takeoverVisibleMs: [], toClientMs: [] };
    let waiting = lock(1);
    waiting.catch(() => {});
    let holderSide = 0;
    await sleep(handoffSettleMs);
    const samples: number[] = [];
    const writes = new WriteMeter(ctx);
    let meters: CpuMeter[] = [];
    for (let round = 0; round < handoffWarmup + handoffN && ctx.remainingMs() > 0; round++) {
      if (round === handoffWarmup) {
        await writes.start();
        meters = daemons.map((d) => new CpuMeter(d.pid));
      }
      const t0 = nowMs();
      await holder.release();
      const next = await within(waiting, 30_000, "lock handoff");
      const t1 = nowMs();
      if (next.token <= holder.token) throw new Error(`fencing token did not increase: ${holder.token} -> ${next.token}`);
      if (round >= handoffWarmup) {
        samples.push(t1 - t0);
        const released = watch.firstAfter(t0);
        const taken = watch.firstAfter(t0, (c) => c.transitions >= next.token);
        if (released && taken) {
          steps.releaseVisibleMs.push(released.at - t0);
          steps.takeoverVisibleMs.push(taken.at - released.at);
          steps.toClientMs.push(t1 - taken.at);
        }
      }
      waiting = lock(holderSide);
      waiting.catch(() => {});
      holderSide = 1 - holderSide;
      holder = next;
      await sleep(handoffSettleMs);
    }
    const cpuMs = meters.reduce((sum, m) => sum + m.ms(), 0);
    const written = await writes.stop(samples.length);
    watch.close();
    await holder.release();
    return {
      samples,
      ...written,
      steps,
      daemonCpuMsPerRound: cpuMs / samples.length / daemons.length,
      from: "client calls release() (cancels its Acquire stream) on daemon A",
      to: "Acquired arrives at a client of daemon B",
    };
  } finally {
    aborts.abort();
    await Promise.all(daemons.map((d) => d.stop()));
  }
}

/** Ours, elections: the leader's client calls Resign; a candidate on the other daemon hears Elected. */
export async function handoffOursElection(ctx: BenchContext): Promise<HandoffRow> {
  const { handoffN, handoffWarmup, handoffSettleMs } = ctx.params;
  const namespace = await ctx.newNamespace("handoff-elect");
  const daemons = [await ctx.startDaemon(namespace, "elect-a"), await ctx.startDaemon(namespace, "elect-b")];
  try {
    const join = (daemon: OurDaemon, candidate: string) => {
      let elected!: (at: number) => void;
      const electedAt = new Promise<number>((resolve) => (elected = resolve));
      const campaign = daemon.client.campaign("handoff", { candidate, onElected: () => elected(nowMs()) });
      campaign.done.catch(() => {});
      return { campaign, electedAt };
    };
    let leader = join(daemons[0]!, "candidate-0");
    await within(leader.electedAt, 30_000, "first election");
    let follower = join(daemons[1]!, "candidate-1");
    let leaderSide = 0;
    await sleep(handoffSettleMs);
    const samples: number[] = [];
    const writes = new WriteMeter(ctx);
    for (let round = 0; round < handoffWarmup + handoffN && ctx.remainingMs() > 0; round++) {
      if (round === handoffWarmup) await writes.start();
      const t0 = nowMs();
      await leader.campaign.resign();
      const t1 = await within(follower.electedAt, 30_000, "election handoff");
      if (round >= handoffWarmup) samples.push(t1 - t0);
      leader = follower;
      follower = join(daemons[leaderSide]!, `candidate-${leaderSide}`);
      leaderSide = 1 - leaderSide;
      await sleep(handoffSettleMs);
    }
    const written = await writes.stop(samples.length);
    leader.campaign.close();
    follower.campaign.close();
    return { samples, ...written, from: "leader's client calls Resign on daemon A", to: "Elected arrives at a candidate on daemon B" };
  } finally {
    await Promise.all(daemons.map((d) => d.stop()));
  }
}

/** Lease writes the API server served, and their mean latency, between start() and stop(). */
export class WriteMeter {
  private before = { count: 0, seconds: 0 };
  constructor(private readonly ctx: BenchContext) {}
  async start(): Promise<void> {
    this.before = await this.ctx.leaseWriteLatency();
  }
  async stop(rounds: number): Promise<{ writesPerRound: number; writeMeanMs: number }> {
    const after = await this.ctx.leaseWriteLatency();
    const count = after.count - this.before.count;
    return { writesPerRound: count / rounds, writeMeanMs: (1000 * (after.seconds - this.before.seconds)) / count };
  }
}

/** etcd: the leader resigns (Election.Resign); the other process's Campaign returns. */
export async function handoffEtcd(ctx: BenchContext): Promise<HandoffRow> {
  const { handoffSettleMs } = ctx.params;
  const name = `handoff-${Date.now()}`;
  const peers = [ctx.etcd(name, "etcd-a", ["--ttl=15"])];
  try {
    await peers[0]!.waitForEvent("elected", 30_000);
    peers.push(ctx.etcd(name, "etcd-b", ["--ttl=15"]));
    await peers[1]!.waitForEvent("campaigning", 30_000);
    await sleep(handoffSettleMs);
    const { samples, releaseWriteMs } = await resignRounds(ctx, peers as [PeerProcess, PeerProcess]);
    return { samples, releaseWriteMs, from: "leader calls Election.Resign", to: "the other process's Campaign returns" };
  } finally {
    await Promise.all(peers.map((p) => p.stop()));
  }
}

/**
 * Curator on ZooKeeper: two curator-peer processes with a LeaderLatch each; the leader closes its latch
 * (deleting its node) and joins again with a new one, and the other's await() returns. The server's request
 * counters give the ZooKeeper requests per round (the close, the follower's wake-up, the rejoin).
 */
export async function handoffCurator(ctx: BenchContext): Promise<HandoffRow> {
  const { handoffSettleMs } = ctx.params;
  return ctx.withZooKeeper(async (zookeeper) => {
    const name = `handoff-${Date.now()}`;
    const peers = [ctx.curator(name, "curator-a", ["--session-timeout=15s"])];
    try {
      assertSameClock(await peers[0]!.waitForEvent("elected", 90_000));
      peers.push(ctx.curator(name, "curator-b", ["--session-timeout=15s"]));
      assertSameClock(await peers[1]!.waitForEvent("campaigning", 90_000));
      await sleep(handoffSettleMs);
      let before = await zookeeper.counts();
      const { samples, releaseWriteMs } = await resignRounds(ctx, peers as [PeerProcess, PeerProcess], async () => {
        before = await zookeeper.counts();
      });
      const after = await zookeeper.counts();
      return {
        samples,
        releaseWriteMs,
        zkReadsPerRound: (after.reads - before.reads) / samples.length,
        zkWritesPerRound: (after.writes - before.writes) / samples.length,
        from: "leader closes its LeaderLatch",
        to: "the other process's LeaderLatch.await() returns",
      };
    } finally {
      await Promise.all(peers.map((p) => p.stop()));
    }
  });
}

/**
 * client-go: the leader gets SIGTERM (ReleaseOnCancel clears the holder), the
 * follower takes over at its next RetryPeriod tick; the old leader's process
 * is then restarted as a follower. Its latency is set by RetryPeriod timers,
 * not by CPU, so several pairs of candidates (one Lease each) run in parallel
 * to collect the samples in reasonable time. Before each SIGTERM the harness
 * waits a random time up to the longest jittered RetryPeriod, so the release
 * lands at a random point of the follower's polling cycle (a freshly
 * restarted follower polls right at start, which would otherwise line up
 * every release with the same point of its cycle).
 */
export async function handoffClientGo(ctx: BenchContext, retryMs: number): Promise<HandoffRow> {
  const { handoffN, clientGoRoundsPerPair } = ctx.params;
  const clientGoPairs = Math.ceil(handoffN / clientGoRoundsPerPair);
  const namespace = await ctx.newNamespace(`handoff-cg${retryMs}`);
  const roundsPerPair = clientGoRoundsPerPair;
  const samples: number[] = [];
  const releaseWriteMs: number[] = [];
  const live = new Set<PeerProcess>();
  const flags = [`--retry-period=${retryMs}ms`];
  const pair = async (index: number): Promise<void> => {
    await sleep(index * 37); // do not start every pair in the same instant
    const lease = `handoff-${index}`;
    let generation = 0;
    const start = () => {
      const peer = ctx.clientGo(namespace, lease, `${lease}-${generation++}`, flags);
      live.add(peer);
      void peer.exited.then(() => live.delete(peer));
      return peer;
    };
    let leader = start();
    await leader.waitForEvent("elected", 60_000);
    let follower = start();
    await follower.waitFor((e) => e.event === "leader" && e.leader === leaderId(leader), 60_000);
    for (let round = 0; round < roundsPerPair && samples.length < handoffN && ctx.remainingMs() > 0; round++) {
      await sleep(Math.random() * retryMs * 2.2);
      const fromLeader = leader.events.length;
      const fromFollower = follower.events.length;
      leader.kill("SIGTERM");
      const releasing = await leader.waitForEvent("releasing", 10_000, fromLeader);
      const elected = await follower.waitForEvent("elected", 60_000, fromFollower);
      await within(leader.exited, 15_000, "client-go candidate exit after SIGTERM");
      const released = leader.events.slice(fromLeader).find((e) => e.event === "released");
      if (samples.length < handoffN) {
        samples.push(elected.at - releasing.at);
        if (released) releaseWriteMs.push(released.at - releasing.at);
      }
      const restarted = start();
      await restarted.waitFor((e) => e.event === "leader" && e.leader === leaderId(follower), 60_000);
      [leader, follower] = [follower, restarted];
    }
  };
  try {
    await Promise.all(Array.from({ length: clientGoPairs }, (_, i) => pair(i)));
    return {
      samples,
      releaseWriteMs,
      parallel: clientGoPairs,
      from: "leader receives SIGTERM (ReleaseOnCancel)",
      to: "OnStartedLeading in the other candidate process",
    };
  } finally {
    await Promise.all([...live].map((p) => p.stop()));
  }
}

function leaderId(peer: PeerProcess): string {
  return String(peer.events.find((e) => e.event === "started")?.id ?? "");
}

/**
 * Resign rounds between two peer processes that print `releasing`, `released`,
 * `elected` and `campaigning`: the leader resigns and campaigns again, the other
 * is elected, and they swap. Timed after the warm-up; `warmedUp` runs when it ends.
 */
async function resignRounds(
  ctx: BenchContext,
  peers: [PeerProcess, PeerProcess],
  warmedUp: () => Promise<void> = async () => {},
): Promise<{ samples: number[]; releaseWriteMs: number[] }> {
  const { handoffN, handoffWarmup, handoffSettleMs } = ctx.params;
  let [leader, follower] = peers;
  const samples: number[] = [];
  const releaseWriteMs: number[] = [];
  for (let round = 0; round < handoffWarmup + handoffN && ctx.remainingMs() > 0; round++) {
    if (round === handoffWarmup) await warmedUp();
    const fromLeader = leader.events.length;
    const fromFollower = follower.events.length;
    leader.send("resign");
    const releasing = await leader.waitForEvent("releasing", 10_000, fromLeader);
    const elected = await follower.waitForEvent("elected", 30_000, fromFollower);
    const released = await leader.waitForEvent("released", 10_000, fromLeader);
    await leader.waitForEvent("campaigning", 10_000, fromLeader);
    if (round >= handoffWarmup) {
      samples.push(elected.at - releasing.at);
      releaseWriteMs.push(released.at - releasing.at);
    }
    [leader, follower] = [follower, leader];
    await sleep(handoffSettleMs);
  }
  return { samples, releaseWriteMs };
}
