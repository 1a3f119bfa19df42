#!/usr/bin/env node
// metaparticle-sync: locks, read-write locks, semaphores and leader election
// from the shell, like flock (and its --shared), `consul lock` (and its -n)
// and `etcdctl elect`, through the metaparticle-sync sidecar.
//
//   metaparticle-sync lock [-n N | --shared | --exclusive] NAME [flags] -- CMD [ARGS...]
//   metaparticle-sync elect NAME [flags] -- CMD [ARGS...]
//   metaparticle-sync leader NAME [--json]
//   metaparticle-sync observe NAME [--json]
//
// `metaparticle-sync --help` lists the flags and the exit codes (cli-args.ts).
import { readFileSync } from "node:fs";
import { EXIT, type Invocation, UsageError, parseArgs, parseDurationFlag, parsePermitsFlag } from "./cli-args.js";
import { say } from "./cli-calls.js";
import { runElect } from "./cli-elect.js";
import { runLeader, runObserve } from "./cli-leader.js";
import { runLock } from "./cli-lock.js";
import { DEFAULT_KILL_AFTER_MS } from "./cli-promise.js";
import { SyncClient } from "./client.js";

async function run(invocation: Extract<Invocation, { kind: "run" }>): Promise<number> {
  const { command, name, flags, argv } = invocation;
  const duration = (flag: string) => (flags.has(flag) ? parseDurationFlag(flags.get(flag)!, `--${flag}`) : undefined);
  const killAfter = () => {
    const given = duration("kill-after");
    return { ms: given ?? DEFAULT_KILL_AFTER_MS, explicit: given !== undefined };
  };
  const client = new SyncClient({ address: flags.get("address") });
  try {
    switch (command) {
      case "lock":
        return await runLock(client, {
          name,
          argv,
          permits: flags.has("permits") ? parsePermitsFlag(flags.get("permits")!) : undefined,
          mode: flags.has("shared") ? "shared" : flags.has("exclusive") ? "exclusive" : undefined,
          holder: flags.get("holder"),
          leaseDuration: duration("lease-duration"),
          waitTimeout: duration("wait-timeout"),
          nonFair: flags.has("non-fair"),
          killAfter: killAfter(),
          verbose: flags.has("verbose"),
        });
      case "elect":
        return await runElect(client, {
          name,
          argv,
          candidate: flags.get("candidate"),
          value: flags.get("value"),
          leaseDuration: duration("lease-duration"),
          killAfter: killAfter(),
          verbose: flags.has("verbose"),
        });
      case "leader":
        return await runLeader(client, { name, json: flags.has("json"), fresh: flags.has("fresh"), timeout: duration("timeout") });
      case "observe":
        return await runObserve(client, { name, json: flags.has("json") });
    }
  } finally {
    client.close();
  }
}

async function main(): Promise<number> {
  let invocation: Invocation;
  try {
    invocation = parseArgs(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    say(`${err.message}\nRun metaparticle-sync ${err.command === undefined ? "" : `${err.command} `}--help for usage.`);
    return EXIT.usage;
  }
  switch (invocation.kind) {
    case "help":
      if (!invocation.usage) {
        process.stdout.write(invocation.text);
        return 0;
      }
      process.stderr.write(invocation.text);
      return EXIT.usage;
    case "version": {
      const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
      process.stdout.write(`metaparticle-sync ${pkg.version}\n`);
      return 0;
    }
    case "run":
      return run(invocation);
  }
}

main().then(
  (code) => {
    process.exitCode = code;
    // The gRPC channel is closed; if anything still holds the event loop open, do not hang on it.
    setTimeout(() => process.exit(code), 2000).unref();
  },
  (err: unknown) => {
    say(`internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(EXIT.software);
  },
);
