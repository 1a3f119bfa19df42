// The harness of a fault run: three daemons as separate processes on the
// Kubernetes backend (a real kube-apiserver and etcd on loopback), each
// optionally behind its own fault proxy, several workload client processes
// per daemon, the harness's own Lease watch, and the means to break things:
// kill, freeze and restart daemons and clients, stop the API server, pause
// etcd, and misbehave in the proxies. The harness records what it did, and
// when, in the same history as the clients.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { type ControlPlane, startControlPlane } from "../controlplane/controlplane.js";
import { type DaemonProcess, spawnDaemon } from "../support/daemon-process.js";
import { tiedCommand } from "../support/tied-process.js";
import { type CheckOptions } from "./checker.js";
import { type EventFields, type HistoryEvent, HistoryWriter, now, readHistory } from "./history.js";
import { LeaseRecorder } from "./lease-recorder.js";
import { FaultProxy } from "./proxy.js";
import type { StormConfig } from "./storm.js";
import type { ClientConfig } from "./workload-client.js";

const CLIENT_MAIN = fileURLToPath(new URL("./workload-client.js", import.meta.url));
const STORM_MAIN = fileURLToPath(new URL("./storm.js", import.meta.url));

export interface RunConfig {
  readonly name: string;
  readonly seed: number;
  readonly daemons: number;
  readonly clientsPerDaemon: number;
  readonly locks: readonly string[];
  readonly elections: readonly string[];
  readonly durationMs: number;
  readonly leaseSeconds: number;
  readonly renewDeadlineSeconds: number;
  /** Route every daemon's API traffic through its own fault proxy. */
  readonly proxy: boolean;
  /** Add one deliberately buggy client (ignores Lost) on this daemon, named "buggy". */
  readonly buggyOn?: number;
  readonly holdMs: readonly [number, number];
  readonly thinkMs: readonly [number, number];
  readonly leadMs: readonly [number, number];
}

export const DEFAULT_RUN: Omit<RunConfig, "name" | "seed" | "durationMs"> = {
  daemons: 3,
  clientsPerDaemon: 3,
  locks: ["l0", "l1"],
  elections: ["e0", "e1"],
  leaseSeconds: 5,
  renewDeadlineSeconds: 3,
  proxy: false,
  holdMs: [5, 60],
  thinkMs: [0, 100],
  leadMs: [50, 300],
};

/** The control plane shared by the runs of one test file or matrix. */
export async function startFaultEnv(): Promise<ControlPlane> {
  return startControlPlane();
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export class DaemonSlot {
  process: DaemonProcess | undefined;
  paused = false;
  restarts = 0;

  constructor(
    readonly index: number,
    readonly port: number,
    private readonly flags: string[],
  ) {}

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    // The same port every time, so the clients' channels reconnect to the restarted daemon.
    this.process = await spawnDaemon([...this.flags, `--listen=127.0.0.1:${this.port}`]);
    this.paused = false;
  }

  async kill(): Promise<void> {
    const p = this.process;
    if (p === undefined) return;
    p.signal("SIGKILL");
    await p.exited;
    this.saveLogs();
    this.process = undefined;
  }

  pause(): void {
    this.process?.signal("SIGSTOP");
    this.paused = true;
  }

  resume(): void {
    this.process?.signal("SIGCONT");
    this.paused = false;
  }

  async stop(): Promise<void> {
    await this.process?.stop(15_000);
    this.saveLogs();
    this.process = undefined;
  }

  /** Every daemon process's log lines end up in the run's folder, for a look after a failure. */
  logDir: string | undefined;
  private lives = 0;

  saveLogs(): void {
    if (this.process === undefined || this.logDir === undefined) return;
    const file = join(this.logDir, `d${this.index}.${this.lives++}.log`);
    writeFileSync(file, this.process.logs.map((l) => JSON.stringify(l)).join("\n") + "\n");
  }
}

export class ClientProcess {
  readonly exited: Promise<number | null>;
  readonly stderr: string[] = [];
  private readonly events: Array<Record<string, unknown>> = [];
  private readonly waiters: Array<{ match: (e: Record<string, unknown>) => boolean; resolve: (e: Record<string, unknown>) => void }> = [];

  constructor(
    readonly id: string,
    readonly daemon: number | undefined,
    readonly child: ChildProcess,
  ) {
    this.exited = once(child, "exit").then(([code]) => code as number | null);
    createInterface({ input: child.stdout! }).on("line", (line) => {
      let event: Record<string, unknown>;
      try {
        event = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      this.events.push(event);
      for (const waiter of [...this.waiters]) {
        if (waiter.match(event)) {
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          waiter.resolve(event);
        }
      }
    });
    createInterface({ input: child.stderr! }).on("line", (line) => {
      if (this.stderr.length < 200) this.stderr.push(line);
    });
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** How many events it has printed so far. */
  get eventCount(): number {
    return this.events.length;
  }

  send(command: object): void {
    if (this.alive) this.child.stdin!.write(JSON.stringify(command) + "\n");
  }

  /** Resolves with the first event that matches, among those after the `since`-th (default: all so far). */
  waitFor(match: (e: Record<string, unknown>) => boolean, timeoutMs: number, since = 0): Promise<Record<string, unknown>> {
    const seen = this.events.slice(since).find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.id}: no matching event within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({
        match,
        resolve: (e) => {
          clearTimeout(timer);
          resolve(e);
        },
      });
    });
  }
}

export class Run {
  readonly harness: HistoryWriter;
  readonly daemons: DaemonSlot[] = [];
  readonly proxies: FaultProxy[] = [];
  readonly clients: ClientProcess[] = [];
  readonly storms: ClientProcess[] = [];
  /** Numbers a scenario wants in the report. */
  readonly extra: Record<string, unknown> = {};
  private recorder: LeaseRecorder | undefined;
  private started = 0n;
  private faultCount = 0;

  private constructor(
    readonly cp: ControlPlane,
    readonly config: RunConfig,
    readonly namespace: string,
    readonly dir: string,
  ) {
    this.harness = new HistoryWriter(join(dir, "harness.jsonl"), "harness");
  }

  /** Creates the namespace, proxies and daemons; clients start with `startWorkload`. */
  static async start(cp: ControlPlane, config: RunConfig): Promise<Run> {
    const namespace = `faults-${config.name.replace(/[^a-z0-9]+/g, "-").slice(0, 30)}-${Math.floor(Math.random() * 1e6)}`;
    await cp.createNamespace(namespace);
    const dir = mkdtempSync(join(tmpdir(), `msync-faults-${config.name.replace(/[^a-z0-9]+/g, "-").slice(0, 30)}-`));
    const run = new Run(cp, config, namespace, dir);
    run.harness.record({ ev: "run-start", detail: JSON.stringify({ ...config, namespace }) });
    const apiPort = Number(new URL(cp.server).port);
    const kubeconfigText = readFileSync(cp.kubeconfigPath, "utf8");
    for (let i = 0; i < config.daemons; i++) {
      let kubeconfig = cp.kubeconfigPath;
      if (config.proxy) {
        const proxy = new FaultProxy("127.0.0.1", apiPort);
        const port = await proxy.listen();
        run.proxies.push(proxy);
        kubeconfig = join(dir, `kubeconfig-d${i}.yaml`);
        writeFileSync(kubeconfig, kubeconfigText.replace(cp.server, `https://127.0.0.1:${port}`), { mode: 0o600 });
      }
      const flags = [
        "--backend=kubernetes",
        `--kubeconfig=${kubeconfig}`,
        `--namespace=${namespace}`,
        `--identity=d${i}`,
        `--lease-duration=${config.leaseSeconds}s`,
        `--renew-deadline=${config.renewDeadlineSeconds}s`,
      ];
      const slot = new DaemonSlot(i, await freePort(), flags);
      slot.logDir = dir;
      run.daemons.push(slot);
    }
    await Promise.all(run.daemons.map((d) => d.start()));
    for (const d of run.daemons) run.harness.record({ ev: "daemon-started", target: `d${d.index}`, detail: String(d.process?.child.pid) });
    run.recorder = new LeaseRecorder(cp.server, cp.caPem, cp.tokens.admin!, namespace, run.harness);
    run.recorder.start();
    return run;
  }

  get leaseMs(): number {
    return this.config.leaseSeconds * 1000;
  }

  /** What the checker needs to know about this run. */
  checkOptions(): CheckOptions {
    const workloadClients = this.config.daemons * this.config.clientsPerDaemon + (this.config.buggyOn === undefined ? 0 : 1);
    return {
      leaseMs: this.leaseMs,
      // Round robin among daemons and FIFO within one bound the grants a waiter sees to
      // (daemons x clients per daemon - 1); twice the number of contenders leaves room for
      // a daemon that re-queues behind others after a restart or a skipped turn.
      maxPasses: 2 * workloadClients,
      fairnessFor: (client) => client.startsWith("c") || client === "buggy",
    };
  }

  /** Starts the workload clients (and the buggy one); they run until `finish`. */
  startWorkload(): void {
    this.started = now();
    const c = this.config;
    const spawnClient = (id: string, daemon: number, extra: Partial<ClientConfig> = {}) => {
      const clientConfig: ClientConfig = {
        id,
        daemon,
        address: this.daemons[daemon]!.address,
        log: join(this.dir, `${id}.jsonl`),
        locks: c.locks,
        elections: c.elections,
        // The harness stops the clients; this is only a backstop.
        durationMs: c.durationMs + 120_000,
        seed: (c.seed + this.clients.length * 7919) >>> 0,
        leaseMs: this.leaseMs,
        waitTimeoutMs: 120_000,
        holdMs: c.holdMs,
        thinkMs: c.thinkMs,
        leadMs: c.leadMs,
        campaignPatienceMs: 120_000,
        ...extra,
      };
      const [command, args] = tiedCommand(process.execPath, [CLIENT_MAIN, JSON.stringify(clientConfig)]);
      const child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"] });
      this.clients.push(new ClientProcess(id, daemon, child));
    };
    for (let d = 0; d < c.daemons; d++) for (let k = 0; k < c.clientsPerDaemon; k++) spawnClient(`c${d}.${k}`, d);
    if (c.buggyOn !== undefined) {
      // It takes part like the others, but with long holds, and it ignores Lost.
      spawnClient("buggy", c.buggyOn, { ignoreLost: true, elections: [], locks: [c.locks[0]!] });
    }
  }

  /** Milliseconds since the workload started. */
  elapsedMs(): number {
    return Number(now() - this.started) / 1e6;
  }

  client(id: string): ClientProcess {
    const client = this.clients.find((c) => c.id === id);
    if (client === undefined) throw new Error(`no client ${id}`);
    return client;
  }

  record(fields: EventFields): bigint {
    return this.harness.record(fields);
  }

  /** Runs `fn` as a fault window: the checker exempts it from liveness bounds (plus the bound after it). */
  async window<T>(fault: string, affects: readonly number[] | "all", fn: () => Promise<T>, target?: string): Promise<T> {
    const id = `${fault}#${++this.faultCount}`;
    this.record({ ev: "fault-start", fault: id, affects, target });
    try {
      return await fn();
    } finally {
      this.record({ ev: "fault-end", fault: id, affects, target });
    }
  }

  async killDaemon(i: number): Promise<void> {
    await this.daemons[i]!.kill();
    this.record({ ev: "daemon-killed", target: `d${i}` });
  }

  async restartDaemon(i: number): Promise<void> {
    const slot = this.daemons[i]!;
    slot.restarts += 1;
    await slot.start();
    this.record({ ev: "daemon-started", target: `d${i}`, detail: String(slot.process?.child.pid) });
  }

  pauseDaemon(i: number): bigint {
    this.daemons[i]!.pause();
    return this.record({ ev: "daemon-stopped", target: `d${i}` });
  }

  resumeDaemon(i: number): bigint {
    this.daemons[i]!.resume();
    return this.record({ ev: "daemon-resumed", target: `d${i}` });
  }

  killClient(id: string): bigint {
    const client = this.client(id);
    client.child.kill("SIGKILL");
    return this.record({ ev: "client-killed", target: id });
  }

  /** Runs storm processes (see storm.ts), `parallel` at a time, and resolves with their summaries once all are done. */
  async storm(
    processes: number,
    parallel: number,
    perProcess: Omit<StormConfig, "id" | "addresses" | "log" | "seed" | "locks" | "elections">,
  ): Promise<Array<Record<string, unknown>>> {
    let nextProcess = 0;
    const summaries: Array<Record<string, unknown>> = [];
    const runOne = async (p: number) => {
      const id = `s${p}`;
      const stormConfig: StormConfig = {
        id,
        addresses: this.daemons.map((d) => d.address),
        log: join(this.dir, `${id}.jsonl`),
        seed: (this.config.seed + 104729 * (p + 1)) >>> 0,
        locks: this.config.locks,
        elections: this.config.elections,
        ...perProcess,
      };
      const [command, args] = tiedCommand(process.execPath, [STORM_MAIN, JSON.stringify(stormConfig)]);
      const storm = new ClientProcess(id, undefined, spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] }));
      this.storms.push(storm);
      const code = await storm.exited;
      const done = await storm.waitFor((e) => e.event === "done", 1).catch(() => undefined);
      if (code !== 0) throw new Error(`storm ${id} exited with ${code}: ${storm.stderr.join("\n")}`);
      return done ?? {};
    };
    await Promise.all(
      Array.from({ length: parallel }, async () => {
        while (nextProcess < processes) summaries.push(await runOne(nextProcess++));
      }),
    );
    return summaries;
  }

  /**
   * Stops the workload: the clients release what they hold and exit (any that
   * do not within 30 s are killed and recorded so), every daemon is resumed and
   * stopped gracefully, the Lease watch is stopped. Returns the whole history.
   */
  async finish(): Promise<HistoryEvent[]> {
    this.record({ ev: "workload-end" });
    for (const client of this.clients) client.send({ cmd: "stop" });
    await Promise.race([Promise.all(this.clients.map((c) => c.exited)), sleep(30_000)]);
    for (const client of this.clients) {
      if (client.alive) {
        client.child.kill("SIGKILL");
        this.record({ ev: "client-killed", target: client.id, detail: "did not stop within 30 s" });
      }
    }
    for (const storm of this.storms) if (storm.alive) storm.child.kill("SIGKILL");
    for (const d of this.daemons) if (d.paused) this.resumeDaemon(d.index);
    for (const proxy of this.proxies) proxy.heal();
    await Promise.all(this.daemons.map((d) => d.stop()));
    await sleep(500); // the watch sees the last releases
    await this.recorder?.stop();
    await Promise.all(this.proxies.map((p) => p.close()));
    // Proxy connections, with times relative to the start of the workload, for a look after a run.
    const startedMs = Number(this.started) / 1e6 - (Number(now()) / 1e6 - performance.now());
    this.proxies.forEach((p, i) => {
      const rel = (t: number | undefined) => (t === undefined ? undefined : Math.round(t - startedMs));
      const rows = p.history.map((c) => ({
        ...c,
        openedAt: rel(c.openedAt),
        closedAt: rel(c.closedAt),
        lastUpAt: rel(c.lastUpAt),
        lastDownAt: rel(c.lastDownAt),
      }));
      writeFileSync(join(this.dir, `proxy-d${i}.json`), JSON.stringify(rows, null, 1));
    });
    this.harness.close();
    return readHistory(this.dir);
  }

  /** Removes the run's files (kept when a run fails, for a look). */
  cleanUp(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  get leaseVersions(): number {
    return this.recorder?.versions ?? 0;
  }
}
