// Our daemon as a separate process on the Kubernetes backend, timed from
// spawn to the moment its grpc.health.v1 status reads SERVING.
import { Client, credentials } from "@grpc/grpc-js";
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { SyncClient } from "metaparticle-sync-client";
import { tiedCommand } from "../../test/support/tied-process.js";
import { nowMs, sleep } from "./clock.js";
import { freePort } from "./proc.js";

/** The lean build (`npm run build`, scripts/bundle.mjs) that `npm start` and the image run: dist/lean/main.mjs. */
export const DAEMON_MAIN = fileURLToPath(new URL("../../lean/main.mjs", import.meta.url));

/**
 * The node flags our daemons run with: the image's (its ENTRYPOINT in the
 * Dockerfile, between `node` and the script), so that the report measures
 * the daemon as it is shipped; MSYNC_BENCH_DAEMON_NODE_FLAGS instead, when
 * set ("" for none). They go before the script, as V8 flags NODE_OPTIONS
 * refuses (--optimize-for-size) must.
 */
export function daemonNodeFlags(): string[] {
  const given = process.env.MSYNC_BENCH_DAEMON_NODE_FLAGS;
  if (given !== undefined) return given.split(" ").filter((flag) => flag !== "");
  const dockerfile = readFileSync(fileURLToPath(new URL("../../../Dockerfile", import.meta.url)), "utf8");
  const entrypoint = /^ENTRYPOINT (\[.*\])$/m.exec(dockerfile);
  if (entrypoint === null) throw new Error("the Dockerfile has no ENTRYPOINT in exec form");
  const argv = JSON.parse(entrypoint[1]!) as string[];
  return argv.slice(1, -1);
}

export interface DaemonOptions {
  /** The Kubernetes backend's kubeconfig; without one the daemon runs on the memory backend. */
  readonly kubeconfig: string | undefined;
  readonly namespace: string;
  readonly identity: string;
  /** Extra flags, e.g. --lease-duration=5s. */
  readonly flags?: readonly string[];
  /** The daemon's entry file; DAEMON_MAIN unless given. */
  readonly main?: string;
  readonly timeoutMs?: number;
}

const running = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

export class OurDaemon {
  readonly client: SyncClient;
  /** Warnings the daemon logged, e.g. "lock lost". */
  readonly warnings: Array<Record<string, unknown>> = [];
  private readonly stderrTail: string[] = [];
  private exitCode: number | null | undefined;
  readonly exited: Promise<number | null>;

  private constructor(
    readonly child: ChildProcess,
    readonly address: string,
    readonly identity: string,
    /** CLOCK_MONOTONIC ms at spawn. */
    readonly spawnedAt: number,
  ) {
    running.add(child);
    this.exited = once(child, "exit").then(([code]) => {
      running.delete(child);
      this.exitCode = code as number | null;
      return this.exitCode;
    });
    createInterface({ input: child.stderr! }).on("line", (line) => {
      this.stderrTail.push(line);
      if (this.stderrTail.length > 40) this.stderrTail.shift();
      try {
        const parsed = JSON.parse(line) as Record<string, unknown>;
        if (typeof parsed.level === "number" && parsed.level >= 40) this.warnings.push(parsed);
        else if (parsed.level === "warn" || parsed.level === "error") this.warnings.push(parsed);
      } catch {
        // not a log line
      }
    });
    this.client = new SyncClient({ address });
  }

  /** CLOCK_MONOTONIC ms at which health first read SERVING. */
  servingAt = NaN;

  get pid(): number {
    return this.child.pid!;
  }

  get alive(): boolean {
    return this.exitCode === undefined;
  }

  get startToServingMs(): number {
    return this.servingAt - this.spawnedAt;
  }

  static async start(options: DaemonOptions): Promise<OurDaemon> {
    const port = await freePort();
    const address = `127.0.0.1:${port}`;
    const [command, args] = tiedCommand(process.execPath, [
      ...daemonNodeFlags(),
      options.main ?? DAEMON_MAIN,
      `--listen=${address}`,
      ...(options.kubeconfig === undefined
        ? ["--backend=memory"]
        : ["--backend=kubernetes", `--kubeconfig=${options.kubeconfig}`, `--namespace=${options.namespace}`]),
      `--identity=${options.identity}`,
      "--log-level=warn",
      ...(options.flags ?? []),
    ]);
    const spawnedAt = nowMs();
    const child = spawn(command, args, {
      // MSYNC_BENCH_DAEMON_NODE_OPTIONS reaches the daemons alone, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" to profile them.
      env: { PATH: process.env.PATH, HOME: process.env.HOME, NODE_OPTIONS: process.env.MSYNC_BENCH_DAEMON_NODE_OPTIONS ?? "" },
      stdio: ["ignore", "ignore", "pipe"],
    });
    const daemon = new OurDaemon(child, address, options.identity, spawnedAt);
    try {
      daemon.servingAt = await waitServing(daemon, options.timeoutMs ?? 60_000);
    } catch (err) {
      daemon.kill("SIGKILL");
      daemon.client.close();
      throw err;
    }
    return daemon;
  }

  kill(signal: NodeJS.Signals): void {
    if (this.alive) this.child.kill(signal);
  }

  /** SIGTERM (graceful: releases everything), SIGKILL after `graceMs`. */
  async stop(graceMs = 15_000): Promise<void> {
    this.client.close();
    if (!this.alive) return;
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  stderr(): string {
    return this.stderrTail.join("\n");
  }
}

const SERVING = 1;

/** Polls grpc.health.v1.Health/Check (service "") every few ms until SERVING. */
async function waitServing(daemon: OurDaemon, timeoutMs: number): Promise<number> {
  // A private subchannel that retries connecting every few ms, so the time the
  // port opens is not hidden behind grpc-js's default 1 s reconnect backoff.
  const health = new Client(daemon.address, credentials.createInsecure(), {
    "grpc.use_local_subchannel_pool": 1,
    "grpc.initial_reconnect_backoff_ms": 5,
    "grpc.max_reconnect_backoff_ms": 20,
  });
  const deadline = nowMs() + timeoutMs;
  try {
    for (;;) {
      if (!daemon.alive) throw new Error(`daemon ${daemon.identity} exited before serving:\n${daemon.stderr()}`);
      const status = await new Promise<number>((resolve) =>
        health.makeUnaryRequest(
          "/grpc.health.v1.Health/Check",
          () => Buffer.alloc(0), // HealthCheckRequest{service: ""}
          (bytes: Buffer) => bytes,
          {},
          { deadline: Date.now() + 1000 },
          (err, reply) => resolve(err || !reply ? -1 : reply.length >= 2 && reply[0] === 0x08 ? reply[1]! : 0),
        ),
      );
      if (status === SERVING) return nowMs();
      if (nowMs() > deadline) throw new Error(`daemon ${daemon.identity} not SERVING after ${timeoutMs} ms:\n${daemon.stderr()}`);
      await sleep(status === -1 ? 5 : 2);
    }
  } finally {
    health.close();
  }
}
