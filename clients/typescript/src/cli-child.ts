// The command that `lock` and `elect` run: started with extra environment,
// stopped with SIGTERM then SIGKILL, its status turned into an exit code the
// shell way, and the signals this program receives passed on to it.
import { type ChildProcess, spawn } from "node:child_process";
import { constants } from "node:os";
import { isatty } from "node:tty";
import { EXIT } from "./cli-args.js";
import { say } from "./cli-calls.js";

export class Child {
  private readonly process: ChildProcess;
  private killTimer: NodeJS.Timeout | undefined;
  private stopping = false;
  /** Resolves once CMD has exited, with its status as a shell reports it (128+N for signal N). */
  readonly exited: Promise<number>;
  running = true;

  constructor(argv: readonly string[], env: Record<string, string>) {
    const [file, ...args] = argv;
    this.process = spawn(file!, args, { stdio: "inherit", env: { ...process.env, ...env } });
    this.exited = new Promise((resolve) => {
      this.process.once("error", (err: NodeJS.ErrnoException) => {
        // Only a failed spawn emits "error" without "exit"; a failed kill also emits it, but the process lives on.
        if (this.process.pid !== undefined) return;
        this.ended();
        say(`cannot run ${JSON.stringify(file)}: ${err.message}`);
        resolve(err.code === "ENOENT" ? EXIT.notFound : EXIT.cannotExecute);
      });
      this.process.once("exit", (code, signal) => {
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
    if (this.running) this.process.kill(signal);
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
