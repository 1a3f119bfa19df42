// The TypeScript examples (examples/typescript) run as their README says,
// against a real daemon, and print what the README promises.
import test, { type ExecutionContext } from "ava";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startTestDaemon } from "../support/test-daemon.js";

const EXAMPLES = fileURLToPath(new URL("../../examples/typescript/", import.meta.url));
const TIMEOUT_MS = 60_000;

/** Runs `node EXAMPLES/FILE ARGS` to its end (killed after TIMEOUT_MS) and returns its exit code and output. */
function runExample(t: ExecutionContext, file: string, args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [join(EXAMPLES, file), ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  t.teardown(() => void child.kill("SIGKILL"));
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  return new Promise<{ code: number | null; output: string }>((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), TIMEOUT_MS);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

test("lock-job, one command: two copies of the job run one after the other, each writing with its own fencing token", async (t) => {
  const { code, output } = await runExample(t, "run-local.js", ["lock-job"]);
  t.is(code, 0, output);
  t.regex(output, /^sidecar on the memory backend listening at 127\.0\.0\.1:\d+$/m);
  const acquired = [...output.matchAll(/^\[(job-[ab])\] acquired lock nightly-report with fencing token (\d)$/gm)].map((m) => [m[1], m[2]]);
  t.is(acquired.length, 2, output);
  t.deepEqual(
    acquired.map(([, token]) => token),
    ["1", "2"],
  );
  const [first, second] = acquired.map(([id]) => id!);
  const store = output.slice(output.indexOf("the store holds, in order:"));
  const entries = store
    .split("\n")
    .slice(1, 7)
    .map((l) => l.trim());
  t.deepEqual(entries, [
    `1 ${first} step 1/3`,
    `1 ${first} step 2/3`,
    `1 ${first} step 3/3`,
    `2 ${second} step 1/3`,
    `2 ${second} step 2/3`,
    `2 ${second} step 3/3`,
  ]);
  // The second copy acquired only after the first released.
  t.true(output.indexOf(`[${first}] done; releasing nightly-report`) < output.indexOf(`[${second}] acquired lock`));
});

test("lock-job against a running sidecar: the store refuses a write with a stale fencing token", async (t) => {
  const d = await startTestDaemon();
  t.teardown(() => d.stop());
  const dir = mkdtempSync(join(tmpdir(), "msync-example-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const store = join(dir, "store.json");
  const env = { MSYNC_ADDRESS: d.address, JOB_ID: "nightly", JOB_STORE: store };
  const ok = await runExample(t, "lock-job.js", [], env);
  t.is(ok.code, 0, ok.output);
  t.regex(ok.output, /\[nightly\] acquired lock nightly-report with fencing token 1\n/);
  t.regex(ok.output, /\[nightly\] done; releasing nightly-report\n/);
  t.false((await d.client.getLock("nightly-report")).held);

  // A store that has seen a newer holder's token refuses this one.
  writeFileSync(store, JSON.stringify({ highestToken: 99, entries: [] }));
  const stale = await runExample(t, "lock-job.js", [], env);
  t.not(stale.code, 0);
  t.regex(stale.output, /store refused a write with stale fencing token 2: it has seen 99/);
  t.deepEqual(JSON.parse(readFileSync(store, "utf8")), { highestToken: 99, entries: [] });
  t.false((await d.client.getLock("nightly-report")).held, "released on the way out");
});

test("election, one command: the leader serves and proclaims its address, followers print it, and another takes over when it stops", async (t) => {
  const { code, output } = await runExample(t, "run-local.js", ["election"]);
  t.is(code, 0, output);
  const elected = [...output.matchAll(/^\[(replica-\d)\] elected leader of example-leader \(term (\d+)\); serving at (http:\S+)$/gm)];
  t.is(elected.length, 2, `one election at the start and one when the leader stopped:\n${output}`);
  const [first, second] = elected;
  t.is(first![2], "1");
  t.is(second![2], "2");
  t.not(first![1], second![1]);
  // Every replica printed the first leader's proclaimed address.
  for (const replica of ["replica-1", "replica-2", "replica-3"]) {
    t.true(output.includes(`[${replica}] leader of example-leader is ${first![1]} at ${first![3]} (term 1)`), `${replica}:\n${output}`);
  }
  t.true(output.includes(`GET ${first![3]} -> ${first![1]} leads example-leader (term 1)`), output);
  t.true(output.includes(`stopping the leader, ${first![1]}`));
  for (const replica of ["replica-1", "replica-2", "replica-3"].filter((r) => r !== first![1])) {
    t.true(output.includes(`[${replica}] leader of example-leader is ${second![1]} at ${second![3]} (term 2)`), `${replica}:\n${output}`);
  }
});
