// The test suites `npm test` runs, in order, and how each one's results are
// counted from its output.
import { fileURLToPath } from "node:url";

export interface Counts {
  passed: number;
  failed: number;
  skipped: number;
}

export interface Suite {
  readonly name: string;
  /** Run first, e.g. to build what the suite needs; if it fails, the suite counts as failed. */
  readonly prepare?: readonly string[];
  readonly command: readonly string[];
  readonly cwd?: string;
  readonly env?: Record<string, string>;
  readonly count: (output: string) => Counts;
}

const root = fileURLToPath(new URL("../..", import.meta.url));

/**
 * Every suite can start a real daemon: `$MSYNC_NODE $MSYNC_DAEMON_MAIN
 * --listen=127.0.0.1:0 --backend=memory`, which logs JSON lines on stderr,
 * among them {"msg":"gRPC server listening","address":"127.0.0.1:PORT"} and
 * then {"msg":"ready: ..."} once it serves.
 */
export const DAEMON_ENV = {
  MSYNC_NODE: process.execPath,
  MSYNC_DAEMON_MAIN: fileURLToPath(new URL("../daemon/main.js", import.meta.url)),
};
const ava = fileURLToPath(new URL("../../node_modules/ava/entrypoints/cli.mjs", import.meta.url));

/** Counts from ava's TAP reporter: "# pass N", "# fail N", "# skip N". */
export function countTap(output: string): Counts {
  const count = (label: string) => sum(output, new RegExp(`^# ${label} (\\d+)$`, "gm"));
  return { passed: count("pass"), failed: count("fail"), skipped: count("skip") + count("todo") };
}

function sum(output: string, pattern: RegExp): number {
  let total = 0;
  for (const match of output.matchAll(pattern)) total += Number(match[1]);
  return total;
}

/** An ava suite over the compiled test files in one folder of dist/test. */
function avaSuite(
  name: string,
  folder: string,
  options: {
    /** Every test one at a time (tests of one file, and the files). */
    serial?: boolean;
    /** The files one at a time, each file's tests as it declares them (the conformance file limits its own). */
    fileByFile?: boolean;
    prepare?: string[];
    env?: Record<string, string>;
  } = {},
): Suite {
  const { serial = false, fileByFile = false, prepare, env = {} } = options;
  return {
    name,
    prepare,
    command: [
      process.execPath,
      ava,
      "--tap",
      ...(serial ? ["--serial"] : []),
      ...(serial || fileByFile ? ["--concurrency=1", "--timeout=5m"] : []),
      `dist/test/${folder}/**/*.test.js`,
    ],
    cwd: root,
    env: { ...DAEMON_ENV, ...env },
    count: countTap,
  };
}

/** Counts go test -v: one "--- PASS/FAIL/SKIP: Name" line per test and subtest. */
export function countGoTest(output: string): Counts {
  const count = (word: string) => [...output.matchAll(new RegExp(`^\\s*--- ${word}: `, "gm"))].length;
  return { passed: count("PASS"), failed: count("FAIL"), skipped: count("SKIP") };
}

/**
 * Counts cargo test: one "test result: ok. P passed; F failed; I ignored; ..."
 * line per test binary (the library's unit tests, each file in tests/, the
 * doc tests).
 */
export function countCargoTest(output: string): Counts {
  const counts: Counts = { passed: 0, failed: 0, skipped: 0 };
  for (const m of output.matchAll(/^test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored;/gm)) {
    counts.passed += Number(m[1]);
    counts.failed += Number(m[2]);
    counts.skipped += Number(m[3]);
  }
  return counts;
}

/** Counts from pytest's closing line, e.g. "==== 1 failed, 5 passed, 1 skipped in 3.1s ====". */
export function countPytest(output: string): Counts {
  const summary = output.match(/^=+ (.*) in [\d.]+s(?: \([^)]*\))? =+$/gm)?.at(-1) ?? "";
  const count = (...words: string[]) => sum(summary, new RegExp(`(\\d+) (?:${words.join("|")})\\b`, "g"));
  return { passed: count("passed", "xpassed"), failed: count("failed", "errors?"), skipped: count("skipped", "xfailed") };
}

/**
 * Counts from Maven Surefire's totals, "Tests run: X, Failures: Y, Errors: Z,
 * Skipped: W" alone at the end of a line (the per-class lines go on with the
 * time elapsed).
 */
export function countSurefire(output: string): Counts {
  const counts: Counts = { passed: 0, failed: 0, skipped: 0 };
  for (const m of output.matchAll(/Tests run: (\d+), Failures: (\d+), Errors: (\d+), Skipped: (\d+)$/gm)) {
    const [run, failures, errors, skipped] = m.slice(1).map(Number) as [number, number, number, number];
    counts.passed += run - failures - errors - skipped;
    counts.failed += failures + errors;
    counts.skipped += skipped;
  }
  return counts;
}

/**
 * The other languages' clients, each in its own runner against a real daemon,
 * and the cross-language test; scripts/install-toolchains.sh installs what
 * they need.
 */
/** Installs what the other languages' suites need (idempotent: about a second once done). */
const toolchains = ["bash", `${root}scripts/install-toolchains.sh`];

const languageSuites: Suite[] = [
  {
    name: "go",
    prepare: toolchains,
    command: ["go", "test", "-count=1", "-v", "./..."],
    cwd: `${root}clients/go`,
    env: DAEMON_ENV,
    count: countGoTest,
  },
  {
    name: "python",
    prepare: toolchains,
    command: [`${root}.cache/tools/venv/bin/python`, "-m", "pytest", "-v"],
    cwd: `${root}clients/python`,
    env: DAEMON_ENV,
    count: countPytest,
  },
  {
    name: "java",
    prepare: toolchains,
    command: ["mvn", "-B", "-ntp", "test"],
    cwd: `${root}clients/java`,
    env: DAEMON_ENV,
    count: countSurefire,
  },
  {
    name: "rust",
    prepare: toolchains,
    // Offline: install-toolchains.sh fetched the crates in Cargo.lock.
    command: ["cargo", "test", "--offline", "--locked"],
    cwd: `${root}clients/rust`,
    env: { ...DAEMON_ENV, CARGO_TERM_COLOR: "never" },
    count: countCargoTest,
  },
  {
    name: "crosslang",
    prepare: toolchains,
    // Its one test builds the Go and Java contenders first, longer than ava's default 2 minutes allows.
    command: [process.execPath, ava, "--tap", "--timeout=10m", "dist/test/crosslang/**/*.test.js"],
    cwd: root,
    env: DAEMON_ENV,
    count: countTap,
  },
];

export const SUITES: readonly Suite[] = [
  avaSuite("unit", "unit"),
  // The deterministic simulator: a fixed budget of seeds (test/sim/README.md); a failure prints its seed and replay command.
  avaSuite("sim", "sim", { serial: true }),
  // Each engine defect of issue 11, re-created by a patch, must make the test named for it fail.
  { name: "mutants", command: [process.execPath, "dist/test/mutants/run.js"], cwd: root, count: countTap },
  avaSuite("grpc", "grpc", { prepare: ["bash", "scripts/install-grpcurl.sh"] }),
  // Against a real kube-apiserver and etcd, built from their Go modules on first use (cached under .cache/).
  avaSuite("kube", "kube", { serial: true, prepare: ["bash", "test/controlplane/build.sh"] }),
  // Fencing where the write lands: the admission policy in the same control plane, and a real PostgreSQL (install-toolchains.sh).
  avaSuite("fencing", "fencing", {
    serial: true,
    prepare: ["bash", "-c", "bash scripts/install-toolchains.sh && bash test/controlplane/build.sh"],
  }),
  ...languageSuites,
  // Every package packed and installed as a user gets it (after the language suites, whose caches and
  // Rust target folder it reuses), one version across them all, and the Helm chart: helm (built from its
  // Go module) lints and renders it, and the real API server dry-runs what it renders.
  avaSuite("packaging", "packaging", {
    prepare: ["bash", "-c", "bash scripts/install-toolchains.sh && bash scripts/install-helm.sh && bash test/controlplane/build.sh"],
  }),
  // Every client through its driver against real daemons: one result per scenario and language (test/conformance/PROTOCOL.md).
  avaSuite("conformance", "conformance", {
    fileByFile: true,
    prepare: ["bash", "-c", "bash scripts/install-toolchains.sh && bash test/controlplane/build.sh"],
  }),
  // Each client mutant (test/mutants/clients) breaks one guarantee of one wrapper; the conformance scenario it names must fail.
  {
    name: "client-mutants",
    prepare: ["bash", "-c", "bash scripts/install-toolchains.sh && bash test/controlplane/build.sh"],
    command: [process.execPath, "dist/test/mutants/clients.js"],
    cwd: root,
    count: countTap,
  },
  // The bounded CI subset of the fault matrix (the full matrix is `npm run faults`), against the same control plane.
  avaSuite("faults", "faults", { serial: true, prepare: ["bash", "test/controlplane/build.sh"] }),
];
