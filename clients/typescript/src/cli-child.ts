// The command that `lock` and `elect` run: started with extra environment,
// tied to this program's life, stopped with SIGTERM then SIGKILL, its status
// turned into an exit code the shell way, and the signals this program
// receives passed on to it.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { accessSync, constants as fsConstants, statSync } from "node:fs";
import { constants } from "node:os";
import { delimiter, join } from "node:path";
import { isatty } from "node:tty";
import { EXIT } from "./cli-args.js";
import { say } from "./cli-calls.js";

export class Child {
  /** Undefined when CMD could not be found or executed, so nothing was started. */
  private readonly process: ChildProcess | undefined;
  private killTimer: NodeJS.Timeout | undefined;
  private stopping = false;
  /** Resolves once CMD has exited, with its status as a shell reports it (128+N for signal N). */
  readonly exited: Promise<number>;
  running = true;

  constructor(argv: readonly string[], extraEnv: Record<string, string>) {
    const env = { ...process.env, ...extraEnv };
    const file = argv[0]!;
    // Looked up here, as execvp would, because under setpriv and sh a missing CMD is only their exit status.
    const problem = whyNotRunnable(file, env.PATH);
    if (problem !== undefined) {
      this.running = false;
      say(`cannot run ${JSON.stringify(file)}: ${problem}`);
      this.exited = Promise.resolve(problem === "not found" ? EXIT.notFound : EXIT.cannotExecute);
      return;
    }
    const [command, args] = tiedToThisProcess(argv, env);
    const child = spawn(command, args, { stdio: "inherit", env });
    this.process = child;
    this.exited = new Promise((resolve) => {
      child.once("error", (err: NodeJS.ErrnoException) => {
        // Only a failed spawn emits "error" without "exit"; a failed kill also emits it, but the process lives on.
        if (child.pid !== undefined) return;
        this.ended();
        say(`cannot run ${JSON.stringify(command)}: ${err.message}`);
        resolve(err.code === "ENOENT" ? EXIT.notFound : EXIT.cannotExecute);
      });
      child.once("exit", (code, signal) => {
        this.ended();
        resolve(signal !== null ? EXIT.signalBase + (constants.signals[signal] ?? 0) : (code ?? EXIT.software));
      });
    });
  }

  /** Sends SIGTERM, then SIGKILL if CMD is still running after `graceMs`. Repeated calls change nothing. */
  stop(graceMs: number): void {
    if (!this.running || this.stopping) return;
    this.stopping = true;
    this.signal("SIGTERM");
    this.killTimer = setTimeout(() => {
      if (!this.running) return;
      say(`command still running ${graceMs} ms after SIGTERM: sending SIGKILL`);
      this.signal("SIGKILL");
    }, graceMs);
  }

  signal(signal: NodeJS.Signals): void {
    if (this.running) this.process?.kill(signal);
  }

  private ended(): void {
    this.running = false;
    clearTimeout(this.killTimer);
  }
}

/** The signals passed on to CMD. The first three are also what a terminal sends to its whole foreground process group. */
const TERMINAL_SIGNALS: readonly NodeJS.Signals[] = ["SIGINT", "SIGQUIT", "SIGHUP"];
const FORWARDED_SIGNALS: readonly NodeJS.Signals[] = [...TERMINAL_SIGNALS, "SIGTERM"];

/**
 * Catches the signals that would otherwise kill this program while CMD runs
 * (leaving CMD running without the lock) and hands each to `onSignal`, with
 * whether it should be passed on to CMD: on a terminal, Ctrl-C and friends
 * already reach CMD, which shares our process group, and a second copy would
 * make many programs quit at once instead of shutting down. Returns a
 * function that removes the handlers.
 */
export function trapSignals(onSignal: (signal: NodeJS.Signals, forward: boolean) => void): () => void {
  const onTerminal = isatty(0) || isatty(1) || isatty(2);
  const handlers = FORWARDED_SIGNALS.map((signal) => {
    const handler = () => onSignal(signal, !(onTerminal && TERMINAL_SIGNALS.includes(signal)));
    process.on(signal, handler);
    return [signal, handler] as const;
  });
  return () => {
    for (const [signal, handler] of handlers) process.off(signal, handler);
  };
}

export function signalExitCode(signal: NodeJS.Signals): number {
  return EXIT.signalBase + (constants.signals[signal] ?? 0);
}

/**
 * The command line that runs `argv` so that it dies with this program, even
 * when this program is killed outright (SIGKILL, the OOM killer). Without it,
 * CMD lives on, re-parented to init, while the sidecar sees this program's
 * stream close and grants the lock (or leadership) to the next in line: two
 * holders at once.
 *
 * On Linux, CMD runs under util-linux's `setpriv --pdeathsig SIGKILL`, which
 * sets PR_SET_PDEATHSIG and execs: the kernel sends SIGKILL to CMD while this
 * program exits, before it is reaped. (The signal follows the thread that
 * spawned CMD; Node spawns from its main thread, which lives as long as the
 * process.) If this program died between the fork and the prctl, no signal
 * comes, so the `sh` step between them checks that its parent is still this
 * program: a parent that died after the prctl sends the signal, one that died
 * before is no longer the parent. setpriv, sh and CMD each exec the next, so
 * CMD keeps the pid this program signals.
 *
 * Not covered: CMD's own children (a script should `exec` its last command),
 * and a set-user-ID CMD, for which the kernel clears the setting. Where
 * setpriv is missing (macOS, the BSDs, an image without util-linux), CMD
 * runs directly and a warning says what that leaves open.
 */
function tiedToThisProcess(argv: readonly string[], env: NodeJS.ProcessEnv): [string, string[]] {
  const setpriv = setprivWithPdeathsig();
  if (setpriv === undefined) {
    say(
      "warning: cannot tie the command's life to this program's (needs Linux and util-linux setpriv 2.33 or later): " +
        "if this program is killed with SIGKILL, the command keeps running without the lock or leadership",
    );
    return [argv[0]!, argv.slice(1)];
  }
  // dash exports PWD when it starts; do not hand CMD a variable it would not have had.
  const keepEnv = env.PWD === undefined ? "unset PWD; " : "";
  const check = `${keepEnv}[ "$PPID" = "$1" ] || exit 1; shift; exec "$@"`;
  return [setpriv, ["--pdeathsig", "SIGKILL", "--", "/bin/sh", "-c", check, "sh", String(process.pid), ...argv]];
}

let setprivPath: string | null | undefined;

/** The path of a setpriv that has --pdeathsig (util-linux 2.33, 2018), looked up once. */
function setprivWithPdeathsig(): string | undefined {
  if (setprivPath === undefined) {
    setprivPath = null;
    if (process.platform === "linux") {
      for (const candidate of ["/usr/bin/setpriv", "/bin/setpriv"]) {
        const help = spawnSync(candidate, ["--help"], { encoding: "utf8", timeout: 5000 });
        if (help.status === 0 && help.stdout.includes("--pdeathsig")) {
          setprivPath = candidate;
          break;
        }
      }
    }
  }
  return setprivPath ?? undefined;
}

/** Why `file` cannot be executed, looked up on `path` as execvp would, or undefined if it can. */
function whyNotRunnable(file: string, path = ""): string | undefined {
  const candidates = file.includes("/") ? [file] : path.split(delimiter).map((dir) => join(dir || ".", file));
  let found = false;
  for (const candidate of candidates) {
    try {
      if (!statSync(candidate).isFile()) continue;
      found = true;
      accessSync(candidate, fsConstants.X_OK);
      return undefined;
    } catch {
      // not here, or not executable
    }
  }
  return found ? "permission denied" : "not found";
}
