// The `metaparticle-sync` command line (clients/typescript/src/cli.ts) as a
// separate process against a real daemon, with real commands under it.
import test, { type ExecutionContext } from "ava";
import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { SyncClient } from "metaparticle-sync-client";
import { spawnDaemon } from "../support/daemon-process.js";
import { startTestDaemon } from "../support/test-daemon.js";

const CLI = fileURLToPath(new URL("../../../clients/typescript/dist/cli.js", import.meta.url));
const NODE = process.execPath;
/** Upper bound of every wait in these tests. */
const TIMEOUT_MS = 20_000;

interface Cli {
  readonly child: ChildProcess;
  readonly stdout: string[];
  readonly stderr: string[];
  /** The exit code; a CLI killed by a signal fails the wait. */
  readonly exited: Promise<number>;
  /** Waits for a stdout line containing `text`. */
  line(text: string): Promise<string>;
  /** Waits for a stderr line containing `text`. */
  errorLine(text: string): Promise<string>;
}

/** Starts `metaparticle-sync ARGS` with only PATH, HOME and `env` in its environment; it must exit within `timeoutMs`. */
function cli(t: ExecutionContext, args: string[], env: Record<string, string> = {}, timeoutMs = TIMEOUT_MS): Cli {
  const child = spawn(NODE, [CLI, ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  t.teardown(() => void child.kill("SIGKILL"));
  const stdout: string[] = [];
  const stderr: string[] = [];
  const waitFor = (lines: string[], stream: string) => {
    const waiters: Array<{ text: string; resolve(line: string): void }> = [];
    createInterface({ input: stream === "stdout" ? child.stdout! : child.stderr! }).on("line", (line) => {
      lines.push(line);
      for (const waiter of waiters.filter((w) => line.includes(w.text))) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(line);
      }
    });
    return (text: string) => {
      const seen = lines.find((l) => l.includes(text));
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise<string>((resolve, reject) => {
        const timer = setTimeout(
          () =>
            reject(
              new Error(
                `no ${stream} line with "${text}" within ${TIMEOUT_MS} ms; stdout:\n${stdout.join("\n")}\nstderr:\n${stderr.join("\n")}`,
              ),
            ),
          TIMEOUT_MS,
        );
        waiters.push({ text, resolve: (line) => (clearTimeout(timer), resolve(line)) });
      });
    };
  };
  const line = waitFor(stdout, "stdout");
  const errorLine = waitFor(stderr, "stderr");
  const exited = new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`CLI ${args.join(" ")} still running after ${timeoutMs} ms`)), timeoutMs);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (code === null) reject(new Error(`CLI ${args.join(" ")} died of ${signal}; stderr:\n${stderr.join("\n")}`));
      else resolve(code);
    });
  });
  exited.catch(() => {});
  return { child, stdout, stderr, exited, line, errorLine };
}

async function run(t: ExecutionContext, args: string[], env: Record<string, string> = {}) {
  const process = cli(t, args, env);
  const code = await process.exited;
  return { code, stdout: process.stdout.join("\n"), stderr: process.stderr.join("\n") };
}

/** A command for the CLI to run: this Node executing `script`. */
function nodeScript(script: string): string[] {
  return ["--", NODE, "-e", script];
}

function tempDir(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), "msync-cli-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const start = performance.now();
  while (!condition()) {
    if (performance.now() - start > TIMEOUT_MS) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * A script that prints "started PID token=T term=T permits=N" (from its environment), then waits for `file` to
 * exist and exits with `code`. A SIGTERM prints "got SIGTERM" first.
 */
function waitForFileScript(file: string, code: number, onTerm = ""): string {
  return `
    const fs = require("node:fs");
    process.on("SIGTERM", () => { console.log("got SIGTERM"); ${onTerm} });
    const env = process.env;
    console.log("started " + process.pid + " token=" + env.MSYNC_FENCING_TOKEN + " term=" + env.MSYNC_TERM + " permits=" + env.MSYNC_PERMITS);
    setInterval(() => { if (fs.existsSync(${JSON.stringify(file)})) process.exit(${code}); }, 10);`;
}

/** A script that prints "started PID", then appends a line to `file` every 2 ms until killed. */
function tickScript(file: string): string {
  return `
    const fs = require("node:fs");
    console.log("started " + process.pid + " token=" + process.env.MSYNC_FENCING_TOKEN + " term=" + process.env.MSYNC_TERM);
    setInterval(() => fs.appendFileSync(${JSON.stringify(file)}, "tick\\n"), 2);`;
}

/**
 * Whether process `pid` can never run again: gone, a zombie, or with SIGKILL
 * already pending (the kernel delivers it before the process next returns to
 * user space). A zombie still answers kill(pid, 0), so /proc is read instead.
 */
function finished(pid: number): { finished: boolean; state: string } {
  let stat: string;
  let status: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    status = readFileSync(`/proc/${pid}/status`, "utf8");
  } catch {
    return { finished: true, state: "gone" };
  }
  const state = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0]!;
  const pending = [...status.matchAll(/^(?:SigPnd|ShdPnd):\s*([0-9a-f]+)$/gm)].some((m) => (BigInt(`0x${m[1]}`) & (1n << 8n)) !== 0n);
  return { finished: state === "Z" || state === "X" || pending, state: pending ? `${state}, SIGKILL pending` : state };
}

function killIfAlive(pid: number): void {
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    // already gone
  }
}

// PR_SET_PDEATHSIG is Linux's; elsewhere the CLI cannot tie the command's life to its own (see the README).
const linuxOnly = process.platform === "linux" ? test : test.skip;

for (const command of ["lock", "elect"] as const) {
  linuxOnly(
    `${command}: a SIGKILLed CLI takes its command with it, before the next ${command === "lock" ? "holder" : "leader"} is granted`,
    async (t) => {
      const daemon = await spawnDaemon(["--backend=memory"]);
      t.teardown(() => daemon.stop());
      const ticks = join(tempDir(t), "ticks");
      const wrapper = cli(t, [command, "orphan", ...nodeScript(tickScript(ticks))], { MSYNC_ADDRESS: daemon.address });
      const pid = Number((await wrapper.line("started ")).split(" ")[1]);
      t.teardown(() => killIfAlive(pid));
      const client = new SyncClient({ address: daemon.address });
      t.teardown(() => client.close());
      const granted =
        command === "lock"
          ? client.lock("orphan", { holder: "next" })
          : new Promise<unknown>((resolve) => {
              const campaign = client.campaign("orphan", { candidate: "next", onElected: resolve });
              t.teardown(() => campaign.close());
            });
      await until(() => {
        try {
          return statSync(ticks).size > 0;
        } catch {
          return false;
        }
      }, "the command to write");
      wrapper.child.kill("SIGKILL");
      await granted;
      const after = finished(pid);
      t.true(after.finished, `the command (pid ${pid}) is still running (state ${after.state}) when the next one is granted`);
      const size = statSync(ticks).size;
      await sleep(300);
      t.is(statSync(ticks).size, size, "the command wrote nothing after the next one was granted");
    },
  );
}

test("lock: runs the command with the fencing token and lock name, passes its exit code through, and releases", async (t) => {
  const d = await startTestDaemon();
  t.teardown(() => d.stop());
  const env = { MSYNC_ADDRESS: d.address };
  const first = await run(
    t,
    [
      "lock",
      "cli-job",
      ...nodeScript("console.log(`name=${process.env.MSYNC_LOCK_NAME} token=${process.env.MSYNC_FENCING_TOKEN}`); process.exit(7)"),
    ],
    env,
  );
  t.is(first.code, 7);
  t.is(first.stdout, "name=cli-job token=1");
  t.is(first.stderr, "");
  t.false((await d.client.getLock("cli-job")).held, "released after the command exited");
  // --address wins over MSYNC_ADDRESS; the second holder gets a greater token.
  const second = await run(
    t,
    ["lock", `--address=${d.address}`, "cli-job", "--holder=second", ...nodeScript("console.log(process.env.MSYNC_FENCING_TOKEN)")],
    { MSYNC_ADDRESS: "127.0.0.1:1" },
  );
  t.is(second.code, 0);
  t.is(second.stdout, "2");
  const info = await d.client.getLock("cli-job");
  t.like(info, { held: false, holder: "second", token: 2 });
  // A command killed by a signal: 128 + the signal's number, like a shell.
  const killed = await run(t, ["lock", "cli-job", ...nodeScript("process.kill(process.pid, 'SIGKILL')")], env);
  t.is(killed.code, 128 + 9);
  const missing = await run(t, ["lock", "cli-job", "--", "/nonexistent/command"], env);
  t.is(missing.code, 127);
  t.regex(missing.stderr, /cannot run "\/nonexistent\/command"/);
});

test("lock: concurrent lock commands never overlap, and their tokens increase in the order they ran", async (t) => {
  const d = await startTestDaemon();
  t.teardown(() => d.stop());
  const log = join(tempDir(t), "log");
  writeFileSync(log, "");
  // Each command appends "start ID TOKEN", works a little, then appends "end ID TOKEN".
  const script = (id: string) => `
    const fs = require("node:fs");
    const token = process.env.MSYNC_FENCING_TOKEN;
    fs.appendFileSync(${JSON.stringify(log)}, "start ${id} " + token + "\\n");
    setTimeout(() => fs.appendFileSync(${JSON.stringify(log)}, "end ${id} " + token + "\\n"), 50);`;
  const ids = ["a", "b", "c", "d", "e"];
  const results = await Promise.all(
    ids.map((id) => run(t, ["lock", "shared", `--holder=${id}`, ...nodeScript(script(id))], { MSYNC_ADDRESS: d.address })),
  );
  t.deepEqual(
    results.map((r) => r.code),
    [0, 0, 0, 0, 0],
  );
  const lines = readFileSync(log, "utf8").trim().split("\n");
  t.is(lines.length, 2 * ids.length);
  const tokens: number[] = [];
  for (let i = 0; i < lines.length; i += 2) {
    const [startWord, id, token] = lines[i]!.split(" ");
    t.is(startWord, "start");
    t.is(lines[i + 1], `end ${id} ${token}`, `nobody started between ${id}'s start and end:\n${lines.join("\n")}`);
    tokens.push(Number(token));
  }
  t.deepEqual(tokens, [1, 2, 3, 4, 5]);
});

test("lock -n 2: two commands run at once, a third waits for a permit and runs once one exits; each gets its token and MSYNC_PERMITS", async (t) => {
  const d = await startTestDaemon();
  t.teardown(() => d.stop());
  const dir = tempDir(t);
  const env = { MSYNC_ADDRESS: d.address };
  const start = (id: string) =>
    cli(t, ["lock", "-n", "2", "pool", `--holder=${id}`, ...nodeScript(waitForFileScript(join(dir, `done-${id}`), 0))], env);
  const a = start("a");
  const b = start("b");
  const startedA = await a.line("started ");
  const startedB = await b.line("started ");
  t.regex(startedA, / permits=2$/);
  const tokens = [startedA, startedB].map((line) => Number(/token=(\d+)/.exec(line)?.[1])).sort();
  t.deepEqual(tokens, [1, 2], "both run at once, each with a token of its own");
  const c = start("c");
  const held = await d.client.getSemaphore("pool");
  t.is(held.permits, 2);
  t.deepEqual(held.holders.map((h) => h.holder).sort(), ["a", "b"]);
  await sleep(500);
  t.deepEqual(c.stdout, [], "the third waits while both permits are held");
  writeFileSync(join(dir, "done-a"), "");
  t.is(await a.exited, 0);
  const startedC = await c.line("started ");
  t.regex(startedC, /token=3 term=undefined permits=2$/);
  t.false(b.child.exitCode !== null, "b still runs beside c");
  t.deepEqual((await d.client.getSemaphore("pool")).holders.map((h) => h.holder).sort(), ["b", "c"]);
  writeFileSync(join(dir, "done-b"), "");
  writeFileSync(join(dir, "done-c"), "");
  t.deepEqual(await Promise.all([b.exited, c.exited]), [0, 0]);
  t.deepEqual((await d.client.getSemaphore("pool")).holders, [], "every permit given back once the commands exited");
  t.false((await d.client.getLock("pool")).held, "a semaphore is not the lock of the same name");
});

test.serial(
  "lock -n: another N than the semaphore's exits 64 without running the command; --wait-timeout exits 75 naming the holders",
  async (t) => {
    const d = await startTestDaemon();
    t.teardown(() => d.stop());
    const held = await d.client.semaphore("busy-pool", 1).acquire({ holder: "the-holder" });
    t.teardown(() => held.release());
    const marker = join(tempDir(t), "ran");
    const env = { MSYNC_ADDRESS: d.address };
    const mismatch = await run(t, ["lock", "-n", "3", "busy-pool", "--", "touch", marker], env);
    t.is(mismatch.code, 64);
    t.regex(mismatch.stderr, /cannot hold a permit of semaphore busy-pool: FAILED_PRECONDITION: permits/);
    const timedOut = await run(t, ["lock", "--permits=1", "busy-pool", "--wait-timeout=0", "--", "touch", marker], env);
    t.is(timedOut.code, 75);
    t.regex(timedOut.stderr, /timed out after 0ms waiting for a permit of semaphore busy-pool \(held by the-holder, fencing token 1\)/);
    const outOfRange = await run(t, ["lock", "-n", "0", "busy-pool", "--", "touch", marker], env);
    t.is(outOfRange.code, 64, "the sidecar's INVALID_ARGUMENT is a usage error");
    t.regex(outOfRange.stderr, /INVALID_ARGUMENT: permits/);
    t.throws(() => readFileSync(marker), undefined, "the command never ran");
    t.false(held.lost, "the holder kept its permit");
  },
);

/** A script that prints "started mode=M token=T name=N" (from its environment), then waits for `file` to exist and exits 0. */
function rwScript(file: string): string {
  return `
    const fs = require("node:fs");
    const env = process.env;
    console.log("started mode=" + env.MSYNC_LOCK_MODE + " token=" + env.MSYNC_FENCING_TOKEN + " name=" + env.MSYNC_LOCK_NAME);
    setInterval(() => { if (fs.existsSync(${JSON.stringify(file)})) process.exit(0); }, 10);`;
}

test("lock --shared: two commands run at once with MSYNC_LOCK_MODE=shared; --exclusive waits for both and runs alone with a token; a plain lock of NAME is another lock", async (t) => {
  const d = await startTestDaemon();
  t.teardown(() => d.stop());
  const dir = tempDir(t);
  const env = { MSYNC_ADDRESS: d.address };
  const start = (id: string, mode: string) =>
    cli(t, ["lock", `--${mode}`, "catalog", `--holder=${id}`, ...nodeScript(rwScript(join(dir, `done-${id}`)))], env);
  const a = start("a", "shared");
  const b = start("b", "shared");
  t.is(await a.line("started "), "started mode=shared token=0 name=catalog");
  t.is(await b.line("started "), "started mode=shared token=0 name=catalog", "both readers run at once, before any writer: token 0");
  const info = await d.client.rwlock("catalog").get();
  t.like(info, { mode: "shared", holder: "" });
  t.is(
    info.readers.reduce((sum, seat) => sum + seat.readers, 0),
    2,
  );
  // A plain lock of the same NAME is not the read-write lock: it runs beside the readers.
  const plain = await run(
    t,
    ["lock", "catalog", "--wait-timeout=0", ...nodeScript("console.log(process.env.MSYNC_LOCK_MODE ?? 'no mode')")],
    env,
  );
  t.is(plain.code, 0, plain.stderr);
  t.is(plain.stdout, "no mode", "a plain lock's command gets no MSYNC_LOCK_MODE");

  const w = start("w", "exclusive");
  await sleep(500);
  t.deepEqual(w.stdout, [], "the writer waits while the readers run");
  writeFileSync(join(dir, "done-a"), "");
  t.is(await a.exited, 0);
  await sleep(300);
  t.deepEqual(w.stdout, [], "one reader still runs");
  writeFileSync(join(dir, "done-b"), "");
  t.is(await b.exited, 0);
  const started = await w.line("started ");
  t.regex(started, /^started mode=exclusive token=[1-9]\d* name=catalog$/);
  const writerToken = Number(/token=(\d+)/.exec(started)![1]);
  const late = start("late", "shared");
  await sleep(500);
  t.deepEqual(late.stdout, [], "a reader waits while the writer runs");
  writeFileSync(join(dir, "done-w"), "");
  t.is(await w.exited, 0);
  t.is(await late.line("started "), `started mode=shared token=${writerToken} name=catalog`, "a reader gets the last writer's token");
  writeFileSync(join(dir, "done-late"), "");
  t.is(await late.exited, 0);
  t.like(await d.client.rwlock("catalog").get({ fresh: true }), { held: false, readers: [] }, "given back once the commands exited");
});

test.serial("lock --shared: --wait-timeout exits 75 naming the writer; with -n or --exclusive it is a usage error, exit 64", async (t) => {
  const d = await startTestDaemon();
  t.teardown(() => d.stop());
  const writer = await d.client.rwlock("busy-rw").acquire("exclusive", { holder: "the-writer" });
  t.teardown(() => writer.release());
  const marker = join(tempDir(t), "ran");
  const env = { MSYNC_ADDRESS: d.address };
  const timedOut = await run(t, ["lock", "--shared", "busy-rw", "--wait-timeout=0", "--", "touch", marker], env);
  t.is(timedOut.code, 75);
  t.regex(
    timedOut.stderr,
    new RegExp(
      `timed out after 0ms waiting for a shared hold of read-write lock busy-rw \\(held exclusive by the-writer, fencing token ${writer.token}\\)`,
    ),
  );
  const badName = await run(t, ["lock", "--exclusive", "Not_A_Name", "--", "touch", marker], env);
  t.is(badName.code, 64, "the sidecar's INVALID_ARGUMENT is a usage error");
  t.regex(badName.stderr, /cannot take an exclusive hold of read-write lock Not_A_Name: INVALID_ARGUMENT: name/);
  for (const args of [
    ["lock", "--shared", "-n", "2", "busy-rw", "--", "touch", marker],
    ["lock", "-n", "2", "--exclusive", "busy-rw", "--", "touch", marker],
    ["lock", "--shared", "busy-rw", "--exclusive", "--", "touch", marker],
  ]) {
    const result = await run(t, args, env);
    t.is(result.code, 64, args.join(" "));
    t.regex(result.stderr, /lock takes only one of -n \(--permits\), --shared and --exclusive/, args.join(" "));
  }
  t.throws(() => readFileSync(marker), undefined, "the command never ran");
  t.false(writer.lost, "the writer kept its hold");
});

test("lock --non-fair: the command runs holding lock NAME with its token; with -n, --shared or --exclusive it is a usage error, exit 64", async (t) => {
  const d = await startTestDaemon();
  t.teardown(() => d.stop());
  const marker = join(tempDir(t), "ran");
  const env = { MSYNC_ADDRESS: d.address };
  const ran = await run(t, ["lock", "--non-fair", "barge", ...nodeScript("console.log(`token=${process.env.MSYNC_FENCING_TOKEN}`)")], env);
  t.is(ran.code, 0, ran.stderr);
  t.regex(ran.stdout, /^token=1$/m);
  t.false((await d.client.getLock("barge")).held, "released once the command exited");
  for (const args of [
    ["lock", "--non-fair", "-n", "2", "barge", "--", "touch", marker],
    ["lock", "--shared", "--non-fair", "barge", "--", "touch", marker],
    ["lock", "--non-fair", "--exclusive", "barge", "--", "touch", marker],
  ]) {
    const result = await run(t, args, env);
    t.is(result.code, 64, args.join(" "));
    t.regex(result.stderr, /--non-fair is for a plain lock/, args.join(" "));
  }
  t.throws(() => readFileSync(marker), undefined, "the command never ran");
});

// Serial: with the machine busy with the other tests, the in-process sidecar may answer a 300 ms wait timeout
// later than the CLI's own clock allows (1 s after it), and the message then cannot name the holder.
test.serial("lock: --wait-timeout exits 75 without running the command while someone else holds the lock", async (t) => {
  const d = await startTestDaemon();
  t.teardown(() => d.stop());
  const held = await d.client.lock("busy", { holder: "the-holder" });
  t.teardown(() => held.release());
  const marker = join(tempDir(t), "ran");
  for (const wait of ["300ms", "0"]) {
    const result = await run(t, ["lock", "busy", `--wait-timeout=${wait}`, "--", "touch", marker], { MSYNC_ADDRESS: d.address });
    t.is(result.code, 75, `--wait-timeout=${wait}`);
    t.regex(result.stderr, /timed out after .* waiting for lock busy \(held by the-holder, fencing token 1\)/);
    t.throws(() => readFileSync(marker), undefined, "the command did not run");
  }
  t.like(await d.client.getLock("busy"), { held: true, holder: "the-holder", token: 1 });
});

for (const { flags, what } of [
  { flags: [], what: "lock frozen" },
  { flags: ["-n", "2"], what: "a permit of semaphore frozen" },
  { flags: ["--exclusive"], what: "an exclusive hold of read-write lock frozen" },
]) {
  test(`lock ${flags.join(" ")}${flags.length > 0 ? " " : ""}lost: when the daemon freezes, the command gets SIGTERM, then SIGKILL, and the CLI exits 76`, async (t) => {
    // A 4 s lease promises 2 s at a time, renewed every 1.33 s or so: room for a 300 ms --kill-after.
    const daemon = await spawnDaemon(["--backend=memory", "--lease-duration=4s", "--renew-deadline=2s"]);
    t.teardown(() => daemon.stop());
    // The command ignores SIGTERM, so --kill-after must end it.
    const locked = cli(t, ["lock", ...flags, "frozen", "--kill-after=300ms", ...nodeScript(waitForFileScript("/nonexistent/never", 0))], {
      MSYNC_ADDRESS: daemon.address,
    });
    const started = await locked.line("started ");
    const pid = Number(started.split(" ")[1]);
    t.true(alive(pid));
    daemon.signal("SIGSTOP"); // no more heartbeats: the CLI's own deadline must fire
    t.teardown(() => daemon.signal("SIGCONT"));
    t.is(await locked.exited, 76);
    t.true(locked.stdout.includes("got SIGTERM"), "the command was asked to stop");
    t.false(alive(pid), "the command was killed");
    const stderr = locked.stderr.join("\n");
    t.true(
      new RegExp(
        `${what} \\(fencing token 1\\): no heartbeat from the sidecar, and its promise runs out in [\\d.]+m?s: stopping the command`,
      ).test(stderr),
      stderr,
    );
    t.regex(stderr, /sending SIGKILL/);
    daemon.signal("SIGCONT");
  });
}

// Serial, so that the bound measures the CLI and not a machine busy with the other tests.
test.serial("lock --wait-timeout on a frozen sidecar exits 75 within 5 s, on the CLI's own clock", async (t) => {
  const daemon = await spawnDaemon(["--backend=memory"]);
  t.teardown(() => daemon.stop());
  const client = new SyncClient({ address: daemon.address });
  t.teardown(() => client.close());
  await client.lock("frozen-wait", { holder: "the-holder" });
  daemon.signal("SIGSTOP");
  t.teardown(() => daemon.signal("SIGCONT"));
  const marker = join(tempDir(t), "ran");
  const env = { MSYNC_ADDRESS: daemon.address };
  // Held by someone else, and not held at all: the frozen sidecar answers neither way.
  for (const name of ["frozen-wait", "frozen-free"]) {
    const start = performance.now();
    const result = { ...(await run(t, ["lock", name, "--wait-timeout=2s", "--", "touch", marker], env)), ms: performance.now() - start };
    t.is(result.code, 75, result.stderr);
    t.true(result.ms < 5000, `exited after ${Math.round(result.ms)} ms`);
    t.regex(result.stderr, /timed out after 2s waiting for lock frozen-(wait|free)/);
  }
  t.throws(() => readFileSync(marker), undefined, "the command did not run");
});

test("lock: SIGTERM to the CLI goes to the command; the lock is released only once the command has exited", async (t) => {
  const d = await startTestDaemon();
  t.teardown(() => d.stop());
  const release = join(tempDir(t), "release");
  const locked = cli(t, ["lock", "graceful", ...nodeScript(waitForFileScript(release, 3))], { MSYNC_ADDRESS: d.address });
  await locked.line("started ");
  locked.child.kill("SIGTERM");
  await locked.line("got SIGTERM");
  t.true((await d.client.getLock("graceful")).held, "still held while the command shuts down");
  writeFileSync(release, "");
  t.is(await locked.exited, 3);
  t.false((await d.client.getLock("graceful")).held);

  // Interrupted while still waiting: exits 128 + SIGINT without running anything.
  const held = await d.client.lock("graceful", { holder: "other" });
  t.teardown(() => held.release());
  const waiting = cli(t, ["lock", "graceful", "--verbose", "--", "true"], { MSYNC_ADDRESS: d.address });
  await waiting.errorLine("waiting for lock graceful");
  waiting.child.kill("SIGINT");
  t.is(await waiting.exited, 130);
  t.like(await d.client.getLock("graceful"), { held: true, holder: "other" });
});

test("elect: runs the command only while leader; a second elect takes over when the first's command exits", async (t) => {
  const d = await startTestDaemon();
  t.teardown(() => d.stop());
  const dir = tempDir(t);
  const log = join(dir, "log");
  writeFileSync(log, "");
  const script = (id: string) => `
    const fs = require("node:fs");
    fs.appendFileSync(${JSON.stringify(log)}, "start ${id} " + process.env.MSYNC_TERM + "\\n");
    console.log("leading " + process.env.MSYNC_ELECTION_NAME + " as " + process.env.MSYNC_CANDIDATE + " term " + process.env.MSYNC_TERM);
    setInterval(() => {
      if (!fs.existsSync(${JSON.stringify(join(dir, `stop-${id}`))})) return;
      fs.appendFileSync(${JSON.stringify(log)}, "end ${id}\\n");
      process.exit(${id === "a" ? 5 : 0});
    }, 10);`;
  const env = { MSYNC_ADDRESS: d.address };
  const a = cli(t, ["elect", "scheduler", "--candidate=a", "--value=10.0.0.1:80", ...nodeScript(script("a"))], env);
  t.is(await a.line("leading"), "leading scheduler as a term 1");
  const b = cli(t, ["elect", "scheduler", "--candidate=b", "--value=10.0.0.2:80", ...nodeScript(script("b"))], env);
  await sleep(200); // let b join while a leads; the log's order below holds either way
  t.deepEqual(b.stdout, [], "b runs nothing while a leads");
  t.like(await d.client.getLeader("scheduler"), { leader: "a", value: "10.0.0.1:80", term: 1 });

  writeFileSync(join(dir, "stop-a"), "");
  t.is(await a.exited, 5, "a exits with its command's status, resigning");
  t.is(await b.line("leading"), "leading scheduler as b term 2");
  t.like(await d.client.getLeader("scheduler"), { leader: "b", value: "10.0.0.2:80", term: 2 });
  writeFileSync(join(dir, "stop-b"), "");
  t.is(await b.exited, 0);
  t.is(readFileSync(log, "utf8"), "start a 1\nend a\nstart b 2\nend b\n");
  t.like(await d.client.getLeader("scheduler"), { leader: "" });
});

test("elect: the command is stopped when the daemon stops answering, and started again, in a new term, once it answers", async (t) => {
  const daemon = await spawnDaemon(["--backend=memory", "--lease-duration=4s", "--renew-deadline=2s"]);
  t.teardown(() => daemon.stop());
  const elect = cli(
    t,
    ["elect", "frozen", "--kill-after=300ms", ...nodeScript(waitForFileScript("/nonexistent/never", 0, "process.exit(0)"))],
    {
      MSYNC_ADDRESS: daemon.address,
    },
  );
  await elect.line("term=1");
  daemon.signal("SIGSTOP");
  t.teardown(() => daemon.signal("SIGCONT"));
  await elect.line("got SIGTERM");
  t.regex(
    elect.stderr.join("\n"),
    /leader of frozen \(term 1\): no heartbeat from the sidecar, and its promise runs out in [\d.]+m?s: stopping the command/,
  );
  daemon.signal("SIGCONT");
  // A new term, whichever: on SIGCONT the daemon may first re-elect the claim
  // of the stream the client already gave up (term 2, which nobody acts on)
  // and then hand over to its new campaign (term 3).
  const started = () => elect.stdout.filter((l) => l.startsWith("started "));
  for (const deadline = Date.now() + TIMEOUT_MS; started().length < 2 && Date.now() < deadline;) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const restarted = started()[1] ?? "";
  t.true(Number(/term=(\d+)/.exec(restarted)?.[1]) > 1, `restarted in a new term: ${JSON.stringify(started())}`);
  t.is(elect.stdout.filter((l) => l.startsWith("started ")).length, 2, "exactly one restart");
  elect.child.kill("SIGTERM");
  t.is(await elect.exited, 0, "the command's status after the forwarded SIGTERM");
});

/**
 * A loopback port that was free a moment ago, for a daemon that must come back
 * at the same address. It is taken below Linux's ephemeral range (32768 and
 * up), where no outgoing connection takes a port: while the daemon is down,
 * the CLI's reconnection attempts and the other test files' connections use
 * ephemeral local ports, and one of them (even a TCP self-connect to the port
 * dialled) can hold it, so that the restarted daemon cannot listen (seen once
 * under load: "the address is already in use").
 */
async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const server = createServer();
    const bound = await new Promise<boolean>((resolve) => {
      server.once("error", () => resolve(false));
      server.listen(port, "127.0.0.1", () => resolve(true));
    });
    if (!bound) continue;
    await new Promise((resolve) => server.close(resolve));
    return port;
  }
  throw new Error("no free loopback port below 32000 after 50 tries");
}

test("elect and observe wait for a restarting sidecar and carry on: the command runs again once re-elected", async (t) => {
  const listen = `--listen=127.0.0.1:${await freePort()}`;
  const first = await spawnDaemon(["--backend=memory", listen]);
  t.teardown(() => first.stop());
  const env = { MSYNC_ADDRESS: first.address };
  const elect = cli(
    t,
    ["elect", "restart", "--candidate=a", ...nodeScript(waitForFileScript("/nonexistent/never", 0, "process.exit(0)"))],
    env,
    40_000,
  );
  const observer = cli(t, ["observe", "restart"], env, 40_000);
  await elect.line("term=1");
  await observer.line("a term=1");
  t.is(await first.stop(), 0);
  await elect.line("got SIGTERM"); // deposed by the sidecar's shutdown
  // The memory store starts again from nothing: the same candidate is elected in term 1 of the new daemon.
  const second = await spawnDaemon(["--backend=memory", listen]);
  t.teardown(() => second.stop());
  await until(() => elect.stdout.filter((l) => l.startsWith("started ")).length === 2, "the command to start again");
  await observer.errorLine("observing restart again");
  t.regex(elect.stderr.join("\n"), /joining the election restart again/);
  t.is(elect.child.exitCode, null, "elect is still running");
  // The observer follows the new daemon: the resignation when elect ends shows there.
  const seen = observer.stdout.length;
  elect.child.kill("SIGTERM");
  t.is(await elect.exited, 0);
  await until(() => observer.stdout.slice(seen).includes("(none) term=1 value="), "the observer to see the resignation");
  observer.child.kill("SIGTERM");
  t.is(await observer.exited, 0);
});

test("observe says on stderr that the sidecar stopped answering, and goes on once it answers again", async (t) => {
  const daemon = await spawnDaemon(["--backend=memory"]);
  t.teardown(() => daemon.stop());
  const env = { MSYNC_ADDRESS: daemon.address };
  const observer = cli(t, ["observe", "quiet"], env, 60_000);
  await observer.line("(none) term=0");
  daemon.signal("SIGSTOP");
  t.teardown(() => daemon.signal("SIGCONT"));
  // gRPC keepalive: a ping within 10 s, 5 s for its answer.
  t.regex(await observer.errorLine("quiet again once it answers"), /lost the sidecar at 127\.0\.0\.1:\d+ \(UNAVAILABLE/);
  t.is(observer.child.exitCode, null, "observe waits for the sidecar");
  daemon.signal("SIGCONT");
  const client = new SyncClient({ address: daemon.address });
  t.teardown(() => client.close());
  const campaign = client.campaign("quiet", { candidate: "back" });
  t.teardown(() => campaign.close());
  await observer.line("back term=1");
  await observer.errorLine("answers again");
  observer.child.kill("SIGTERM");
  t.is(await observer.exited, 0);
});

test.serial("leader gives up on a frozen sidecar at its --timeout (default 10s), exits 69 and says so", async (t) => {
  const daemon = await spawnDaemon(["--backend=memory"]);
  t.teardown(() => daemon.stop());
  daemon.signal("SIGSTOP");
  t.teardown(() => daemon.signal("SIGCONT"));
  const env = { MSYNC_ADDRESS: daemon.address };
  const start = performance.now();
  const [short, usual] = await Promise.all(
    [["--timeout=1s"], []].map(async (flags) => {
      const result = await run(t, ["leader", "frozen", ...flags], env);
      return { ...result, ms: performance.now() - start };
    }),
  );
  t.is(short!.code, 69, short!.stderr);
  t.true(short!.ms < 3500, `--timeout=1s: exited after ${Math.round(short!.ms)} ms`);
  t.regex(short!.stderr, /cannot read the leader of frozen: DEADLINE_EXCEEDED: no answer from the sidecar .* within 1000 ms/);
  t.is(usual!.code, 69, usual!.stderr);
  t.true(usual!.ms >= 9500 && usual!.ms < 13_000, `default: exited after ${Math.round(usual!.ms)} ms`);
  t.regex(usual!.stderr, /DEADLINE_EXCEEDED/);
});

for (const command of ["lock", "elect"] as const) {
  test(`${command} refuses a --kill-after that cannot fit the lease's promise: exit 64, a message that says why, and the command never runs`, async (t) => {
    const d = await startTestDaemon();
    t.teardown(() => d.stop());
    const marker = join(tempDir(t), "ran");
    const env = { MSYNC_ADDRESS: d.address };
    // A 5 s lease promises about 3.3 s at a time (renew deadline 10 s of 15 s), renewed every 1.7 s or so.
    const refused = await run(t, [command, "tight", "--lease-duration=5s", "--kill-after=3s", "--", "touch", marker], env);
    t.is(refused.code, 64, refused.stderr);
    t.regex(refused.stderr, /--kill-after=3s cannot fit: .*promise/);
    t.regex(refused.stderr, /at most [\d.]+m?s/);
    t.throws(() => readFileSync(marker), undefined, "the command did not run");
    if (command === "lock") t.false((await d.client.getLock("tight")).held, "given back");
    else t.is((await d.client.getLeader("tight")).leader, "", "resigned");
    // Within the bound, it runs.
    const fits = await run(t, [command, "tight", "--lease-duration=5s", "--kill-after=500ms", "--", "touch", marker], env);
    t.is(fits.code, 0, fits.stderr);
    t.notThrows(() => readFileSync(marker));
  });
}

test("leader and observe print the leader, term and value, as text or JSON", async (t) => {
  const d = await startTestDaemon();
  t.teardown(() => d.stop());
  const env = { MSYNC_ADDRESS: d.address };
  t.deepEqual(await run(t, ["leader", "web"], env), { code: 0, stdout: "(none) term=0 value=", stderr: "" });

  const observer = cli(t, ["observe", "web", "--json"], env);
  const textObserver = cli(t, ["observe", "web"], env);
  t.deepEqual(JSON.parse(await observer.line("{")), { name: "web", leader: "", value: "", term: 0 });
  await textObserver.line("(none)");

  const first = d.client.campaign("web", { candidate: "pod-a", value: "10.0.0.1:8080" });
  await until(() => first.leading, "pod-a to lead");
  t.deepEqual(await run(t, ["leader", "web"], env), { code: 0, stdout: "pod-a term=1 value=10.0.0.1:8080", stderr: "" });
  const json = await run(t, ["leader", "web", "--json", "--fresh"], env);
  t.deepEqual(JSON.parse(json.stdout), { name: "web", leader: "pod-a", value: "10.0.0.1:8080", term: 1 });

  const second = d.newClient().campaign("web", { candidate: "pod-b", value: "10.0.0.2:8080" });
  t.teardown(() => second.close());
  await first.resign();
  await until(() => second.leading, "pod-b to lead");
  await observer.line('"pod-b"');
  await textObserver.line("pod-b term=2 value=10.0.0.2:8080");
  t.true(textObserver.stdout.includes("pod-a term=1 value=10.0.0.1:8080"));
  const seen = observer.stdout.map((l) => JSON.parse(l) as { leader: string; term: number });
  t.deepEqual(
    seen.filter((l) => l.leader !== "").map((l) => `${l.leader}/${l.term}`),
    ["pod-a/1", "pod-b/2"],
  );
  observer.child.kill("SIGINT");
  textObserver.child.kill("SIGTERM");
  t.is(await observer.exited, 0);
  t.is(await textObserver.exited, 0);
});

test("usage errors exit 64, an unreachable sidecar 69, and --help documents the exit codes", async (t) => {
  const help = await run(t, ["--help"]);
  t.is(help.code, 0);
  t.regex(help.stdout, /metaparticle-sync lock \[-n N \| --shared \| --exclusive\] NAME/);
  t.regex(help.stdout, /75 +lock: --wait-timeout passed/);
  for (const command of ["lock", "elect", "leader", "observe"]) {
    const commandHelp = await run(t, [command, "--help"]);
    t.is(commandHelp.code, 0, command);
    t.regex(
      commandHelp.stdout,
      new RegExp(`^Usage: metaparticle-sync ${command} ${command === "lock" ? "\\[-n N \\| --shared \\| --exclusive\\] " : ""}NAME`),
      command,
    );
    // Each command's help lists only the exit codes it can exit with.
    const runsCommand = command === "lock" || command === "elect";
    t.is(/CMD's status|126, 127/.test(commandHelp.stdout), runsCommand, `${command} --help and CMD's exit codes`);
    t.is(/\n {2}7[56] /.test(commandHelp.stdout), command === "lock", `${command} --help and the lock's exit codes`);
  }
  const nothing = await run(t, []);
  t.is(nothing.code, 64, "no command is bad usage");
  t.regex(nothing.stderr, /^metaparticle-sync: distributed locks/);
  t.is(nothing.stdout, "");
  for (const args of [
    ["frobnicate"],
    ["lock"],
    ["lock", "x"],
    ["lock", "--", "true"],
    ["lock", "x", "--bogus", "--", "true"],
    ["lock", "-n", "two", "x", "--", "true"],
    ["lock", "x", "-n"],
    ["lock", "--shared=yes", "x", "--", "true"],
    ["elect", "-n", "2", "x", "--", "true"],
    ["leader", "x", "y"],
  ]) {
    const result = await run(t, args);
    t.is(result.code, 64, args.join(" "));
    t.regex(result.stderr, /^metaparticle-sync: /, args.join(" "));
  }
  const badDuration = await run(t, ["lock", "x", "--wait-timeout=soon", "--", "true"]);
  t.is(badDuration.code, 64);
  t.regex(badDuration.stderr, /--wait-timeout: "soon" is not a duration/);

  const d = await startTestDaemon();
  t.teardown(() => d.stop());
  const rejected = await run(t, ["lock", "Not_A_Valid_Name", "--", "true"], { MSYNC_ADDRESS: d.address });
  t.is(rejected.code, 64, "the daemon's INVALID_ARGUMENT is a usage error");
  t.regex(rejected.stderr, /INVALID_ARGUMENT: name/);

  const unreachable = await run(t, ["leader", "x", "--address=127.0.0.1:1"]);
  t.is(unreachable.code, 69);
  t.regex(unreachable.stderr, /UNAVAILABLE.*is the sidecar running at 127\.0\.0\.1:1\?/);
  t.is((await run(t, ["lock", "x", "--", "true"], { MSYNC_ADDRESS: "127.0.0.1:1" })).code, 69);
});
