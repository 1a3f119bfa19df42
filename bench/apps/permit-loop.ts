// A benchmark app: N clients of one daemon share semaphore NAME of PERMITS
// permits, each looping AcquirePermit (a stream), the hold and ReleasePermit
// (see hold-loop.ts for the loop, its bounds and its summary).
//
//   node dist/bench/apps/permit-loop.js ADDRESS CLIENTS NAME PERMITS HOLD_MS DURATION_MS LABEL
import { runHoldLoop } from "./hold-loop.js";

await runHoldLoop("permit-loop", "PERMITS", process.argv.slice(2), (client, _index, name, permits) => {
  const semaphore = client.semaphore(name, permits);
  return async (_round, options) => ({ hold: await semaphore.acquire(options), exclusive: false });
});
