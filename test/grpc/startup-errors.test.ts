// Start-up errors name the setting or the file at fault, in one line: a busy
// port (with no grpc-js line before it), a kubeconfig that does not parse or
// has no usable cluster (with its path and whether it came from --kubeconfig
// or KUBECONFIG), a malformed --listen. Each stops the daemon with status 2.
import test from "ava";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DAEMON_MAIN } from "../support/daemon-process.js";

const dir = mkdtempSync(join(tmpdir(), "msync-startup-"));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the daemon (which must fail to start); answers its exit code and the stderr lines that are not JSON log lines. */
function start(
  main: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; lines: string[]; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [main, ...args],
      { timeout: 30_000, env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env } },
      (err, _stdout, stderr) => {
        const lines = stderr.split("\n").filter((line) => line !== "" && !line.startsWith("{"));
        resolve({ code: err === null ? 0 : ((err as { code?: number }).code ?? null), lines, stderr });
      },
    );
  });
}

async function busyPort(t: { teardown(fn: () => void): void }): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.teardown(() => server.close());
  return (server.address() as { port: number }).port;
}

{
  // dist/daemon/main.js: the same main.ts as dist/lean (what npm start runs), which another test of this suite rebuilds meanwhile.
  const main = DAEMON_MAIN;
  test(`a busy port is one line naming the setting, with no grpc-js line before it`, async (t) => {
    const port = await busyPort(t);
    const grpc = await start(main, [`--listen=127.0.0.1:${port}`, "--backend=memory"]);
    t.is(grpc.code, 2, grpc.stderr);
    t.deepEqual(grpc.lines, [`metaparticle-sync: bad setting --listen: cannot listen on 127.0.0.1:${port}: the address is already in use`]);
    t.false(grpc.stderr.includes("No address added"), grpc.stderr);
    const health = await start(main, ["--listen=127.0.0.1:0", `--health-listen=127.0.0.1:${port}`, "--backend=memory"]);
    t.is(health.code, 2, health.stderr);
    t.deepEqual(health.lines, [
      `metaparticle-sync: bad setting --health-listen: cannot listen on 127.0.0.1:${port}: the address is already in use`,
    ]);
    const metrics = await start(main, ["--listen=127.0.0.1:0", `--metrics-listen=127.0.0.1:${port}`, "--backend=memory"]);
    t.is(metrics.code, 2, metrics.stderr);
    t.deepEqual(metrics.lines, [
      `metaparticle-sync: bad setting --metrics-listen: cannot listen on 127.0.0.1:${port}: the address is already in use`,
    ]);
  });
}

test("a bad kubeconfig is named by its path and by the setting that gave it", async (t) => {
  const file = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };
  const indentation = file("indentation", "apiVersion: v1\nclusters:\n- cluster:\n  server: https://127.0.0.1:1\n   bad: x\n");
  const nameless = file("nameless", "apiVersion: v1\nclusters:\n- cluster:\n    server: https://127.0.0.1:1\n");
  const empty = file("empty", "apiVersion: v1\nkind: Config\n");
  const dangling = file(
    "dangling",
    "apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts:\n- name: c\n  context: {cluster: gone, user: u}\nusers:\n- name: u\n  user: {token: t}\n",
  );
  const cases: Array<[string[], Record<string, string>, RegExp]> = [
    [
      [`--kubeconfig=${indentation}`],
      {},
      new RegExp(`^metaparticle-sync: bad setting --kubeconfig: ${indentation} is not a usable kubeconfig: \\S`),
    ],
    [
      [],
      { KUBECONFIG: nameless },
      new RegExp(`^metaparticle-sync: bad setting KUBECONFIG: ${nameless} is not a usable kubeconfig: .*name`),
    ],
    [
      [`--kubeconfig=${empty}`],
      {},
      new RegExp(
        `^metaparticle-sync: bad setting --kubeconfig: ${empty} has no current-context \\(kubectl config use-context NAME sets one\\)$`,
      ),
    ],
    [
      [],
      { KUBECONFIG: dangling },
      new RegExp(
        `^metaparticle-sync: bad setting KUBECONFIG: ${dangling}: context "c" names cluster "gone", which is not among its clusters$`,
      ),
    ],
  ];
  for (const [args, env, line] of cases) {
    const { code, lines, stderr } = await start(DAEMON_MAIN, ["--listen=127.0.0.1:0", "--backend=kubernetes", ...args], env);
    t.is(code, 2, stderr);
    t.is(lines.length, 1, stderr);
    t.regex(lines[0] ?? "", line);
  }
});

test("a malformed --listen names the flag", async (t) => {
  const { code, lines } = await start(DAEMON_MAIN, ["--listen=localhost", "--backend=memory"]);
  t.is(code, 2);
  t.deepEqual(lines, ['metaparticle-sync: bad setting --listen: must be host:port, got "localhost"']);
});
