// The fencing scenarios' moving parts: holder processes in each language
// (holders/, spoken to over JSON lines, see README.md), which the scenarios
// pause with SIGSTOP, and the real daemons they hold locks through.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { type KubeEnv, type KubeDaemon, spawnKubeDaemon } from "../support/kube-env.js";
import { tiedCommand } from "../support/tied-process.js";

export const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

export type Language = "typescript" | "go";
export const LANGUAGES: readonly Language[] = ["typescript", "go"];

const GO_HOLDER = `${ROOT}.cache/fencing/go-holder`;
const built = new Map<Language, Promise<void>>();

/** Builds a language's holder once per process (Go: `go build`, a few seconds with a warm build cache). */
export function buildHolder(language: Language): Promise<void> {
  if (language === "typescript") return Promise.resolve(); // compiled with the tests
  let build = built.get(language);
  if (build === undefined) {
    mkdirSync(`${ROOT}.cache/fencing`, { recursive: true });
    build = promisify(execFile)("go", ["build", "-o", GO_HOLDER, "."], {
      cwd: `${ROOT}test/fencing/holders/go`,
      timeout: 5 * 60_000,
    }).then(() => undefined);
    built.set(language, build);
  }
  return build;
}

function holderCommand(language: Language): [string, string[]] {
  return language === "typescript"
    ? tiedCommand(process.execPath, [`${ROOT}dist/test/fencing/holders/typescript/holder.js`])
    : tiedCommand(GO_HOLDER, []);
}

export type Reply = Record<string, unknown> & { ok: boolean };

/** One holder process: one command at a time, each answered by one reply. */
/** What one scenario saw, whatever the store; `Stored` is what the store holds at the end. */
export interface Outcome<Stored> {
  token: number;
  newerToken: number;
  /** A's write with its old token after B's write. */
  staleWrite: Reply;
  /** B's second write, after A's attempt. */
  newerSecondWrite: Reply;
  /** A's write to an object without a fence, after the pause. */
  unfencedWrite: Reply;
  stored: Stored;
}

export class Holder {
  private readonly child: ChildProcess;
  private readonly waiting = new Map<number, (reply: Reply) => void>();
  private readonly stderr: string[] = [];
  private nextId = 1;
  private readonly exited: Promise<number | null>;
  private readonly ready: Promise<void>;

  private constructor(readonly language: Language) {
    const [command, args] = holderCommand(language);
    this.child = spawn(command, args, { cwd: ROOT, stdio: ["pipe", "pipe", "pipe"] });
    this.exited = new Promise((resolve) => this.child.on("exit", resolve));
    createInterface({ input: this.child.stderr! }).on("line", (line) => this.stderr.push(line));
    let onReady!: () => void;
    this.ready = new Promise((resolve, reject) => {
      onReady = resolve;
      void this.exited.then((code) => reject(new Error(`${language} holder exited (${code}) before it was ready: ${this.log()}`)));
    });
    createInterface({ input: this.child.stdout! }).on("line", (line) => {
      const message = JSON.parse(line) as Reply & { id?: number; event?: string };
      if (message.event === "ready") return onReady();
      if (typeof message.id === "number") {
        this.waiting.get(message.id)?.(message);
        this.waiting.delete(message.id);
      }
    });
  }

  static async start(language: Language): Promise<Holder> {
    await buildHolder(language);
    const holder = new Holder(language);
    await withTimeout(holder.ready, 30_000, `${language} holder start`);
    return holder;
  }

  /** Sends a command and waits (at most 60 s) for its reply. */
  send(op: string, args: Record<string, unknown>): Promise<Reply> {
    const id = this.nextId++;
    const reply = new Promise<Reply>((resolve, reject) => {
      this.waiting.set(id, resolve);
      void this.exited.then((code) =>
        reject(new Error(`${this.language} holder exited (${code}) before replying to ${op}: ${this.log()}`)),
      );
    });
    this.child.stdin!.write(`${JSON.stringify({ id, op, ...args })}\n`);
    return withTimeout(reply, 60_000, `${this.language} holder ${op}`);
  }

  /** Sends a command that must succeed; returns its reply. */
  async must(op: string, args: Record<string, unknown>): Promise<Reply> {
    const reply = await this.send(op, args);
    if (reply.ok !== true) throw new Error(`${this.language} holder ${op} failed: ${JSON.stringify(reply)}`);
    return reply;
  }

  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  log(): string {
    return this.stderr.slice(-20).join("\n");
  }

  /** Ends stdin (the holder releases and exits); SIGKILL if it has not exited within 10 s. */
  async stop(): Promise<void> {
    this.child.kill("SIGCONT");
    this.child.stdin!.end();
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 10_000);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Short leases, so a frozen sidecar's lease runs out within seconds. */
const SIDECAR_FLAGS = ["--lease-duration=3s", "--renew-deadline=2s", "--shutdown-timeout=2s"];

/** Two daemons on the Kubernetes backend sharing one namespace: A's holder and B's. */
export async function twoSidecars(env: KubeEnv, prefix: string): Promise<{ a: KubeDaemon; b: KubeDaemon; namespace: string }> {
  const namespace = await env.newNamespace(prefix);
  const a = await spawnKubeDaemon(env, namespace, ["--identity=sidecar-a", ...SIDECAR_FLAGS]);
  const b = await spawnKubeDaemon(env, namespace, ["--identity=sidecar-b", ...SIDECAR_FLAGS]);
  return { a, b, namespace };
}

/**
 * The pause fencing is for: holder A took the lock through sidecar A and
 * wrote; now both freeze (SIGSTOP) past the lease, B takes the lock through
 * sidecar B with a greater token and writes, and then A's process resumes and
 * writes with its old token, as a process paused between its check and its
 * write would. `bWrites` runs while A is frozen.
 */
export async function pauseHolderPastLease(holderA: Holder, sidecarA: KubeDaemon, whileFrozen: () => Promise<void>): Promise<void> {
  sidecarA.signal("SIGSTOP");
  holderA.signal("SIGSTOP");
  try {
    await whileFrozen();
  } finally {
    holderA.signal("SIGCONT");
  }
}

export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms)));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
