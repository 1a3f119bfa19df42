// docs/design.md 3.1 on a real kube-apiserver: other daemons see a holder's
// renewal only as a new version of its Lease (an update that changes nothing
// is no new version and sends no watch event), so every renewal must change
// the Lease whatever the holder's wall clock does.
import { systemClock, type Clock } from "../../daemon/engine/clock.js";
import { Engine } from "../../daemon/engine/index.js";
import { createLogger } from "../../daemon/log.js";
import { KubernetesStore } from "../../daemon/store/kubernetes/kubernetes-store.js";
import { LockHandle } from "../support/sim.js";
import { kubeSuite } from "../support/kube-env.js";

const { test } = kubeSuite();

const LEASE_MS = 3_000;
const RENEW_DEADLINE_MS = 2_000;

/** The system clock, except that the wall clock stands still at the moment it was made. */
const stuckWallClock = (): Clock => {
  const wall = systemClock.wallTime();
  return { now: () => systemClock.now(), wallTime: () => new Date(wall), setTimer: (ms, fn) => systemClock.setTimer(ms, fn) };
};

test.serial("a holder whose wall clock stands still keeps its lock on Kubernetes: every renewal is a new version others see", async (t) => {
  const namespace = await t.context.env.newNamespace("msync-wall");
  const engine = (identity: string, clock: Clock) =>
    new Engine({
      store: KubernetesStore.fromConfig({ kubeconfig: t.context.env.kubeconfig, namespace }, createLogger("silent")),
      identity,
      clock,
      leaseDurationMs: LEASE_MS,
      renewDeadlineMs: RENEW_DEADLINE_MS,
    });
  const stuck = engine("stuck_1", stuckWallClock());
  const other = engine("other_1", systemClock);
  t.teardown(async () => {
    await stuck.shutdown(1_000);
    await other.shutdown(1_000);
  });
  await Promise.all([stuck.start(), other.start()]);
  const name = stuck.locks.prefix() + "wall";
  const held = new LockHandle(systemClock);
  stuck.locks.acquire({ leaseName: name, holder: "stuck", leaseMs: LEASE_MS, waitTimeoutMs: undefined }, held.sink, held.controller.signal);
  await waitFor(() => held.grant !== undefined);
  const waiter = new LockHandle(systemClock);
  other.locks.acquire(
    { leaseName: name, holder: "waiter", leaseMs: LEASE_MS, waitTimeoutMs: undefined },
    waiter.sink,
    waiter.controller.signal,
  );
  const versions = new Set<string>();
  const renewTimes = new Set<number>();
  const until = Date.now() + 4 * LEASE_MS;
  while (Date.now() < until) {
    const record = await stuck.store.get(name);
    if (record !== undefined) {
      versions.add(record.version);
      if (record.renewTime !== undefined) renewTimes.add(record.renewTime.getTime());
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  t.is(held.loss, undefined, `the holder kept its lock through ${held.renewals.length} renewals`);
  t.is(waiter.grant, undefined, "nobody else took it while the holder renewed");
  t.true(held.renewals.length >= 6, `${held.renewals.length} renewals`);
  t.true(renewTimes.size >= held.renewals.length, `${renewTimes.size} renewTimes written for ${held.renewals.length} renewals`);
  t.true(versions.size >= held.renewals.length, `${versions.size} versions seen`);
  held.close();
  await waitFor(() => waiter.grant !== undefined);
  t.pass("the waiter is served once the holder lets go");
});

async function waitFor(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("timed out waiting");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
