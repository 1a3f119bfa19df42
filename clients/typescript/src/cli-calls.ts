// How the CLI talks to the sidecar: messages on stderr, failed calls turned
// into exit codes, and the backoff between reconnections. (Every call's
// deadline is the client's: DEFAULT_CALL_TIMEOUT_MS unless told otherwise.)
import { status } from "@grpc/grpc-js";
import { EXIT } from "./cli-args.js";
import { SyncClientError } from "./internal.js";

/** Writes one line to stderr, prefixed so it stands apart from CMD's output. */
export function say(message: string): void {
  process.stderr.write(`metaparticle-sync: ${message}\n`);
}

/**
 * Reports a failed call to the sidecar and returns the exit code for it: a
 * value the sidecar refused (INVALID_ARGUMENT, or a semaphore's -n that is not
 * its N) is a usage error.
 */
export function reportFailure(error: SyncClientError, what: string, address: string): number {
  if (error.code === status.INVALID_ARGUMENT || error.reason === "PERMITS_MISMATCH") {
    say(`${what}: ${error.message}`);
    return EXIT.usage;
  }
  const hint =
    error.code === status.UNAVAILABLE || error.code === status.DEADLINE_EXCEEDED
      ? ` (is the sidecar running at ${address}? set --address or MSYNC_ADDRESS)`
      : "";
  say(`${what}: ${error.message.trim()}${hint}`);
  return EXIT.unavailable;
}

/**
 * How long `elect` and `observe` wait before reconnecting to a sidecar that
 * went away, after `attempt` failures in a row: 100 ms doubling to 5 s, each
 * between half and all of that at random, so that the commands of many pods
 * do not reconnect in step when their sidecars restart.
 */
export function reconnectDelay(attempt: number): number {
  const ceiling = Math.min(100 * 2 ** attempt, 5000);
  return ceiling / 2 + (Math.random() * ceiling) / 2;
}

/** Whether a stream's end (`error` undefined: ended without one) is a sidecar going away, which is worth reconnecting after. */
export function sidecarWentAway(error: SyncClientError | undefined): boolean {
  return error === undefined || error.code === status.UNAVAILABLE;
}
