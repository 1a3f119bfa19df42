// One Ctrl-C on `npm start` is a graceful stop. A terminal sends SIGINT to its
// whole foreground process group, npm and the daemon alike, and npm forwards
// it to the daemon too: the daemon gets it twice, which must not count as the
// "second signal: exit now". Here the same arrangement: `npm start` running
// `exec node .../main.js` (as package.json's start does, less the build; the
// compiled entry rather than dist/lean, which another test of this suite
// rebuilds meanwhile) in a process group of its own, and one SIGINT sent to the group
// while a lock is held.
import test from "ava";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { credentials, loadPackageDefinition, type Client, type ClientReadableStream } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { fileURLToPath } from "node:url";
import { DAEMON_MAIN } from "../support/daemon-process.js";

type LockClient = Client & { acquire(request: object, options: object): ClientReadableStream<Record<string, unknown>> };

/** A raw LockService client: its Acquire stream is closed only when this test says so. */
function lockClient(address: string): LockClient {
  const proto = fileURLToPath(new URL("../../../proto/", import.meta.url));
  const definition = loadSync("metaparticle/sync/v1/lock_service.proto", { includeDirs: [proto], oneofs: true });
  const pkg = loadPackageDefinition(definition) as unknown as {
    metaparticle: { sync: { v1: { LockService: new (a: string, c: unknown) => LockClient } } };
  };
  return new pkg.metaparticle.sync.v1.LockService(address, credentials.createInsecure());
}

test("one SIGINT to npm start's process group: the daemon shuts down gracefully and exits 0", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "msync-ctrl-c-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const command = `exec ${JSON.stringify(process.execPath)} ${JSON.stringify(DAEMON_MAIN)} --backend=memory --listen=127.0.0.1:0`;
  writeFileSync(
    join(dir, "package.json"),
    JSON.stringify({ name: "ctrl-c", version: "0.0.0", private: true, scripts: { start: command } }),
  );
  const npm = spawn("npm", ["start"], { cwd: dir, detached: true, stdio: ["ignore", "ignore", "pipe"], env: process.env });
  const group = npm.pid!;
  const exited = once(npm, "exit") as Promise<[number | null, NodeJS.Signals | null]>;
  t.teardown(() => {
    if (npm.exitCode === null && npm.signalCode === null) process.kill(-group, "SIGKILL");
  });
  const logs: Array<Record<string, any>> = [];
  const lines: string[] = [];
  let listening: (address: string) => void;
  const address = new Promise<string>((resolve) => (listening = resolve));
  createInterface({ input: npm.stderr! }).on("line", (line) => {
    lines.push(line);
    try {
      const parsed = JSON.parse(line) as Record<string, any>;
      logs.push(parsed);
      if (parsed.msg === "gRPC server listening") listening(parsed.address);
    } catch {
      // npm's own lines
    }
  });
  const startDeadline = setTimeout(() => process.kill(-group, "SIGKILL"), 60_000);
  const started = await Promise.race([address, exited.then(() => undefined)]);
  clearTimeout(startDeadline);
  if (started === undefined) return t.fail(`npm start exited before listening:\n${lines.join("\n")}`);

  await Promise.race([
    new Promise<void>((resolve) => {
      const check = () => (logs.some((l) => String(l.msg).startsWith("ready")) ? resolve() : setTimeout(check, 20));
      check();
    }),
    new Promise<void>((_, reject) => setTimeout(() => reject(new Error("no ready line within 30 s")), 30_000).unref()),
  ]);
  // A holder that does not close its stream when told it lost the lock: a graceful stop waits for its
  // lease (2 s) to run out before giving the lock back, so the shutdown is still under way when npm's
  // copy of the SIGINT arrives.
  const client = lockClient(started);
  t.teardown(() => client.close());
  const call = client.acquire({ name: "ctrl-c", holder: "app", leaseDuration: { seconds: 2 } }, { deadline: Date.now() + 60_000 });
  t.teardown(() => call.cancel());
  const events: string[] = [];
  call.on("error", () => undefined);
  const acquired = new Promise<void>((resolve, reject) => {
    call.on("data", (response: Record<string, unknown>) => {
      events.push(String(response.event));
      if (response.event === "acquired") resolve();
    });
    call.on("error", reject);
  });
  await acquired;

  process.kill(-group, "SIGINT");
  const exitDeadline = setTimeout(() => process.kill(-group, "SIGKILL"), 60_000);
  const [code, signal] = await exited;
  clearTimeout(exitDeadline);
  const messages = logs.map((l) => String(l.msg));
  t.is(signal, null, lines.join("\n"));
  t.is(code, 0, lines.join("\n"));
  t.true(events.includes("lost"), events.join(", "));
  t.true(messages.includes("shutting down: releasing everything held"), messages.join("\n"));
  t.true(messages.includes("stopped: everything held was released"), messages.join("\n"));
  t.false(
    messages.some((m) => m.includes("exiting now")),
    messages.join("\n"),
  );
});
