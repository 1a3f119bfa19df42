// Control plane for manual use:
//
//   cli.ts up      build if needed, start etcd + kube-apiserver in the
//                  background, write .cache/controlplane/state.json and
//                  .cache/controlplane/kubeconfig, print `export KUBECONFIG=...`
//   cli.ts down    stop what `up` started (using state.json)
//   cli.ts status  print state.json if the control plane is running
//
// `up` starts a detached copy of this script (`serve`) that owns the
// processes; `down` sends it SIGTERM. Its log: .cache/controlplane/cli.log.

import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { controlplaneCacheDir, ensureBinaries, startControlPlane } from "./controlplane.js";

const STATE_DIR = path.resolve(controlplaneCacheDir());
const STATE_FILE = path.join(STATE_DIR, "state.json");
const KUBECONFIG = path.join(STATE_DIR, "kubeconfig");
const LOG_FILE = path.join(STATE_DIR, "cli.log");

interface State {
  pid: number;
  server: string;
  kubeconfigPath: string;
  kubeconfigs: Record<string, string>;
  tokens: Record<string, string>;
  namespace: string;
  etcdEndpoint: string;
  dir: string;
  pids: { etcd?: number; apiServer?: number };
  timings: unknown;
  startedAt: string;
}

function alive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

function readState(): State | undefined {
  try {
    return JSON.parse(fs.readFileSync(STATE_FILE, "utf8")) as State;
  } catch {
    return undefined;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function printUp(s: State): void {
  console.log(`control plane up: ${s.server} (etcd ${s.etcdEndpoint}), namespace ${s.namespace}`);
  console.log(
    `kubeconfigs: ${Object.entries(s.kubeconfigs)
      .map(([u, p]) => `${u}=${p}`)
      .join(" ")}`,
  );
  console.log(`state: ${STATE_FILE}`);
  console.log(`export KUBECONFIG=${s.kubeconfigPath}`);
}

async function up(): Promise<number> {
  const existing = readState();
  if (existing && alive(existing.pid)) {
    printUp(existing);
    return 0;
  }
  fs.mkdirSync(STATE_DIR, { recursive: true });
  fs.rmSync(STATE_FILE, { force: true });
  await ensureBinaries(); // build in the foreground so progress is visible
  const out = fs.openSync(LOG_FILE, "w");
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), "serve"], {
    detached: true,
    stdio: ["ignore", out, out],
    env: { ...process.env, CONTROLPLANE_VERBOSE: "1" },
  });
  fs.closeSync(out);
  child.unref();
  const deadline = Date.now() + 180_000;
  while (Date.now() < deadline) {
    const s = readState();
    if (s && s.pid === child.pid) {
      printUp(s);
      return 0;
    }
    if (child.exitCode !== null || !alive(child.pid)) break;
    await sleep(200);
  }
  console.error(`control plane did not come up; log ${LOG_FILE}:\n${fs.readFileSync(LOG_FILE, "utf8").split("\n").slice(-40).join("\n")}`);
  if (alive(child.pid)) process.kill(child.pid!, "SIGTERM");
  return 1;
}

async function serve(): Promise<void> {
  const cp = await startControlPlane({ verbose: true });
  fs.copyFileSync(cp.kubeconfigPath, KUBECONFIG);
  const kubeconfigs: Record<string, string> = {};
  for (const u of Object.keys(cp.tokens)) kubeconfigs[u] = cp.kubeconfigFor(u);
  const state: State = {
    pid: process.pid,
    server: cp.server,
    kubeconfigPath: KUBECONFIG,
    kubeconfigs,
    tokens: cp.tokens,
    namespace: cp.namespace,
    etcdEndpoint: cp.etcdEndpoint,
    dir: cp.dir,
    pids: cp.pids(),
    timings: cp.timings,
    startedAt: new Date().toISOString(),
  };
  fs.writeFileSync(STATE_FILE + ".tmp", JSON.stringify(state, null, 2), { mode: 0o600 });
  fs.renameSync(STATE_FILE + ".tmp", STATE_FILE);
  let stopping = false;
  const shutdown = async (sig: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    console.error(`[controlplane] ${sig}: stopping`);
    await cp.stop();
    fs.rmSync(STATE_FILE, { force: true });
    fs.rmSync(KUBECONFIG, { force: true });
    process.exit(0);
  };
  for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"] as const) process.on(sig, () => void shutdown(sig));
  setInterval(() => {}, 1 << 30); // stay alive
}

async function down(): Promise<number> {
  const s = readState();
  if (!s) {
    console.log("control plane not running (no state file)");
    return 0;
  }
  if (alive(s.pid)) {
    process.kill(s.pid, "SIGTERM");
    const deadline = Date.now() + 40_000;
    while (alive(s.pid) && Date.now() < deadline) await sleep(100);
    if (alive(s.pid)) process.kill(s.pid, "SIGKILL"); // its children die with it (pdeathsig)
  }
  // Belt and braces: the processes' own groups.
  for (const pid of [s.pids.apiServer, s.pids.etcd]) {
    if (alive(pid)) {
      try {
        process.kill(-pid!, "SIGKILL");
      } catch {
        /* gone */
      }
    }
  }
  fs.rmSync(s.dir, { recursive: true, force: true });
  fs.rmSync(STATE_FILE, { force: true });
  fs.rmSync(KUBECONFIG, { force: true });
  console.log("control plane stopped");
  return 0;
}

async function status(): Promise<number> {
  const s = readState();
  if (s && alive(s.pid)) {
    printUp(s);
    return 0;
  }
  console.log("control plane not running");
  return 1;
}

const cmd = process.argv[2];
switch (cmd) {
  case "up":
    process.exitCode = await up();
    break;
  case "down":
    process.exitCode = await down();
    break;
  case "status":
    process.exitCode = await status();
    break;
  case "serve":
    await serve();
    break;
  default:
    console.error("usage: cli.ts up|down|status");
    process.exitCode = 2;
}
