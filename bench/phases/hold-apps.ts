// Runs a hold app (bench/apps/permit-loop, rwlock-loop) on two daemons of our
// own against the API server: each daemon gets an app process of
// `hotClientsPerDaemon` clients looping on one name for `hotDurationMs`.
import { type BenchContext, type VerbCounts, diffCounts } from "../lib/context.js";
import { PeerProcess } from "../lib/peer.js";
import { CpuMeter } from "../lib/proc.js";
import { race } from "./hot.js";

export interface HoldAppsRun {
  /** Each app's summary (bench/apps/hold-loop.ts), app 0's first. */
  summaries: Array<Record<string, unknown>>;
  sessions: number;
  processes: number;
  /** The longer app's loop, s. */
  seconds: number;
  /** apiserver_request_total{resource="leases"} from just before "go" to after both summaries, by verb. */
  leaseRequests: VerbCounts;
  /** Both daemons, % of one core, summed. */
  daemonCpuPercent: number;
}

/**
 * Starts two daemons in a fresh namespace and an app process `app` on each (its KNOB argument `knob`, its
 * hold `holdMs`), sends "go" once both are ready and collects their summaries; throws if any call failed or a
 * hold was lost while held. The API server's Lease requests are read just before "go" and after both summaries.
 */
export async function holdAppsOnTwoDaemons(
  ctx: BenchContext,
  prefix: string,
  app: string,
  knob: number,
  holdMs: number,
): Promise<HoldAppsRun> {
  const { hotDurationMs, hotClientsPerDaemon } = ctx.params;
  const namespace = await ctx.newNamespace(prefix);
  const daemons = [await ctx.startDaemon(namespace, `${prefix}-a`), await ctx.startDaemon(namespace, `${prefix}-b`)];
  const apps = daemons.map((d, i) =>
    PeerProcess.spawn(`${prefix} app ${i}`, process.execPath, [
      app,
      d.address,
      String(hotClientsPerDaemon),
      "hot",
      String(knob),
      String(holdMs),
      String(hotDurationMs),
      `app${i}`,
    ]),
  );
  try {
    let before = await ctx.leaseRequests();
    let meters: CpuMeter[] = [];
    const summaries = await race(apps, hotDurationMs, "ready", async () => {
      before = await ctx.leaseRequests();
      meters = daemons.map((d) => new CpuMeter(d.pid));
    });
    const daemonCpuPercent = meters.reduce((sum, m) => sum + m.percent(), 0);
    const leaseRequests = diffCounts(before, await ctx.leaseRequests());
    const failures = summaries.reduce((sum, s) => sum + Number(s.failures), 0);
    if (failures > 0) throw new Error(`${failures} ${prefix} calls failed`);
    const lost = summaries.reduce((sum, s) => sum + Number(s.lost), 0);
    if (lost > 0) throw new Error(`${lost} ${prefix} holds were lost while held`);
    if (summaries.every((s) => Number(s.acquired) === 0)) throw new Error(`no ${prefix} hold was granted`);
    return {
      summaries,
      sessions: daemons.length * hotClientsPerDaemon,
      processes: daemons.length,
      seconds: Math.max(...summaries.map((s) => Number(s.elapsedMs))) / 1000,
      leaseRequests,
      daemonCpuPercent,
    };
  } finally {
    await Promise.all(apps.map((a) => a.stop(5_000, "SIGKILL")));
    await Promise.all(daemons.map((d) => d.stop()));
  }
}
