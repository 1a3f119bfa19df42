// How the CLI talks to the sidecar: messages on stderr, failed calls turned
// into exit codes, and deadlines on calls that should answer at once.
import { status } from "@grpc/grpc-js";
import { EXIT } from "./cli-args.js";
import { SyncClientError } from "./internal.js";

/** Writes one line to stderr, prefixed so it stands apart from CMD's output. */
export function say(message: string): void {
  process.stderr.write(`metaparticle-sync: ${message}\n`);
}

/** How long a unary call to the sidecar on loopback may take before the CLI gives up on it. */
export const CALL_DEADLINE_MS = 10_000;

/**
 * Rejects with UNAVAILABLE if `promise` has not settled within `ms`: a frozen
 * sidecar must not hang a script forever on a call that should be quick.
 */
export function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new SyncClientError(status.UNAVAILABLE, `UNAVAILABLE: no answer from the sidecar to ${what} within ${ms} ms`)),
      ms,
    );
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Reports a failed call to the sidecar and returns the exit code for it. */
export function reportFailure(error: SyncClientError, what: string, address: string): number {
  if (error.code === status.INVALID_ARGUMENT) {
    say(`${what}: ${error.message}`);
    return EXIT.usage;
  }
  const hint = error.code === status.UNAVAILABLE ? ` (is the sidecar running at ${address}? set --address or MSYNC_ADDRESS)` : "";
  say(`${what}: ${error.message.trim()}${hint}`);
  return EXIT.unavailable;
}
