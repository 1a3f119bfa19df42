// What a new user meets first, as separate processes: the daemon's --version
// and its refusal to start without a cluster it was told to use, `npm start`
// stopping with npm, and the CLI's bin linked by npm before anything is built.
import test, { type ExecutionContext } from "ava";
import { type SpawnOptions, spawn } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { get as httpsGet } from "node:https";
import { certificates } from "../support/certificates.js";
import { DAEMON_MAIN } from "../support/daemon-process.js";

const REPO = fileURLToPath(new URL("../../../", import.meta.url));
const VERSION = (JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { version: string }).version;
/** Upper bound of every process in these tests. */
const TIMEOUT_MS = 60_000;

function run(t: ExecutionContext, command: string, args: string[], options: SpawnOptions = {}) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(command, args, { ...options, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      stderr += `\n(killed: still running after ${TIMEOUT_MS} ms)`;
      child.kill("SIGKILL");
    }, TIMEOUT_MS);
    child.on("error", (err) => {
      clearTimeout(timer);
      resolve({ code: null, stdout, stderr: `${stderr}\n${err.message}` });
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      t.log(`$ ${command} ${args.join(" ")} -> ${code}`);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The daemon with only PATH, HOME and `env` in its environment, HOME being an empty folder (no ~/.kube). */
function daemon(t: ExecutionContext, args: string[], env: Record<string, string> = {}) {
  const home = mkdtempSync(join(tmpdir(), "msync-home-"));
  t.teardown(() => rmSync(home, { recursive: true, force: true }));
  return run(t, process.execPath, [DAEMON_MAIN, "--listen=127.0.0.1:0", ...args], { env: { PATH: process.env.PATH, HOME: home, ...env } });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test("the daemon prints its version", async (t) => {
  const result = await daemon(t, ["--version"]);
  t.is(result.code, 0);
  t.is(result.stdout, `metaparticle-sync-daemon ${VERSION}\n`);
});

test("--backend=kubernetes with no cluster, or a kubeconfig that is not there, stops the daemon at start naming the setting", async (t) => {
  const noCluster = await daemon(t, ["--backend=kubernetes"]);
  t.is(noCluster.code, 2, noCluster.stderr);
  t.regex(noCluster.stderr, /^metaparticle-sync: bad setting --backend: kubernetes needs a cluster/);
  const missing = await daemon(t, [], { KUBECONFIG: "/nonexistent/kubeconfig" });
  t.is(missing.code, 2, missing.stderr);
  t.regex(missing.stderr, /^metaparticle-sync: bad setting KUBECONFIG: no kubeconfig file at \/nonexistent\/kubeconfig/);
  const bareNumber = await daemon(t, ["--lease-duration=20", "--renew-deadline=12", "--version"]);
  t.is(bareNumber.code, 0, "--version answers whatever else is given");
});

test("npm start: SIGTERM to npm stops the daemon too", async (t) => {
  t.timeout(3 * TIMEOUT_MS);
  const npm = spawn("npm", ["start", "--silent", "--", "--listen=127.0.0.1:0", "--backend=memory"], {
    cwd: REPO,
    env: { PATH: process.env.PATH, HOME: process.env.HOME },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let daemonPid: number | undefined;
  t.teardown(() => {
    npm.kill("SIGKILL");
    if (daemonPid !== undefined && alive(daemonPid)) process.kill(daemonPid, "SIGKILL");
  });
  const lines: string[] = [];
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no "ready" from npm start within ${2 * TIMEOUT_MS} ms:\n${lines.join("\n")}`)),
      2 * TIMEOUT_MS,
    );
    createInterface({ input: npm.stderr! }).on("line", (line) => {
      lines.push(line);
      if (line.startsWith("{") && (JSON.parse(line) as { msg: string }).msg.startsWith("ready")) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  daemonPid = descendants(npm.pid!).find((pid) => {
    const [command, script] = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    return /(^|\/)node$/.test(command!) && script === "dist/lean/main.mjs";
  });
  if (daemonPid === undefined) return t.fail(`no daemon process under npm (pid ${npm.pid})`);
  t.not(daemonPid, npm.pid);
  const npmExited = new Promise<number | null>((resolve) => npm.once("exit", (code) => resolve(code)));
  npm.kill("SIGTERM");
  await npmExited;
  const start = performance.now();
  while (alive(daemonPid) && performance.now() - start < 15_000) await sleep(50);
  t.false(alive(daemonPid), `the daemon (pid ${daemonPid}) outlived npm`);
});

test("the CLI's bin is linked by npm before dist/ is built, and runs once it is", async (t) => {
  t.timeout(3 * TIMEOUT_MS);
  const work = mkdtempSync(join(tmpdir(), "msync-bin-"));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  // The client package as a fresh clone has it: sources, no dist/.
  const source = join(REPO, "clients", "typescript");
  const app = join(work, "app");
  const client = join(app, "client");
  mkdirSync(client, { recursive: true });
  const manifest = JSON.parse(readFileSync(join(source, "package.json"), "utf8")) as { bin: Record<string, string> };
  cpSync(join(source, "package.json"), join(client, "package.json"));
  for (const path of Object.values(manifest.bin)) {
    if (existsSync(join(source, path)) && !path.startsWith("dist/")) cpSync(join(source, path), join(client, path), { recursive: true });
  }
  writeFileSync(
    join(app, "package.json"),
    JSON.stringify({ name: "app", version: "1.0.0", private: true, dependencies: { "metaparticle-sync-client": "file:./client" } }),
  );
  const install = await run(t, "npm", ["install", "--offline", "--ignore-scripts", "--no-audit", "--no-fund"], { cwd: app });
  t.is(install.code, 0, install.stderr);
  const bin = join(app, "node_modules", ".bin", "metaparticle-sync");
  t.true(existsSync(bin), "npm linked the bin although nothing was built");
  // Before the build it says what to do; after it (tsc -b, here a copy of this build's dist/), it runs.
  const env = { PATH: `${join(process.execPath, "..")}:${process.env.PATH}`, HOME: process.env.HOME };
  const unbuilt = await run(t, bin, ["--version"], { env });
  t.is(unbuilt.code, 70);
  t.regex(unbuilt.stderr, /not built yet: run npm run build/);
  cpSync(join(source, "dist"), join(client, "dist"), { recursive: true });
  const built = await run(t, bin, ["--version"], { env });
  t.is(built.code, 0, built.stderr);
  t.is(built.stdout, `metaparticle-sync ${VERSION}\n`);
});

/** The processes below `pid`, from /proc (Linux). */
function descendants(pid: number): number[] {
  const parents = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      parents.set(Number(entry), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
    } catch {
      // exited meanwhile
    }
  }
  const found: number[] = [];
  for (let frontier = [pid]; frontier.length > 0;) {
    const children = [...parents].filter(([, parent]) => frontier.includes(parent)).map(([child]) => child);
    found.push(...children);
    frontier = children;
  }
  return found;
}

test("inject through the daemon's entry point: manifests on stdin, the result on stdout; a bad override exits 1 naming it", async (t) => {
  const runInject = (input: string, args: string[] = []) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [DAEMON_MAIN, "inject", ...args], { stdio: ["pipe", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
      const timer = setTimeout(() => child.kill("SIGKILL"), TIMEOUT_MS);
      child.on("close", (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
      child.stdin.end(input);
    });
  const pod = (annotations: string) =>
    `apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations: {${annotations}}\nspec:\n  containers: [{name: app, image: app:1}]\n`;
  const service = "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n";
  const injected = await runInject(`${service}---\n${pod('sync.metaparticle.io/inject: "true"')}`, ["--image=example/msync:1"]);
  t.is(injected.code, 0, injected.stderr);
  t.true(injected.stdout.startsWith(`${service}---\n`), "the Service passes through");
  t.regex(injected.stdout, /initContainers:\n\s+- name: metaparticle-sync\n\s+image: example\/msync:1\n\s+restartPolicy: Always/);
  const again = await runInject(injected.stdout);
  t.is(again.stdout, injected.stdout, "idempotent");
  const notOptedIn = `${service}---\n${pod("")}`;
  t.is((await runInject(notOptedIn)).stdout, notOptedIn, "without the annotation, nothing changes");
  t.regex((await runInject(notOptedIn, ["--all"])).stdout, /initContainers:\n\s+- name: metaparticle-sync/, "--all: every pod");
  const bad = await runInject(pod('sync.metaparticle.io/inject: "true", sync.metaparticle.io/log-level: "loud"'));
  t.is(bad.code, 1);
  t.regex(
    bad.stderr,
    /^metaparticle-sync: stdin, document 1, line 5: annotation sync\.metaparticle\.io\/log-level: must be one of .*\(Pod p\)/,
  );
  const badFlag = await runInject("", ["--mode=sidecar"]);
  t.is(badFlag.code, 2);
  t.regex(badFlag.stderr, /bad setting --mode: must be native or container/);
});

test("webhook through the daemon's entry point: serves TLS with the given certificate, and exits 0 on SIGTERM", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "msync-webhook-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const tls = certificates(dir);
  const webhook = spawn(
    process.execPath,
    [DAEMON_MAIN, "webhook", "--listen=127.0.0.1:0", `--tls-cert=${tls.cert}`, `--tls-key=${tls.key}`],
    {
      stdio: ["ignore", "ignore", "pipe"],
    },
  );
  t.teardown(() => void webhook.kill("SIGKILL"));
  const address = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the webhook did not start")), TIMEOUT_MS);
    createInterface({ input: webhook.stderr! }).on("line", (line) => {
      const entry = JSON.parse(line) as { msg: string; address?: string };
      if (entry.msg === "injection webhook listening") {
        clearTimeout(timer);
        resolve(entry.address!);
      }
    });
  });
  const body = await new Promise<string>((resolve, reject) => {
    const request = httpsGet(`https://${address}/healthz`, { ca: readFileSync(tls.ca) }, (response) => {
      let text = "";
      response.on("data", (chunk: Buffer) => (text += chunk.toString()));
      response.on("end", () => resolve(`${response.statusCode} ${text}`));
    });
    request.on("error", reject);
  });
  t.is(body, "200 ok\n", "the CA given to the API server verifies it");
  const exited = new Promise<number | null>((resolve) => webhook.once("exit", (code) => resolve(code)));
  webhook.kill("SIGTERM");
  t.is(await exited, 0);
});
