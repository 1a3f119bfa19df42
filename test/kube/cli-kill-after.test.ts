// The CLI's command is dead before the lock's (or leadership's) promise ends
// (issue 18): two daemons on the Kubernetes backend of a real kube-apiserver
// and etcd, `metaparticle-sync lock` (or `elect`) through each, and the first
// holder's sidecar frozen. The next holder's command checks, the moment it
// starts, whether the old command can still run: the order is asserted, not a
// wall-clock bound. The old command ignores SIGTERM, so only the SIGKILL that
// --kill-after schedules ends it.
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { type KubeDaemon, kubeSuite, spawnKubeDaemon } from "../support/kube-env.js";

const { test } = kubeSuite();

const CLI = fileURLToPath(new URL("../../../clients/typescript/dist/cli.js", import.meta.url));
/** Upper bound of every wait here. */
const TIMEOUT_MS = 60_000;

interface Cli {
  readonly child: ChildProcess;
  readonly stderr: string[];
  /** The first stdout line containing `text`, with performance.now() when it was read. */
  line(text: string): Promise<{ line: string; at: number }>;
  readonly exited: Promise<number | null>;
}

function cli(t: { teardown(fn: () => void): void }, args: string[], env: Record<string, string>): Cli {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  t.teardown(() => void child.kill("SIGKILL"));
  const lines: Array<{ line: string; at: number }> = [];
  const waiters: Array<{ text: string; resolve(seen: { line: string; at: number }): void }> = [];
  createInterface({ input: child.stdout! }).on("line", (line) => {
    const seen = { line, at: performance.now() };
    lines.push(seen);
    for (const waiter of waiters.filter((w) => line.includes(w.text))) {
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve(seen);
    }
  });
  const stderr: string[] = [];
  createInterface({ input: child.stderr! }).on("line", (line) => stderr.push(line));
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  return {
    child,
    stderr,
    exited,
    line: (text) => {
      const seen = lines.find((l) => l.line.includes(text));
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no stdout line with "${text}" within ${TIMEOUT_MS} ms; stderr:\n${stderr.join("\n")}`)),
          TIMEOUT_MS,
        );
        waiters.push({ text, resolve: (s) => (clearTimeout(timer), resolve(s)) });
      });
    },
  };
}

/**
 * The old command: prints "started PID" and runs until killed, ignoring
 * SIGTERM.
 */
const OLD_COMMAND = `
  process.on("SIGTERM", () => console.log("got SIGTERM"));
  console.log("started " + process.pid);
  setInterval(() => {}, 1000);`;

/**
 * The next command: reads, at once, whether the old command (OLD_PID) can
 * still run, and prints "next started old=STATE". A zombie (Z), a process
 * gone, or one with SIGKILL pending can never run again.
 */
const NEXT_COMMAND = `
  const fs = require("node:fs");
  const pid = process.env.OLD_PID;
  let state = "gone";
  try {
    const stat = fs.readFileSync("/proc/" + pid + "/stat", "utf8");
    state = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
    const status = fs.readFileSync("/proc/" + pid + "/status", "utf8");
    const pending = [...status.matchAll(/^(?:SigPnd|ShdPnd):\\s*([0-9a-f]+)$/gm)].some((m) => (BigInt("0x" + m[1]) & (1n << 8n)) !== 0n);
    if (pending) state += "+SIGKILL-pending";
  } catch {}
  console.log("next started old=" + state);`;

/** Whether process `pid` can never run again, from /proc (a zombie still answers kill(pid, 0)). */
function dead(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
    return state === "Z" || state === "X";
  } catch {
    return true;
  }
}

/** Resolves with performance.now() when `pid` is first seen dead, polling /proc every 2 ms. */
async function deathOf(pid: number): Promise<number> {
  const start = performance.now();
  while (!dead(pid)) {
    if (performance.now() - start > TIMEOUT_MS) throw new Error(`process ${pid} still running after ${TIMEOUT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  return performance.now();
}

for (const command of ["lock", "elect"] as const) {
  test.serial(
    `${command}: with --lease-duration=5s and the holder's sidecar frozen, the next holder's command never starts while the old one runs`,
    async (t) => {
      const namespace = await t.context.env.newNamespace();
      const daemons: KubeDaemon[] = [];
      for (const identity of ["daemon-a", "daemon-b"]) {
        const daemon = await spawnKubeDaemon(t.context.env, namespace, [`--identity=${identity}`]);
        t.teardown(async () => {
          daemon.client.close();
          daemon.signal("SIGCONT");
          await daemon.stop();
        });
        daemons.push(daemon);
      }
      const [a, b] = daemons as [KubeDaemon, KubeDaemon];
      // --kill-after left at its default: the CLI fits it inside the 5 s lease's promise.
      const flags = [command, "handover", "--lease-duration=5s"];
      const old = cli(t, [...flags, "--", process.execPath, "-e", OLD_COMMAND], { MSYNC_ADDRESS: a.address });
      const oldPid = Number((await old.line("started ")).line.split(" ")[1]);
      t.teardown(() => {
        try {
          process.kill(oldPid, "SIGKILL");
        } catch {
          // gone
        }
      });
      const next = cli(t, [...flags, ...(command === "lock" ? ["--wait-timeout=60s"] : []), "--", process.execPath, "-e", NEXT_COMMAND], {
        MSYNC_ADDRESS: b.address,
        OLD_PID: String(oldPid),
      });
      await new Promise((resolve) => setTimeout(resolve, 1000)); // the next one is waiting on daemon b
      const frozenAt = performance.now();
      a.signal("SIGSTOP");
      const oldDied = deathOf(oldPid);
      const started = await next.line("next started");
      const diedAt = await oldDied;
      t.log(
        `old command dead ${Math.round(diedAt - frozenAt)} ms after the freeze, next command started ${Math.round(started.at - frozenAt)} ms after it`,
      );
      t.regex(
        started.line,
        /old=(gone|Z|X|\S*SIGKILL-pending)$/,
        `the next command started while the old one could still run: ${started.line}`,
      );
      t.true(diedAt <= started.at, "the old command was seen dead before the next one was seen starting");
      t.true(
        old.stderr.some((l) => l.includes("sending SIGKILL")),
        `the old command needed SIGKILL:\n${old.stderr.join("\n")}`,
      );
      t.is(await next.exited, 0, next.stderr.join("\n"));
      if (command === "lock") t.is(await old.exited, 76, old.stderr.join("\n"));
    },
  );
}
