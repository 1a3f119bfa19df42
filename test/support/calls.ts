// Helpers for calling the generated gRPC clients directly in tests, and for
// judging the promises the client's wrappers return.
import { setTimeout as sleep } from "node:timers/promises";
import { SyncClientError } from "metaparticle-sync-client";

type Callback = (err: Error | null, response?: unknown) => void;

/** Makes a unary call that must fail, and returns its error with status code and field. */
export function callError(call: (callback: Callback) => void): Promise<SyncClientError> {
  return new Promise((resolve, reject) =>
    call((err) => (err === null ? reject(new Error("the call succeeded but was expected to fail")) : resolve(SyncClientError.from(err)))),
  );
}

/** Makes a unary call that must succeed. */
export function callOk<T>(call: (callback: (err: Error | null, response: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => call((err, response) => (err === null ? resolve(response) : reject(SyncClientError.from(err)))));
}

/** Whether `promise` is still pending after `ms`. */
export async function pendingAfter(promise: Promise<unknown>, ms: number): Promise<boolean> {
  const pending = Symbol("pending");
  return (await Promise.race([promise.catch(() => undefined), sleep(ms, pending)])) === pending;
}

/** The SyncClientError a promise rejects with; throws if it resolves or rejects with anything else. */
export async function rejection(promise: Promise<unknown>): Promise<SyncClientError> {
  const outcome = await promise.then(
    () => new Error("resolved, but was expected to fail"),
    (err: unknown) => err,
  );
  if (!(outcome instanceof SyncClientError)) throw outcome;
  return outcome;
}
