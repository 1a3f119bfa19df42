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
  options: { serial?: boolean; prepare?: string[]; env?: Record<string, string> } = {},
): Suite {
  const { serial = false, prepare, env = {} } = options;
  return {
    name,
    prepare,
    command: [
      process.execPath,
      ava,
      "--tap",
      ...(serial ? ["--serial", "--concurrency=1", "--timeout=5m"] : []),
      `dist/test/${folder}/**/*.test.js`,
    ],
    cwd: root,
    env: { ...DAEMON_ENV, ...env },
    count: countTap,
  };
}

export const SUITES: readonly Suite[] = [
  avaSuite("unit", "unit"),
  avaSuite("grpc", "grpc"),
  // Against a real kube-apiserver and etcd, built from their Go modules on first use (cached under .cache/).
  avaSuite("kube", "kube", { serial: true, prepare: ["bash", "test/controlplane/build.sh"] }),
];
