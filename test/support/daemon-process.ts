// A real daemon as a separate process (`node dist/daemon/main.js`), for tests
// that kill, stop or signal it. The port is read from its start-up log.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { tiedCommand } from "./tied-process.js";

export const DAEMON_MAIN = fileURLToPath(new URL("../../daemon/main.js", import.meta.url));
/** The lean build that `npm start` and the image run (`npm run build`, scripts/bundle.mjs). */
export const LEAN_MAIN = fileURLToPath(new URL("../../lean/main.mjs", import.meta.url));

export interface DaemonProcess {
  readonly child: ChildProcess;
  readonly port: number;
  readonly address: string;
  /** Every log line so far, parsed. */
  readonly logs: Array<Record<string, unknown>>;
  /** Resolves with the exit code once the process has exited. */
  readonly exited: Promise<number | null>;
  /** Waits for a log line whose msg contains `text`. */
  waitForLog(text: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  signal(signal: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL if still running after `graceMs`. */
  stop(graceMs?: number): Promise<number | null>;
}

const running = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

export interface SpawnOptions {
  /** Wait for the daemon's "ready" (lease cache synced); false for daemons that cannot sync. Default true. */
  readonly waitReady?: boolean;
  /** The entry file to run; DAEMON_MAIN unless given. */
  readonly main?: string;
}

export async function spawnDaemon(
  flags: string[],
  env: Record<string, string | undefined> = {},
  options: SpawnOptions = {},
): Promise<DaemonProcess> {
  const [command, args] = tiedCommand(process.execPath, [options.main ?? DAEMON_MAIN, "--listen=127.0.0.1:0", ...flags]);
  const child = spawn(command, args, {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  running.add(child);
  const exited = once(child, "exit").then(([code]) => {
    running.delete(child);
    return code as number | null;
  });
  const logs: Array<Record<string, unknown>> = [];
  const waiters: Array<{ text: string; resolve(line: Record<string, unknown>): void }> = [];
  const stderr: string[] = [];
  createInterface({ input: child.stderr! }).on("line", (line) => {
    stderr.push(line);
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    logs.push(parsed);
    for (const waiter of [...waiters]) {
      if (String(parsed.msg).includes(waiter.text)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(parsed);
      }
    }
  });
  const waitForLog = (text: string, timeoutMs = 30_000) => {
    const seen = logs.find((l) => String(l.msg).includes(text));
    if (seen) return Promise.resolve(seen);
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`daemon did not log "${text}" within ${timeoutMs} ms; stderr:\n${stderr.join("\n")}`)),
        timeoutMs,
      );
      waiters.push({
        text,
        resolve: (line) => {
          clearTimeout(timer);
          resolve(line);
        },
      });
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`daemon exited (${code}) before logging "${text}"; stderr:\n${stderr.join("\n")}`));
      });
    });
  };
  let listening: Record<string, unknown>;
  try {
    listening = await waitForLog("gRPC server listening");
    if (options.waitReady !== false) await waitForLog("ready");
  } catch (err) {
    child.kill("SIGKILL");
    throw err;
  }
  const port = Number(String(listening.address).split(":").at(-1));
  return {
    child,
    port,
    address: `127.0.0.1:${port}`,
    logs,
    exited,
    waitForLog,
    signal: (signal) => void child.kill(signal),
    async stop(graceMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill("SIGCONT");
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}
