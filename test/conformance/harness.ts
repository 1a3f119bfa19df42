// The conformance harness: driver processes spoken to over stdin/stdout JSON
// lines (PROTOCOL.md), real sidecars it can freeze and restart, and the
// interpreter of the scenarios' steps.
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { type DaemonProcess, spawnDaemon } from "../support/daemon-process.js";
import { type KubeEnv, startKubeEnv } from "../support/kube-env.js";
import { tiedCommand } from "../support/tied-process.js";
import type { DriverSpec } from "./drivers.js";
import type { ExpectedError, Match, Scenario, Step } from "./scenarios.js";

/**
 * How long a `none` step waits before it judges: an event that a wrong
 * client sends a little late (a ghost `elected` after a thaw, a `lost` after
 * a release) has arrived by then.
 */
const SETTLE_MS = 1500;

export type Message = Record<string, unknown> & { readonly seq: number };

let sequence = 0;

/** The sequence number of the last message any driver sent: a moment to compare `seq`s with. */
export function currentSequence(): number {
  return sequence;
}

/** One driver process. */
export class Driver {
  private readonly child: ChildProcess;
  private readonly replies = new Map<number, (reply: Message) => void>();
  private readonly events: Message[] = [];
  private readonly consumed = new Set<Message>();
  private readonly eventWaiters = new Set<() => void>();
  private nextId = 1;
  private readonly stderr: string[] = [];
  readonly ready: Promise<Message>;
  private readonly exited: Promise<number | null>;

  constructor(
    readonly name: string,
    spec: DriverSpec,
    root: string,
  ) {
    const [command, args] = tiedCommand(spec.command[0]!, spec.command.slice(1));
    this.child = spawn(command, args, { cwd: root, env: { ...process.env, ...spec.env }, stdio: ["pipe", "pipe", "pipe"] });
    this.exited = new Promise((resolve) => this.child.on("exit", resolve));
    createInterface({ input: this.child.stderr! }).on("line", (line) => this.stderr.push(line));
    let onReady: (m: Message) => void;
    this.ready = new Promise((resolve, reject) => {
      onReady = resolve;
      void this.exited.then((code) => reject(new Error(`driver ${name} exited (${code}) before it was ready`)));
    });
    createInterface({ input: this.child.stdout! }).on("line", (line) => {
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(line) as Record<string, unknown>;
      } catch {
        this.stderr.push(`(not JSON on stdout) ${line}`);
        return;
      }
      const message: Message = { ...parsed, seq: ++sequence };
      if (message.event === "ready") return onReady(message);
      if (typeof message.id === "number") {
        this.replies.get(message.id)?.(message);
        this.replies.delete(message.id);
        return;
      }
      this.events.push(message);
      for (const wake of [...this.eventWaiters]) wake();
    });
  }

  /** Sends a command; the promise is its reply. */
  send(op: string, args: Readonly<Record<string, unknown>>): Promise<Message> {
    const id = this.nextId++;
    const reply = new Promise<Message>((resolve, reject) => {
      this.replies.set(id, resolve);
      void this.exited.then((code) => reject(new Error(`driver ${this.name} exited (${code}) before replying to ${op} (id ${id})`)));
    });
    this.child.stdin!.write(`${JSON.stringify({ id, op, ...args })}\n`);
    return reply;
  }

  /** The first event not yet taken that `matches`, waiting up to `withinMs` for it. */
  async takeEvent(matches: (event: Message) => boolean, withinMs: number): Promise<Message | undefined> {
    const deadline = performance.now() + withinMs;
    for (;;) {
      const found = this.events.find((e) => !this.consumed.has(e) && matches(e));
      if (found) {
        this.consumed.add(found);
        return found;
      }
      const left = deadline - performance.now();
      if (left <= 0) return undefined;
      await new Promise<void>((resolve) => {
        const wake = () => {
          this.eventWaiters.delete(wake);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(wake, left);
        this.eventWaiters.add(wake);
      });
    }
  }

  seen(matches: (event: Message) => boolean): Message | undefined {
    return this.events.find(matches);
  }

  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  async pause(forMs: number): Promise<void> {
    this.signal("SIGSTOP");
    await sleep(forMs);
    this.signal("SIGCONT");
  }

  /** What the driver said, for a failure's log. */
  transcript(): string {
    return [`events: ${this.events.map((e) => JSON.stringify(e)).join("\n  ")}`, `stderr:`, ...this.stderr.slice(-40)].join("\n  ");
  }

  /** Ends stdin (the driver then closes everything and exits); SIGKILL if it has not exited within 10 s. */
  async stop(): Promise<void> {
    this.child.kill("SIGCONT");
    this.child.stdin!.end();
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 10_000);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Sidecar flags: short leases, so deadlines pass within seconds. */
const SIDECAR_FLAGS = ["--lease-duration=3s", "--renew-deadline=2s", "--shutdown-timeout=3s"];

/** The real daemons of one scenario. */
export class Sidecars {
  private constructor(
    readonly daemons: DaemonProcess[],
    private readonly flagsOf: (index: number) => string[],
  ) {}

  static async start(kind: Scenario["sidecars"], count: number, kube: () => Promise<KubeEnv>): Promise<Sidecars> {
    let flagsOf: (index: number) => string[];
    if (kind === "memory") {
      flagsOf = () => ["--backend=memory", ...SIDECAR_FLAGS];
    } else {
      const env = await kube();
      const namespace = await env.newNamespace("conformance");
      flagsOf = (i) => [
        "--backend=kubernetes",
        `--kubeconfig=${env.kubeconfig}`,
        `--namespace=${namespace}`,
        `--identity=sidecar-${i}`,
        ...SIDECAR_FLAGS,
      ];
    }
    const daemons: DaemonProcess[] = [];
    for (let i = 0; i < count; i++) daemons.push(await spawnDaemon(flagsOf(i)));
    return new Sidecars(daemons, flagsOf);
  }

  async act(index: number, action: "freeze" | "thaw" | "restart"): Promise<void> {
    const daemon = this.daemons[index]!;
    if (action === "freeze") return daemon.signal("SIGSTOP");
    if (action === "thaw") return daemon.signal("SIGCONT");
    await daemon.stop();
    // Same address, so the client's channel reconnects to the new process.
    this.daemons[index] = await spawnDaemon([...this.flagsOf(index), `--listen=${daemon.address}`]);
  }

  async stop(): Promise<void> {
    await Promise.all(this.daemons.map((d) => d.stop()));
  }
}

/** Runs one scenario's steps; throws an Error saying which step failed and why. */
export async function runScenario(scenario: Scenario, drivers: Record<string, Driver>, sidecars: Sidecars): Promise<void> {
  const saved = new Map<string, unknown>([["zero", 0]]);
  const moments = new Map<string, number>();
  const marks = new Map<string, number>();
  const pending = new Map<string, Promise<Message>>();
  const check = (what: string, actual: Record<string, unknown>, expected: Expectation = {}) => {
    const alternatives = Array.isArray(expected) ? expected : [expected];
    const problems = alternatives.map((fields) => mismatches(actual, fields, saved));
    if (!problems.includes(undefined)) throw new Error(`${what}: ${problems.join(", or ")}; got ${JSON.stringify(actual)}`);
  };
  const save = (message: Record<string, unknown>, names: Readonly<Record<string, string>> = {}) => {
    for (const [field, variable] of Object.entries(names)) saved.set(variable, message[field]);
  };
  const expectOk = (what: string, reply: Message) => {
    if (reply.ok !== true) throw new Error(`${what}: expected success, got ${JSON.stringify(reply)}`);
  };
  const expectError = (what: string, reply: Message, expected: ExpectedError) => {
    const error = reply.error as { code?: string; field?: string | null; kind?: string | null } | undefined;
    if (reply.ok !== false || error === undefined || error.code !== expected.code)
      throw new Error(`${what}: expected ${expected.code}, got ${JSON.stringify(reply)}`);
    if (expected.field !== undefined && (error.field ?? null) !== expected.field)
      throw new Error(`${what}: expected field ${expected.field}, got ${JSON.stringify(reply)}`);
    if (expected.kind !== undefined && (error.kind ?? null) !== expected.kind)
      throw new Error(`${what}: expected the wrapper's ${expected.kind} error, got ${JSON.stringify(reply)}`);
  };

  for (const [index, step] of scenario.steps.entries()) {
    const what = `step ${index + 1} ${describe(step)}`;
    if ("to" in step) {
      const reply = drivers[step.to]!.send(step.op, step.args);
      if (step.pending !== undefined) {
        reply.catch(() => {}); // awaited by its `reply` step
        pending.set(step.pending, reply);
        continue;
      }
      const message = await withTimeout(reply, 60_000, what);
      if (step.expectError !== undefined) {
        expectError(what, message, step.expectError);
      } else {
        expectOk(what, message);
        check(what, message, step.expect);
        save(message, step.save);
      }
    } else if ("reply" in step) {
      const message = await withTimeout(pending.get(step.reply)!, step.withinMs, what);
      if (step.expectError !== undefined) {
        expectError(what, message, step.expectError);
      } else if (step.eitherOutcome !== true) {
        expectOk(what, message);
        check(what, message, step.expect);
        save(message, step.save);
      }
      if (step.at !== undefined) moments.set(step.at, message.seq);
    } else if ("from" in step) {
      const driver = drivers[step.from]!;
      const event = await driver.takeEvent((e) => mismatches(e, step.event, saved) === undefined, step.withinMs);
      if (event === undefined) throw new Error(`${what}: no such event within ${step.withinMs} ms`);
      save(event, step.save);
      if (step.at !== undefined) moments.set(step.at, event.seq);
    } else if ("none" in step) {
      await sleep(SETTLE_MS);
      const since = step.since === undefined ? 0 : marks.get(step.since)!;
      for (const name of typeof step.none === "string" ? [step.none] : step.none) {
        const event = drivers[name]!.seen((e) => e.seq > since && mismatches(e, step.event, saved) === undefined);
        if (event !== undefined) throw new Error(`${what}: unexpected event from ${name} ${JSON.stringify(event)}`);
      }
    } else if ("mark" in step) {
      marks.set(step.mark, currentSequence());
    } else if ("notYet" in step) {
      const early = await Promise.race([pending.get(step.notYet)!.then((m) => m), sleep(step.forMs).then(() => undefined)]);
      if (early !== undefined) throw new Error(`${what}: answered within ${step.forMs} ms: ${JSON.stringify(early)}`);
    } else if ("order" in step) {
      const seqs = step.order.map((name) => moments.get(name)!);
      for (let i = 1; i < seqs.length; i++)
        if (!(seqs[i - 1]! < seqs[i]!)) throw new Error(`${what}: ${step.order[i - 1]} did not come before ${step.order[i]}`);
    } else if ("sidecar" in step) {
      await sidecars.act(step.sidecar, step.action);
    } else if ("pause" in step) {
      await drivers[step.pause]!.pause(step.forMs);
    } else {
      await sleep(step.sleepMs);
    }
  }
}

type Expectation = Readonly<Record<string, Match>> | readonly Readonly<Record<string, Match>>[];

function mismatches(actual: Record<string, unknown>, expected: Readonly<Record<string, Match>>, saved: Map<string, unknown>) {
  for (const [field, match] of Object.entries(expected)) {
    const problem = mismatch(actual[field], match, saved);
    if (problem !== undefined) return `${field} ${problem}`;
  }
  return undefined;
}

function mismatch(actual: unknown, match: Match, saved: Map<string, unknown>): string | undefined {
  if (match !== null && typeof match === "object" && "anyOrder" in match) {
    const entries = Array.isArray(actual) ? (actual as unknown[]) : undefined;
    return entries !== undefined && matchesOneEach(entries, match.anyOrder, saved)
      ? undefined
      : `must be, in any order, ${JSON.stringify(match.anyOrder)} (saved: ${JSON.stringify(Object.fromEntries(saved))})`;
  }
  if (match !== null && typeof match === "object" && "eq" in match) {
    const value = saved.get(match.eq);
    return value !== undefined && actual === value ? undefined : `must equal ${match.eq} (${JSON.stringify(value)})`;
  }
  if (match !== null && typeof match === "object") {
    const bound = saved.get(match.gt);
    return typeof actual === "number" && typeof bound === "number" && actual > bound
      ? undefined
      : `must be greater than ${match.gt} (${String(bound)})`;
  }
  return actual === match ? undefined : `must be ${JSON.stringify(match)}`;
}

/** Whether each entry matches one of `expected`, each of those matched by exactly one entry (a small search: lists are short). */
function matchesOneEach(
  entries: readonly unknown[],
  expected: readonly Readonly<Record<string, Match>>[],
  saved: Map<string, unknown>,
): boolean {
  if (entries.length !== expected.length) return false;
  if (entries.length === 0) return true;
  const [first, ...rest] = entries;
  if (first === null || typeof first !== "object") return false;
  return expected.some(
    (fields, i) =>
      mismatches(first as Record<string, unknown>, fields, saved) === undefined &&
      matchesOneEach(rest, [...expected.slice(0, i), ...expected.slice(i + 1)], saved),
  );
}

function describe(step: Step): string {
  return JSON.stringify(step).slice(0, 160);
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no reply within ${ms} ms`)), ms)));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
