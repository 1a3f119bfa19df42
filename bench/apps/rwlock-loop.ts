// A benchmark app: N clients of one daemon share read-write lock NAME, each
// looping AcquireRWLock (a stream), the hold and ReleaseRWLock; client i's
// round n is exclusive when (n + i) is a multiple of EXCLUSIVE_EVERY, shared
// otherwise, so one hold in EXCLUSIVE_EVERY is a writer's, spread over the
// clients, as the Curator peer's --mode=rwlock picks them (see hold-loop.ts
// for the loop, its bounds and its summary).
//
//   node dist/bench/apps/rwlock-loop.js ADDRESS CLIENTS NAME EXCLUSIVE_EVERY HOLD_MS DURATION_MS LABEL
import { runHoldLoop } from "./hold-loop.js";

await runHoldLoop("rwlock-loop", "EXCLUSIVE_EVERY", process.argv.slice(2), (client, index, name, every) => {
  const rwlock = client.rwlock(name);
  return async (round, options) => {
    const exclusive = (round + index) % every === 0;
    return { hold: await rwlock.acquire(exclusive ? "exclusive" : "shared", options), exclusive };
  };
});
