// A real PostgreSQL server for tests: initdb into a temporary folder and
// postgres listening only on a Unix socket in that folder (listen_addresses
// empty, no TCP). PostgreSQL refuses to run as root, so when the tests run as
// root (CI does) the server runs as the unprivileged `nobody` (setpriv), and
// the folder is handed to it; otherwise as the current user. The binaries are
// Debian's (scripts/install-toolchains.sh installs the `postgresql` package
// when they are missing). The server dies with the test process (setpriv
// --pdeathsig) and stop() removes the folder.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** The unprivileged account PostgreSQL runs as when the tests run as root. */
const NOBODY = 65534;

export interface Postgres {
  /** The folder holding the Unix socket: node-postgres' and libpq's `host`. */
  readonly socketDir: string;
  readonly port: number;
  /** The superuser role initdb made (trust authentication on the socket). */
  readonly user: string;
  readonly database: string;
  /** A libpq keyword/value connection string, e.g. for Go's pgx or psql. */
  readonly dsn: string;
  /** Runs SQL text through psql (ON_ERROR_STOP), e.g. to load a file's contents. */
  psql(sql: string): Promise<string>;
  /** SIGTERM (smart shutdown), SIGKILL after 10 s, then removes the folder. Safe to call twice. */
  stop(): Promise<void>;
}

/** The folder of Debian's PostgreSQL binaries, newest major version first; env POSTGRES_BIN_DIR overrides. */
export function postgresBinDir(): string {
  const fromEnv = process.env.POSTGRES_BIN_DIR;
  if (fromEnv) return fromEnv;
  const root = "/usr/lib/postgresql";
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(join(root, v, "bin", "postgres")))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions.length === 0)
    throw new Error(`no PostgreSQL under ${root}: run scripts/install-toolchains.sh (it installs Debian's postgresql)`);
  return join(root, versions[0]!, "bin");
}

function asServerUser(command: string, args: string[]): [string, string[]] {
  const dropRoot = process.getuid?.() === 0 ? [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups"] : [];
  return ["setpriv", ["--pdeathsig", "SIGKILL", ...dropRoot, "--", command, ...args]];
}

const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of live) child.kill("SIGKILL");
});

export async function startPostgres(options: { timeoutMs?: number } = {}): Promise<Postgres> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const bin = postgresBinDir();
  const dir = mkdtempSync(join(tmpdir(), "msync-postgres-"));
  if (process.getuid?.() === 0) chownSync(dir, NOBODY, NOBODY);
  const data = join(dir, "data");
  const port = 5432; // only names the socket file (.s.PGSQL.5432) in our own folder
  const user = "postgres";
  let child: ChildProcess | undefined;
  const stop = async () => {
    if (child !== undefined && child.exitCode === null && child.signalCode === null) {
      const exited = once(child, "exit");
      child.kill("SIGTERM");
      const timer = setTimeout(() => child?.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const [initCmd, initArgs] = asServerUser(join(bin, "initdb"), [
      `--pgdata=${data}`,
      `--username=${user}`,
      "--auth=trust",
      "--encoding=UTF8",
      "--locale=C",
      "--no-sync",
    ]);
    await run(initCmd, initArgs, { timeout: timeoutMs, cwd: dir });
    const [cmd, args] = asServerUser(join(bin, "postgres"), [
      "-D",
      data,
      "-c",
      "listen_addresses=",
      "-c",
      `unix_socket_directories=${dir}`,
      "-c",
      `port=${port}`,
      "-c",
      "fsync=off",
      "-c",
      "synchronous_commit=off",
      "-c",
      "full_page_writes=off",
    ]);
    const output: string[] = [];
    child = spawn(cmd, args, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
    live.add(child);
    child.on("exit", () => live.delete(child!));
    child.stdout!.setEncoding("utf8").on("data", (d: string) => output.push(d));
    child.stderr!.setEncoding("utf8").on("data", (d: string) => output.push(d));
    // Ready once it accepts a connection on the socket: pg_isready, bounded in count and time.
    const deadline = performance.now() + timeoutMs;
    for (let attempt = 0; ; attempt++) {
      if (child.exitCode !== null) throw new Error(`postgres exited (${child.exitCode}) at start:\n${output.join("")}`);
      const ready = await run(join(bin, "pg_isready"), ["-h", dir, "-p", String(port), "-U", user, "-t", "2"], { timeout: 5000 }).then(
        () => true,
        () => false,
      );
      if (ready) break;
      if (performance.now() > deadline || attempt > 600) throw new Error(`postgres not ready within ${timeoutMs} ms:\n${output.join("")}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const database = "postgres";
    return {
      socketDir: dir,
      port,
      user,
      database,
      dsn: `host=${dir} port=${port} user=${user} dbname=${database} sslmode=disable`,
      async psql(sql: string) {
        const psqlBin = join(bin, "psql");
        const { stdout } = await new Promise<{ stdout: string }>((resolve, reject) => {
          const p = execFile(
            psqlBin,
            ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", dir, "-p", String(port), "-U", user, "-d", database, "-f", "-"],
            { timeout: 30_000 },
            (error, stdout, stderr) => (error ? reject(new Error(`psql: ${stderr || error.message}`)) : resolve({ stdout })),
          );
          p.stdin!.end(sql);
        });
        return stdout;
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** The project's SQL file, read from the repository (test code runs from dist/test/...). */
export function readRepoFile(relative: string): string {
  return readFileSync(new URL(`../../../${relative}`, import.meta.url), "utf8");
}
