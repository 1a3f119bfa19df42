// `metaparticle-sync lock NAME -- CMD`: runs CMD while holding the lock.
import { status } from "@grpc/grpc-js";
import { EXIT, formatDuration } from "./cli-args.js";
import { CALL_DEADLINE_MS, reportFailure, say, withDeadline } from "./cli-calls.js";
import { Child, signalExitCode, trapSignals } from "./cli-child.js";
import type { SyncClient } from "./client.js";
import { LostError, SyncClientError } from "./internal.js";
import type { Lock } from "./lock.js";

export interface LockCommand {
  readonly name: string;
  readonly argv: readonly string[];
  readonly holder?: string;
  readonly leaseDuration?: number;
  readonly waitTimeout?: number;
  readonly killAfter: number;
  readonly verbose: boolean;
}

export async function runLock(client: SyncClient, options: LockCommand): Promise<number> {
  const waiting = new AbortController();
  let interrupted: NodeJS.Signals | undefined;
  let child: Child | undefined;
  const untrap = trapSignals((signal, forward) => {
    interrupted ??= signal;
    if (child === undefined) waiting.abort();
    else if (forward) child.signal(signal);
  });
  try {
    if (options.verbose) say(`waiting for lock ${options.name} at ${client.address}`);
    let lock: Lock;
    try {
      lock = await client.lock(options.name, {
        holder: options.holder,
        leaseDuration: options.leaseDuration,
        waitTimeout: options.waitTimeout,
        signal: waiting.signal,
      });
    } catch (err) {
      if (interrupted !== undefined) return signalExitCode(interrupted);
      const error = SyncClientError.from(err);
      if (error.code === status.DEADLINE_EXCEEDED) return waitTimedOut(client, options);
      return reportFailure(error, `cannot lock ${options.name}`, client.address);
    }
    if (interrupted !== undefined) {
      await lock.release();
      return signalExitCode(interrupted);
    }
    if (lock.lost) {
      say(`lost lock ${options.name} (fencing token ${lock.token}) before the command started: ${String(lock.signal.reason)}`);
      return EXIT.lockLost;
    }
    if (options.verbose) say(`acquired lock ${options.name} (fencing token ${lock.token}); running ${options.argv.join(" ")}`);

    let lost: LostError | undefined;
    const running = new Child(options.argv, {
      MSYNC_LOCK_NAME: options.name,
      MSYNC_FENCING_TOKEN: String(lock.token),
      MSYNC_ADDRESS: client.address,
    });
    child = running;
    lock.signal.addEventListener(
      "abort",
      () => {
        if (!running.running) return; // released after CMD exited: not a loss
        lost = lock.signal.reason instanceof LostError ? lock.signal.reason : new LostError("unknown", String(lock.signal.reason));
        say(
          `lost lock ${options.name} (fencing token ${lock.token}): ${lost.reason}: ${lost.message}; ` +
            `stopping the command (SIGTERM, SIGKILL after ${formatDuration(options.killAfter)})`,
        );
        running.stop(options.killAfter);
      },
      { once: true },
    );
    const code = await running.exited;
    await lock.release();
    if (lost !== undefined) return EXIT.lockLost;
    if (options.verbose) say(`released lock ${options.name}; the command exited with ${code}`);
    return code;
  } finally {
    untrap();
  }
}

async function waitTimedOut(client: SyncClient, options: LockCommand): Promise<number> {
  let holder = "";
  try {
    const info = await withDeadline(client.getLock(options.name), CALL_DEADLINE_MS, "GetLock");
    if (info.held) holder = ` (held by ${info.holder}, fencing token ${info.token})`;
  } catch {
    // Only decoration for the message.
  }
  say(`timed out after ${formatDuration(options.waitTimeout ?? 0)} waiting for lock ${options.name}${holder}`);
  return EXIT.waitTimeout;
}
