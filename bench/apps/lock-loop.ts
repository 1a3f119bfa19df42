// A benchmark app: N clients of one daemon take and release one lock in a
// loop, as fast as they can, for a fixed time after "go" arrives on stdin.
// Prints JSON lines: {"event":"ready"} and then a summary with the number of
// acquisitions and every fencing token seen.
//
//   node dist/bench/apps/lock-loop.js ADDRESS CLIENTS NAME DURATION_MS LABEL
import { createInterface } from "node:readline";
import { SyncClient } from "metaparticle-sync-client";

const [address, clientsArg, name, durationArg, label] = process.argv.slice(2);
if (!address || !clientsArg || !name || !durationArg || !label) {
  console.error("usage: lock-loop ADDRESS CLIENTS NAME DURATION_MS LABEL");
  process.exit(2);
}
const emit = (event: string, fields: Record<string, unknown> = {}) =>
  process.stdout.write(JSON.stringify({ event, at: Number(process.hrtime.bigint()) / 1e6, ...fields }) + "\n");

const clients = Array.from({ length: Number(clientsArg) }, () => new SyncClient({ address }));
emit("ready");
const lines = createInterface({ input: process.stdin });
await new Promise<void>((resolve) => lines.on("line", (line) => line === "go" && resolve()));

const started = performance.now();
const deadline = started + Number(durationArg);
const tokens: number[] = [];
let failures = 0;
await Promise.all(
  clients.map(async (client, i) => {
    while (performance.now() < deadline) {
      const stop = new AbortController();
      const timer = setTimeout(() => stop.abort(), Math.max(0, deadline - performance.now()));
      try {
        const lock = await client.lock(name, { holder: `${label}-${i}`, signal: stop.signal });
        tokens.push(lock.token);
        await lock.release();
      } catch (err) {
        if (!stop.signal.aborted) failures += 1;
        break;
      } finally {
        clearTimeout(timer);
      }
    }
  }),
);
emit("summary", { acquired: tokens.length, tokens, failures, elapsedMs: performance.now() - started });
for (const client of clients) client.close();
lines.close();
process.exit(0);
