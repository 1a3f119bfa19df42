// One clock for every timestamp in the benchmark: CLOCK_MONOTONIC, in
// milliseconds. Node's process.hrtime.bigint() reads it on Linux, and the Go
// peers print it as mono_ns, so times taken in different processes subtract.
import { setTimeout as sleepMs } from "node:timers/promises";

/** CLOCK_MONOTONIC now, in ms (fractional). */
export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

export function sleep(ms: number): Promise<void> {
  return sleepMs(ms).then(() => undefined);
}

/** Rejects with a message naming `what` if `promise` does not settle within `ms`. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
