// Keeping CMD inside the promise. The sidecar promises, with every heartbeat,
// how long the holder (or leader) may still act (`valid_for`); nobody else can
// be granted the lock or elected before that runs out. So `lock` and `elect`
// count --kill-after back from the end of the promise, not forward from a
// loss: if no heartbeat has extended the promise by the time only
// --kill-after + KILL_MARGIN_MS of it is left, CMD gets SIGTERM, and SIGKILL
// KILL_MARGIN_MS before the promise ends. A CMD that ignores SIGTERM is then
// dead before the next holder's command can start.
import { formatDuration } from "./cli-args.js";

/** How long before the promise ends SIGKILL goes out: time for the kernel to end CMD and for timers to run late. */
export const KILL_MARGIN_MS = 250;

/**
 * The part of a promise that stopping CMD (--kill-after + KILL_MARGIN_MS) may
 * take. While all goes well the sidecar renews a third of the lease apart, at
 * most half its renew deadline (the promise), ±10 %: so a heartbeat comes
 * while at least 45 % of the last promise is left. Stopping within 35 % of it
 * leaves a tenth of the promise for a slow renewal before CMD would be stopped
 * for nothing.
 */
export const STOP_SHARE = 0.35;

/** How long CMD when the lock is lost is given unless --kill-after says otherwise (and the lease leaves room). */
export const DEFAULT_KILL_AFTER_MS = 3000;

/** The longest --kill-after that fits a promise of `validForMs`; negative when none does. */
export function killAfterLimit(validForMs: number): number {
  return Math.floor(validForMs * STOP_SHARE - KILL_MARGIN_MS);
}

/** A --kill-after that cannot fit the promise; the message says why. Exit 64. */
export class KillAfterError extends Error {}

/**
 * The --kill-after to use for a promise of `validForMs`, as the sidecar gave
 * it with the grant (or election). An explicit --kill-after that does not fit
 * is refused; the default is lowered to fit.
 */
export function fitKillAfter(killAfter: { readonly ms: number; readonly explicit: boolean }, validForMs: number, what: string): number {
  const limit = killAfterLimit(validForMs);
  const promise = `the sidecar promises ${what} ${formatDuration(validForMs)} at a time and renews that promise a little under every ${formatDuration(validForMs * 0.55)}`;
  if (limit < 0) {
    throw new KillAfterError(
      `the command cannot be stopped inside the promise: ${promise}, too short to fit even the ${formatDuration(KILL_MARGIN_MS)} ` +
        `between SIGKILL and the promise's end; use a longer --lease-duration`,
    );
  }
  if (killAfter.ms <= limit) return killAfter.ms;
  if (!killAfter.explicit) return limit;
  throw new KillAfterError(
    `--kill-after=${formatDuration(killAfter.ms)} cannot fit: ${promise}, so the command must be stopped within ` +
      `${Math.round(STOP_SHARE * 100)}% of the promise, SIGKILL included ${formatDuration(KILL_MARGIN_MS)} before it ends: ` +
      `--kill-after at most ${formatDuration(limit)}. Use a shorter --kill-after or a longer --lease-duration`,
  );
}

/**
 * Calls `onDue(remainingMs)` once, when no more than `killAfterMs` +
 * KILL_MARGIN_MS of the promise is left (`validForMs()` reads what is left
 * now; heartbeats extend it). Returns a function that stops watching.
 */
export function watchPromise(validForMs: () => number, killAfterMs: number, onDue: (remainingMs: number) => void): () => void {
  const threshold = killAfterMs + KILL_MARGIN_MS;
  let timer: NodeJS.Timeout | undefined;
  const check = () => {
    const remaining = validForMs();
    if (remaining <= threshold) {
      timer = undefined;
      onDue(remaining);
    } else {
      timer = setTimeout(check, remaining - threshold);
    }
  };
  check();
  return () => clearTimeout(timer);
}
