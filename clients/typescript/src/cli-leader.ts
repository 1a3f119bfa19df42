// `metaparticle-sync leader NAME` and `observe NAME`: print who leads.
import { EXIT } from "./cli-args.js";
import { setTimeout as sleep } from "node:timers/promises";
import { reconnectDelay, reportFailure, say, sidecarWentAway } from "./cli-calls.js";
import { trapSignals } from "./cli-child.js";
import type { SyncClient } from "./client.js";
import type { Leader } from "./election.js";
import { SyncClientError } from "./internal.js";

export interface LeaderCommand {
  readonly name: string;
  readonly json: boolean;
  readonly fresh?: boolean;
  /** `leader`'s deadline in ms; default DEFAULT_CALL_TIMEOUT_MS. */
  readonly timeout?: number;
}

/** One line: `LEADER term=N value=V`, `(none) term=N value=` when nobody leads, or JSON. */
export function formatLeader(name: string, leader: Leader, json: boolean): string {
  if (json) return JSON.stringify({ name, leader: leader.leader, value: leader.value, term: leader.term });
  return `${leader.leader === "" ? "(none)" : leader.leader} term=${leader.term} value=${leader.value}`;
}

export async function runLeader(client: SyncClient, options: LeaderCommand): Promise<number> {
  try {
    const leader = await client.getLeader(options.name, { fresh: options.fresh, timeoutMs: options.timeout });
    process.stdout.write(`${formatLeader(options.name, leader, options.json)}\n`);
    return 0;
  } catch (err) {
    return reportFailure(SyncClientError.from(err), `cannot read the leader of ${options.name}`, client.address);
  }
}

/**
 * Prints the leader, then every change. Once it has reached the sidecar, a
 * sidecar that goes away (a restart, a redeploy) or stops answering (frozen:
 * noticed by gRPC keepalive within about 15 s) is reported on stderr, waited
 * for and observed again; a line is printed only when what it says differs
 * from the last one.
 */
export async function runObserve(client: SyncClient, options: LeaderCommand): Promise<number> {
  const stop = new AbortController();
  const untrap = trapSignals(() => stop.abort());
  let connected = false;
  let last: string | undefined;
  try {
    for (let attempt = 0; ; attempt++) {
      let error: SyncClientError | undefined;
      try {
        for await (const leader of client.observe(options.name, { signal: stop.signal })) {
          if (attempt > 0) say(`the sidecar at ${client.address} answers again; observing ${options.name}`);
          connected = true;
          attempt = 0;
          const line = formatLeader(options.name, leader, options.json);
          if (line !== last) process.stdout.write(`${line}\n`);
          last = line;
        }
      } catch (err) {
        error = SyncClientError.from(err);
      }
      if (stop.signal.aborted) return 0;
      if (!connected || !sidecarWentAway(error)) {
        if (error !== undefined) return reportFailure(error, `cannot observe ${options.name}`, client.address);
        say(`the sidecar ended the observation of ${options.name}`);
        return EXIT.unavailable;
      }
      const delay = reconnectDelay(attempt);
      if (attempt === 0)
        say(`lost the sidecar at ${client.address} (${error?.message ?? "stream ended"}); observing ${options.name} again once it answers`);
      await sleep(delay, undefined, { signal: stop.signal }).catch(() => {});
      if (stop.signal.aborted) return 0;
    }
  } finally {
    untrap();
  }
}
