// Test control plane: a REAL etcd and kube-apiserver on loopback.
//
// The binaries are built from their published Go modules by build.sh (pins in
// kube-apiserver/go.mod and etcd/go.mod) and cached under
// <repo>/.cache/controlplane/<hash>/bin. startControlPlane() builds them when
// missing (the first build takes minutes), starts etcd and kube-apiserver on
// free loopback ports with data in a temp dir, waits for /readyz, creates the
// test namespace and writes kubeconfigs.
//
// Only Node built-ins are used, so this file has no npm dependencies.
//
// Processes: each binary runs in its own process group (detached) and, where
// util-linux `setpriv` exists, with PR_SET_PDEATHSIG=SIGKILL, so it dies with
// this Node process even when that is SIGKILLed. A process.on('exit') hook
// also kills every group still running. stop() kills both and removes the
// temp dir.

import { spawn, type ChildProcess } from "node:child_process";
import { generateKeyPairSync, randomBytes, X509Certificate } from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { tiedCommand } from "../support/tied-process.js";

/** The source folder test/controlplane (holding build.sh), found from this
 *  module's location, which may be the source or a compiled copy (dist/...). */
export function controlplaneSourceDir(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (fs.existsSync(path.join(dir, "build.sh")) && fs.existsSync(path.join(dir, "kube-apiserver", "go.mod"))) return dir;
    const cand = path.join(dir, "test", "controlplane");
    if (fs.existsSync(path.join(cand, "build.sh"))) return cand;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`test/controlplane/build.sh not found above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

/** Where build.sh and cli.ts keep binaries and state: env CONTROLPLANE_CACHE_DIR or <repo>/.cache/controlplane. */
export function controlplaneCacheDir(): string {
  return process.env.CONTROLPLANE_CACHE_DIR ?? path.join(controlplaneSourceDir(), "..", "..", ".cache", "controlplane");
}

export interface ControlPlaneOptions {
  /** Directory holding kube-apiserver, etcd (and etcdctl). Default: env
   *  CONTROLPLANE_BIN_DIR, else the output of build.sh (builds if needed). */
  binDir?: string;
  /** Namespace created for tests. Default "metaparticle-test". */
  namespace?: string;
  /** Extra namespaces to create at start. */
  extraNamespaces?: string[];
  /** Extra static-token users (no groups, no RBAC). alice and bob always exist. */
  users?: string[];
  /** Keep the apiserver watch cache for Leases. Default false: Lease watches
   *  go straight to etcd, so compactEtcd() deterministically makes a watch
   *  from an older resourceVersion fail with 410 Gone / reason Expired. */
  leaseWatchCache?: boolean;
  /** Keep the API server's own identity Lease (kube-system, renewed every 10 s).
   *  Default false (--feature-gates=APIServerIdentity=false, and
   *  UnknownVersionInteroperabilityProxy=false, which depends on it), so that
   *  apiserver_request_total{resource="leases"} counts only the tests' requests. */
  apiServerIdentity?: boolean;
  /** Extra kube-apiserver flags (appended; later flags win). */
  apiServerArgs?: string[];
  /** Keep the temp dir after stop() (also env CONTROLPLANE_KEEP=1). */
  keepDir?: boolean;
  /** Start-up timeout per component in ms. Default 90000. */
  timeoutMs?: number;
  /** Log progress lines to stderr. Default: env CONTROLPLANE_VERBOSE=1. */
  verbose?: boolean;
}

export interface RequestOptions {
  /** Static-token user to act as ("admin" by default), or use `token`. */
  user?: string;
  /** Bearer token to send instead of a static user's token. */
  token?: string;
  /** Content-Type for the body; default application/json
   *  (use application/apply-patch+yaml for server-side apply, etc.). */
  contentType?: string;
  /** Request timeout in ms. Default 30000. */
  timeoutMs?: number;
}

export interface ApiResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** Parsed JSON body, or undefined when the body is not JSON. */
  json: any;
}

export interface StartupTimings {
  /** etcd spawn -> /health OK */
  etcdMs: number;
  /** kube-apiserver spawn -> /readyz OK */
  apiServerMs: number;
  /** whole startControlPlane(), including key generation, namespaces and kubeconfigs (not builds) */
  totalMs: number;
}

export interface ControlPlane {
  /** https://127.0.0.1:PORT */
  server: string;
  /** Admin kubeconfig (token auth, group system:masters). */
  kubeconfigPath: string;
  /** Path of a kubeconfig for a static-token user (admin, alice, bob, ...). */
  kubeconfigFor(user: string): string;
  /** Writes a kubeconfig for any bearer token (e.g. a ServiceAccount token). */
  kubeconfigForToken(name: string, token: string, namespace?: string): string;
  /** Static bearer tokens by user: admin (system:masters), alice, bob (no groups, no RBAC). */
  tokens: Record<string, string>;
  /** PEM of the CA that signed the API server's serving cert. */
  caPem: string;
  /** Namespace created for tests. */
  namespace: string;
  /** Creates a namespace (ok if it exists). */
  createNamespace(name: string): Promise<void>;
  /** http://127.0.0.1:PORT */
  etcdEndpoint: string;
  /** Temp dir with data, certs, kubeconfigs and logs (etcd.log, kube-apiserver.log). */
  dir: string;
  /** Pids of the running processes (undefined while stopped). */
  pids(): { etcd?: number; apiServer?: number };
  timings: StartupTimings;
  /** Stops the API server (SIGTERM, or the given signal; SIGKILL after 15 s). Ports and data stay. */
  stopApiServer(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the API server again on the same port with the same data; resolves when /readyz is OK. */
  startApiServer(): Promise<void>;
  /** SIGSTOP etcd: the API server's etcd requests hang. */
  pauseEtcd(): void;
  /** SIGCONT etcd. */
  resumeEtcd(): void;
  /** Compacts etcd to its current revision; returns that revision. A watch
   *  from an older resourceVersion then gets 410 Gone (reason Expired). */
  compactEtcd(): Promise<number>;
  /** GET /metrics from the API server as admin. */
  metrics(): Promise<string>;
  /** Sum of apiserver_request_total over the series whose labels include all
   *  of `labels`, e.g. { resource: "leases", verb: "WATCH" }. */
  requestTotal(labels: Record<string, string>): Promise<number>;
  /** A request to the API server, by default as admin. Body objects are sent as JSON. */
  request(method: string, apiPath: string, body?: unknown, opts?: RequestOptions): Promise<ApiResponse>;
  /** Stops both processes and removes the temp dir. Safe to call twice. */
  stop(): Promise<void>;
}

// ---------------------------------------------------------------------------

const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const child of live) killGroup(child, "SIGKILL");
  });
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal); // the whole process group (spawned detached)
  } catch {
    try {
      child.kill(signal);
    } catch {
      /* already gone */
    }
  }
}

/** Spawns a binary in its own process group, output appended to logFile,
 *  killed by the kernel when this process dies (setpriv --pdeathsig). */
function spawnDaemon(binary: string, args: string[], logFile: string): ChildProcess {
  const fd = fs.openSync(logFile, "a");
  const [cmd, argv] = tiedCommand(binary, args);
  try {
    const child = spawn(cmd, argv, { detached: true, stdio: ["ignore", fd, fd] });
    live.add(child);
    child.on("exit", () => live.delete(child));
    child.on("error", () => live.delete(child));
    installExitHook();
    return child;
  } finally {
    fs.closeSync(fd);
  }
}

async function waitExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return true;
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      child.off("exit", onExit);
      resolve(false);
    }, timeoutMs);
    const onExit = (): void => {
      clearTimeout(t);
      resolve(true);
    };
    child.once("exit", onExit);
  });
}

async function terminate(child: ChildProcess | undefined, signal: NodeJS.Signals = "SIGTERM", graceMs = 15000): Promise<void> {
  if (!child) return;
  killGroup(child, "SIGCONT"); // a stopped process cannot handle SIGTERM
  killGroup(child, signal);
  if (!(await waitExit(child, graceMs))) {
    killGroup(child, "SIGKILL");
    await waitExit(child, 5000);
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function tail(file: string, lines = 40): string {
  try {
    return fs.readFileSync(file, "utf8").split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

/** Runs build.sh (a no-op when the binaries for the current pins exist) and
 *  returns the bin dir. Build progress goes to stderr. */
export async function ensureBinaries(): Promise<string> {
  const fromEnv = process.env.CONTROLPLANE_BIN_DIR;
  if (fromEnv) return fromEnv;
  return new Promise((resolve, reject) => {
    const child = spawn("bash", [path.join(controlplaneSourceDir(), "build.sh")], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    child.on("error", reject);
    child.on("exit", (code) => {
      const dir = out.trim().split("\n").pop() ?? "";
      if (code === 0 && dir) resolve(dir);
      else reject(new Error(`test/controlplane/build.sh failed (exit ${code}); see its output above`));
    });
  });
}

interface HttpResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function httpRequest(
  url: string,
  init: { method: string; headers?: Record<string, string>; body?: string; ca?: string; timeoutMs?: number },
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const mod = u.protocol === "https:" ? https : http;
    const req = mod.request(
      u,
      {
        method: init.method,
        headers: { ...(init.headers ?? {}), ...(init.body !== undefined ? { "Content-Length": Buffer.byteLength(init.body) } : {}) },
        ca: init.ca,
        // Loopback test server; verify against the CA when we have it.
        rejectUnauthorized: init.ca !== undefined,
        agent: false,
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on("error", reject);
      },
    );
    req.setTimeout(init.timeoutMs ?? 30000, () => req.destroy(new Error(`timeout: ${init.method} ${url}`)));
    req.on("error", reject);
    if (init.body !== undefined) req.write(init.body);
    req.end();
  });
}

function kubeconfigYaml(server: string, caPem: string | undefined, user: string, token: string, namespace: string): string {
  const cluster = caPem ? `    certificate-authority-data: ${Buffer.from(caPem).toString("base64")}` : "    insecure-skip-tls-verify: true";
  // JSON is valid YAML; quoting everything avoids YAML surprises.
  return [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "- name: controlplane",
    "  cluster:",
    `    server: ${JSON.stringify(server)}`,
    cluster,
    "users:",
    `- name: ${JSON.stringify(user)}`,
    "  user:",
    `    token: ${JSON.stringify(token)}`,
    "contexts:",
    `- name: ${JSON.stringify(user)}`,
    "  context:",
    "    cluster: controlplane",
    `    user: ${JSON.stringify(user)}`,
    `    namespace: ${JSON.stringify(namespace)}`,
    `current-context: ${JSON.stringify(user)}`,
    "",
  ].join("\n");
}

/** The self-signed serving cert kube-apiserver writes to --cert-dir is a
 *  bundle: leaf first, then the CA that signed it. Returns that CA, if any. */
function caFromBundle(bundlePem: string): string | undefined {
  const blocks = bundlePem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  for (const b of blocks) {
    try {
      if (new X509Certificate(b).ca) return b + "\n";
    } catch {
      /* skip */
    }
  }
  return undefined;
}

export async function startControlPlane(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const verbose = opts.verbose ?? process.env.CONTROLPLANE_VERBOSE === "1";
  const log = (msg: string): void => {
    if (verbose) process.stderr.write(`[controlplane] ${msg}\n`);
  };
  const timeoutMs = opts.timeoutMs ?? 90000;
  const binDir = opts.binDir ?? (await ensureBinaries());
  for (const b of ["etcd", "kube-apiserver"]) {
    if (!fs.existsSync(path.join(binDir, b))) throw new Error(`${b} not found in ${binDir}; run test/controlplane/build.sh`);
  }

  const t0 = performance.now();
  sweepStaleDirs();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), DIR_PREFIX));
  fs.writeFileSync(path.join(dir, "owner.pid"), String(process.pid));
  const keep = opts.keepDir ?? process.env.CONTROLPLANE_KEEP === "1";
  const namespace = opts.namespace ?? "metaparticle-test";
  let etcd: ChildProcess | undefined;
  let apiServer: ChildProcess | undefined;
  let stopped = false;

  const cleanup = async (): Promise<void> => {
    await terminate(apiServer);
    await terminate(etcd);
    apiServer = etcd = undefined;
    if (!keep) fs.rmSync(dir, { recursive: true, force: true });
  };

  try {
    // ---- credentials ----------------------------------------------------
    const users = ["admin", "alice", "bob", ...(opts.users ?? [])];
    const tokens: Record<string, string> = {};
    const csv: string[] = [];
    for (const u of new Set(users)) {
      tokens[u] = randomBytes(24).toString("hex");
      // token,user,uid,"groups"
      csv.push(u === "admin" ? `${tokens[u]},admin,uid-admin,"system:masters"` : `${tokens[u]},${u},uid-${u}`);
    }
    const tokenFile = path.join(dir, "tokens.csv");
    fs.writeFileSync(tokenFile, csv.join("\n") + "\n", { mode: 0o600 });

    const sa = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
    const saPub = path.join(dir, "sa.pub");
    const saKey = path.join(dir, "sa.key");
    fs.writeFileSync(saPub, sa.publicKey.export({ type: "spki", format: "pem" }));
    fs.writeFileSync(saKey, sa.privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });

    // ---- etcd -----------------------------------------------------------
    const [etcdClientPort, etcdPeerPort, apiPort] = [await freePort(), await freePort(), await freePort()];
    const etcdEndpoint = `http://127.0.0.1:${etcdClientPort}`;
    const peer = `http://127.0.0.1:${etcdPeerPort}`;
    const etcdLog = path.join(dir, "etcd.log");
    const tEtcd = performance.now();
    etcd = spawnDaemon(
      path.join(binDir, "etcd"),
      [
        "--name=controlplane",
        `--data-dir=${path.join(dir, "etcd-data")}`,
        `--listen-client-urls=${etcdEndpoint}`,
        `--advertise-client-urls=${etcdEndpoint}`,
        `--listen-peer-urls=${peer}`,
        `--initial-advertise-peer-urls=${peer}`,
        `--initial-cluster=controlplane=${peer}`,
        "--initial-cluster-state=new",
        "--unsafe-no-fsync", // test data only: no fsync, much faster on slow disks
        "--log-level=warn",
      ],
      etcdLog,
    );
    log(`etcd pid ${etcd.pid} on ${etcdEndpoint}`);
    await waitFor("etcd", etcd, etcdLog, timeoutMs, async () => {
      const r = await httpRequest(`${etcdEndpoint}/health`, { method: "GET", timeoutMs: 2000 });
      return r.status === 200 && /"health":"true"/.test(r.body);
    });
    const etcdMs = performance.now() - tEtcd;
    log(`etcd ready in ${Math.round(etcdMs)} ms`);

    // ---- kube-apiserver -------------------------------------------------
    const server = `https://127.0.0.1:${apiPort}`;
    const certDir = path.join(dir, "apiserver-certs");
    const apiLog = path.join(dir, "kube-apiserver.log");
    const issuer = "https://kubernetes.default.svc.cluster.local";
    const apiArgs = [
      "--bind-address=127.0.0.1",
      "--advertise-address=127.0.0.1",
      `--secure-port=${apiPort}`,
      `--cert-dir=${certDir}`, // self-signed serving cert (CA + leaf) generated by kube-apiserver
      `--etcd-servers=${etcdEndpoint}`,
      `--token-auth-file=${tokenFile}`,
      "--authorization-mode=Node,RBAC",
      `--service-account-key-file=${saPub}`,
      `--service-account-signing-key-file=${saKey}`,
      `--service-account-issuer=${issuer}`,
      `--api-audiences=${issuer}`,
      "--service-cluster-ip-range=10.0.0.0/24",
      // 127.0.0.1 is not a valid Endpoints address; there are no pods to route anyway.
      "--endpoint-reconciler-type=none",
      "--profiling=false",
      ...(opts.leaseWatchCache ? [] : ["--watch-cache-sizes=leases.coordination.k8s.io#0"]),
      ...(opts.apiServerIdentity ? [] : ["--feature-gates=APIServerIdentity=false,UnknownVersionInteroperabilityProxy=false"]),
      ...(opts.apiServerArgs ?? []),
    ];
    let ca: string | undefined;

    const startApi = async (): Promise<number> => {
      const t = performance.now();
      apiServer = spawnDaemon(path.join(binDir, "kube-apiserver"), apiArgs, apiLog);
      log(`kube-apiserver pid ${apiServer.pid} on ${server}`);
      const child = apiServer;
      await waitFor("kube-apiserver", child, apiLog, timeoutMs, async () => {
        const r = await httpRequest(`${server}/readyz`, {
          method: "GET",
          headers: { Authorization: `Bearer ${tokens.admin}` },
          timeoutMs: 5000,
        });
        return r.status === 200;
      });
      const ms = performance.now() - t;
      log(`kube-apiserver ready in ${Math.round(ms)} ms`);
      return ms;
    };
    const apiServerMs = await startApi();
    ca = caFromBundle(fs.readFileSync(path.join(certDir, "apiserver.crt"), "utf8"));

    const request = async (method: string, apiPath: string, body?: unknown, ro: RequestOptions = {}): Promise<ApiResponse> => {
      const token = ro.token ?? tokens[ro.user ?? "admin"];
      if (token === undefined) throw new Error(`unknown user ${ro.user}`);
      const headers: Record<string, string> = { Authorization: `Bearer ${token}`, Accept: "application/json" };
      let payload: string | undefined;
      if (body !== undefined) {
        payload = typeof body === "string" ? body : JSON.stringify(body);
        headers["Content-Type"] = ro.contentType ?? "application/json";
      }
      const r = await httpRequest(server + apiPath, { method, headers, body: payload, ca, timeoutMs: ro.timeoutMs });
      let json: any;
      try {
        json = JSON.parse(r.body);
      } catch {
        json = undefined;
      }
      return { ...r, json };
    };

    const createNamespace = async (name: string): Promise<void> => {
      const r = await request("POST", "/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name } });
      if (r.status !== 201 && r.status !== 409) throw new Error(`create namespace ${name}: HTTP ${r.status} ${r.body}`);
    };
    for (const ns of [namespace, ...(opts.extraNamespaces ?? [])]) await createNamespace(ns);

    // ---- kubeconfigs ----------------------------------------------------
    const kubeconfigForToken = (name: string, token: string, ns = namespace): string => {
      const file = path.join(dir, `kubeconfig-${name.replace(/[^A-Za-z0-9_.-]/g, "_")}.yaml`);
      fs.writeFileSync(file, kubeconfigYaml(server, ca, name, token, ns), { mode: 0o600 });
      return file;
    };
    const kubeconfigFor = (user: string): string => {
      const token = tokens[user];
      if (token === undefined) throw new Error(`unknown user ${user}; known: ${Object.keys(tokens).join(", ")}`);
      return kubeconfigForToken(user, token);
    };
    for (const u of Object.keys(tokens)) kubeconfigFor(u);
    const kubeconfigPath = kubeconfigFor("admin");

    const etcdJson = async (p: string, body: unknown): Promise<any> => {
      const r = await httpRequest(etcdEndpoint + p, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
        timeoutMs: 10000,
      });
      if (r.status !== 200) throw new Error(`etcd ${p}: HTTP ${r.status} ${r.body}`);
      return JSON.parse(r.body);
    };

    const timings: StartupTimings = {
      etcdMs: Math.round(etcdMs),
      apiServerMs: Math.round(apiServerMs),
      totalMs: Math.round(performance.now() - t0),
    };
    log(`ready in ${timings.totalMs} ms (etcd ${timings.etcdMs} ms, kube-apiserver ${timings.apiServerMs} ms); dir ${dir}`);

    const cp: ControlPlane = {
      server,
      kubeconfigPath,
      kubeconfigFor,
      kubeconfigForToken,
      tokens,
      caPem: ca ?? "",
      namespace,
      createNamespace,
      etcdEndpoint,
      dir,
      timings,
      pids: () => ({ etcd: etcd?.pid, apiServer: apiServer?.pid }),
      async stopApiServer(signal: NodeJS.Signals = "SIGTERM") {
        const child = apiServer;
        apiServer = undefined;
        await terminate(child, signal);
      },
      async startApiServer() {
        if (stopped) throw new Error("control plane is stopped");
        if (apiServer) return;
        await startApi();
      },
      pauseEtcd() {
        if (!etcd?.pid) return;
        process.kill(etcd.pid, "SIGSTOP");
        waitAllThreadsStopped(etcd.pid, 2000);
      },
      resumeEtcd() {
        if (etcd?.pid) process.kill(etcd.pid, "SIGCONT");
      },
      async compactEtcd() {
        // Any range returns the current revision in its header ("AA==" is key "\0").
        const range = await etcdJson("/v3/kv/range", { key: "AA==", limit: 1 });
        const revision = Number(range.header.revision);
        await etcdJson("/v3/kv/compaction", { revision: String(revision), physical: true });
        return revision;
      },
      async metrics() {
        const r = await request("GET", "/metrics");
        if (r.status !== 200) throw new Error(`GET /metrics: HTTP ${r.status}`);
        return r.body;
      },
      async requestTotal(labels: Record<string, string>) {
        return sumCounter(await cp.metrics(), "apiserver_request_total", labels);
      },
      request,
      async stop() {
        if (stopped) return;
        stopped = true;
        await cleanup();
      },
    };
    return cp;
  } catch (err) {
    stopped = true;
    await cleanup();
    throw err;
  }
}

const DIR_PREFIX = "mps-controlplane-";

/** Removes temp dirs left by control planes whose owning process died without
 *  cleaning up (SIGKILL, Ctrl-C): etcd preallocates 64 MB WAL files. */
function sweepStaleDirs(): void {
  let entries: string[];
  try {
    entries = fs.readdirSync(os.tmpdir()).filter((e) => e.startsWith(DIR_PREFIX));
  } catch {
    return;
  }
  for (const e of entries) {
    const dir = path.join(os.tmpdir(), e);
    try {
      const owner = Number(fs.readFileSync(path.join(dir, "owner.pid"), "utf8"));
      if (!(owner > 0) || pidAlive(owner)) continue;
      fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      /* no owner file (yet), or not ours: leave it */
    }
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Sums a Prometheus text-format counter over the series matching all labels. */
export function sumCounter(text: string, metric: string, labels: Record<string, string>): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(metric + "{")) continue;
    const close = line.lastIndexOf("}");
    const got: Record<string, string> = {};
    for (const m of line.slice(metric.length + 1, close).matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) got[m[1]] = m[2];
    if (Object.entries(labels).every(([k, v]) => got[k] === v))
      sum += Number(
        line
          .slice(close + 1)
          .trim()
          .split(" ")[0],
      );
  }
  return sum;
}

/** Blocks (briefly) until every thread of pid is in state T (stopped), so a
 *  request sent right after pauseEtcd() cannot be answered. Linux /proc only;
 *  elsewhere it returns at once. */
function waitAllThreadsStopped(pid: number, timeoutMs: number): void {
  const deadline = performance.now() + timeoutMs;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    let allStopped = true;
    try {
      for (const task of fs.readdirSync(`/proc/${pid}/task`)) {
        const stat = fs.readFileSync(`/proc/${pid}/task/${task}/stat`, "utf8");
        const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
        if (state !== "T" && state !== "t") allStopped = false;
      }
    } catch {
      return; // no /proc, or the process is gone
    }
    if (allStopped || performance.now() > deadline) return;
    Atomics.wait(pause, 0, 0, 1);
  }
}

async function waitFor(
  name: string,
  child: ChildProcess,
  logFile: string,
  timeoutMs: number,
  ready: () => Promise<boolean>,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let lastErr = "";
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${name} exited (${child.exitCode ?? child.signalCode}) before it was ready. Log tail:\n${tail(logFile)}`);
    }
    try {
      if (await ready()) return;
      lastErr = "not ready";
    } catch (e) {
      lastErr = (e as Error).message;
    }
    if (performance.now() > deadline) {
      throw new Error(`${name} not ready after ${timeoutMs} ms (${lastErr}). Log tail:\n${tail(logFile)}`);
    }
    await sleep(100);
  }
}
