// A storm of short-lived clients: each opens its OWN connection to a daemon
// (a local subchannel pool, so no two share a TCP connection), opens one
// Acquire, Campaign or Observe stream, and abandons it after a random short
// time: by cancelling the stream, by closing the channel, or by leaving it
// open until this process exits abruptly (the kernel closes the sockets).
// Bounded in count and in time. Acquire and Campaign events are recorded
// like the workload's, marked "raw": without the client wrapper's watchdog,
// a storm client's hold ends at the latest when its last valid_for runs out.
//
//   node storm.js '<StormConfig as JSON>'
import { credentials } from "@grpc/grpc-js";
import { ElectionServiceClient } from "metaparticle-sync-client/gen/metaparticle/sync/v1/election_service";
import { LockServiceClient } from "metaparticle-sync-client/gen/metaparticle/sync/v1/lock_service";
import { type EventFields, HistoryWriter } from "./history.js";
import { seededRandom } from "./prng.js";

export interface StormConfig {
  /** Process id; stream clients are named `${id}/${n}`. */
  readonly id: string;
  readonly addresses: readonly string[];
  readonly log: string;
  readonly count: number;
  readonly concurrency: number;
  readonly maxMs: number;
  readonly seed: number;
  readonly leaseMs: number;
  /** Workload locks: Acquire with wait_timeout 0, so a storm client never jumps a queue. */
  readonly locks: readonly string[];
  /** Workload elections: Observe only. */
  readonly elections: readonly string[];
  /** Names only the storm uses: waiting Acquires and Campaigns. */
  readonly stormLocks: readonly string[];
  readonly stormElections: readonly string[];
  readonly lifetimeMs: readonly [number, number];
}

const config = JSON.parse(process.argv[2]!) as StormConfig;
const rng = seededRandom(config.seed);
const history = new HistoryWriter(config.log, config.id);
const started = performance.now();
const counts = { acquire: 0, campaign: 0, observe: 0, acquired: 0, elected: 0, cancelled: 0, closed: 0, leftOpen: 0, errors: 0 };
const duration = (ms: number) => ({ seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 });
const fromDuration = (d: { seconds: number; nanos: number } | undefined) => (d === undefined ? 0 : d.seconds * 1000 + d.nanos / 1e6);

function recorder(n: number, daemon: number) {
  return (fields: EventFields) => history.recordFor(`${config.id}/${n}`, { daemon, raw: true, ...fields });
}

/** One storm client, from connection to abandonment. */
function one(n: number): Promise<void> {
  const daemon = rng.int(0, config.addresses.length - 1);
  const address = config.addresses[daemon]!;
  const options = { "grpc.use_local_subchannel_pool": 1, "grpc.initial_reconnect_backoff_ms": 200 };
  const locks = new LockServiceClient(address, credentials.createInsecure(), options);
  const elections = new ElectionServiceClient(address, credentials.createInsecure(), { ...options, channelOverride: locks.getChannel() });
  const record = recorder(n, daemon);
  const lifetime = rng.int(config.lifetimeMs[0], config.lifetimeMs[1]);
  const mode = rng.next() < 0.6 ? "cancel" : rng.next() < 0.6 ? "close" : "exit";
  const roll = rng.next();
  /** Records that the client stopped acting. */
  let abandon: () => void;
  let cancel: () => void;
  if (roll < 0.55) {
    counts.acquire += 1;
    const workload = roll < 0.3;
    const name = workload ? rng.pick(config.locks) : rng.pick(config.stormLocks);
    const kind = "lock" as const;
    let held = false;
    let over = false;
    record({ ev: "acquire-start", kind, name });
    const call = locks.acquire({
      fairness: 0,
      name,
      holder: `${config.id}/${n}`,
      leaseDuration: duration(config.leaseMs),
      waitTimeout: workload ? duration(0) : undefined,
    });
    call.on("data", (m: { event?: { $case: string; value: any } }) => {
      if (over) return;
      const e = m.event;
      if (e?.$case === "acquired") {
        held = true;
        counts.acquired += 1;
        record({ ev: "acquired", kind, name, token: e.value.fencingToken, validForMs: fromDuration(e.value.validFor) });
      } else if (e?.$case === "renewed") record({ ev: "renewed", kind, name, validForMs: fromDuration(e.value.validFor) });
      else if (e?.$case === "lost") {
        held = false;
        record({ ev: "lost", kind, name, reason: String(e.value.reason) });
      }
    });
    call.on("error", (err: { code?: number; details?: string }) => {
      if (over) return;
      over = true;
      if (held) record({ ev: "lost", kind, name, reason: "stream-ended", code: err.code });
      else record({ ev: "acquire-failed", kind, name, code: err.code, detail: err.details?.slice(0, 200) });
      if (err.code !== 1 && err.code !== 4) counts.errors += 1;
    });
    call.on("end", () => {
      if (over) return;
      over = true;
      if (held) record({ ev: "lost", kind, name, reason: "stream-ended" });
    });
    abandon = () => {
      if (over) return;
      over = true;
      record({ ev: held ? "release" : "acquire-cancelled", kind, name });
    };
    cancel = () => call.cancel();
  } else if (roll < 0.75) {
    counts.campaign += 1;
    const name = rng.pick(config.stormElections);
    const kind = "election" as const;
    let over = false;
    record({ ev: "campaign-start", kind, name });
    const call = elections.campaign({ name, candidate: `${config.id}/${n}`, value: "", leaseDuration: duration(config.leaseMs) });
    call.on("data", (m: { event?: { $case: string; value: any } }) => {
      if (over) return;
      const e = m.event;
      if (e?.$case === "elected") {
        counts.elected += 1;
        record({ ev: "elected", kind, name, token: e.value.term, validForMs: fromDuration(e.value.validFor) });
      } else if (e?.$case === "renewed") record({ ev: "renewed", kind, name, validForMs: fromDuration(e.value.validFor) });
      else if (e?.$case === "deposed") record({ ev: "deposed", kind, name, token: e.value.term, reason: String(e.value.reason) });
    });
    const end = (code?: number) => {
      if (over) return;
      over = true;
      record({ ev: "campaign-end", kind, name, code });
    };
    call.on("error", (err: { code?: number }) => end(err.code));
    call.on("end", () => end());
    abandon = () => {
      if (over) return;
      over = true;
      record({ ev: "campaign-close", kind, name });
    };
    cancel = () => call.cancel();
  } else {
    counts.observe += 1;
    const call = elections.observe({ name: rng.pick(config.elections) });
    call.on("data", () => {});
    call.on("error", () => {});
    abandon = () => {};
    cancel = () => call.cancel();
  }
  return new Promise((resolve) =>
    setTimeout(() => {
      abandon(); // the client stops acting now, whatever becomes of its stream
      if (mode === "cancel") {
        counts.cancelled += 1;
        cancel();
        locks.close();
        elections.close();
      } else if (mode === "close") {
        // Close the channel under the open stream.
        counts.closed += 1;
        locks.close();
        elections.close();
      } else {
        // Left open: it goes when this process exits, without a goodbye.
        counts.leftOpen += 1;
      }
      resolve();
    }, lifetime),
  );
}

history.record({ ev: "client-start", detail: `storm seed ${config.seed}` });
let next = 0;
const workers = Array.from({ length: config.concurrency }, async () => {
  while (next < config.count && performance.now() - started < config.maxMs) await one(next++);
});
await Promise.all(workers);
// Streams left open go with the process.
history.record({ ev: "client-done", detail: JSON.stringify({ opened: next, ...counts }) });
process.stdout.write(JSON.stringify({ event: "done", opened: next, ...counts }) + "\n", () => process.exit(0));
