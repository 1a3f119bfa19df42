// The container image, without Docker: the Dockerfile's steps are repeated in
// temporary folders (its build-stage COPY lines from the context that
// .dockerignore leaves, its RUN lines, its runtime-stage COPY lines, its
// ENTRYPOINT), then the production install must start the daemon and serve a
// lock. And the TypeScript client, packed and installed alone, must not pull
// in the daemon's dependencies (@kubernetes/client-node above all).
import test, { type ExecutionContext } from "ava";
import { type SpawnOptions, spawn } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, posix } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { SyncClient } from "metaparticle-sync-client";

const REPO = fileURLToPath(new URL("../../../", import.meta.url));
/** npm installs reach the registry; each is bounded. */
const NPM_TIMEOUT_MS = 5 * 60_000;
const NPM_FLAGS = ["--no-audit", "--no-fund"];

interface Copy {
  readonly from: string | undefined;
  readonly sources: string[];
  readonly dest: string;
}

interface Stage {
  readonly name: string | undefined;
  workdir: string;
  /** COPY and RUN instructions in order. */
  readonly steps: Array<{ copy: Copy } | { run: string }>;
  readonly env: Record<string, string>;
  readonly labels: Record<string, string>;
  /** RUN lines that change the base image only (removing its npm), checked but not repeated here. */
  readonly baseImageRuns: string[];
  entrypoint: string[] | undefined;
}

/** Reads the instructions this test repeats; it fails on any it does not know, so the two cannot drift apart. */
function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = [];
  const lines = text.replace(/\\\n/g, " ").split("\n");
  for (const raw of lines) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const [instruction, ...words] = line.split(/\s+/);
    const rest = line.slice(instruction!.length).trim();
    const stage = stages.at(-1);
    switch (instruction!.toUpperCase()) {
      case "ARG":
        break;
      case "FROM":
        stages.push({
          name: /\s+AS\s+(\S+)$/i.exec(line)?.[1],
          workdir: "/",
          steps: [],
          env: {},
          labels: {},
          baseImageRuns: [],
          entrypoint: undefined,
        });
        break;
      case "WORKDIR":
        stage!.workdir = posix.resolve(stage!.workdir, rest);
        break;
      case "COPY": {
        const from = words[0]?.startsWith("--from=") ? words.shift()!.slice("--from=".length) : undefined;
        stage!.steps.push({ copy: { from, sources: words.slice(0, -1), dest: words.at(-1)! } });
        break;
      }
      case "RUN":
        // Removing files of the base image (absolute paths outside the app) is not repeated in a temporary folder.
        if (/^rm -rf( \/(usr|opt)\/\S+)+$/.test(rest)) stage!.baseImageRuns.push(rest);
        else stage!.steps.push({ run: rest });
        break;
      case "LABEL":
        for (const [, key, value] of rest.matchAll(/([\w.-]+)="([^"]*)"/g)) stage!.labels[key!] = value!;
        break;
      case "ENV": {
        const [key, value] = rest.split("=");
        stage!.env[key!] = value!;
        break;
      }
      case "ENTRYPOINT":
        stage!.entrypoint = JSON.parse(rest) as string[];
        break;
      case "USER":
      case "EXPOSE":
        break;
      default:
        throw new Error(`the test does not know Dockerfile instruction ${instruction}; teach it`);
    }
  }
  return stages;
}

/** Docker's .dockerignore rules: the last pattern that matches a path or one of its parents decides; "!" keeps. */
function dockerignore(text: string): (path: string) => boolean {
  const rules = text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"))
    .map((l) => {
      const keep = l.startsWith("!");
      const pattern = (keep ? l.slice(1) : l).replace(/^\/+|\/+$/g, "");
      const regex = pattern
        .split("/")
        .map((part) =>
          part === "**"
            ? ".*"
            : part
                .replace(/[.+^${}()|[\]\\]/g, "\\$&")
                .replace(/\*/g, "[^/]*")
                .replace(/\?/g, "[^/]"),
        )
        .join("/")
        .replace(/\.\*\//g, "(.*/)?");
      return { keep, regex: new RegExp(`^${regex}$`) };
    });
  return (path) => {
    const prefixes = path.split("/").map((_, i, parts) => parts.slice(0, i + 1).join("/"));
    let ignored = false;
    for (const rule of rules) if (prefixes.some((p) => rule.regex.test(p))) ignored = !rule.keep;
    return ignored;
  };
}

/** Where COPY puts `source`: a folder's contents go into `dest`; a file goes into `dest` if it ends in "/", else becomes it. */
function target(root: string, dest: string, source: string, isFolder: boolean): string {
  return !isFolder && (dest.endsWith("/") || dest === ".") ? join(root, dest, posix.basename(source)) : join(root, dest);
}

/** COPY from the build context, leaving out what .dockerignore names. */
function copyFromContext(context: string, source: string, to: string, ignored: (path: string) => boolean): void {
  const walk = (relative: string, into: string) => {
    const from = join(context, relative);
    if (statSync(from).isDirectory()) {
      mkdirSync(into, { recursive: true });
      for (const entry of readdirSync(from)) if (!ignored(`${relative}/${entry}`)) walk(`${relative}/${entry}`, join(into, entry));
    } else {
      mkdirSync(dirname(into), { recursive: true });
      cpSync(from, into);
    }
  };
  const path = posix.normalize(source).replace(/\/$/, "");
  if (ignored(path)) throw new Error(`COPY ${source}: .dockerignore leaves it out of the build context`);
  walk(path, to);
}

function exec(t: ExecutionContext, command: string, args: string[], options: SpawnOptions & { timeoutMs?: number } = {}) {
  return new Promise<{ code: number | null; output: string; stdout: string }>((resolve) => {
    const child = spawn(command, args, { ...options, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    let stdout = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      stdout += chunk.toString();
    });
    child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => {
      output += `\n(killed after ${options.timeoutMs ?? NPM_TIMEOUT_MS} ms)`;
      child.kill("SIGKILL");
    }, options.timeoutMs ?? NPM_TIMEOUT_MS);
    child.on("error", (err) => (output += `\n${err.message}`));
    child.on("close", (code) => {
      clearTimeout(timer);
      t.log(`$ ${command} ${args.join(" ")} -> ${code}`);
      resolve({ code, output, stdout });
    });
  });
}

/** Runs npm (from PATH) and returns its stdout. */
async function npm(t: ExecutionContext, cwd: string, args: string[]) {
  const result = await exec(t, "npm", args, { cwd });
  if (result.code !== 0) throw new Error(`npm ${args.join(" ")} in ${cwd} failed (${result.code}):\n${result.output}`);
  return result.stdout;
}

/** Every package name anywhere in an `npm ls --json` tree. */
function packageNames(tree: { dependencies?: Record<string, unknown> }): Set<string> {
  const names = new Set<string>();
  const walk = (node: { dependencies?: Record<string, unknown> }) => {
    for (const [name, child] of Object.entries(node.dependencies ?? {})) {
      names.add(name);
      walk(child as { dependencies?: Record<string, unknown> });
    }
  };
  walk(tree);
  return names;
}

test("production install: the Dockerfile's steps give a runtime with the daemon's dependencies only, which starts and serves a lock", async (t) => {
  t.timeout(4 * NPM_TIMEOUT_MS); // three npm installs from the registry, and a build
  const work = mkdtempSync(join(tmpdir(), "msync-image-"));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  const stages = parseDockerfile(readFileSync(join(REPO, "Dockerfile"), "utf8"));
  const ignored = dockerignore(readFileSync(join(REPO, ".dockerignore"), "utf8"));
  const build = stages.find((s) => s.name === "build")!;
  const runtime = stages.at(-1)!;
  t.truthy(build, "a stage named build");
  t.not(runtime, build, "a separate runtime stage");
  const buildDir = join(work, "build");
  const runtimeDir = join(work, "runtime");

  // The runtime image has no npm (nor npx, corepack): nothing there installs packages at run time.
  const removed = runtime.baseImageRuns.join(" ").split(" ");
  for (const path of ["/usr/local/lib/node_modules", "/usr/local/bin/npm", "/usr/local/bin/npx", "/usr/local/bin/corepack"]) {
    t.true(removed.includes(path), `the runtime stage removes ${path}`);
  }
  // OCI labels, the version being the package's.
  const version = (JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { version: string }).version;
  t.like(runtime.labels, {
    "org.opencontainers.image.title": "metaparticle-sync",
    "org.opencontainers.image.version": version,
    "org.opencontainers.image.licenses": "Apache-2.0",
    "org.opencontainers.image.source": "https://github.com/metaparticle-io/metaparticle-sync",
  });
  t.truthy(runtime.labels["org.opencontainers.image.description"]);
  // One npm ci: the build stage prunes its devDependencies instead of installing again.
  const npmCi = stages.flatMap((s) => s.steps).filter((step) => "run" in step && /^npm ci\b/.test(step.run));
  t.is(npmCi.length, 1, "npm ci runs once");

  // What .dockerignore leaves in the context.
  for (const path of ["daemon/main.ts", "clients/typescript/src/cli.ts", "examples/typescript/lock-job.ts", "package-lock.json"]) {
    t.false(ignored(path), `${path} is in the context`);
  }
  for (const path of [
    "test/grpc/cli.test.ts",
    "clients/typescript/dist/cli.js",
    "clients/typescript/node_modules/x",
    "dist/daemon/main.js",
    "clients/go/go.mod",
    ".git/config",
  ]) {
    t.true(ignored(path), `${path} is left out of the context`);
  }

  // Each stage's COPY and RUN lines, in order. RUN lines are npm or node commands, run with this machine's npm and this Node.
  const replay = async (stage: Stage, dir: string) => {
    mkdirSync(dir, { recursive: true });
    for (const step of stage.steps) {
      if ("run" in step) {
        const [command, ...args] = step.run.split(/\s+/);
        if (command === "npm") await npm(t, dir, args);
        else if (command === "node") {
          const result = await exec(t, process.execPath, args, { cwd: dir, timeoutMs: 180_000 });
          t.is(result.code, 0, `RUN ${step.run}:\n${result.output}`);
        } else throw new Error(`the test cannot run "RUN ${step.run}"; teach it`);
        continue;
      }
      const { from, sources, dest } = step.copy;
      for (const source of sources) {
        if (from === undefined) {
          copyFromContext(REPO, source, target(dir, dest, source, statSync(join(REPO, source)).isDirectory()), ignored);
        } else {
          t.is(from, "build", `COPY --from=${from}`);
          const origin = join(buildDir, posix.relative(build.workdir, source));
          const to = target(dir, dest, source, statSync(origin).isDirectory());
          mkdirSync(dirname(to), { recursive: true });
          cpSync(origin, to, { recursive: true, verbatimSymlinks: true });
        }
      }
    }
  };
  await replay(build, buildDir);
  t.true(existsSync(join(buildDir, "dist", "daemon", "main.js")), "the build stage compiled the daemon");
  t.true(existsSync(join(buildDir, "dist", "lean", "main.mjs")), "and bundled it into the lean build");
  t.true(existsSync(join(buildDir, "clients", "typescript", "dist", "cli.js")), "and the client");
  await replay(runtime, runtimeDir);

  const modules = join(runtimeDir, "node_modules");
  t.true(existsSync(join(modules, "@kubernetes", "client-node", "package.json")), "the daemon's Kubernetes client is installed");
  for (const dev of ["typescript", "ava", "node", "@bufbuild/buf", "prettier", "ts-proto"]) {
    t.false(existsSync(join(modules, dev)), `devDependency ${dev} is not installed`);
  }
  const tree = JSON.parse(await npm(t, runtimeDir, ["ls", "--omit=dev", "--all", "--json"])) as { dependencies?: Record<string, unknown> };
  t.true(packageNames(tree).has("@kubernetes/client-node"));
  // The lean build stands alone: copied away from node_modules, it starts on the
  // Kubernetes backend, which loads the store's chunk and reads the kubeconfig
  // (the API server it names is closed, so the daemon stays NOT_SERVING).
  const alone = join(work, "lean-alone");
  cpSync(join(runtimeDir, "dist", "lean"), alone, { recursive: true });
  const kubeconfig = join(work, "kubeconfig.yaml");
  writeFileSync(
    kubeconfig,
    [
      "apiVersion: v1",
      "kind: Config",
      "clusters: [{name: closed, cluster: {server: 'https://127.0.0.1:1', insecure-skip-tls-verify: true}}]",
      "users: [{name: nobody, user: {token: not-a-token}}]",
      "contexts: [{name: closed, context: {cluster: closed, user: nobody, namespace: lean}}]",
      "current-context: closed",
    ].join("\n"),
  );
  const kubeDaemon = spawn(process.execPath, ["main.mjs", "--listen=127.0.0.1:0", "--backend=kubernetes", `--kubeconfig=${kubeconfig}`], {
    cwd: alone,
    env: { PATH: process.env.PATH, HOME: process.env.HOME },
    stdio: ["ignore", "ignore", "pipe"],
  });
  t.teardown(() => void kubeDaemon.kill("SIGKILL"));
  const selected = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const lines: string[] = [];
    const timer = setTimeout(() => reject(new Error(`no "lease store selected" within 60 s:\n${lines.join("\n")}`)), 60_000);
    kubeDaemon.on("exit", (code) => reject(new Error(`the lean daemon exited (${code}):\n${lines.join("\n")}`)));
    createInterface({ input: kubeDaemon.stderr! }).on("line", (line) => {
      lines.push(line);
      const entry = JSON.parse(line) as Record<string, unknown>;
      if (entry.msg === "lease store selected") {
        clearTimeout(timer);
        resolve(entry);
      }
    });
  });
  t.is(selected.store, "Kubernetes Leases in namespace lean at https://127.0.0.1:1");
  kubeDaemon.kill("SIGKILL");

  // The ENTRYPOINT, with the image's environment: --help shows the loopback default; then it serves.
  // (V8 flags first: the image trades some CPU for memory under load, bench/REPORT.md.)
  t.deepEqual(runtime.entrypoint, ["node", "--optimize-for-size", "--max-semi-space-size=1", "dist/lean/main.mjs"]);
  const [, ...nodeArgs] = runtime.entrypoint!;
  const main = nodeArgs.pop();
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, ...runtime.env };
  const help = await exec(t, process.execPath, [...nodeArgs, main!, "--help"], { cwd: runtimeDir, env, timeoutMs: 60_000 });
  t.is(help.code, 0, help.output);
  t.regex(help.output, /--listen=VALUE.*\n.*default 127\.0\.0\.1:13131/);
  const daemon = spawn(process.execPath, [...nodeArgs, main!, "--listen=127.0.0.1:0", "--backend=memory"], {
    cwd: runtimeDir,
    env,
    stdio: ["ignore", "ignore", "pipe"],
  });
  t.teardown(() => void daemon.kill("SIGKILL"));
  const logs: string[] = [];
  const address = await new Promise<string>((resolve, reject) => {
    let listening = "";
    const timer = setTimeout(() => reject(new Error(`the daemon was not ready within 60 s:\n${logs.join("\n")}`)), 60_000);
    daemon.on("exit", (code) => reject(new Error(`the daemon exited (${code}):\n${logs.join("\n")}`)));
    createInterface({ input: daemon.stderr! }).on("line", (line) => {
      logs.push(line);
      const entry = JSON.parse(line) as { msg: string; address?: string };
      if (entry.msg === "gRPC server listening") listening = entry.address!;
      if (entry.msg.startsWith("ready")) {
        clearTimeout(timer);
        resolve(listening);
      }
    });
  });
  const client = new SyncClient({ address });
  t.teardown(() => client.close());
  const lock = await client.lock("production", { holder: "production-install-test" });
  t.is(lock.token, 1);
  await lock.release();

  // The TypeScript client alone: packed from the build, installed into an empty project.
  const packDir = join(work, "pack");
  mkdirSync(packDir);
  await npm(t, buildDir, ["pack", "--workspace=clients/typescript", "--ignore-scripts", `--pack-destination=${packDir}`]);
  const [tarball] = readdirSync(packDir).filter((f) => f.endsWith(".tgz"));
  t.truthy(tarball, "npm pack wrote a tarball");
  const app = join(work, "app");
  mkdirSync(app);
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", version: "1.0.0", private: true, type: "module" }));
  await npm(t, app, ["install", "--omit=dev", "--ignore-scripts", ...NPM_FLAGS, join(packDir, tarball!)]);
  const clientTree = JSON.parse(await npm(t, app, ["ls", "--omit=dev", "--all", "--json"])) as { dependencies?: Record<string, unknown> };
  const names = packageNames(clientTree);
  t.log(`the client installs: ${[...names].sort().join(", ")}`);
  t.true(names.has("metaparticle-sync-client"));
  t.true(names.has("@grpc/grpc-js"));
  for (const daemonOnly of ["@kubernetes/client-node", "pino", "grpc-health-check", "@grpc/reflection"]) {
    t.false(names.has(daemonOnly), `the client does not depend on ${daemonOnly}`);
  }
  t.false(existsSync(join(app, "node_modules", "@kubernetes")));
  // The fencing helpers (design 3.12) come with the client and force no database driver on it.
  t.false(names.has("pg"), "the client does not depend on pg");
  const stamped = await exec(
    t,
    process.execPath,
    [
      "--input-type=module",
      "-e",
      `import { stampFence } from "metaparticle-sync-client"; console.log(JSON.stringify(stampFence({}, "production", 3)))`,
    ],
    { cwd: app, timeoutMs: 60_000 },
  );
  t.is(stamped.code, 0, stamped.output);
  t.is(stamped.output.trim(), JSON.stringify({ metadata: { annotations: { "fence.sync.metaparticle.io/production": "3" } } }));

  // Its `metaparticle-sync` bin runs through its shebang (with this Node first on PATH) and takes the next token.
  const bin = join(app, "node_modules", ".bin", "metaparticle-sync");
  const locked = await exec(
    t,
    bin,
    ["lock", "production", "--", process.execPath, "-e", "console.log('token ' + process.env.MSYNC_FENCING_TOKEN)"],
    {
      env: { PATH: `${dirname(process.execPath)}:${process.env.PATH}`, HOME: process.env.HOME, MSYNC_ADDRESS: address },
      timeoutMs: 60_000,
    },
  );
  t.is(locked.code, 0, locked.output);
  t.is(locked.output.trim(), "token 2");

  daemon.kill("SIGTERM");
  const code = await new Promise<number | null>((resolve) => daemon.once("exit", (exitCode) => resolve(exitCode)));
  t.is(code, 0, "graceful exit on SIGTERM");
});
