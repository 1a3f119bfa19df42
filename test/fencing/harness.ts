// The fencing scenarios' moving parts: holder processes in each language
// (holders/, spoken to over JSON lines, see README.md), which the scenarios
// pause with SIGSTOP, and the real daemons they hold locks through.
import { execFile } from "node:child_process";
import { mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { type KubeEnv, type KubeDaemon, spawnKubeDaemon } from "../support/kube-env.js";
import { Driver, type Message } from "../conformance/harness.js";

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

/** The holder's command line (the Driver ties its life to this process's). */
function holderCommand(language: Language): readonly string[] {
  return language === "typescript" ? [process.execPath, `${ROOT}dist/test/fencing/holders/typescript/holder.js`] : [GO_HOLDER];
}

export type Reply = Record<string, unknown> & { ok: boolean };

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

/**
 * One holder process: one command at a time, each answered by one reply. It
 * speaks the conformance drivers' JSON-line protocol, so the conformance
 * harness's Driver runs it.
 */
export class Holder {
  private constructor(
    readonly language: Language,
    private readonly driver: Driver,
  ) {}

  static async start(language: Language): Promise<Holder> {
    await buildHolder(language);
    const driver = new Driver(`${language} holder`, { language, command: holderCommand(language) }, ROOT);
    await withTimeout(driver.ready, 30_000, `${language} holder start`);
    return new Holder(language, driver);
  }

  /** Sends a command and waits (at most 60 s) for its reply. */
  send(op: string, args: Record<string, unknown>): Promise<Reply> {
    return withTimeout(this.driver.send(op, args) as Promise<Message & Reply>, 60_000, `${this.language} holder ${op}`);
  }

  /** Sends a command that must succeed; returns its reply. */
  async must(op: string, args: Record<string, unknown>): Promise<Reply> {
    const reply = await this.send(op, args);
    if (reply.ok !== true) throw new Error(`${this.language} holder ${op} failed: ${JSON.stringify(reply)}\n${this.driver.transcript()}`);
    return reply;
  }

  signal(signal: NodeJS.Signals): void {
    this.driver.signal(signal);
  }

  /** Ends stdin (the holder releases and exits); SIGKILL if it has not exited within 10 s. */
  stop(): Promise<void> {
    return this.driver.stop();
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
