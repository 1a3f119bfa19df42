// Crash failover: the holder's process is SIGKILLed (our daemon, or the
// peer's candidate process) and the next holder takes over once the lease
// runs out. Failover is measured from the kill; the excess over the lease is
// measured from the holder's last successful renewal (the moment it last knew
// its lease was refreshed), because that is when the lease really started to
// run out. The kill comes at a random point of the renewal cycle.
import { nowMs, sleep, within } from "../lib/clock.js";
import type { BenchContext } from "../lib/context.js";
import type { OurDaemon } from "../lib/daemon.js";
import { LockStream } from "../lib/lock-stream.js";
import type { PeerEvent, PeerProcess } from "../lib/peer.js";
import type { CrashRow } from "../lib/results.js";

/** A random pause so kills land anywhere in the renewal cycle. */
function randomPause(): Promise<void> {
  return sleep(300 + Math.random() * 2200);
}

/**
 * Ours: three daemons at a time. The holder's client holds the lock, clients
 * of the other two wait. Kill the holder's daemon; when the head of the queue
 * takes over, a fresh daemon joins as the next waiter.
 */
export async function crashOurs(ctx: BenchContext): Promise<CrashRow> {
  const { crashN, crashLeaseS } = ctx.params;
  const namespace = await ctx.newNamespace("crash-ours");
  const flags = [`--lease-duration=${crashLeaseS}s`, `--renew-deadline=${Math.round(crashLeaseS * 0.6)}s`];
  const daemons = new Set<OurDaemon>();
  let generation = 0;
  const contender = async () => {
    const daemon = await ctx.startDaemon(namespace, `crash-${generation}`, flags);
    daemons.add(daemon);
    return { daemon, stream: new LockStream(daemon.client, "crash", `client-${generation++}`) };
  };
  try {
    let holder = await contender();
    await within(holder.stream.acquired, 30_000, "first acquisition");
    let waiter = await contender();
    let next = await contender();
    await sleep(500);
    const failoverMs: number[] = [];
    const excessMs: number[] = [];
    for (let round = 0; round < crashN && ctx.remainingMs() > 0; round++) {
      await randomPause();
      const killedAt = nowMs();
      holder.daemon.kill("SIGKILL");
      const lastWrite = holder.stream.lastWriteBefore(killedAt);
      const replacement = contender();
      const takenAt = await within(waiter.stream.acquired, 3 * crashLeaseS * 1000, "takeover after SIGKILL");
      failoverMs.push(takenAt - killedAt);
      excessMs.push(takenAt - lastWrite - crashLeaseS * 1000);
      daemons.delete(holder.daemon);
      holder.daemon.client.close();
      [holder, waiter, next] = [waiter, next, await replacement];
    }
    return {
      leaseS: crashLeaseS,
      failoverMs,
      excessMs,
      how: `--lease-duration=${crashLeaseS}s ${flags[1]}; holder's daemon SIGKILLed; next holder = Acquired on a client of another daemon`,
    };
  } finally {
    await Promise.all([...daemons].map((d) => d.stop()));
  }
}

/**
 * Peers: three candidate processes. The leader is SIGKILLed and a replacement
 * starts at once; the first candidate to print "elected" is the next holder
 * (for client-go that may be the replacement, since every candidate times the
 * lease from its own observation). `ready` tells when a candidate follows the
 * current leader.
 */
async function crashPeer(
  ctx: BenchContext,
  start: (generation: number) => PeerProcess,
  leaseS: number,
  how: string,
  ready: (peer: PeerProcess, leader: PeerProcess) => Promise<unknown>,
): Promise<CrashRow> {
  const live = new Set<PeerProcess>();
  let generation = 0;
  const spawn = () => {
    const peer = start(generation++);
    live.add(peer);
    void peer.exited.then(() => live.delete(peer));
    return peer;
  };
  try {
    let leader = spawn();
    await leader.waitForEvent("elected", 60_000);
    let followers = [spawn(), spawn()];
    await Promise.all(followers.map((f) => ready(f, leader)));
    const failoverMs: number[] = [];
    const excessMs: number[] = [];
    for (let round = 0; round < ctx.params.crashN && ctx.remainingMs() > 0; round++) {
      await randomPause();
      const marks = followers.map((f) => f.events.length);
      const killedAt = nowMs();
      leader.kill("SIGKILL");
      const lastWrite = lastBefore(leader.events, "renewed", killedAt);
      const candidates = [...followers, spawn()];
      marks.push(0);
      const timeoutMs = 3 * leaseS * 1000;
      const winner = await within(
        Promise.any(candidates.map((f, i) => f.waitForEvent("elected", timeoutMs, marks[i]).then((e) => ({ f, e })))),
        timeoutMs + 1000,
        "takeover after SIGKILL",
      );
      failoverMs.push(winner.e.at - killedAt);
      excessMs.push(winner.e.at - lastWrite - leaseS * 1000);
      await leader.exited;
      leader = winner.f;
      followers = candidates.filter((f) => f !== winner.f);
      await Promise.all(followers.map((f) => ready(f, leader)));
    }
    return { leaseS, failoverMs, excessMs, how };
  } finally {
    await Promise.all([...live].map((p) => p.stop(5_000, "SIGKILL")));
  }
}

function lastBefore(events: readonly PeerEvent[], name: string, at: number): number {
  let last = NaN;
  for (const e of events) if (e.event === name && e.at <= at) last = e.at;
  return last;
}

export async function crashClientGo(ctx: BenchContext): Promise<CrashRow> {
  const leaseS = ctx.params.crashLeaseS;
  const renewS = Math.round(leaseS * 0.6);
  const retryS = Math.max(1, Math.round(leaseS / 5));
  const namespace = await ctx.newNamespace("crash-cg");
  const flags = [`--lease-duration=${leaseS}s`, `--renew-deadline=${renewS}s`, `--retry-period=${retryS}s`];
  const leaderId = (p: PeerProcess) => String(p.events.find((e) => e.event === "started")?.id);
  return crashPeer(
    ctx,
    (g) => ctx.clientGo(namespace, "crash", `crash-${g}`, flags),
    leaseS,
    `LeaseDuration=${leaseS}s RenewDeadline=${renewS}s RetryPeriod=${retryS}s; leader process SIGKILLed; next = OnStartedLeading in another candidate`,
    (peer, leader) => peer.waitFor((e) => e.event === "leader" && e.leader === leaderId(leader), 60_000),
  );
}

export async function crashEtcd(ctx: BenchContext): Promise<CrashRow> {
  const leaseS = ctx.params.crashLeaseS;
  const name = `crash-${Date.now()}`;
  return crashPeer(
    ctx,
    (g) => ctx.etcd(name, `crash-${g}`, [`--ttl=${leaseS}`]),
    leaseS,
    `session TTL ${leaseS}s (keep-alive every TTL/3); leader process SIGKILLed; next = Campaign returns in another process`,
    (peer) => peer.waitForEvent("campaigning", 60_000),
  );
}
