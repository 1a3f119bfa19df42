// Runs one example on a laptop in one command: starts a sidecar on the memory
// backend on a free loopback port, runs the example against it, stops it.
//
//   node dist/examples/typescript/run-local.js lock-job   two copies of the job at once: one waits for the other
//   node dist/examples/typescript/run-local.js election   three replicas; the leader is stopped and another takes over
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));
/** Every wait is bounded, so a broken example fails instead of hanging. */
const TIMEOUT_MS = 30_000;

interface Running {
  readonly child: ChildProcess;
  readonly lines: string[];
  readonly exited: Promise<number | null>;
  /** Resolves with the first output line (this one's or seen before) that `match` accepts. */
  waitFor(match: (line: string) => boolean, what: string): Promise<string>;
}

/** Starts `node FILE`, echoing its stdout and stderr lines to ours. */
function start(file: string, args: string[], env: Record<string, string>, echo = true): Running {
  const child = spawn(process.execPath, [file, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  const lines: string[] = [];
  const waiters: Array<{ match(line: string): boolean; resolve(line: string): void }> = [];
  const onLine = (line: string) => {
    lines.push(line);
    if (echo) console.log(line);
    for (const waiter of [...waiters]) {
      if (waiter.match(line)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(line);
      }
    }
  };
  createInterface({ input: child.stdout! }).on("line", onLine);
  createInterface({ input: child.stderr! }).on("line", onLine);
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return {
    child,
    lines,
    exited,
    waitFor(match, what) {
      const seen = lines.find(match);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), TIMEOUT_MS);
        waiters.push({ match, resolve: (line) => (clearTimeout(timer), resolve(line)) });
      });
    },
  };
}

async function startSidecar(): Promise<{ address: string; stop(): Promise<void> }> {
  const daemon = start(here("../../daemon/main.js"), ["--listen=127.0.0.1:0", "--backend=memory"], {}, false);
  const failed = daemon.exited.then((code) => {
    throw new Error(`the sidecar exited (${code}):\n${daemon.lines.join("\n")}`);
  });
  const listening = await Promise.race([daemon.waitFor((l) => l.includes('"gRPC server listening"'), "the sidecar to listen"), failed]);
  await Promise.race([daemon.waitFor((l) => l.includes('"msg":"ready'), "the sidecar to be ready"), failed]);
  failed.catch(() => {});
  const address = String((JSON.parse(listening) as { address: string }).address);
  console.log(`sidecar on the memory backend listening at ${address}`);
  return {
    address,
    async stop() {
      daemon.child.kill("SIGTERM");
      await daemon.exited;
    },
  };
}

async function lockJob(address: string): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "msync-lock-job-"));
  try {
    const env = { MSYNC_ADDRESS: address, JOB_STORE: join(dir, "store.json") };
    const jobs = ["job-a", "job-b"].map((id) => start(here("lock-job.js"), [], { ...env, JOB_ID: id }));
    const codes = await Promise.all(jobs.map((job) => job.exited));
    const store = JSON.parse(readFileSync(env.JOB_STORE, "utf8")) as { entries: string[] };
    console.log(`the store holds, in order:\n  ${store.entries.join("\n  ")}`);
    return codes.every((code) => code === 0) ? 0 : 1;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function election(address: string): Promise<number> {
  const replicas = new Map(
    ["replica-1", "replica-2", "replica-3"].map((id) => [id, start(here("election.js"), [], { MSYNC_ADDRESS: address, REPLICA_ID: id })]),
  );
  try {
    const leaderOf = (line: string) => / is (\S+) at (\S+) \(term/.exec(line);
    const first = leaderOf(await replicas.get("replica-1")!.waitFor((l) => leaderOf(l) !== null, "a leader"))!;
    const [, leader, url] = first;
    for (const replica of replicas.values())
      await replica.waitFor((l) => l.includes(` is ${leader} at `), `every replica to see ${leader}`);
    const answer = await (await fetch(url!)).text();
    console.log(`GET ${url} -> ${answer.trim()}`);
    console.log(`stopping the leader, ${leader}`);
    const old = replicas.get(leader!)!;
    old.child.kill("SIGTERM");
    await old.exited;
    replicas.delete(leader!);
    let next = "";
    for (const replica of replicas.values()) {
      next = leaderOf(await replica.waitFor((l) => leaderOf(l) !== null && leaderOf(l)![1] !== leader, "a new leader"))![1]!;
    }
    // Followers first, so that nobody else is elected while the demo ends.
    const stopping = [...replicas.keys()].sort((a, b) => Number(a === next) - Number(b === next));
    for (const id of stopping) {
      replicas.get(id)!.child.kill("SIGTERM");
      await replicas.get(id)!.exited;
      replicas.delete(id);
    }
    return 0;
  } finally {
    for (const replica of replicas.values()) replica.child.kill("SIGTERM");
    await Promise.all([...replicas.values()].map((r) => r.exited));
  }
}

const examples: Record<string, (address: string) => Promise<number>> = { "lock-job": lockJob, election };
const run = examples[process.argv[2] ?? ""];
if (run === undefined) {
  console.error(`usage: node dist/examples/typescript/run-local.js ${Object.keys(examples).join("|")}`);
  process.exit(64);
}
const sidecar = await startSidecar();
try {
  process.exitCode = await run(sidecar.address);
} catch (err) {
  console.error(`example failed: ${(err as Error).message}`);
  process.exitCode = 1;
} finally {
  await sidecar.stop();
}
