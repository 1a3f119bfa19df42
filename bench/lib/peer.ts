// A peer process (the Go programs in bench/peers, or a bench app): JSON event
// lines on stdout, commands on stdin. Every peer dies with the harness
// (PR_SET_PDEATHSIG through setpriv where available, and an exit hook).
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { tiedCommand } from "../../test/support/tied-process.js";

export interface PeerEvent {
  readonly event: string;
  /** CLOCK_MONOTONIC of the event, in ms. */
  readonly at: number;
  readonly [field: string]: unknown;
}

const running = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

export class PeerProcess {
  readonly events: PeerEvent[] = [];
  readonly exited: Promise<number | null>;
  private readonly stderrTail: string[] = [];
  private readonly listeners = new Set<(event: PeerEvent) => void>();
  private exitCode: number | null | undefined;

  private constructor(
    readonly label: string,
    readonly child: ChildProcess,
  ) {
    running.add(child);
    // "close", not "exit": it comes after stdout has been read to the end, so every event line is in before it.
    this.exited = once(child, "close").then(([code]) => {
      running.delete(child);
      this.exitCode = code as number | null;
      return this.exitCode;
    });
    createInterface({ input: child.stdout! }).on("line", (line) => {
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      const at = typeof parsed.mono_ns === "number" ? parsed.mono_ns / 1e6 : Number(parsed.at);
      const event = { ...parsed, event: String(parsed.event), at } as PeerEvent;
      this.events.push(event);
      for (const listener of [...this.listeners]) listener(event);
    });
    createInterface({ input: child.stderr! }).on("line", (line) => {
      this.stderrTail.push(line);
      if (this.stderrTail.length > 40) this.stderrTail.shift();
    });
    child.stdin?.on("error", () => {}); // the peer may exit before reading
  }

  static spawn(label: string, command: string, args: readonly string[], env: Record<string, string | undefined> = {}): PeerProcess {
    const [cmd, argv] = tiedCommand(command, args);
    const child = spawn(cmd, argv, {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    return new PeerProcess(label, child);
  }

  get pid(): number {
    return this.child.pid!;
  }

  get alive(): boolean {
    return this.exitCode === undefined;
  }

  /** Calls `listener` for every later event; returns the unsubscribe function. */
  on(listener: (event: PeerEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The first event from index `from` on (default: any so far) that matches, waiting for it if need be. */
  waitFor(match: (event: PeerEvent) => boolean, timeoutMs: number, from = 0): Promise<PeerEvent> {
    const seen = this.events.slice(from).find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`${this.label}: no matching event within ${timeoutMs} ms; stderr tail:\n${this.stderr()}`));
      }, timeoutMs);
      const off = this.on((event) => {
        if (!match(event)) return;
        clearTimeout(timer);
        off();
        resolve(event);
      });
      // Settling twice is harmless: after the event arrived this does nothing.
      void this.exited.then((code) => {
        clearTimeout(timer);
        off();
        reject(new Error(`${this.label}: exited (${code}) before the awaited event; stderr tail:\n${this.stderr()}`));
      });
    });
  }

  waitForEvent(name: string, timeoutMs: number, from = 0): Promise<PeerEvent> {
    return this.waitFor((e) => e.event === name, timeoutMs, from);
  }

  send(line: string): void {
    this.child.stdin?.write(line + "\n");
  }

  kill(signal: NodeJS.Signals): void {
    if (this.alive) this.child.kill(signal);
  }

  /** SIGTERM (or `signal`), then SIGKILL after `graceMs`; resolves once exited. */
  async stop(graceMs = 10_000, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    if (!this.alive) return;
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill("SIGKILL"), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  stderr(): string {
    return this.stderrTail.join("\n");
  }
}
