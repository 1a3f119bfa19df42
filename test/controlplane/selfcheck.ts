// Self-check of the test control plane (not part of the test suite):
//
//   tsx test/controlplane/selfcheck.ts
//
// Starts etcd + kube-apiserver, then: creates a Lease with curl as admin,
// watches it, compacts etcd and sees a watch from an old resourceVersion get
// 410 Expired, checks RBAC denies alice, does a server-side dry-run apply,
// pauses/resumes etcd, stops/starts the API server, reads
// apiserver_request_total from /metrics, issues a TokenRequest for a
// ServiceAccount and uses the token, stops everything and confirms no process
// is left. Finally SIGKILLs a Node process that owns a control plane and
// confirms its etcd and kube-apiserver die with it.

import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as https from "node:https";
import { fileURLToPath } from "node:url";
import { startControlPlane, type ControlPlane } from "./controlplane.js";

let passed = 0;
let failed = 0;
function check(name: string, ok: boolean, detail = ""): void {
  if (ok) passed++;
  else failed++;
  console.log(`${ok ? "ok  " : "FAIL"} ${name}${detail ? ` (${detail})` : ""}`);
}
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function alive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

interface WatchEvent {
  type: string;
  object: any;
}

/** Opens a watch and collects events until `until` returns true or timeout. */
function watch(cp: ControlPlane, apiPath: string, until: (e: WatchEvent[]) => boolean, timeoutMs = 10000): Promise<WatchEvent[]> {
  return new Promise((resolve, reject) => {
    const events: WatchEvent[] = [];
    let buf = "";
    const req = https.get(cp.server + apiPath, { headers: { Authorization: `Bearer ${cp.tokens.admin}` }, ca: cp.caPem }, (res) => {
      if (res.statusCode !== 200) {
        let body = "";
        res.on("data", (d) => (body += d));
        res.on("end", () => reject(new Error(`watch HTTP ${res.statusCode}: ${body}`)));
        return;
      }
      res.setEncoding("utf8");
      res.on("data", (d: string) => {
        buf += d;
        let i: number;
        while ((i = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, i).trim();
          buf = buf.slice(i + 1);
          if (line) events.push(JSON.parse(line) as WatchEvent);
        }
        if (until(events)) {
          clearTimeout(timer);
          req.destroy();
          resolve(events);
        }
      });
      res.on("end", () => {
        clearTimeout(timer);
        resolve(events);
      });
    });
    req.on("error", (e) => {
      if (!req.destroyed) reject(e);
    });
    const timer = setTimeout(() => {
      req.destroy();
      resolve(events);
    }, timeoutMs);
  });
}

function lease(name: string, holder: string): object {
  return {
    apiVersion: "coordination.k8s.io/v1",
    kind: "Lease",
    metadata: { name, labels: { "app.kubernetes.io/managed-by": "metaparticle-sync" } },
    spec: { holderIdentity: holder, leaseDurationSeconds: 15, leaseTransitions: 0 },
  };
}

async function childMode(): Promise<void> {
  const cp = await startControlPlane();
  process.stdout.write(JSON.stringify({ ...cp.pids(), dir: cp.dir }) + "\n");
  setInterval(() => {}, 1 << 30);
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const cp = await startControlPlane({ verbose: true });
  console.log(
    `started in ${Math.round(performance.now() - t0)} ms: etcd ${cp.timings.etcdMs} ms, kube-apiserver ${cp.timings.apiServerMs} ms, total ${cp.timings.totalMs} ms`,
  );
  const ns = cp.namespace;
  const leases = `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases`;
  const pids = cp.pids();
  try {
    // -- create a Lease with curl, as admin, verifying TLS with the CA ------
    const caFile = `${cp.dir}/ca.pem`;
    fs.writeFileSync(caFile, cp.caPem);
    const curl = spawnSync(
      "curl",
      [
        "-sS",
        "--cacert",
        caFile,
        "-H",
        `Authorization: Bearer ${cp.tokens.admin}`,
        "-H",
        "Content-Type: application/json",
        "-X",
        "POST",
        "--data",
        JSON.stringify(lease("demo", "a")),
        `${cp.server}${leases}`,
        "-w",
        "\n%{http_code}",
      ],
      { encoding: "utf8" },
    );
    const code = curl.stdout.trim().split("\n").pop();
    check("curl creates a Lease as admin (TLS verified with caPem)", code === "201", `HTTP ${code} ${curl.stderr}`);
    const created = JSON.parse(curl.stdout.slice(0, curl.stdout.lastIndexOf("\n")));
    const rv1: string = created.metadata.resourceVersion;

    // -- kubeconfig is usable ------------------------------------------------
    const kc = fs.readFileSync(cp.kubeconfigPath, "utf8");
    check("admin kubeconfig has server and token", kc.includes(cp.server) && kc.includes(cp.tokens.admin));

    // -- watch sees a modification -----------------------------------------
    const w = watch(cp, `${leases}?watch=1&resourceVersion=${rv1}`, (ev) => ev.some((e) => e.type === "MODIFIED"));
    await sleep(200);
    const upd1 = await cp.request("PUT", `${leases}/demo`, { ...created, spec: { ...created.spec, holderIdentity: "b" } });
    const evs = await w;
    check(
      "watch receives MODIFIED",
      evs.some((e) => e.type === "MODIFIED" && e.object.spec.holderIdentity === "b"),
      evs.map((e) => e.type).join(","),
    );
    const upd2 = await cp.request("PUT", `${leases}/demo`, { ...upd1.json, spec: { ...upd1.json.spec, holderIdentity: "c" } });
    check("update Lease", upd2.status === 200, `HTTP ${upd2.status}`);

    // -- compaction -> 410 Expired ---------------------------------------------
    const rev = await cp.compactEtcd();
    const expired = await watch(cp, `${leases}?watch=1&resourceVersion=${rv1}`, (ev) => ev.length > 0, 5000);
    const e0 = expired[0];
    check(
      "watch from a compacted resourceVersion gets ERROR 410 Expired",
      e0?.type === "ERROR" && e0.object.code === 410 && e0.object.reason === "Expired",
      `compacted at ${rev}; got ${JSON.stringify(e0?.object ?? null).slice(0, 160)}`,
    );
    const list = await cp.request("GET", leases);
    check("list after compaction works", list.status === 200 && list.json.items.length === 1);

    // -- RBAC: alice has no rights ---------------------------------------------
    const denied = await cp.request("GET", leases, undefined, { user: "alice" });
    check("alice is forbidden to list leases", denied.status === 403, `HTTP ${denied.status}`);

    // -- server-side dry-run apply -----------------------------------------------
    const applied = await cp.request(
      "PATCH",
      `${leases}/applied?fieldManager=selfcheck&dryRun=All`,
      JSON.stringify(lease("applied", "x")),
      { contentType: "application/apply-patch+yaml" },
    );
    const notThere = await cp.request("GET", `${leases}/applied`);
    check("server-side dry-run apply", applied.status === 201 && notThere.status === 404, `HTTP ${applied.status}/${notThere.status}`);

    // -- pause / resume etcd -----------------------------------------------------
    cp.pauseEtcd();
    let pausedErr = "";
    try {
      const r = await cp.request("GET", `${leases}/demo`, undefined, { timeoutMs: 1500 });
      pausedErr = `HTTP ${r.status}`;
    } catch (e) {
      pausedErr = (e as Error).message;
    }
    cp.resumeEtcd();
    const afterResume = await cp.request("GET", `${leases}/demo`);
    check("paused etcd stalls reads; resume recovers", /timeout|HTTP 5/.test(pausedErr) && afterResume.status === 200, pausedErr);

    // -- stop / start the API server ----------------------------------------------
    const oldApi = cp.pids().apiServer;
    let t = performance.now();
    await cp.stopApiServer();
    const stopMs = Math.round(performance.now() - t);
    let refused = "";
    try {
      await cp.request("GET", `${leases}/demo`, undefined, { timeoutMs: 2000 });
    } catch (e) {
      refused = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    }
    check("API server stopped (connection refused)", refused === "ECONNREFUSED" && !alive(oldApi), `${refused}, stop took ${stopMs} ms`);
    t = performance.now();
    await cp.startApiServer();
    const restartMs = Math.round(performance.now() - t);
    const again = await cp.request("GET", `${leases}/demo`);
    check(
      "API server restarted with the same data",
      again.status === 200 && again.json.spec.holderIdentity === "c",
      `restart ${restartMs} ms`,
    );

    // -- metrics -------------------------------------------------------------------
    const metrics = await cp.metrics();
    const leaseLines = metrics.split("\n").filter((l) => l.startsWith("apiserver_request_total{") && l.includes('resource="leases"'));
    check("apiserver_request_total in /metrics", leaseLines.length > 0, leaseLines[0]?.slice(0, 140));
    // Counters restart with the API server: since the restart, exactly one GET of a Lease.
    const gets = await cp.requestTotal({ resource: "leases", verb: "GET" });
    const idle0 = await cp.requestTotal({ resource: "leases" });
    await sleep(12000); // longer than the 10 s identity-lease renew period (disabled by default)
    const idle1 = await cp.requestTotal({ resource: "leases" });
    check("requestTotal counts lease requests; none while idle", gets === 1 && idle1 === idle0, `GET=${gets}, idle delta ${idle1 - idle0}`);

    // -- TokenRequest for a ServiceAccount -----------------------------------------
    const sa = await cp.request("POST", `/api/v1/namespaces/${ns}/serviceaccounts`, {
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: { name: "sync" },
    });
    const tr = await cp.request("POST", `/api/v1/namespaces/${ns}/serviceaccounts/sync/token`, {
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenRequest",
      spec: { expirationSeconds: 600 },
    });
    const saToken: string | undefined = tr.json?.status?.token;
    const review = saToken
      ? await cp.request(
          "POST",
          "/apis/authentication.k8s.io/v1/selfsubjectreviews",
          { apiVersion: "authentication.k8s.io/v1", kind: "SelfSubjectReview" },
          { token: saToken },
        )
      : undefined;
    const who = review?.json?.status?.userInfo?.username;
    check(
      "TokenRequest issues a working ServiceAccount token",
      sa.status === 201 && tr.status === 201 && who === `system:serviceaccount:${ns}:sync`,
      `${tr.status} ${who}`,
    );
    const saKc = saToken ? cp.kubeconfigForToken("sa-sync", saToken) : "";
    check("kubeconfigForToken writes a file", saKc !== "" && fs.readFileSync(saKc, "utf8").includes(saToken!));
  } finally {
    const before = cp.pids();
    await cp.stop();
    const stillAlive = [pids.etcd, before.apiServer, before.etcd].filter(alive);
    const pg = spawnSync("pgrep", ["-af", cp.dir], { encoding: "utf8" });
    check(
      "stop() leaves no process and removes the dir",
      stillAlive.length === 0 && pg.stdout.trim() === "" && !fs.existsSync(cp.dir),
      pg.stdout.trim(),
    );
  }

  // -- a SIGKILLed owner takes its control plane with it ----------------------------
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), "--child"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const info = await new Promise<{ etcd: number; apiServer: number; dir: string }>((resolve, reject) => {
    let out = "";
    child.stdout!.setEncoding("utf8").on("data", (d: string) => {
      out += d;
      const line = out.split("\n").find((l) => l.startsWith("{"));
      if (line) resolve(JSON.parse(line));
    });
    child.on("exit", (c) => reject(new Error(`child exited ${c}`)));
  });
  const wereAlive = alive(info.etcd) && alive(info.apiServer);
  child.kill("SIGKILL");
  const deadline = Date.now() + 5000;
  while ((alive(info.etcd) || alive(info.apiServer)) && Date.now() < deadline) await sleep(50);
  check("SIGKILL of the owning process kills etcd and kube-apiserver", wereAlive && !alive(info.etcd) && !alive(info.apiServer));
  fs.rmSync(info.dir, { recursive: true, force: true }); // the killed owner could not clean up

  console.log(`selfcheck: ${passed} passed, ${failed} failed`);
  process.exitCode = failed === 0 ? 0 : 1;
}

if (process.argv.includes("--child")) await childMode();
else await main();
