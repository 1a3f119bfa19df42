// `metaparticle-sync lock NAME -- CMD`: runs CMD while holding the lock; with
// `-n N`, while holding one of the N permits of semaphore NAME; with
// `--shared` or `--exclusive`, while holding read-write lock NAME in that
// mode. All are held the same way (hold.ts), so one run serves them all;
// `Held` says which it is.
import { status } from "@grpc/grpc-js";
import { EXIT, formatDuration } from "./cli-args.js";
import { reportFailure, say } from "./cli-calls.js";
import { Child, signalExitCode, trapSignals } from "./cli-child.js";
import { KILL_MARGIN_MS, KillAfterError, fitKillAfter, watchPromise } from "./cli-promise.js";
import type { SyncClient } from "./client.js";
import { DEFAULT_WAIT_TIMEOUT_MS, WAIT_TIMEOUT_GRACE_MS } from "./deadlines.js";
import type { AcquireOptions, StreamHold } from "./hold.js";
import { LostError, SyncClientError } from "./internal.js";
import { type RWLockInfo, type RWLockMode, describeRWHold } from "./rwlock.js";

export interface LockCommand {
  readonly name: string;
  readonly argv: readonly string[];
  /** -n: hold one of this many permits of semaphore `name` instead of lock `name`. */
  readonly permits?: number;
  /** --shared or --exclusive: hold read-write lock `name` in this mode instead of lock `name`. Not with `permits`. */
  readonly mode?: RWLockMode;
  readonly holder?: string;
  readonly leaseDuration?: number;
  /** ms; default DEFAULT_WAIT_TIMEOUT_MS. */
  readonly waitTimeout?: number;
  /** --non-fair: the sidecar may hand lock `name` to this command ahead of other sidecars' waiters. A plain lock only. */
  readonly nonFair?: boolean;
  /** ms, and whether the flag was given (a default is lowered to fit the lease; a flag that does not fit is refused). */
  readonly killAfter: { readonly ms: number; readonly explicit: boolean };
  readonly verbose: boolean;
}

/** What `lock` holds: lock NAME, with -n one permit of semaphore NAME, with --shared or --exclusive read-write lock NAME. */
interface Held {
  /** How messages name it: "lock NAME", "a permit of semaphore NAME", "a shared hold of read-write lock NAME". */
  readonly what: string;
  /** How the message of a failed acquisition starts: "cannot lock NAME", "cannot hold ...". */
  readonly failure: string;
  acquire(options: AcquireOptions): Promise<StreamHold>;
  /** Who holds it, for the message of a wait that timed out: " (held by ...)", or "" when nobody or unknown. */
  holders(timeoutMs: number): Promise<string>;
  /** What CMD gets besides MSYNC_LOCK_NAME, MSYNC_FENCING_TOKEN and MSYNC_ADDRESS. */
  readonly env: Record<string, string>;
}

function held(client: SyncClient, { name, permits, mode, nonFair }: LockCommand): Held {
  if (mode !== undefined) {
    const rwlock = client.rwlock(name);
    const what = describeRWHold(name, mode);
    return {
      what,
      failure: `cannot take ${what}`,
      acquire: (options) => rwlock.acquire(mode, options),
      holders: async (timeoutMs) => rwHolders(await rwlock.get({ timeoutMs })),
      env: { MSYNC_LOCK_MODE: mode },
    };
  }
  if (permits === undefined) {
    return {
      what: `lock ${name}`,
      failure: `cannot lock ${name}`,
      acquire: (options) => client.lock(name, { ...options, fair: nonFair !== true }),
      holders: async (timeoutMs) => {
        const info = await client.getLock(name, { timeoutMs });
        return info.held ? ` (held by ${info.holder}, fencing token ${info.token})` : "";
      },
      env: {},
    };
  }
  const semaphore = client.semaphore(name, permits);
  return {
    what: `a permit of semaphore ${name}`,
    failure: `cannot hold a permit of semaphore ${name}`,
    acquire: (options) => semaphore.acquire(options),
    holders: async (timeoutMs) => {
      const info = await semaphore.get({ timeoutMs });
      // A hold of another daemon comes without its token (0).
      const holders = info.holders.map((h) => (h.token > 0 ? `${h.holder}, fencing token ${h.token}` : h.holder));
      return holders.length === 0 ? "" : ` (held by ${holders.join("; ")})`;
    },
    env: { MSYNC_PERMITS: String(permits) },
  };
}

/** How a read-write lock is held, for the message of a wait that timed out: " (held shared by r1 and 2 more; waiting: ...)". */
function rwHolders(info: RWLockInfo): string {
  const waiting = info.waitingDaemons.length === 0 ? "" : `; daemons waiting: ${info.waitingDaemons.join(", ")}`;
  if (info.mode === "exclusive") return ` (held exclusive by ${info.holder}, fencing token ${info.token}${waiting})`;
  if (info.mode !== "shared") return waiting === "" ? "" : ` (${waiting.slice(2)})`;
  const seats = info.readers.map((seat) => (seat.readers > 1 ? `${seat.holder} and ${seat.readers - 1} more` : seat.holder));
  return ` (held shared by ${seats.join("; ")}${waiting})`;
}

export async function runLock(client: SyncClient, options: LockCommand): Promise<number> {
  const target = held(client, options);
  const { what } = target;
  const waiting = new AbortController();
  let interrupted: NodeJS.Signals | undefined;
  let child: Child | undefined;
  const untrap = trapSignals((signal, forward) => {
    interrupted ??= signal;
    if (child === undefined) waiting.abort();
    else if (forward) child.signal(signal);
  });
  const waitTimeout = options.waitTimeout ?? DEFAULT_WAIT_TIMEOUT_MS;
  try {
    if (options.verbose) say(`waiting for ${what} at ${client.address}`);
    let lock: StreamHold;
    const waitStart = performance.now();
    try {
      // The client keeps the wait timeout on its own clock too: a frozen sidecar cannot hold this up.
      lock = await target.acquire({
        holder: options.holder,
        leaseDurationMs: options.leaseDuration,
        waitTimeoutMs: waitTimeout,
        signal: waiting.signal,
      });
    } catch (err) {
      if (interrupted !== undefined) return signalExitCode(interrupted);
      const error = SyncClientError.from(err);
      if (error.code === status.DEADLINE_EXCEEDED) return waitTimedOut(target, waitTimeout, performance.now() - waitStart);
      return reportFailure(error, target.failure, client.address);
    }
    if (interrupted !== undefined) {
      await lock.release().catch(() => {});
      return signalExitCode(interrupted);
    }
    let killAfter: number;
    try {
      killAfter = fitKillAfter(options.killAfter, lock.validForMs, what);
    } catch (err) {
      if (!(err instanceof KillAfterError)) throw err;
      await lock.release().catch(() => {});
      say(err.message);
      return EXIT.usage;
    }
    if (lock.lost) {
      say(`lost ${what} (fencing token ${lock.token}) before the command started: ${String(lock.signal.reason)}`);
      return EXIT.lockLost;
    }
    if (options.verbose) {
      const lowered = killAfter < options.killAfter.ms ? ` (--kill-after lowered to ${formatDuration(killAfter)} to fit the lease)` : "";
      say(`acquired ${what} (fencing token ${lock.token}); running ${options.argv.join(" ")}${lowered}`);
    }

    let lost: LostError | undefined;
    const running = new Child(options.argv, {
      MSYNC_LOCK_NAME: options.name,
      MSYNC_FENCING_TOKEN: String(lock.token),
      ...target.env,
      MSYNC_ADDRESS: client.address,
    });
    child = running;
    // No heartbeat while the end of the promise comes near: stop CMD so that SIGKILL lands inside it.
    const unwatch = watchPromise(
      () => lock.validForMs,
      killAfter,
      (remaining) => {
        if (!running.running || lost !== undefined) return;
        const grace = Math.max(0, remaining - KILL_MARGIN_MS);
        lost = new LostError(
          "heartbeat-timeout",
          `no heartbeat from the sidecar, and its promise runs out in ${formatDuration(remaining)}`,
        );
        say(
          `${what} (fencing token ${lock.token}): ${lost.message}: ` +
            `stopping the command (SIGTERM, SIGKILL in ${formatDuration(grace)})`,
        );
        running.stop(grace);
      },
    );
    lock.signal.addEventListener(
      "abort",
      () => {
        unwatch();
        if (!running.running || lost !== undefined) return; // released after CMD exited, or already stopping
        lost = lock.signal.reason instanceof LostError ? lock.signal.reason : new LostError("unknown", String(lock.signal.reason));
        say(
          `lost ${what} (fencing token ${lock.token}): ${lost.reason}: ${lost.message}; ` +
            `stopping the command (SIGTERM, SIGKILL after ${formatDuration(killAfter)})`,
        );
        running.stop(killAfter);
      },
      { once: true },
    );
    const code = await running.exited;
    unwatch();
    try {
      await lock.release();
    } catch (err) {
      say(`could not confirm the release of ${what}: ${SyncClientError.from(err).message}`);
    }
    if (lost !== undefined) return EXIT.lockLost;
    if (options.verbose) say(`released ${what}; the command exited with ${code}`);
    return code;
  } finally {
    untrap();
  }
}

/** How long the message's look-up of the holder may take: it only decorates the message. */
const HOLDER_LOOKUP_MS = 1000;

async function waitTimedOut(target: Held, waitTimeout: number, waitedMs: number): Promise<number> {
  let holder = "";
  // A sidecar that did not answer in time (frozen, unreachable: the client's own clock ran out, a grace period
  // after the wait timeout) is not asked again.
  if (waitedMs < waitTimeout + WAIT_TIMEOUT_GRACE_MS - 10) {
    try {
      holder = await target.holders(HOLDER_LOOKUP_MS);
    } catch {
      // Only decoration for the message.
    }
  } else {
    holder = " (the sidecar did not answer)";
  }
  say(`timed out after ${formatDuration(waitTimeout)} waiting for ${target.what}${holder}`);
  return EXIT.waitTimeout;
}
