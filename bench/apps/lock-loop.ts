// A benchmark app: N clients of one daemon take and release one lock in a
// loop, as fast as they can, for a fixed time after "go" arrives on stdin.
// Prints JSON lines: {"event":"ready"} and then a summary with the number of
// acquisitions and every fencing token seen.
//
//   node dist/bench/apps/lock-loop.js ADDRESS CLIENTS NAME DURATION_MS LABEL [non-fair]
//
// With "non-fair" the clients ask for the lock with fair: false.
import { readyAndGo } from "./start.js";

const [address, clientsArg, name, durationArg, label, fairness] = process.argv.slice(2);
if (!address || !clientsArg || !name || !durationArg || !label || (fairness !== undefined && fairness !== "non-fair")) {
  console.error("usage: lock-loop ADDRESS CLIENTS NAME DURATION_MS LABEL [non-fair]");
  process.exit(2);
}
const app = await readyAndGo(address, Number(clientsArg));

const started = performance.now();
const deadline = started + Number(durationArg);
const tokens: number[] = [];
let failures = 0;
await Promise.all(
  app.clients.map(async (client, i) => {
    while (performance.now() < deadline) {
      const stop = new AbortController();
      const timer = setTimeout(() => stop.abort(), Math.max(0, deadline - performance.now()));
      try {
        const lock = await client.lock(name, { holder: `${label}-${i}`, signal: stop.signal, fair: fairness !== "non-fair" });
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
app.emit("summary", { acquired: tokens.length, tokens, failures, elapsedMs: performance.now() - started });
app.exit();
