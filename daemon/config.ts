// The daemon's settings, from command-line flags and environment variables,
// validated before anything starts; an error names the setting at fault. One
// table defines every setting, and `--help` and the README's table follow it.
import { existsSync, readFileSync } from "node:fs";
import { hostname } from "node:os";
import { delimiter } from "node:path";
import { parseArgs } from "node:util";
import { DURATION_SYNTAX, parseDuration as parseDurationText } from "metaparticle-sync-client/duration";

export type Backend = "memory" | "kubernetes";
export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";

export interface Config {
  /** host:port of the gRPC server. Loopback by default: the app is in the same pod. */
  readonly listen: string;
  readonly backend: Backend;
  /** How the backend was chosen, for the start-up log. */
  readonly backendReason: string;
  /** Path of a kubeconfig; unset in a pod, where the service account is used. */
  readonly kubeconfig: string | undefined;
  /** Namespace of the managed Leases: the daemon's own, never chosen by a request. */
  readonly namespace: string;
  /** Stable name of this daemon (the pod name); a per-process id is appended. */
  readonly identity: string;
  readonly leaseDurationMs: number;
  readonly renewDeadlineMs: number;
  readonly leasePrefix: string;
  readonly keepaliveMs: number;
  readonly shutdownTimeoutMs: number;
  /** host:port of the Prometheus metrics endpoint; "" disables it. */
  readonly metricsListen: string;
  /** host:port of a health-only gRPC server for kubelet probes, which cannot reach loopback; "" disables it. */
  readonly healthListen: string;
  readonly logLevel: LogLevel;
}

export class ConfigError extends Error {
  constructor(setting: string, problem: string) {
    super(`${setting}: ${problem}`);
    this.name = "ConfigError";
  }
}

/** Where a daemon in a pod finds its service account. */
export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

interface Setting {
  readonly flag: string;
  readonly env: readonly string[];
  readonly help: string;
  readonly fallback: string;
}

/** Every setting: its flag, the environment variables read in order, and its default. */
export const SETTINGS = {
  listen: {
    flag: "listen",
    env: ["MSYNC_LISTEN"],
    help: "gRPC listen address (host:port); keep it on loopback in a pod",
    fallback: "127.0.0.1:13131",
  },
  backend: {
    flag: "backend",
    env: ["MSYNC_BACKEND"],
    help: "where leases live: kubernetes, memory, or auto (kubernetes in a pod or with a kubeconfig, else memory)",
    fallback: "auto",
  },
  kubeconfig: { flag: "kubeconfig", env: ["KUBECONFIG"], help: "kubeconfig file to use outside a pod", fallback: "" },
  namespace: {
    flag: "namespace",
    env: ["MSYNC_NAMESPACE", "POD_NAMESPACE"],
    help: "namespace of the Leases (default: the pod's, else the kubeconfig context's, else default)",
    fallback: "",
  },
  identity: {
    flag: "identity",
    env: ["MSYNC_IDENTITY", "POD_NAME"],
    help: "name of this daemon, usually the pod name (default: host name)",
    fallback: "",
  },
  leaseDuration: { flag: "lease-duration", env: ["MSYNC_LEASE_DURATION"], help: "default lease duration, whole seconds", fallback: "15s" },
  renewDeadline: {
    flag: "renew-deadline",
    env: ["MSYNC_RENEW_DEADLINE"],
    help: "how long a holder acts without a successful renewal, at the default lease; shorter leases scale it",
    fallback: "10s",
  },
  leasePrefix: { flag: "lease-prefix", env: ["MSYNC_LEASE_PREFIX"], help: "prefix of managed Lease names", fallback: "msync-" },
  keepalive: {
    flag: "keepalive",
    env: ["MSYNC_KEEPALIVE"],
    help: "ping interval that detects clients that stopped answering",
    fallback: "10s",
  },
  shutdownTimeout: {
    flag: "shutdown-timeout",
    env: ["MSYNC_SHUTDOWN_TIMEOUT"],
    help: "longest time SIGTERM takes to release everything and exit",
    fallback: "10s",
  },
  metricsListen: {
    flag: "metrics-listen",
    env: ["MSYNC_METRICS_LISTEN"],
    help: "Prometheus metrics address (host:port); empty disables",
    fallback: "",
  },
  healthListen: {
    flag: "health-listen",
    env: ["MSYNC_HEALTH_LISTEN"],
    help: "address (host:port) of a gRPC server with only grpc.health.v1, for kubelet probes; empty disables",
    fallback: "",
  },
  logLevel: { flag: "log-level", env: ["MSYNC_LOG_LEVEL"], help: "fatal, error, warn, info, debug or trace", fallback: "info" },
} as const satisfies Record<string, Setting>;

type SettingName = keyof typeof SETTINGS;

export interface Environment {
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Reads a file if it exists; injected so tests need no pod. */
  readonly readFile: (path: string) => string | undefined;
}

export const processEnvironment: Environment = {
  argv: process.argv.slice(2),
  env: process.env,
  readFile: (path) => (existsSync(path) ? readFileSync(path, "utf8") : undefined),
};

export function helpText(): string {
  const lines = [
    "Usage: metaparticle-sync-daemon [flags]",
    "       metaparticle-sync-daemon --help | --version",
    "       metaparticle-sync-daemon inject [--help] ...    add the sidecar to manifests",
    "       metaparticle-sync-daemon webhook [--help] ...   serve the injection webhook",
    "",
    "Flags (each also read from the environment variable shown):",
  ];
  for (const setting of Object.values(SETTINGS) as Setting[]) {
    lines.push(`  --${setting.flag}=VALUE`.padEnd(30) + `${setting.help}`);
    lines.push(" ".repeat(30) + `env ${setting.env.join(", ")}; default ${setting.fallback === "" ? "(none)" : setting.fallback}`);
  }
  lines.push("", `Durations are ${DURATION_SYNTAX}.`, "A bad setting stops the daemon at start with exit status 2.");
  return lines.join("\n");
}

/** Parses and checks every setting. Throws ConfigError naming the first bad one. */
export function loadConfig(environment: Environment = processEnvironment): Config {
  const flags = parseFlags(environment.argv);
  const raw = (name: SettingName): { value: string; from: string } => {
    const setting: Setting = SETTINGS[name];
    if (flags.has(setting.flag)) return { value: flags.get(setting.flag)!, from: `--${setting.flag}` };
    for (const variable of setting.env) {
      const value = environment.env[variable];
      if (value !== undefined && value !== "") return { value, from: variable };
    }
    return { value: setting.fallback, from: `--${setting.flag}` };
  };

  const listen = raw("listen");
  checkAddress(listen.value, listen.from);
  const metrics = raw("metricsListen");
  if (metrics.value !== "") checkAddress(metrics.value, metrics.from);
  const health = raw("healthListen");
  if (health.value !== "") checkAddress(health.value, health.from);

  const lease = raw("leaseDuration");
  const leaseDurationMs = parseDuration(lease.value, lease.from);
  if (leaseDurationMs < 1000 || leaseDurationMs > 3_600_000 || leaseDurationMs % 1000 !== 0) {
    throw new ConfigError(lease.from, `must be whole seconds between 1s and 3600s, got ${lease.value}`);
  }
  const deadline = raw("renewDeadline");
  const renewDeadlineMs = parseDuration(deadline.value, deadline.from);
  if (renewDeadlineMs <= 0 || renewDeadlineMs >= leaseDurationMs) {
    throw new ConfigError(deadline.from, `must be positive and shorter than the lease duration (${lease.value}), got ${deadline.value}`);
  }
  const prefix = raw("leasePrefix");
  if (!/^([a-z0-9][-a-z0-9.]*)?$/.test(prefix.value) || prefix.value.length > 63) {
    throw new ConfigError(
      prefix.from,
      `must be lower-case letters, digits, '-' and '.', starting with a letter or digit, at most 63 characters, got ${JSON.stringify(prefix.value)}`,
    );
  }
  const keepalive = raw("keepalive");
  const keepaliveMs = parseDuration(keepalive.value, keepalive.from);
  if (keepaliveMs < 1000) throw new ConfigError(keepalive.from, `must be at least 1s, got ${keepalive.value}`);
  const shutdown = raw("shutdownTimeout");
  const shutdownTimeoutMs = parseDuration(shutdown.value, shutdown.from);
  const level = raw("logLevel");
  const levels: readonly LogLevel[] = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];
  if (!levels.includes(level.value as LogLevel))
    throw new ConfigError(level.from, `must be one of ${levels.join(", ")}, got ${level.value}`);

  const kubeconfigSetting = raw("kubeconfig");
  const kubeconfig = kubeconfigSetting.value || undefined;
  if (kubeconfig !== undefined) {
    if (kubeconfig.includes(delimiter)) {
      throw new ConfigError(kubeconfigSetting.from, `lists several files (${kubeconfig}); the daemon reads one kubeconfig: give one`);
    }
    if (environment.readFile(kubeconfig) === undefined)
      throw new ConfigError(kubeconfigSetting.from, `no kubeconfig file at ${kubeconfig}`);
  }
  const inPod = environment.readFile(`${SERVICE_ACCOUNT_DIR}/token`) !== undefined && environment.env.KUBERNETES_SERVICE_HOST !== undefined;
  const backendSetting = raw("backend");
  let backend: Backend;
  let backendReason: string;
  switch (backendSetting.value) {
    case "kubernetes":
      if (!inPod && kubeconfig === undefined) {
        throw new ConfigError(
          backendSetting.from,
          "kubernetes needs a cluster: run in a pod with a service account token (and KUBERNETES_SERVICE_HOST), or give --kubeconfig or KUBECONFIG",
        );
      }
      backend = "kubernetes";
      backendReason = `${backendSetting.from}=kubernetes`;
      break;
    case "memory":
      backend = backendSetting.value;
      backendReason = `${backendSetting.from}=${backendSetting.value}`;
      break;
    case "auto":
      backend = inPod || kubeconfig !== undefined ? "kubernetes" : "memory";
      backendReason = inPod
        ? "running in a pod"
        : kubeconfig !== undefined
          ? "a kubeconfig was given"
          : "no cluster configured (no pod service account, no kubeconfig)";
      break;
    default:
      throw new ConfigError(backendSetting.from, `must be kubernetes, memory or auto, got ${backendSetting.value}`);
  }

  const namespaceSetting = raw("namespace");
  const namespace = namespaceSetting.value || environment.readFile(`${SERVICE_ACCOUNT_DIR}/namespace`)?.trim() || "";
  if (namespace !== "" && !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(namespace)) {
    throw new ConfigError(namespaceSetting.from, `${JSON.stringify(namespace)} is not a valid namespace name`);
  }
  const identitySetting = raw("identity");
  const identity = identitySetting.value || hostname();
  if (identity.length > 200 || /[\s]/.test(identity)) {
    throw new ConfigError(identitySetting.from, `must be at most 200 characters without spaces, got ${JSON.stringify(identity)}`);
  }

  return {
    listen: listen.value,
    backend,
    backendReason,
    kubeconfig,
    namespace,
    identity,
    leaseDurationMs,
    renewDeadlineMs,
    leasePrefix: prefix.value,
    keepaliveMs,
    shutdownTimeoutMs,
    metricsListen: metrics.value,
    healthListen: health.value,
    logLevel: level.value as LogLevel,
  };
}

/** Reads `--name=value` and `--name value` with Node's parser; an error names the flag or argument at fault. */
function parseFlags(argv: readonly string[]): Map<string, string> {
  const options = Object.fromEntries(Object.values(SETTINGS).map((s) => [s.flag, { type: "string" as const }]));
  try {
    const { values } = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false });
    return new Map(Object.entries(values).filter((entry): entry is [string, string] => typeof entry[1] === "string"));
  } catch (err) {
    const { code, message } = err as NodeJS.ErrnoException;
    const quoted = /'([^' ]+)/.exec(message)?.[1] ?? "command line";
    switch (code) {
      case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
        throw new ConfigError(quoted, "unknown flag; see --help");
      case "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL":
        throw new ConfigError(quoted, "unexpected argument; settings are given as --name=value");
      case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE":
        throw new ConfigError(quoted, "needs a value");
      default:
        throw err;
    }
  }
}

/** Parses a duration in the syntax the CLI shares (duration.ts): "15s", "500ms", "1h30m", or a number of seconds. */
export function parseDuration(text: string, setting: string): number {
  const ms = parseDurationText(text);
  if (ms === undefined) throw new ConfigError(setting, `${JSON.stringify(text)} is not a duration; use ${DURATION_SYNTAX}`);
  return ms;
}

/** Throws ConfigError naming `setting` unless `address` is host:port (a port from 0 to 65535). */
export function checkAddress(address: string, setting: string): void {
  const match = /^(\[[0-9a-fA-F:]+\]|[^:\s]+):(\d+)$/.exec(address);
  if (match === null || Number(match[2]) > 65535) throw new ConfigError(setting, `must be host:port, got ${JSON.stringify(address)}`);
}
