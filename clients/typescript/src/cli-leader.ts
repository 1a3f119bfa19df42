// `metaparticle-sync leader NAME` and `observe NAME`: print who leads.
import { EXIT } from "./cli-args.js";
import { CALL_DEADLINE_MS, reportFailure, say, withDeadline } from "./cli-calls.js";
import { trapSignals } from "./cli-child.js";
import type { SyncClient } from "./client.js";
import type { Leader } from "./election.js";
import { SyncClientError } from "./internal.js";

export interface LeaderCommand {
  readonly name: string;
  readonly json: boolean;
  readonly fresh?: boolean;
}

/** One line: `LEADER term=N value=V`, `(none) term=N value=` when nobody leads, or JSON. */
export function formatLeader(name: string, leader: Leader, json: boolean): string {
  if (json) return JSON.stringify({ name, leader: leader.leader, value: leader.value, term: leader.term });
  return `${leader.leader === "" ? "(none)" : leader.leader} term=${leader.term} value=${leader.value}`;
}

export async function runLeader(client: SyncClient, options: LeaderCommand): Promise<number> {
  try {
    const leader = await withDeadline(client.getLeader(options.name, { fresh: options.fresh }), CALL_DEADLINE_MS, "GetLeader");
    process.stdout.write(`${formatLeader(options.name, leader, options.json)}\n`);
    return 0;
  } catch (err) {
    return reportFailure(SyncClientError.from(err), `cannot read the leader of ${options.name}`, client.address);
  }
}

export async function runObserve(client: SyncClient, options: LeaderCommand): Promise<number> {
  const stop = new AbortController();
  const untrap = trapSignals(() => stop.abort());
  try {
    for await (const leader of client.observe(options.name, { signal: stop.signal })) {
      process.stdout.write(`${formatLeader(options.name, leader, options.json)}\n`);
    }
    if (stop.signal.aborted) return 0;
    say(`the sidecar ended the observation of ${options.name}`);
    return EXIT.unavailable;
  } catch (err) {
    if (stop.signal.aborted) return 0;
    return reportFailure(SyncClientError.from(err), `cannot observe ${options.name}`, client.address);
  } finally {
    untrap();
  }
}
