// The TypeScript contender of the cross-language test (see crosslang.test.ts):
// prints "ready", waits for a line on stdin, then takes the lock ROUNDS times
// and prints one JSON line per hold with its fencing token and the hold's
// start and end on CLOCK_MONOTONIC (process.hrtime.bigint), which every
// process on the machine shares.
//
//   node dist/test/crosslang/contender.js ADDRESS LOCK ROUNDS
import { once } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { SyncClient } from "metaparticle-sync-client";

const [address, name, rounds] = process.argv.slice(2);
const client = new SyncClient({ address });
console.log("ready");
await once(process.stdin, "data");
process.stdin.pause();
for (let round = 0; round < Number(rounds); round++) {
  const lock = await client.lock(name!, { holder: "typescript" });
  const start = process.hrtime.bigint();
  await sleep(2);
  const end = process.hrtime.bigint();
  const lost = lock.lost;
  await lock.release();
  if (lost) throw new Error(`token ${lock.token} was lost while held: ${String(lock.signal.reason)}`);
  console.log(JSON.stringify({ client: "typescript", token: lock.token, start: String(start), end: String(end) }));
}
client.close();
