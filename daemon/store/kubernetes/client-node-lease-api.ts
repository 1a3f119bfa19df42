// The Lease API on a real API server, through @kubernetes/client-node.
// client-node is imported module by module, not through its index, which
// loads every API group, model, WebSocket and tar helper it has: see
// scripts/bundle.mjs for what the lean build leaves out.
import type { ConfigurationOptions, ObservableMiddleware, RequestContext, V1Lease, V1LeaseList } from "@kubernetes/client-node";
import type { KubeConfig } from "@kubernetes/client-node/dist/config.js";
import { ApiException } from "@kubernetes/client-node/dist/gen/apis/exception.js";
import { ObjectCoordinationV1Api as CoordinationV1Api } from "@kubernetes/client-node/dist/gen/types/ObjectParamAPI.js";
import { setHeaderMiddleware } from "@kubernetes/client-node/dist/middleware.js";
import { Watch } from "@kubernetes/client-node/dist/watch.js";
import { type JsonPatchOperation, type LeaseApi, LeaseApiError, type LeaseWatchQuery } from "./lease-api.js";

const USER_AGENT = "metaparticle-sync/0.1";
const MERGE_PATCH = "application/merge-patch+json";
const JSON_PATCH = "application/json-patch+json";

export class ClientNodeLeaseApi implements LeaseApi {
  private readonly api: CoordinationV1Api;

  constructor(
    private readonly kubeConfig: KubeConfig,
    private readonly namespace: string,
  ) {
    this.api = kubeConfig.makeApiClient(CoordinationV1Api);
  }

  describe(): string {
    return this.kubeConfig.getCurrentCluster()?.server ?? "?";
  }

  read(name: string, signal?: AbortSignal): Promise<V1Lease> {
    return send(signal, (o) => this.api.readNamespacedLease({ name, namespace: this.namespace }, o));
  }

  create(body: V1Lease, signal?: AbortSignal): Promise<V1Lease> {
    return send(signal, (o) => this.api.createNamespacedLease({ namespace: this.namespace, body }, o));
  }

  replace(name: string, body: V1Lease, signal?: AbortSignal): Promise<V1Lease> {
    return send(signal, (o) => this.api.replaceNamespacedLease({ name, namespace: this.namespace, body }, o));
  }

  mergePatch(name: string, patch: object, signal?: AbortSignal): Promise<V1Lease> {
    // The generated call sends its first media type, a JSON patch; a header middleware after it chooses the merge patch.
    return send(signal, (o) => this.api.patchNamespacedLease({ name, namespace: this.namespace, body: patch }, o), MERGE_PATCH);
  }

  jsonPatch(name: string, operations: readonly JsonPatchOperation[], signal?: AbortSignal): Promise<V1Lease> {
    // The generated call's first media type is this one already; said here so that a new client-node cannot change it.
    return send(signal, (o) => this.api.patchNamespacedLease({ name, namespace: this.namespace, body: operations }, o), JSON_PATCH);
  }

  list(labelSelector: string, limit: number | undefined, signal?: AbortSignal): Promise<V1LeaseList> {
    return send(signal, (o) => this.api.listNamespacedLease({ namespace: this.namespace, labelSelector, limit }, o));
  }

  watch(query: LeaseWatchQuery, onEvent: (type: string, object: unknown) => void, done: (err: unknown) => void): Promise<AbortController> {
    return new Watch(this.kubeConfig).watch(
      `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(this.namespace)}/leases`,
      { ...query },
      onEvent,
      done,
    );
  }
}

/** Sends one call with the caller's abort signal and our user agent; an error status becomes a LeaseApiError. */
async function send<T>(
  signal: AbortSignal | undefined,
  run: (o: ConfigurationOptions<ObservableMiddleware>) => Promise<T>,
  contentType?: string,
): Promise<T> {
  // The object-parameter API takes the library's Observable middleware; its
  // header middleware is the one way to make one without its internals.
  const userAgent = setHeaderMiddleware("User-Agent", USER_AGENT);
  const requestOptions: ConfigurationOptions<ObservableMiddleware> = {
    middleware: [
      {
        pre: (context: RequestContext) => {
          if (signal !== undefined) context.setSignal(signal);
          return userAgent.pre(context);
        },
        post: (response) => userAgent.post(response),
      },
      ...(contentType === undefined ? [] : [setHeaderMiddleware("Content-Type", contentType)]),
    ],
    middlewareMergeStrategy: "append",
  };
  try {
    return await run(requestOptions);
  } catch (err) {
    if (err instanceof ApiException) throw new LeaseApiError(err.code, err.body, err.message);
    throw err;
  }
}
