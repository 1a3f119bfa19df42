// The two injection subcommands of the daemon's entry point:
//
//   main.js inject [--all] [--image=IMAGE] [--mode=native|container] [FILE|-]...
//   main.js webhook [--listen=HOST:PORT] [--tls-cert=FILE] [--tls-key=FILE] [--image=IMAGE] [--mode=...]
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { ConfigError, type LogLevel, checkAddress } from "../config.js";
import { createLogger } from "../log.js";
import { ManifestError, injectManifests } from "./manifests.js";
import { InjectError, type SidecarMode } from "./sidecar.js";
import { checkCredentials, startWebhook } from "./webhook.js";

const LOG_LEVELS: readonly LogLevel[] = ["fatal", "error", "warn", "info", "debug", "trace"];

/** Where the webhook's Deployment mounts its Secret (deploy/components/injector). */
const TLS_DIR = "/etc/metaparticle-sync/webhook";

export const INJECT_HELP = `Usage: metaparticle-sync-daemon inject [--all] [--image=IMAGE] [--mode=native|container] [FILE|-]...

Writes the manifests in FILEs (or stdin) to stdout with the metaparticle-sync sidecar added to
each Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job, CronJob and
PodTemplate (also as items of a List) whose pod template opts in, as the webhook's rule says:
annotation sync.metaparticle.io/inject: "true". Overrides are read from the pod template's
sync.metaparticle.io/ annotations, as the webhook does. Everything else comes out as it went in:
other documents byte for byte, and in changed ones comments, quoting, anchors and line endings.

  --all                    add it to every pod template that does not say inject: "false"
                           (never to the injector's own pods, label app.kubernetes.io/name:
                           metaparticle-sync-injector)
  --image=IMAGE            sidecar image (default: $MSYNC_SIDECAR_IMAGE, else metaparticle-sync:VERSION)
  --mode=native|container  native sidecar (Kubernetes 1.29+, default) or a regular container
`;

export const WEBHOOK_HELP = `Usage: metaparticle-sync-daemon webhook [flags]

Serves the mutating admission webhook that adds the sidecar to pods annotated
sync.metaparticle.io/inject: "true" (POST /mutate; GET /healthz), over TLS.

  --listen=HOST:PORT       default 0.0.0.0:8443
  --tls-cert=FILE          default ${TLS_DIR}/tls.crt (a kubernetes.io/tls Secret, as cert-manager writes it)
  --tls-key=FILE           default ${TLS_DIR}/tls.key
  --image=IMAGE            sidecar image (default: $MSYNC_SIDECAR_IMAGE, else metaparticle-sync:VERSION)
  --mode=native|container  default native (Kubernetes 1.29+); a pod's sync.metaparticle.io/mode wins
  --log-level=LEVEL        default info
`;

function mode(value: string | undefined): SidecarMode {
  if (value === undefined || value === "native" || value === "container") return value ?? "native";
  throw new ConfigError("--mode", `must be native or container, got ${value}`);
}

/** Parses `args` with Node's parser: string flags named in `flags`, boolean ones in `switches`, --help, and positionals. */
function parse(
  args: string[],
  flags: string[],
  switches: string[] = [],
): { values: Record<string, string | undefined>; on: Set<string>; help: boolean; positionals: string[] } {
  const options = Object.fromEntries([
    ...flags.map((flag) => [flag, { type: "string" as const }]),
    ...switches.map((flag) => [flag, { type: "boolean" as const }]),
  ]);
  try {
    const parsed = parseArgs({ args, options: { ...options, help: { type: "boolean" } }, allowPositionals: true, strict: true });
    const { help, ...rest } = parsed.values as Record<string, string | boolean | undefined>;
    const values = Object.fromEntries(Object.entries(rest).filter(([, v]) => typeof v === "string")) as Record<string, string>;
    const on = new Set(Object.entries(rest).flatMap(([k, v]) => (v === true ? [k] : [])));
    return { values, on, help: help === true, positionals: parsed.positionals };
  } catch (err) {
    throw new ConfigError("command line", err instanceof Error ? err.message : String(err));
  }
}

export async function runInject(args: string[], version: string): Promise<number> {
  const { values, on, help, positionals } = parse(args, ["image", "mode"], ["all"]);
  const all = on.has("all");
  if (help) {
    process.stdout.write(INJECT_HELP);
    return 0;
  }
  const defaults = {
    image: values.image ?? process.env.MSYNC_SIDECAR_IMAGE ?? `metaparticle-sync:${version}`,
    mode: mode(values.mode),
  };
  const sources = positionals.length === 0 ? ["-"] : positionals;
  const outputs: string[] = [];
  for (const source of sources) {
    let text: string;
    try {
      text = readFileSync(source === "-" ? 0 : source, "utf8");
    } catch (err) {
      process.stderr.write(`metaparticle-sync: cannot read ${source === "-" ? "stdin" : source}: ${(err as Error).message}\n`);
      return 1;
    }
    try {
      outputs.push(injectManifests(text, defaults, source === "-" ? "stdin" : source, { all }));
    } catch (err) {
      if (!(err instanceof ManifestError || err instanceof InjectError)) throw err;
      process.stderr.write(`metaparticle-sync: ${err.message}\n`);
      return 1;
    }
  }
  // Several files make one stream: a "---" between them (in the next file's line ending) unless it starts with one.
  let stream = "";
  for (const output of outputs) {
    const eol = output.includes("\r\n") ? "\r\n" : "\n";
    if (stream !== "" && !stream.endsWith("\n")) stream += eol;
    if (stream !== "" && !/^---(\s|$)/.test(output)) stream += `---${eol}`;
    stream += output;
  }
  if (stream !== "" && !stream.endsWith("\n")) stream += "\n";
  process.stdout.write(stream);
  return 0;
}

export async function runWebhook(args: string[], version: string): Promise<void> {
  const { values, help } = parse(args, ["listen", "tls-cert", "tls-key", "image", "mode", "log-level"]);
  if (help) {
    process.stdout.write(WEBHOOK_HELP);
    return;
  }
  const level = values["log-level"] ?? "info";
  if (!LOG_LEVELS.includes(level as LogLevel))
    throw new ConfigError("--log-level", `must be one of ${LOG_LEVELS.join(", ")}, got ${level}`);
  const listen = values.listen ?? "0.0.0.0:8443";
  checkAddress(listen, "--listen");
  const certFile = values["tls-cert"] ?? `${TLS_DIR}/tls.crt`;
  const keyFile = values["tls-key"] ?? `${TLS_DIR}/tls.key`;
  checkCredentials(certFile, keyFile);
  const log = createLogger(level as LogLevel, { component: "injection-webhook" });
  const webhook = await startWebhook(
    {
      listen,
      certFile,
      keyFile,
      image: values.image ?? process.env.MSYNC_SIDECAR_IMAGE ?? `metaparticle-sync:${version}`,
      mode: mode(values.mode),
    },
    log,
  );
  // One stop, however many signals arrive (Ctrl-C under npm sends SIGINT twice).
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    void webhook.close().then(() => process.exit(0));
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}
