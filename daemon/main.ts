// Entry point: read the configuration, start the daemon, and stop it
// gracefully on SIGTERM or SIGINT. A second signal exits at once, except a
// second SIGINT within a moment: that is one Ctrl-C delivered twice.
import { readFileSync } from "node:fs";
import { setLogger } from "@grpc/grpc-js";
import { type Config, ConfigError, helpText, loadConfig } from "./config.js";
import { startDaemon } from "./daemon.js";
import { createLogger } from "./log.js";

/**
 * A Ctrl-C on `npm start` reaches the daemon twice: the terminal signals its
 * whole foreground process group, and npm passes its own copy on to its
 * child a few milliseconds later. A second SIGINT within this window is taken
 * as that copy, not as a second request to exit at once.
 */
const REPEAT_WINDOW_MS = 1000;

/** @kubernetes/client-node 2 and undici 8 (the Kubernetes store's connection pool) need this Node. */
const MIN_NODE = { major: 22, minor: 19 };

async function main(): Promise<void> {
  const [major = 0, minor = 0] = process.versions.node.split(".").map(Number);
  if (major < MIN_NODE.major || (major === MIN_NODE.major && minor < MIN_NODE.minor)) {
    console.error(`metaparticle-sync: needs Node.js ${MIN_NODE.major}.${MIN_NODE.minor} or later; this is ${process.version}`);
    process.exit(2);
  }
  const [subcommand, ...rest] = process.argv.slice(2);
  if (subcommand === "inject" || subcommand === "webhook") {
    const { runInject, runWebhook } = await import("./inject/commands.js");
    try {
      if (subcommand === "inject") process.exitCode = await runInject(rest, version());
      else await runWebhook(rest, version());
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      console.error(`metaparticle-sync: bad setting ${err.message}`);
      process.exit(2);
    }
    return;
  }
  if (process.argv.includes("--help") || process.argv.includes("-h")) {
    console.log(helpText());
    return;
  }
  if (process.argv.includes("--version")) {
    console.log(`metaparticle-sync-daemon ${version()}`);
    return;
  }
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(`metaparticle-sync: bad setting ${err.message}`);
    process.exit(2);
  }
  const log = createLogger(config.logLevel);
  // grpc-js's own log lines go to the daemon's log; a failed bind is told once, below, naming the setting.
  setLogger({
    error: (...args: unknown[]) => {
      const text = args.map(String).join(" ");
      if (!/No address added out of total/.test(text)) log.warn({ component: "grpc-js" }, text);
    },
  });
  let daemon;
  try {
    if (config.backend === "kubernetes" && config.kubeconfig !== undefined) {
      const fromFlag = process.argv.slice(2).some((a) => a === "--kubeconfig" || a.startsWith("--kubeconfig="));
      const { checkKubeconfig } = await import("./kubeconfig.js");
      checkKubeconfig(config.kubeconfig, fromFlag ? "--kubeconfig" : "KUBECONFIG");
    }
    daemon = await startDaemon(config, log);
  } catch (err) {
    const problem = err instanceof ConfigError ? err.message : listenProblem(err, config);
    if (problem === undefined) throw err;
    console.error(`metaparticle-sync: bad setting ${problem}`);
    process.exit(2);
  }
  // Not awaited: a daemon that cannot sync yet (API server down, RBAC) still
  // answers health checks as NOT_SERVING, and calls with a clear error.
  void daemon.ready;
  let first: { signal: NodeJS.Signals; at: number } | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (first !== undefined) {
      // Only SIGINT comes twice from one keypress; a second SIGTERM is somebody asking again.
      if (signal === "SIGINT" && first.signal === "SIGINT" && performance.now() - first.at < REPEAT_WINDOW_MS) {
        log.debug({ signal }, "the same signal again at once (npm passes Ctrl-C on): still stopping gracefully");
        return;
      }
      log.warn({ signal }, "second signal: exiting now");
      process.exit(1);
    }
    first = { signal, at: performance.now() };
    log.info({ signal }, "shutting down: releasing everything held");
    daemon.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
}

/**
 * "--listen: cannot listen on 127.0.0.1:13131: the address is already in
 * use" for an error from binding one of the daemon's listeners; undefined for
 * any other error.
 */
function listenProblem(err: unknown, config: Config): string | undefined {
  const message = err instanceof Error ? err.message : String(err);
  const code = /\b(EADDRINUSE|EADDRNOTAVAIL|EACCES)\b/.exec(message)?.[1] ?? (err as NodeJS.ErrnoException | undefined)?.code;
  const why: Record<string, string> = {
    EADDRINUSE: "the address is already in use",
    EADDRNOTAVAIL: "no interface of this machine has that address",
    EACCES: "permission denied (ports below 1024 need privileges)",
  };
  if (code === undefined || why[code] === undefined) return undefined;
  const port = [...message.matchAll(/:(\d+)\b/g)].at(-1)?.[1];
  const settings: Array<[string, string]> = [
    ["--listen", config.listen],
    ["--health-listen", config.healthListen],
    ["--metrics-listen", config.metricsListen],
  ];
  const [flag, address] = settings.find(([, value]) => value !== "" && port !== undefined && value.endsWith(`:${port}`)) ?? [
    "--listen, --health-listen or --metrics-listen",
    port === undefined ? "an address" : `port ${port}`,
  ];
  return `${flag}: cannot listen on ${address}: ${why[code]}`;
}

/** The package's version, from the package.json beside dist/ (in the repository and in the image). */
function version(): string {
  return (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;
}

main().catch((err: unknown) => {
  console.error(`metaparticle-sync: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
