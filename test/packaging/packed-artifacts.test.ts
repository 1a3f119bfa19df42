// Every package as a user gets it: packed the way each ecosystem packs
// (npm pack, a wheel and an sdist, a jar, cargo package, a module zip served
// by a Go module proxy), installed into an empty project that has nothing but
// its package registry (and that registry's local cache), and its README's
// example run against a daemon that was itself installed from its own npm
// tarball. The languages run side by side against that one daemon, each on
// its own lock names.
import anyTest, { type ExecutionContext, type TestFn } from "ava";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { type DaemonProcess, spawnDaemon } from "../support/daemon-process.js";
import { tiedCommand } from "../support/tied-process.js";

interface Context {
  work: string;
  packs: string;
  daemon: DaemonProcess;
  daemonProject: string;
  daemonTarball: string;
}
const test = anyTest as TestFn<Context>;

const REPO = fileURLToPath(new URL("../../../", import.meta.url));
const VERSION = (JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { version: string }).version;
/** Each step's bound: installs reach the registry, builds compile. */
const STEP_TIMEOUT_MS = 8 * 60_000;
const TOOLS = join(REPO, ".cache", "tools");
/** The Node that runs the tests (22, which the daemon needs) first on PATH, for npm and for bins' shebangs. */
const PATH = `${dirname(process.execPath)}:${process.env.PATH}`;
/**
 * The machine's environment (its registries may need its certificate settings), without what
 * `npm test` adds for its own scripts (npm_*), which must not steer the npm runs here.
 */
const BASE_ENV = { ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("npm_"))), PATH } as Record<
  string,
  string
>;
const NPM_FLAGS = ["--no-audit", "--no-fund", "--loglevel=error"];

interface Result {
  code: number | null;
  stdout: string;
  output: string;
}

/** Runs a command to its end, within STEP_TIMEOUT_MS; the output goes to the test's log when it fails. */
function run(
  t: ExecutionContext,
  command: string,
  args: string[],
  options: { cwd: string; env?: Record<string, string> },
): Promise<Result> {
  const [tied, tiedArgs] = tiedCommand(command, args);
  return new Promise((resolve) => {
    const child = spawn(tied, tiedArgs, { cwd: options.cwd, env: { ...BASE_ENV, ...options.env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      output += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => {
      output += `\n(killed after ${STEP_TIMEOUT_MS} ms)`;
      child.kill("SIGKILL");
    }, STEP_TIMEOUT_MS);
    child.on("error", (err) => (output += `\n${err.message}`));
    child.on("close", (code) => {
      clearTimeout(timer);
      t.log(`$ ${command} ${args.join(" ")} -> ${code}`);
      resolve({ code, stdout, output });
    });
  });
}

/** Runs a command that must succeed; returns its stdout. */
async function must(t: ExecutionContext, command: string, args: string[], options: { cwd: string; env?: Record<string, string> }) {
  const result = await run(t, command, args, options);
  if (result.code !== 0)
    throw new Error(`${command} ${args.join(" ")} (in ${options.cwd}) exited ${result.code}:\n${result.output.slice(-6000)}`);
  return result.stdout;
}

function folder(...parts: string[]): string {
  const path = join(...parts);
  mkdirSync(path, { recursive: true });
  return path;
}

function sha256(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

/** Copies part of the repository, leaving out build outputs and caches. */
function copyFromRepo(from: string, to: string) {
  cpSync(join(REPO, from), to, {
    recursive: true,
    filter: (source) => !/(^|\/)(node_modules|target|dist|build|__pycache__|\.pytest_cache|\.mypy_cache|[^/]*\.egg-info)$/.test(source),
  });
}

/** The one file in `dir` whose name ends with `suffix`. */
function onlyFile(dir: string, suffix: string): string {
  const found = readdirSync(dir).filter((name) => name.endsWith(suffix));
  if (found.length !== 1) throw new Error(`expected one *${suffix} in ${dir}, found: ${found.join(", ") || "none"}`);
  return join(dir, found[0]!);
}

test.before(async (t) => {
  const work = mkdtempSync(join(tmpdir(), "msync-packed-"));
  const packs = folder(work, "packs");
  t.context.work = work;
  t.context.packs = packs;
  // The daemon's and the TypeScript client's tarballs, from the build `npm test` made (their prepack scripts build).
  await must(t, "npm", ["pack", "--ignore-scripts", `--pack-destination=${packs}`, ...NPM_FLAGS], { cwd: REPO });
  await must(t, "npm", ["pack", "--workspace=clients/typescript", "--ignore-scripts", `--pack-destination=${packs}`, ...NPM_FLAGS], {
    cwd: REPO,
  });
  t.context.daemonTarball = join(packs, `metaparticle-sync-${VERSION}.tgz`);
  // The daemon, installed from its tarball into an empty project, started on the memory backend.
  const project = folder(work, "daemon-app");
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "daemon-app", version: "1.0.0", private: true }));
  await must(t, "npm", ["install", "--omit=dev", ...NPM_FLAGS, t.context.daemonTarball], { cwd: project });
  t.context.daemonProject = project;
  const main = join(project, "node_modules", "metaparticle-sync", "bin", "metaparticle-sync-daemon.js");
  t.context.daemon = await spawnDaemon(["--backend=memory", "--log-level=info"], {}, { main });
});

test.after.always(async (t) => {
  await t.context.daemon?.stop();
  if (t.context.work) rmSync(t.context.work, { recursive: true, force: true });
});

test("npm: the daemon's tarball holds its lean build and bin only, and its bin runs", async (t) => {
  const files = (await must(t, "tar", ["tzf", t.context.daemonTarball], { cwd: t.context.work })).trim().split("\n");
  t.true(files.includes("package/bin/metaparticle-sync-daemon.js"));
  t.true(files.includes("package/dist/lean/main.mjs"));
  t.deepEqual(
    files.filter((f) => !/^package\/(bin\/metaparticle-sync-daemon\.js|dist\/lean\/.*|package\.json|README\.md)$/.test(f)),
    [],
    "nothing but the bin, the lean build, package.json and the README",
  );
  const bin = join(t.context.daemonProject, "node_modules", ".bin", "metaparticle-sync-daemon");
  const help = await run(t, bin, ["--help"], { cwd: t.context.daemonProject });
  t.is(help.code, 0, help.output);
  t.regex(help.output, /--listen=VALUE/);
  // Its inject subcommand (a chunk of the lean build, loaded on demand).
  const manifest = join(t.context.daemonProject, "pod.yaml");
  writeFileSync(
    manifest,
    [
      "apiVersion: v1",
      "kind: Pod",
      "metadata:",
      "  name: app",
      "  annotations:",
      '    sync.metaparticle.io/inject: "true"',
      "spec:",
      "  containers:",
      "    - name: app",
      "      image: app:1",
      "",
    ].join("\n"),
  );
  const injected = await run(t, bin, ["inject", manifest], { cwd: t.context.daemonProject });
  t.is(injected.code, 0, injected.output);
  t.regex(injected.stdout, new RegExp(`name: metaparticle-sync\\n\\s+image: metaparticle-sync:${VERSION.replace(/\./g, "\\.")}`));
  t.like(
    t.context.daemon.logs.find((l) => l.msg === "gRPC server listening"),
    { msg: "gRPC server listening" },
  );
});

test("npm: the TypeScript client's tarball, its README example compiled with tsc, and its CLI", async (t) => {
  t.timeout(STEP_TIMEOUT_MS * 2);
  const tarball = join(t.context.packs, `metaparticle-sync-client-${VERSION}.tgz`);
  const files = (await must(t, "tar", ["tzf", tarball], { cwd: t.context.work })).trim().split("\n");
  for (const file of ["bin/metaparticle-sync.js", "dist/index.js", "dist/index.d.ts", "dist/cli.js"])
    t.true(files.includes(`package/${file}`), file);
  t.deepEqual(
    files.filter((f) => !/^package\/(bin\/|dist\/|src\/|package\.json$|README\.md$)/.test(f) || f.endsWith(".tsbuildinfo")),
    [],
    "the bin, the build and its sources only",
  );
  const app = folder(t.context.work, "typescript-app");
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "typescript-app", version: "1.0.0", private: true, type: "module" }));
  const types = (JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { devDependencies: Record<string, string> })
    .devDependencies["@types/node"]!;
  await must(t, "npm", ["install", ...NPM_FLAGS, tarball, `@types/node@${types}`], {
    cwd: app,
  });
  writeFileSync(
    join(app, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        target: "ES2022",
        lib: ["ES2023", "ESNext.Disposable"],
        module: "nodenext",
        moduleResolution: "nodenext",
        strict: true,
        types: ["node"],
        outDir: "out",
      },
      include: ["example.ts"],
    }),
  );
  // The README's lock example, with a lease and a read.
  writeFileSync(
    join(app, "example.ts"),
    [
      `import { SyncClient } from "metaparticle-sync-client";`,
      ``,
      `const client = new SyncClient(); // MSYNC_ADDRESS`,
      `{`,
      `  await using lock = await client.lock("packed-typescript", { waitTimeoutMs: 60_000 });`,
      `  console.log(\`token \${lock.token}\`);`,
      `}`,
      `const lease = await client.tryLock("packed-typescript-lease", { leaseDurationMs: 30_000 });`,
      `if (lease) { await lease.renew(); await lease.release(); }`,
      `const { held } = await client.getLock("packed-typescript");`,
      `console.log(\`held \${held}\`);`,
      `client.close();`,
    ].join("\n"),
  );
  // The user's own compiler, against the types the tarball ships.
  await must(t, process.execPath, [join(REPO, "node_modules", "typescript", "bin", "tsc"), "-p", "."], { cwd: app });
  const env = { MSYNC_ADDRESS: t.context.daemon.address };
  t.is((await must(t, process.execPath, ["out/example.js"], { cwd: app, env })).trim(), "token 1\nheld false");
  // The CLI, through the bin npm linked.
  const locked = await run(
    t,
    join(app, "node_modules", ".bin", "metaparticle-sync"),
    ["lock", "packed-cli", "--", process.execPath, "-e", "console.log('token ' + process.env.MSYNC_FENCING_TOKEN)"],
    { cwd: app, env },
  );
  t.is(locked.code, 0, locked.output);
  t.is(locked.stdout.trim(), "token 1");
});

test("python: the wheel and the sdist, installed into a new venv, run the README example", async (t) => {
  t.timeout(STEP_TIMEOUT_MS * 2);
  const source = folder(t.context.work, "python-src");
  for (const part of ["pyproject.toml", "README.md", "src", "gen"]) copyFromRepo(`clients/python/${part}`, join(source, part));
  const dist = folder(t.context.work, "python-dist");
  // PEP 517's hooks, as `python -m build` calls them (one process each: setuptools keeps state between
  // them), with the setuptools of the tools venv (scripts/install-toolchains.sh).
  for (const hook of ["build_sdist", "build_wheel"]) {
    await must(
      t,
      join(TOOLS, "venv", "bin", "python"),
      ["-c", `import sys; from setuptools import build_meta; build_meta.${hook}(sys.argv[1])`, dist],
      {
        cwd: source,
      },
    );
  }
  const wheel = onlyFile(dist, ".whl");
  const sdist = onlyFile(dist, ".tar.gz");
  t.is(
    readdirSync(dist).sort().join(" "),
    `metaparticle_sync_client-${VERSION}-py3-none-any.whl metaparticle_sync_client-${VERSION}.tar.gz`,
  );

  const app = folder(t.context.work, "python-app");
  await must(t, "python3", ["-m", "venv", "venv"], { cwd: app });
  const python = join(app, "venv", "bin", "python");
  const pip = [join(app, "venv", "bin", "pip"), "--disable-pip-version-check", "--quiet"] as const;
  await must(t, pip[0], [...pip.slice(1), "install", wheel], { cwd: app });
  // The sdist builds, in pip's isolated build environment, a wheel with the same files.
  const fromSdist = folder(t.context.work, "python-sdist-wheel");
  await must(t, pip[0], [...pip.slice(1), "wheel", "--no-deps", "--wheel-dir", fromSdist, sdist], { cwd: app });
  const names = async (file: string) =>
    must(t, python, ["-c", "import sys, zipfile; print('\\n'.join(sorted(zipfile.ZipFile(sys.argv[1]).namelist())))", file], { cwd: app });
  const wheelFiles = await names(wheel);
  t.is(await names(onlyFile(fromSdist, ".whl")), wheelFiles);
  t.regex(wheelFiles, /^metaparticle\/sync\/v1\/lock_service_pb2_grpc\.py$/m, "the generated stubs are in the wheel");
  t.regex(wheelFiles, /^metaparticle_sync\/py\.typed$/m);

  writeFileSync(
    join(app, "example.py"),
    [
      "import metaparticle_sync",
      "from metaparticle_sync import Client, LockTimeout, NotHeld",
      "",
      "with Client() as client:  # $MSYNC_ADDRESS",
      "    try:",
      '        with client.lock("packed-python", timeout=60) as lock:',
      '            print(f"token {lock.token}")',
      "    except LockTimeout:",
      '        print("someone else holds it")',
      '    lease = client.try_lock("packed-python-lease", lease_duration=30, timeout=2)',
      "    if lease:",
      "        try:",
      "            lease.renew(timeout=2)",
      "        except NotHeld:",
      "            pass",
      "        lease.release()",
      "    print(f\"held {client.get_lock('packed-python').held}\")",
      'print(f"from {metaparticle_sync.__file__}")',
    ].join("\n"),
  );
  // -I: only the venv's packages, nothing from the environment or the current folder's parents.
  const out = await must(t, python, ["-I", "example.py"], { cwd: app, env: { MSYNC_ADDRESS: t.context.daemon.address } });
  const [token, held, from] = out.trim().split("\n");
  t.is(token, "token 1");
  t.is(held, "held False");
  t.true(from!.startsWith(`from ${join(app, "venv", "lib")}`), from);
});

test("java: the jar built by Maven (stubs generated from proto/) resolves from a repository and runs the README example", async (t) => {
  t.timeout(STEP_TIMEOUT_MS * 2);
  // The build, in a copy laid out as the repository is (the pom reads ../../proto).
  const source = folder(t.context.work, "java-src");
  copyFromRepo("proto", join(source, "proto"));
  copyFromRepo("clients/java/pom.xml", join(source, "clients", "java", "pom.xml"));
  copyFromRepo("clients/java/src/main", join(source, "clients", "java", "src", "main"));
  const module = join(source, "clients", "java");
  await must(t, "mvn", ["-B", "-ntp", "-q", "-Dstyle.color=never", "package", "-Dmaven.test.skip=true"], { cwd: module });
  const jar = join(module, "target", `metaparticle-sync-client-${VERSION}.jar`);
  const entries = await must(t, "jar", ["tf", jar], { cwd: module });
  t.regex(entries, /^io\/metaparticle\/sync\/v1\/LockServiceGrpc\.class$/m, "the stubs, generated at build time, are in the jar");
  t.regex(entries, /^io\/metaparticle\/sync\/client\/SyncClient\.class$/m);
  t.notRegex(entries, /\.java$/m);

  // A Maven repository holding the jar and its pom, as a remote repository lays them out.
  const repository = join(t.context.work, "maven-repository");
  const coordinates = folder(repository, "io", "metaparticle", "metaparticle-sync-client", VERSION);
  cpSync(jar, join(coordinates, `metaparticle-sync-client-${VERSION}.jar`));
  cpSync(join(module, "pom.xml"), join(coordinates, `metaparticle-sync-client-${VERSION}.pom`));

  // An empty project depending on it, with a local repository of its own. Besides that repository and
  // Maven Central, it may read the user's local repository as a remote one (a cache: nothing is written there).
  const app = folder(t.context.work, "java-app");
  const userRepository = join(homedir(), ".m2", "repository");
  const cache = existsSync(userRepository) ? { id: "user-cache", url: pathToFileURL(userRepository).href } : undefined;
  const repositories = [{ id: "packed", url: pathToFileURL(repository).href }, ...(cache ? [cache] : [])];
  const repositoryXml = (tag: string) => (r: { id: string; url: string }) => `<${tag}><id>${r.id}</id><url>${r.url}</url></${tag}>`;
  writeFileSync(
    join(app, "pom.xml"),
    `<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>example</groupId>
  <artifactId>app</artifactId>
  <version>1.0.0</version>
  <properties>
    <maven.compiler.release>17</maven.compiler.release>
    <project.build.sourceEncoding>UTF-8</project.build.sourceEncoding>
  </properties>
  <repositories>${repositories.map(repositoryXml("repository")).join("")}</repositories>
  <pluginRepositories>${(cache ? [cache] : []).map(repositoryXml("pluginRepository")).join("")}</pluginRepositories>
  <dependencies>
    <dependency>
      <groupId>io.metaparticle</groupId>
      <artifactId>metaparticle-sync-client</artifactId>
      <version>${VERSION}</version>
    </dependency>
  </dependencies>
  <build>
    <pluginManagement>
      <plugins>
        <plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-compiler-plugin</artifactId><version>3.14.0</version></plugin>
        <plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-resources-plugin</artifactId><version>3.3.1</version></plugin>
      </plugins>
    </pluginManagement>
  </build>
</project>
`,
  );
  const sources = folder(app, "src", "main", "java");
  writeFileSync(
    join(sources, "Example.java"),
    `import io.metaparticle.sync.client.LeasedLock;
import io.metaparticle.sync.client.Lock;
import io.metaparticle.sync.client.SyncClient;
import java.util.Optional;

public class Example {
  public static void main(String[] args) throws Exception {
    try (SyncClient client = SyncClient.create(); // $MSYNC_ADDRESS
         Lock lock = client.lock("packed-java")) {
      lock.lost().thenAccept(loss -> System.err.println("lost: " + loss));
      System.out.println("token " + lock.token());
    }
    try (SyncClient client = SyncClient.create()) {
      Optional<LeasedLock> lease = client.tryLock("packed-java-lease");
      if (lease.isPresent()) {
        lease.get().renew();
        lease.get().close();
      }
      System.out.println("held " + client.getLock("packed-java").held());
    }
  }
}
`,
  );
  const local = join(app, "local-repository");
  const classpathFile = join(app, "classpath.txt");
  await must(
    t,
    "mvn",
    [
      "-B",
      "-ntp",
      "-q",
      "-Dstyle.color=never",
      `-Dmaven.repo.local=${local}`,
      "compile",
      "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:build-classpath",
      `-Dmdep.outputFile=${classpathFile}`,
    ],
    { cwd: app },
  );
  const classpath = readFileSync(classpathFile, "utf8").trim();
  const resolved = classpath.split(":").find((entry) => entry.endsWith(`metaparticle-sync-client-${VERSION}.jar`))!;
  t.true(resolved.startsWith(local), `resolved into the project's own local repository: ${resolved}`);
  t.is(sha256(resolved), sha256(jar), "the jar resolved is the one built");
  const out = await must(t, "java", ["-cp", `${join(app, "target", "classes")}:${classpath}`, "Example"], {
    cwd: app,
    env: { MSYNC_ADDRESS: t.context.daemon.address },
  });
  t.is(out.trim(), "token 1\nheld false");
});

test("rust: the crate from cargo package builds as a dependency and runs the README example", async (t) => {
  t.timeout(STEP_TIMEOUT_MS * 2);
  // One target folder with the rust suite: the dependencies are compiled once.
  const env = { CARGO_TARGET_DIR: join(REPO, "clients", "rust", "target"), CARGO_TERM_COLOR: "never" };
  const crates = folder(t.context.work, "crates");
  // Offline: scripts/install-toolchains.sh fetched the crates in Cargo.lock. The packaged crate is
  // built below as a dependency, which is what cargo package's own verification would do.
  await must(t, "cargo", ["package", "--offline", "--locked", "--no-verify", "--allow-dirty", "--quiet"], {
    cwd: join(REPO, "clients", "rust"),
    env,
  });
  const crate = join(env.CARGO_TARGET_DIR, "package", `metaparticle-sync-${VERSION}.crate`);
  const listing = await must(t, "tar", ["tzf", crate], { cwd: crates });
  t.regex(
    listing,
    new RegExp(`^metaparticle-sync-${VERSION}/proto/metaparticle/sync/v1/lock_service\\.proto$`, "m"),
    "the proto the build script compiles",
  );
  await must(t, "tar", ["xzf", crate], { cwd: crates });

  const app = folder(t.context.work, "rust-app");
  // The client's dev-dependency features of tokio, so that the whole graph is the one the rust suite compiled.
  writeFileSync(
    join(app, "Cargo.toml"),
    `[package]
name = "app"
version = "1.0.0"
edition = "2024"
publish = false

[dependencies]
metaparticle-sync = { version = "${VERSION}", path = "${join(crates, `metaparticle-sync-${VERSION}`)}" }
tokio = { version = "1", features = ["io-std", "io-util", "macros", "rt-multi-thread", "signal"] }
`,
  );
  // The crate's own lock file: the versions install-toolchains.sh fetched.
  cpSync(join(crates, `metaparticle-sync-${VERSION}`, "Cargo.lock"), join(app, "Cargo.lock"));
  folder(app, "src");
  writeFileSync(
    join(app, "src", "main.rs"),
    `use metaparticle_sync::{Client, Error};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = Client::new()?; // $MSYNC_ADDRESS
    let lock = client.lock("packed-rust").await?;
    tokio::select! {
        loss = lock.lost() => return Err(format!("lost the lock: {loss}").into()), // the sidecar said so, or its heartbeats stopped
        () = work(lock.token()) => {}
    }
    lock.release().await?;
    match client.try_lock("packed-rust-lease").await {
        Ok(lease) => {
            lease.renew(None).await?;
            lease.release().await?;
        }
        Err(Error::NotFree { .. }) => {}
        Err(err) => return Err(err.into()),
    }
    Ok(())
}

async fn work(fencing_token: i64) {
    println!("token {fencing_token}");
}
`,
  );
  const out = await must(t, "cargo", ["run", "--offline", "--quiet"], {
    cwd: app,
    env: { ...env, MSYNC_ADDRESS: t.context.daemon.address },
  });
  t.is(out.trim(), "token 1");
});

test("go: the module, served as a module proxy serves it, is fetched with go get and runs the README example", async (t) => {
  t.timeout(STEP_TIMEOUT_MS * 2);
  const modulePath = "github.com/metaparticle-io/metaparticle-sync/clients/go";
  const proxy = folder(t.context.work, "goproxy");
  const tool = join(t.context.work, "gomodzip");
  await must(t, "go", ["build", "-o", tool, "."], { cwd: join(REPO, "test", "packaging", "gomodzip") });
  await must(t, tool, ["-dir", join(REPO, "clients", "go"), "-version", `v${VERSION}`, "-out", proxy], { cwd: t.context.work });

  const app = folder(t.context.work, "go-app");
  const modCache = (await must(t, "go", ["env", "GOMODCACHE"], { cwd: app })).trim();
  const upstream = (await must(t, "go", ["env", "GOPROXY"], { cwd: app })).trim();
  const env = {
    // This module from the proxy folder; its dependencies from the module cache's download folder (itself
    // laid out as a proxy), else from the usual proxy. A module cache of the test's own, so that the module
    // is really fetched, and the build cache shared.
    GOPROXY: [pathToFileURL(proxy).href, pathToFileURL(join(modCache, "cache", "download")).href, upstream].join(","),
    GOMODCACHE: join(t.context.work, "gomodcache"),
    GOFLAGS: "-modcacherw",
    // Not in the checksum database: it is not published. Its dependencies' sums come from the client's go.sum.
    GONOSUMDB: "github.com/metaparticle-io",
    GOCACHE: (await must(t, "go", ["env", "GOCACHE"], { cwd: app })).trim(),
    MSYNC_ADDRESS: t.context.daemon.address,
  };
  writeFileSync(join(app, "go.mod"), "module example.com/app\n\ngo 1.24.0\n");
  cpSync(join(REPO, "clients", "go", "go.sum"), join(app, "go.sum"));
  writeFileSync(
    join(app, "main.go"),
    `package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"${modulePath}/msync"
)

func main() {
	if err := run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context) error {
	c, err := msync.New() // $MSYNC_ADDRESS
	if err != nil {
		return err
	}
	defer c.Close()
	lock, err := c.Lock(ctx, "packed-go", msync.WithWaitTimeout(time.Minute))
	if err != nil {
		return err
	}
	select {
	case <-lock.Lost():
		return lock.Err()
	default:
		fmt.Printf("token %d\\n", lock.Token)
	}
	if err := lock.Unlock(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	lease, err := c.TryLock(ctx, "packed-go-lease", msync.WithLeaseDuration(30*time.Second))
	if errors.Is(err, msync.ErrNotFree) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := lease.Renew(ctx); err != nil {
		return err
	}
	return lease.Release(ctx)
}
`,
  );
  await must(t, "go", ["get", `${modulePath}@v${VERSION}`], { cwd: app, env });
  await must(t, "go", ["mod", "tidy"], { cwd: app, env });
  const listed = JSON.parse(await must(t, "go", ["list", "-m", "-json", modulePath], { cwd: app, env })) as {
    Version: string;
    Dir: string;
  };
  t.is(listed.Version, `v${VERSION}`);
  t.true(listed.Dir.startsWith(env.GOMODCACHE), `fetched into the test's module cache: ${listed.Dir}`);
  await must(t, "go", ["build", "-o", "app", "."], { cwd: app, env });
  t.is((await must(t, join(app, "app"), [], { cwd: app, env })).trim(), "token 1");
});
