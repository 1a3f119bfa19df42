// docs/design.md 3.1 and 3.2 across languages: a Go, a Python, a Java and a
// TypeScript client process contend for one lock through one daemon, 200
// rounds in all. Each records its fencing token and hold interval on
// CLOCK_MONOTONIC; no two holds may overlap, and tokens must grow strictly
// in acquisition order.
import test from "ava";
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { spawnDaemon } from "../support/daemon-process.js";
import { check, parseHolds } from "./check.js";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const source = join(root, "test/crosslang");
const ROUNDS_PER_CLIENT = 50;
const LOCK = "crosslang";

/** Builds what the contenders need and returns each one's command line. */
function contenders(scratch: string): Record<string, string[]> {
  const goBinary = join(scratch, "go-contender");
  execFileSync("go", ["build", "-o", goBinary, "."], { cwd: join(source, "go"), stdio: "inherit" });
  const javaClient = join(root, "clients/java");
  const classpathFile = join(scratch, "java-classpath.txt");
  execFileSync(
    "mvn",
    ["-B", "-q", "-ntp", "compile", "dependency:build-classpath", "-Dmdep.includeScope=runtime", `-Dmdep.outputFile=${classpathFile}`],
    { cwd: javaClient, stdio: "inherit" },
  );
  const classpath = `${join(javaClient, "target/classes")}:${readFileSync(classpathFile, "utf8").trim()}`;
  return {
    go: [goBinary],
    python: [join(root, ".cache/tools/venv/bin/python"), join(source, "python/contender.py")],
    java: ["java", "-cp", classpath, join(source, "java/Contender.java")],
    typescript: [process.execPath, fileURLToPath(new URL("./contender.js", import.meta.url))],
  };
}

interface Contender {
  readonly child: ChildProcess;
  readonly ready: Promise<void>;
  readonly output: Promise<string>;
}

function start(name: string, command: string[], address: string): Contender {
  const child = spawn(command[0]!, [...command.slice(1), address, LOCK, String(ROUNDS_PER_CLIENT)], {
    env: { ...process.env, PYTHONPATH: [join(root, "clients/python/src"), join(root, "clients/python/gen")].join(":") },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const lines = createInterface({ input: child.stdout! });
  const linesRead = new Promise<void>((resolve) => lines.on("close", resolve));
  // "close", unlike "exit", comes after the output streams have ended.
  const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
  const ready = new Promise<void>((resolve, reject) => {
    lines.on("line", (line) => {
      if (line === "ready") resolve();
      else stdout += `${line}\n`;
    });
    void exited.then((code) => reject(new Error(`${name} contender exited (${code}) before it was ready:\n${stderr}`)));
  });
  const output = Promise.all([exited, linesRead]).then(([code]) => {
    if (code !== 0) throw new Error(`${name} contender exited with ${code}:\n${stderr}`);
    return stdout;
  });
  return { child, ready, output };
}

test("four languages contend for one lock: holds never overlap and tokens grow", async (t) => {
  t.timeout(8 * 60_000, "building the Go and Java contenders and 200 rounds");
  const scratch = mkdtempSync(join(tmpdir(), "msync-crosslang-"));
  t.teardown(() => rmSync(scratch, { recursive: true, force: true }));
  const commands = contenders(scratch);

  const daemon = await spawnDaemon(["--backend=memory", "--lease-duration=2s", "--renew-deadline=1s"]);
  const running = Object.entries(commands).map(([name, command]) => start(name, command, daemon.address));
  // Last teardown registered runs first: contenders go before the daemon.
  t.teardown(() => daemon.stop());
  t.teardown(() => running.forEach(({ child }) => child.kill("SIGKILL")));

  // Start together, so every language contends from the first round.
  await Promise.all(running.map((c) => c.ready));
  for (const { child } of running) child.stdin!.end("go\n");
  const outputs = await Promise.all(running.map((c) => c.output));

  const verdict = check(outputs.flatMap(parseHolds));
  const clients = Object.entries(verdict.perClient)
    .map(([client, n]) => `${client} ${n}`)
    .join(", ");
  t.log(`rounds: ${verdict.rounds} (${clients})`);
  t.log(`tokens: first ${verdict.firstToken}, last ${verdict.lastToken}`);
  t.log(`handovers between languages: ${verdict.handoversBetweenClients}`);
  t.log(`overlaps found: ${verdict.overlaps.length}`);
  t.log(`token order violations: ${verdict.tokenRegressions.length}`);
  t.is(verdict.rounds, 4 * ROUNDS_PER_CLIENT);
  t.deepEqual(Object.keys(verdict.perClient).sort(), ["go", "java", "python", "typescript"]);
  t.deepEqual(verdict.overlaps, []);
  t.deepEqual(verdict.tokenRegressions, []);
});
