// One workload client: a separate process with its own connection to one
// daemon, running for a bounded time. Its lock loop takes a random lock,
// holds it a random short time and releases it; its election loop campaigns,
// leads a random short time, resigns and campaigns again. Every event goes to
// its own JSONL history (history.ts), stamped on CLOCK_MONOTONIC.
//
//   node workload-client.js '<ClientConfig as JSON>'
//
// Commands on stdin, one JSON line each, for the harness:
//   {"cmd":"hold","name":"l0","ms":30000}  the next hold is of l0 and lasts 30 s;
//                                          prints {"event":"holding",...} once held
//   {"cmd":"lead","name":"e0","ms":30000}  the same for leading an election
//   {"cmd":"stop"}                         finish now (release, resign, exit)
//
// With `ignoreLost` it is a deliberately buggy application: when its lock's
// signal says Lost it records "lost-ignored" and keeps acting until its hold
// time is over, as an app that never looks at the signal would.
import type { EventEmitter } from "node:events";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { type Lock, type LostError, SyncClient, SyncClientError } from "metaparticle-sync-client";
import { HistoryWriter, type EventFields } from "./history.js";
import { seededRandom } from "./prng.js";

export interface ClientConfig {
  readonly id: string;
  readonly daemon: number;
  readonly address: string;
  readonly log: string;
  readonly locks: readonly string[];
  readonly elections: readonly string[];
  readonly durationMs: number;
  readonly seed: number;
  readonly leaseMs: number;
  /** Wait for a lock at most this long; longer than any handover bound, so a stalled handover shows. */
  readonly waitTimeoutMs: number;
  readonly holdMs: readonly [number, number];
  readonly thinkMs: readonly [number, number];
  readonly leadMs: readonly [number, number];
  /** Leave a campaign not won within this long, and join again. */
  readonly campaignPatienceMs: number;
  readonly ignoreLost?: boolean;
}

interface Command {
  readonly cmd: "hold" | "lead" | "stop";
  readonly name?: string;
  readonly ms?: number;
}

/** Each loop is bounded in count as well as in time. */
const MAX_ROUNDS = 50_000;

const config = JSON.parse(process.argv[2]!) as ClientConfig;
const history = new HistoryWriter(config.log, config.id, { daemon: config.daemon });
const rng = seededRandom(config.seed);
const client = new SyncClient({ address: config.address });
const run = new AbortController();
const pending: Command[] = [];
const between = ([min, max]: readonly [number, number]) => rng.int(min, max);
const say = (message: object) => process.stdout.write(JSON.stringify(message) + "\n");
const failure = (err: unknown): Pick<EventFields, "code" | "detail"> => {
  const e = SyncClientError.from(err);
  return { code: e.code, detail: e.message.slice(0, 300) };
};

createInterface({ input: process.stdin }).on("line", (line) => {
  const command = JSON.parse(line) as Command;
  if (command.cmd === "stop") run.abort(new Error("stopped by the harness"));
  else pending.push(command);
});
const deadline = setTimeout(() => run.abort(new Error("the run is over")), config.durationMs);
const take = (cmd: Command["cmd"]) => {
  const index = pending.findIndex((c) => c.cmd === cmd);
  return index < 0 ? undefined : pending.splice(index, 1)[0];
};
/** Sleeps `ms`, or less if `signal` aborts first. */
const pause = (ms: number, signal?: AbortSignal) => sleep(ms, undefined, { signal }).catch(() => {});

async function lockLoop(): Promise<void> {
  for (let n = 0; n < MAX_ROUNDS && !run.signal.aborted && config.locks.length > 0; n++) {
    const command = take("hold");
    const name = command?.name ?? rng.pick(config.locks);
    const kind = "lock" as const;
    history.record({ ev: "acquire-start", kind, name });
    let lock: Lock;
    try {
      lock = await client.lock(name, {
        holder: config.id,
        leaseDuration: config.leaseMs,
        waitTimeout: config.waitTimeoutMs,
        signal: run.signal,
      });
    } catch (err) {
      if (run.signal.aborted) {
        history.record({ ev: "acquire-cancelled", kind, name });
        return;
      }
      history.record({ ev: "acquire-failed", kind, name, ...failure(err) });
      await pause(rng.int(100, 400), run.signal);
      continue;
    }
    history.record({ ev: "acquired", kind, name, token: lock.token, validForMs: lock.validFor });
    // Every heartbeat as it arrives, before the wrapper looks at it.
    (lock as unknown as { call: EventEmitter }).call.on(
      "data",
      (message: { event?: { $case: string; value: { validFor?: { seconds: number; nanos: number } } } }) => {
        if (message.event?.$case !== "renewed") return;
        const validFor = message.event.value.validFor;
        history.record({
          ev: "renewed",
          kind,
          name,
          token: lock.token,
          validForMs: validFor ? validFor.seconds * 1000 + validFor.nanos / 1e6 : 0,
        });
      },
    );
    const onLost = () => {
      const reason = lock.signal.reason as LostError;
      if (reason.reason === "released") return;
      history.record({
        ev: config.ignoreLost ? "lost-ignored" : "lost",
        kind,
        name,
        token: lock.token,
        reason: reason.reason,
        detail: reason.message.slice(0, 300),
      });
    };
    if (lock.lost) onLost();
    else lock.signal.addEventListener("abort", onLost, { once: true });
    if (command !== undefined) say({ event: "holding", name, token: lock.token });
    const holdMs = command?.ms ?? between(config.holdMs);
    // A correct app stops acting the moment its signal fires; the buggy one does not look.
    await pause(holdMs, config.ignoreLost ? run.signal : AbortSignal.any([lock.signal, run.signal]));
    if (!lock.lost || config.ignoreLost) {
      history.record({ ev: "release", kind, name, token: lock.token });
      // The hold ended at "release". The acknowledged release fails (UNAVAILABLE) while the API server is
      // down; its stream is closed, so the sidecar gives the lease back when it can, or the lease runs out.
      if (
        await lock.release().then(
          () => true,
          () => false,
        )
      )
        history.record({ ev: "released", kind, name, token: lock.token });
    }
    await pause(between(config.thinkMs), run.signal);
  }
}

async function electionLoop(): Promise<void> {
  for (let n = 0; n < MAX_ROUNDS && !run.signal.aborted && config.elections.length > 0; n++) {
    const command = take("lead");
    const name = command?.name ?? rng.pick(config.elections);
    const kind = "election" as const;
    history.record({ ev: "campaign-start", kind, name });
    let leaving = false;
    let patience: NodeJS.Timeout | undefined;
    let closed = false;
    const leave = (why: string) => {
      leaving = true;
      clearTimeout(patience);
      if (closed) return;
      closed = true;
      history.record({ ev: "campaign-close", kind, name, detail: why });
      campaign.close();
    };
    const campaign = client.campaign(name, {
      candidate: config.id,
      value: config.id,
      leaseDuration: config.leaseMs,
      onElected: (leadership) => {
        clearTimeout(patience);
        history.record({ ev: "elected", kind, name, token: leadership.term });
        if (command !== undefined) say({ event: "leading", name, term: leadership.term });
        setTimeout(
          () => {
            if (leaving || campaign.leadership?.term !== leadership.term) return;
            leaving = true;
            history.record({ ev: "resign", kind, name, token: leadership.term });
            campaign.resign().then(
              () => {
                history.record({ ev: "resigned", kind, name, token: leadership.term });
                // resign() ends the campaign; closing it too is what `await using` would do, and ends
                // anything the wrapper may still have open (resign-freeze.test.ts). Recorded only
                // if it leads again, which after a resign it must not.
                if (campaign.leading) leave("elected again after resigning");
                else {
                  closed = true;
                  campaign.close();
                }
              },
              (err: unknown) => {
                history.record({ ev: "resign-failed", kind, name, token: leadership.term, ...failure(err) });
                leave("resign failed");
              },
            );
          },
          command?.ms ?? between(config.leadMs),
        );
      },
      onDeposed: (term, reason, message) => {
        history.record({ ev: "deposed", kind, name, token: term, reason, detail: message.slice(0, 300) });
        // A harness command is for one term: once it ends, leave, so the next command starts afresh.
        if (command !== undefined) setImmediate(() => leave("the commanded term ended"));
      },
    });
    patience = setTimeout(() => leave("not elected in time"), config.campaignPatienceMs);
    const onRunEnd = () => leave("the run is over");
    run.signal.addEventListener("abort", onRunEnd, { once: true });
    try {
      await campaign.done;
      history.record({ ev: "campaign-end", kind, name });
    } catch (err) {
      history.record({ ev: "campaign-end", kind, name, ...failure(err) });
      if (!leaving && !run.signal.aborted) await pause(rng.int(100, 400), run.signal);
    } finally {
      clearTimeout(patience);
      run.signal.removeEventListener("abort", onRunEnd);
    }
    await pause(between(config.thinkMs), run.signal);
  }
}

history.record({ ev: "client-start", detail: `seed ${config.seed}` });
const hardStop = () => setTimeout(() => process.exit(3), 20_000).unref();
run.signal.addEventListener("abort", hardStop, { once: true });
await Promise.all([lockLoop(), electionLoop()]);
clearTimeout(deadline);
history.record({ ev: "client-done" });
history.close();
client.close();
say({ event: "done" });
process.exit(0);
