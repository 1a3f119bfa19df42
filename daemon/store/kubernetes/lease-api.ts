// The few calls the Kubernetes store makes on the Lease API of one
// namespace, as an interface: the client-node module sends them to an API
// server, and the simulator answers them itself (test/sim/kube-api-server.ts)
// so that the store's own code runs under simulated faults.
import type { V1Lease, V1LeaseList } from "@kubernetes/client-node";

/**
 * An API call the server answered with an error status: `code` is the HTTP
 * code and `body` the Status object (or its text). A failure without an
 * answer (refused, reset, aborted) is any other error.
 */
export class LeaseApiError extends Error {
  constructor(
    readonly code: number,
    readonly body: unknown,
    message: string,
  ) {
    super(message);
    this.name = "LeaseApiError";
  }
}

/** The query of one watch request, as the API server reads it. */
export interface LeaseWatchQuery {
  readonly labelSelector: string;
  /** Events after this version; "" for the current state first (as ADDED events). */
  readonly resourceVersion: string;
  readonly allowWatchBookmarks: boolean;
  /** The server ends the watch after this long. */
  readonly timeoutSeconds: number;
}

/**
 * One operation of a JSON patch (RFC 6902). `path` is a JSON pointer (RFC
 * 6901): in a key, "~" is written "~0" and "/" is written "~1".
 */
export type JsonPatchOperation =
  | { readonly op: "test" | "add" | "replace"; readonly path: string; readonly value: unknown }
  | { readonly op: "remove"; readonly path: string };

export interface LeaseApi {
  /** Where the API server is, for logs. */
  describe(): string;
  read(name: string, signal?: AbortSignal): Promise<V1Lease>;
  create(body: V1Lease, signal?: AbortSignal): Promise<V1Lease>;
  /** Replaces the Lease; conditional on body.metadata.resourceVersion when it is set. */
  replace(name: string, body: V1Lease, signal?: AbortSignal): Promise<V1Lease>;
  /** Applies a JSON merge patch (application/merge-patch+json) to the Lease, unconditionally unless it names a uid. */
  mergePatch(name: string, patch: object, signal?: AbortSignal): Promise<V1Lease>;
  /**
   * Applies a JSON patch (application/json-patch+json) to the Lease: all of
   * its operations or, when one fails (a `test` that does not hold, a path
   * that is missing), none, answered 422.
   */
  jsonPatch(name: string, operations: readonly JsonPatchOperation[], signal?: AbortSignal): Promise<V1Lease>;
  list(labelSelector: string, limit: number | undefined, signal?: AbortSignal): Promise<V1LeaseList>;
  /**
   * Starts one watch request. `onEvent` gets each event's type (ADDED,
   * MODIFIED, DELETED, BOOKMARK, ERROR) and object; `done` is called once when
   * the watch ends: with nothing when the server ended it, else with the
   * error (one carrying `statusCode` when the server refused it). Aborting the
   * controller ends it.
   */
  watch(query: LeaseWatchQuery, onEvent: (type: string, object: unknown) => void, done: (err: unknown) => void): Promise<AbortController>;
}
