// A store that cannot keep up (issue 19 defect 8): the engine keeps what is
// held before it takes more. The store here serves one call at a time, each
// taking STORE_CALL_MS of the fake clock, like an API server at its limit.
import test from "ava";
import { SimCluster } from "../support/sim.js";

const STORE_CALL_MS = 25;
const LEASE_MS = 5_000;
const RENEW_DEADLINE_MS = 3_000;

/** Makes every call to `sim`'s store wait its turn at a server that serves one call at a time. */
function oneAtATime(sim: SimCluster): { calls: number } {
  let freeAt = 0;
  const served = { calls: 0 };
  sim.store.interceptor = () => {
    served.calls += 1;
    const start = Math.max(sim.clock.now(), freeAt);
    freeAt = start + STORE_CALL_MS;
    return new Promise<void>((resolve) => sim.clock.setTimer(freeAt - sim.clock.now(), resolve));
  };
  return served;
}

test("under a burst of acquisitions the store cannot keep up with, renewals of held locks go first: none is lost", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a", { leaseDurationMs: LEASE_MS, renewDeadlineMs: RENEW_DEADLINE_MS, maxStoreCallsInFlight: 4 });
  oneAtATime(sim);
  const held = Array.from({ length: 30 }, (_, i) => a.acquire(`held-${i}`, { holder: `h${i}` }));
  await sim.advance(2_000);
  t.is(held.filter((h) => h.grant !== undefined).length, 30, "all 30 locks taken");
  // 200 TryAcquire calls for other names at once: 5 s of the store's time, more than the renew deadline.
  const burst = Array.from({ length: 200 }, (_, i) => a.tryAcquire(`burst-${i}`, { holder: `b${i}` }).catch((err: Error) => err));
  for (let i = 0; i < 150; i++) await sim.advance(100);
  const lost = held.filter((h) => h.loss !== undefined);
  t.is(
    lost.length,
    0,
    `${lost.length} of 30 held locks lost: ${lost
      .map((h) => h.loss!.message)
      .join("; ")
      .slice(0, 300)}`,
  );
  const results = await Promise.all(burst);
  const granted = results.filter((r) => !(r instanceof Error) && r.acquired).length;
  t.true(granted > 0, "the burst is served as far as the store allows");
  t.true(
    results.every((r) => !(r instanceof Error) || /unavailable|overloaded|no answer|not sent|deadline/i.test(r.message)),
    "the rest fail as unavailable",
  );
  for (const h of held) h.close();
  await sim.advance(1_000);
});
