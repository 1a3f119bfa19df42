// A benchmark app: N clients of one daemon share semaphore NAME of PERMITS
// permits. Each takes a permit (an AcquirePermit stream), keeps it HOLD_MS,
// gives it back (ReleasePermit, acknowledged) and asks again, for DURATION_MS
// after "go" arrives on stdin, and at most MAX_PER_CLIENT times. Prints JSON
// lines: {"event":"ready"}, then a summary with the acquisitions, every
// fencing token, and every hold stamped in µs of CLOCK_MONOTONIC (`holds`:
// acquired, releasing, released; `asked`: when each was asked for, in the
// same order), as the Curator peer stamps its own.
//
//   node dist/bench/apps/permit-loop.js ADDRESS CLIENTS NAME PERMITS HOLD_MS DURATION_MS LABEL
import { setTimeout as sleep } from "node:timers/promises";
import { createInterface } from "node:readline";
import { SyncClient } from "metaparticle-sync-client";

/** Far above what a 20 s loop reaches: only a broken time check could run into it. */
const MAX_PER_CLIENT = 50_000;

const [address, clientsArg, name, permitsArg, holdArg, durationArg, label] = process.argv.slice(2);
if (!address || !clientsArg || !name || !permitsArg || !holdArg || !durationArg || !label) {
  console.error("usage: permit-loop ADDRESS CLIENTS NAME PERMITS HOLD_MS DURATION_MS LABEL");
  process.exit(2);
}
const holdMs = Number(holdArg);
const emit = (event: string, fields: Record<string, unknown> = {}) =>
  process.stdout.write(JSON.stringify({ event, at: Number(process.hrtime.bigint()) / 1e6, ...fields }) + "\n");
const micros = () => Number(process.hrtime.bigint() / 1000n);

const clients = Array.from({ length: Number(clientsArg) }, () => new SyncClient({ address }));
emit("ready");
const lines = createInterface({ input: process.stdin });
await new Promise<void>((resolve) => lines.on("line", (line) => line === "go" && resolve()));

const started = performance.now();
const deadline = started + Number(durationArg);
const tokens: number[] = [];
const holds: number[] = [];
const asked: number[] = [];
let failures = 0;
let lost = 0;
await Promise.all(
  clients.map(async (client, i) => {
    const semaphore = client.semaphore(name, Number(permitsArg));
    for (let n = 0; n < MAX_PER_CLIENT && performance.now() < deadline; n++) {
      const stop = new AbortController();
      const left = Math.max(0, deadline - performance.now());
      const timer = setTimeout(() => stop.abort(), left);
      const askedAt = micros();
      let permit;
      try {
        // The abort at the deadline ends the wait; the sidecar's own wait timeout is only a backstop.
        permit = await semaphore.acquire({ holder: `${label}-${i}`, signal: stop.signal, waitTimeoutMs: left + 10_000 });
      } catch {
        if (!stop.signal.aborted) failures += 1;
        break;
      } finally {
        clearTimeout(timer);
      }
      const acquiredAt = micros();
      tokens.push(permit.token);
      if (holdMs > 0) await sleep(holdMs);
      if (permit.signal.aborted) lost += 1; // told to stop acting before this side let go
      const releasingAt = micros();
      try {
        await permit.release();
      } catch {
        failures += 1;
        break;
      } finally {
        holds.push(acquiredAt, releasingAt, micros());
        asked.push(askedAt);
      }
    }
  }),
);
emit("summary", { acquired: tokens.length, tokens, holds, asked, failures, lost, elapsedMs: performance.now() - started });
for (const client of clients) client.close();
lines.close();
process.exit(0);
