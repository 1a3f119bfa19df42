// Leader election: run several replicas; one leads. The leader starts serving
// HTTP only once elected and proclaims its address; every replica observes
// the election and prints who leads and where. Stop the leader (Ctrl-C or
// SIGTERM) and another replica takes over at once: it resigns on the way out.
//
//   MSYNC_ADDRESS   the sidecar (default 127.0.0.1:13131)
//   REPLICA_ID      this replica's name (default $POD_NAME, else replica-PID)
//   LISTEN_HOST     where the leader serves (default 127.0.0.1; in a pod, the pod IP)
import { type Server, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { SyncClient, type Leadership } from "metaparticle-sync-client";

const ELECTION = "example-leader";
const id = process.env.REPLICA_ID ?? process.env.POD_NAME ?? `replica-${process.pid}`;
const host = process.env.LISTEN_HOST ?? "127.0.0.1";
const client = new SyncClient();
const stopping = new AbortController();

/** The leader's work: serve until leadership ends, then stop serving at once. */
async function lead(leadership: Leadership): Promise<void> {
  const server: Server = createServer((_request, response) => response.end(`${id} leads ${ELECTION} (term ${leadership.term})\n`));
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  leadership.signal.addEventListener("abort", () => server.close(), { once: true });
  if (leadership.signal.aborted) return void server.close();
  const address = `http://${host}:${(server.address() as AddressInfo).port}`;
  console.log(`[${id}] elected leader of ${ELECTION} (term ${leadership.term}); serving at ${address}`);
  await campaign.proclaim(address);
}

const campaign = client.campaign(ELECTION, {
  candidate: id,
  signal: stopping.signal,
  onElected: (leadership) => void lead(leadership).catch((err: Error) => console.error(`[${id}] could not lead: ${err.message}`)),
  onDeposed: (term, reason) => console.log(`[${id}] no longer leader (term ${term}): ${reason}`),
});

const stop = async () => {
  if (stopping.signal.aborted) return;
  // Steps down (if leading) and leaves; waits for the sidecar at most 5 s. Nothing is reported as elected after it.
  await campaign
    .resign({ timeoutMs: 5000 })
    .catch((err: Error) => console.error(`[${id}] could not confirm the resignation: ${err.message}`));
  stopping.abort();
};
process.on("SIGTERM", () => void stop());
process.on("SIGINT", () => void stop());

console.log(`[${id}] campaigning in ${ELECTION} at ${client.address}`);
let last = "";
try {
  for await (const { leader, value, term } of client.observe(ELECTION, { signal: stopping.signal })) {
    // The leader's value is empty between its election and its proclamation.
    const line =
      leader === "" ? "nobody leads right now" : value === "" ? "" : `leader of ${ELECTION} is ${leader} at ${value} (term ${term})`;
    if (line !== "" && line !== last) console.log(`[${id}] ${line}`);
    last = line || last;
  }
} catch (err) {
  console.error(`[${id}] lost the sidecar: ${(err as Error).message}`);
  process.exitCode = 1;
}
stopping.abort();
await campaign.done.catch(() => {});
client.close();
console.log(`[${id}] stopped`);
