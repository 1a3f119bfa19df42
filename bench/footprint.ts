// `npm run bench:footprint -- [--backend memory|kubernetes] [--runs N]`: the
// daemon's start-up time and idle memory alone, without the peers or a full
// benchmark run; for measuring a change to what the daemon loads.
//
// Starts N daemons one after another, each timed from spawn to health
// SERVING; each then leads one election, as in the benchmark's idle phase.
// After they have all idled for a few seconds, their VmRSS is read from /proc.
// The Kubernetes backend needs a control plane: `npm run kube:up` (this reads
// its kubeconfig and namespace), or --kubeconfig and --namespace.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { controlplaneCacheDir } from "../test/controlplane/controlplane.js";
import { nowMs, sleep, within } from "./lib/clock.js";
import { DAEMON_MAIN, OurDaemon } from "./lib/daemon.js";
import { cpuMs, rssBytes, rssKinds } from "./lib/proc.js";
import { summarize } from "./lib/stats.js";

interface Args {
  backend: "memory" | "kubernetes";
  runs: number;
  settleMs: number;
  main: string;
  kubeconfig: string | undefined;
  namespace: string | undefined;
}

function usage(problem?: string): never {
  if (problem) console.error(`footprint: ${problem}`);
  console.error(
    "usage: npm run bench:footprint -- [--backend memory|kubernetes] [--runs N] [--settle-ms MS] [--main FILE]\n" +
      "                                 [--kubeconfig FILE --namespace NS]\n" +
      `  --main FILE   the daemon's entry file (default ${DAEMON_MAIN})\n` +
      "  the Kubernetes backend uses the control plane of `npm run kube:up` unless --kubeconfig is given",
  );
  process.exit(problem ? 2 : 0);
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { backend: "memory", runs: 7, settleMs: 5_000, main: DAEMON_MAIN, kubeconfig: undefined, namespace: undefined };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.includes("=") ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)] : [arg, undefined];
    const value = () => inline ?? argv[++i] ?? usage(`${flag} needs a value`);
    const count = (min: number, max: number) => {
      const n = Number(value());
      if (!Number.isInteger(n) || n < min || n > max) usage(`${flag} must be a whole number from ${min} to ${max}`);
      return n;
    };
    if (flag === "--backend") {
      const backend = value();
      if (backend !== "memory" && backend !== "kubernetes") usage(`--backend must be memory or kubernetes, not ${backend}`);
      args.backend = backend;
    } else if (flag === "--runs") args.runs = count(1, 50);
    else if (flag === "--settle-ms") args.settleMs = count(0, 60_000);
    else if (flag === "--main") args.main = value();
    else if (flag === "--kubeconfig") args.kubeconfig = value();
    else if (flag === "--namespace") args.namespace = value();
    else if (flag === "--help" || flag === "-h") usage();
    else usage(`unknown argument ${arg}`);
  }
  return args;
}

/** The kubeconfig and namespace that `npm run kube:up` wrote. */
function controlPlaneOfKubeUp(): { kubeconfig: string; namespace: string } {
  const stateFile = join(controlplaneCacheDir(), "state.json");
  try {
    const state = JSON.parse(readFileSync(stateFile, "utf8")) as { kubeconfigPath: string; namespace: string };
    return { kubeconfig: state.kubeconfigPath, namespace: state.namespace };
  } catch {
    return usage(`no control plane: start one with \`npm run kube:up\` (${stateFile} is missing), or give --kubeconfig`);
  }
}

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
const ms = (value: number) => `${value.toFixed(0)} ms`;

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  let kubeconfig: string | undefined;
  let namespace = "";
  if (args.backend === "kubernetes") {
    const fromKubeUp = args.kubeconfig === undefined ? controlPlaneOfKubeUp() : undefined;
    kubeconfig = args.kubeconfig ?? fromKubeUp!.kubeconfig;
    namespace = args.namespace ?? fromKubeUp?.namespace ?? "default";
  }
  const daemons: OurDaemon[] = [];
  const startToServingMs: number[] = [];
  const startToLeaderMs: number[] = [];
  const cpuToServingMs: number[] = [];
  try {
    // One at a time, so each start-up is timed on an otherwise quiet machine.
    for (let i = 0; i < args.runs; i++) {
      const identity = `footprint-${process.pid}-${i}`;
      const daemon = await OurDaemon.start({ kubeconfig, namespace, identity, main: args.main });
      daemons.push(daemon);
      // CPU time is steadier than wall time on a busy machine.
      cpuToServingMs.push(cpuMs(daemon.pid));
      let elected!: (at: number) => void;
      const electedAt = new Promise<number>((resolve) => (elected = resolve));
      const campaign = daemon.client.campaign(identity, { candidate: identity, onElected: () => elected(nowMs()) });
      campaign.done.catch(() => {});
      startToLeaderMs.push((await within(electedAt, 30_000, "daemon elected")) - daemon.spawnedAt);
      startToServingMs.push(daemon.startToServingMs);
    }
    await sleep(args.settleMs);
    const rss = daemons.map((d) => rssBytes(d.pid));
    const kinds = daemons.map((d) => rssKinds(d.pid));
    const serving = summarize(startToServingMs);
    const leader = summarize(startToLeaderMs);
    const memory = summarize(rss);
    const cpu = summarize(cpuToServingMs);
    console.log(`daemon ${args.main} on Node ${process.version}, ${args.backend} backend, ${args.runs} runs`);
    console.log(`spawn -> health SERVING   median ${ms(serving.median)}  min ${ms(serving.min)}  max ${ms(serving.max)}`);
    console.log(`CPU time to SERVING       median ${ms(cpu.median)}  min ${ms(cpu.min)}  max ${ms(cpu.max)}`);
    console.log(`spawn -> leading          median ${ms(leader.median)}  min ${ms(leader.min)}  max ${ms(leader.max)}`);
    console.log(`idle RSS after ${args.settleMs} ms  median ${mib(memory.median)}  min ${mib(memory.min)}  max ${mib(memory.max)}`);
    const anon = summarize(kinds.map((k) => k.anon));
    const file = summarize(kinds.map((k) => k.file));
    console.log(`  of which anonymous       median ${mib(anon.median)}  min ${mib(anon.min)}  max ${mib(anon.max)}  (the process's own)`);
    console.log(
      `  of which file-backed     median ${mib(file.median)}  min ${mib(file.min)}  max ${mib(file.max)}  (mostly the node binary)`,
    );
  } finally {
    await Promise.all(daemons.map((d) => d.stop()));
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(`footprint: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(1);
    },
  );
}
