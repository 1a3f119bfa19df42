// What the hold apps (permit-loop, rwlock-loop) share: N clients of one daemon
// each take a hold, keep it HOLD_MS, give it back (acknowledged) and ask
// again, for DURATION_MS after "go" arrives on stdin and at most
// MAX_PER_CLIENT times. Prints JSON lines: {"event":"ready"}, then a summary
// with the acquisitions, every fencing token, and every hold stamped in µs of
// CLOCK_MONOTONIC (`holds`: acquired, releasing, released; `asked`: when each
// was asked for; `modes`: 1 for an exclusive hold, 0 for a shared one; all in
// the same order), as the Curator peer stamps its own.
import { setTimeout as sleep } from "node:timers/promises";
import type { AcquireOptions, SyncClient } from "metaparticle-sync-client";
import { readyAndGo } from "./start.js";

/** Far above what a 20 s loop reaches: only a broken time check could run into it. */
const MAX_PER_CLIENT = 50_000;

/** What the loop needs of a hold: its token, the signal that it was lost, and its release. */
export interface LoopHold {
  readonly token: number;
  readonly signal: AbortSignal;
  release(): Promise<unknown>;
}

/** One client's way to take its `round`-th hold (counted from 0); `exclusive` says how it is held. */
export type Take = (round: number, options: AcquireOptions) => Promise<{ hold: LoopHold; exclusive: boolean }>;

/**
 * Runs the app: `argv` is ADDRESS CLIENTS NAME KNOB HOLD_MS DURATION_MS LABEL, where KNOB is the app's own
 * number (a semaphore's permits, the read-write lock's exclusive share); `open` makes client i's Take.
 */
export async function runHoldLoop(
  program: string,
  knobName: string,
  argv: readonly string[],
  open: (client: SyncClient, index: number, name: string, knob: number) => Take,
): Promise<never> {
  const [address, clientsArg, name, knobArg, holdArg, durationArg, label] = argv;
  if (!address || !clientsArg || !name || !knobArg || !holdArg || !durationArg || !label) {
    console.error(`usage: ${program} ADDRESS CLIENTS NAME ${knobName} HOLD_MS DURATION_MS LABEL`);
    process.exit(2);
  }
  const holdMs = Number(holdArg);
  const micros = () => Number(process.hrtime.bigint() / 1000n);
  const app = await readyAndGo(address, Number(clientsArg));

  const started = performance.now();
  const deadline = started + Number(durationArg);
  const tokens: number[] = [];
  const holds: number[] = [];
  const asked: number[] = [];
  const modes: number[] = [];
  let failures = 0;
  let lost = 0;
  await Promise.all(
    app.clients.map(async (client, i) => {
      const take = open(client, i, name, Number(knobArg));
      for (let n = 0; n < MAX_PER_CLIENT && performance.now() < deadline; n++) {
        const stop = new AbortController();
        const left = Math.max(0, deadline - performance.now());
        const timer = setTimeout(() => stop.abort(), left);
        const askedAt = micros();
        let taken;
        try {
          // The abort at the deadline ends the wait; the sidecar's own wait timeout is only a backstop.
          taken = await take(n, { holder: `${label}-${i}`, signal: stop.signal, waitTimeoutMs: left + 10_000 });
        } catch {
          if (!stop.signal.aborted) failures += 1;
          break;
        } finally {
          clearTimeout(timer);
        }
        const { hold, exclusive } = taken;
        const acquiredAt = micros();
        tokens.push(hold.token);
        if (holdMs > 0) await sleep(holdMs);
        if (hold.signal.aborted) lost += 1; // told to stop acting before this side let go
        const releasingAt = micros();
        try {
          await hold.release();
        } catch {
          failures += 1;
          break;
        } finally {
          holds.push(acquiredAt, releasingAt, micros());
          asked.push(askedAt);
          modes.push(exclusive ? 1 : 0);
        }
      }
    }),
  );
  app.emit("summary", { acquired: tokens.length, tokens, holds, asked, modes, failures, lost, elapsedMs: performance.now() - started });
  return app.exit();
}
