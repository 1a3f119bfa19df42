// A singleton job: however many copies start at once (an overlapping CronJob,
// a Deployment's replicas), only one does the work at a time. Every write it
// makes carries the lock's fencing token, and the store refuses a token older
// than one it has seen, so a copy that lost the lock while paused can never
// overwrite the work of the copy that took over.
//
//   MSYNC_ADDRESS   the sidecar (default 127.0.0.1:13131)
//   JOB_ID          this copy's name (default job-PID)
//   JOB_STORE       the store's file (default: a file in the temp directory)
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { SyncClient, SyncClientError, status } from "metaparticle-sync-client";

/**
 * Stands in for the database or bucket the job writes to: it remembers the
 * highest fencing token it has seen and refuses writes with an older one.
 * (With a database: `UPDATE ... SET token = $1 WHERE token <= $1`.)
 */
class FencedStore {
  constructor(private readonly path: string) {}

  write(token: number, entry: string): void {
    const state = this.read();
    if (token < state.highestToken) {
      throw new Error(
        `store refused a write with stale fencing token ${token}: it has seen ${state.highestToken} ` +
          `(a sidecar on the memory backend starts tokens at 1 again when it restarts: then delete ${this.path})`,
      );
    }
    state.highestToken = token;
    state.entries.push(`${token} ${entry}`);
    writeFileSync(`${this.path}.tmp`, JSON.stringify(state, null, 2));
    renameSync(`${this.path}.tmp`, this.path);
  }

  private read(): { highestToken: number; entries: string[] } {
    try {
      return JSON.parse(readFileSync(this.path, "utf8")) as { highestToken: number; entries: string[] };
    } catch {
      return { highestToken: 0, entries: [] };
    }
  }
}

const LOCK = "nightly-report";
const STEPS = 3;
const id = process.env.JOB_ID ?? `job-${process.pid}`;
const store = new FencedStore(process.env.JOB_STORE ?? join(tmpdir(), "metaparticle-sync-lock-job.json"));
const client = new SyncClient();

/** The job: a few steps, each written to the store with this holder's fencing token. */
async function runJob(): Promise<void> {
  console.log(`[${id}] waiting for lock ${LOCK} at ${client.address}`);
  // Waits at most a minute (else DEADLINE_EXCEEDED, also if the sidecar stops answering). Leaving the block
  // releases the lock and waits for the sidecar's acknowledgement, at most 10 s.
  await using lock = await client.lock(LOCK, { holder: id, waitTimeoutMs: 60_000 });
  console.log(`[${id}] acquired lock ${LOCK} with fencing token ${lock.token}`);
  for (let step = 1; step <= STEPS; step++) {
    // Rejects at once, with the reason, if the lock is lost: never act without it.
    await sleep(200, undefined, { signal: lock.signal });
    store.write(lock.token, `${id} step ${step}/${STEPS}`);
    console.log(`[${id}] step ${step}/${STEPS} written with fencing token ${lock.token}`);
  }
  console.log(`[${id}] done; releasing ${LOCK}`);
}

try {
  await runJob();
} catch (err) {
  const error =
    err instanceof SyncClientError && err.code === status.DEADLINE_EXCEEDED ? `gave up: ${err.message}` : (err as Error).message;
  console.error(`[${id}] failed: ${error}`);
  process.exitCode = 1;
} finally {
  client.close();
}
