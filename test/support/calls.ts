// Helpers for calling the generated gRPC clients directly in tests.
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
