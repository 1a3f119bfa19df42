// CPU per operation of one daemon, from /proc: idle (serving, holding
// nothing) per minute, and per renewal while it holds many locks of a short
// lease. Handoffs are measured in the handoff and hot phases.
import type { Lock } from "metaparticle-sync-client";
import { sleep } from "../lib/clock.js";
import type { BenchContext } from "../lib/context.js";
import { metricValue, scrapeMetrics } from "../lib/daemon-metrics.js";
import { CpuMeter, freePort } from "../lib/proc.js";
import type { CpuRow } from "../lib/results.js";

const RENEW_LEASE_MS = 3_000;

export async function cpuOurs(ctx: BenchContext): Promise<CpuRow> {
  const { cpuIdleWindowMs, cpuRenewLocks, cpuRenewWindowMs } = ctx.params;
  const namespace = await ctx.newNamespace("cpu");
  const metrics = `127.0.0.1:${await freePort()}`;
  const daemon = await ctx.startDaemon(namespace, "cpu-a", [`--metrics-listen=${metrics}`]);
  const locks: Lock[] = [];
  try {
    await sleep(2_000); // past start-up
    const idle = new CpuMeter(daemon.pid);
    await sleep(cpuIdleWindowMs);
    const idleMs = idle.ms();
    const idleRate = idleMs / cpuIdleWindowMs;
    for (let i = 0; i < cpuRenewLocks; i++)
      locks.push(await daemon.client.lock(`renew-${i}`, { holder: `holder-${i}`, leaseDurationMs: RENEW_LEASE_MS, waitTimeout: 30_000 }));
    await sleep(RENEW_LEASE_MS); // the acquisitions' own work is over
    const renewals = async () => metricValue(await scrapeMetrics(metrics), "msync_renew_seconds_count");
    const before = await renewals();
    const meter = new CpuMeter(daemon.pid);
    const started = performance.now();
    await sleep(cpuRenewWindowMs);
    const cpu = meter.ms();
    const windowMs = performance.now() - started;
    const count = (await renewals()) - before;
    return {
      idleWindowS: cpuIdleWindowMs / 1000,
      idleCpuMsPerMinute: idleRate * 60_000,
      renewLocks: cpuRenewLocks,
      renewLeaseS: RENEW_LEASE_MS / 1000,
      renewWindowS: windowMs / 1000,
      renewals: count,
      cpuMsPerRenewal: (cpu - idleRate * windowMs) / count,
      renewCpuPercent: (100 * cpu) / windowMs,
    };
  } finally {
    await Promise.all(locks.map((lock) => lock.release().catch(() => {})));
    await daemon.stop();
  }
}
