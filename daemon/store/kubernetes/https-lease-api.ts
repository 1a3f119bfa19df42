// The Lease API on a real API server over node:https: one pool of HTTP/1.1
// keep-alive connections for calls, a connection of its own for each watch,
// JSON in and out.
//
// @kubernetes/client-node still configures it (server, TLS material,
// credentials and their providers). Its typed calls add, per call, a
// middleware chain, an object serializer, fetch's body streams and a re-read
// of the TLS files, about 0.55 ms of CPU per Lease write on the benchmark's
// machine (0.9 ms against 0.35 ms) and 0.8 ms of latency; its watch, fetch's
// streams and a line reader, about 0.1 ms per event.
//
// HTTP/1.1, not one multiplexed HTTP/2 session: over HTTP/2 a connection that
// dies silently (a NAT or load balancer dropping it, bytes lost one way) held
// every write and the watch until TCP gave up (test/faults/watch-stall.test.ts).
// Here each request in flight has its own connection: one that times out is
// aborted and its socket destroyed, the others carry on. The pool is capped
// (MAX_CONNECTIONS, the watch's included): without a cap, a burst opened a
// connection each, and a daemon holding 1,000 locks kept opening and closing
// hundreds of TLS connections. All connections share one TLS context.
//
// Credentials are taken from client-node at most every CREDENTIALS_MS (a
// ServiceAccount token file rotates in hours, an exec plugin's token lives
// minutes), and again at once after a 401.
import type { Agent as HttpAgent, ClientRequest, IncomingMessage, OutgoingHttpHeaders, RequestOptions } from "node:http";
import { STATUS_CODES, Agent as PlainAgent, request as plainRequest } from "node:http";
import { Agent as TlsAgent, request as tlsRequest } from "node:https";
import { createSecureContext } from "node:tls";
import type { V1Lease, V1LeaseList } from "@kubernetes/client-node";
import type { KubeConfig } from "@kubernetes/client-node/dist/config.js";
import { type JsonPatchOperation, type LeaseApi, LeaseApiError, type LeaseWatchQuery } from "./lease-api.js";

/** Connections to the API server, the watch's included: calls get one fewer. */
export const MAX_CONNECTIONS = 8;
const USER_AGENT = "metaparticle-sync/0.1";
/** How long credentials from client-node are reused. */
const CREDENTIALS_MS = 10_000;
/** A call made without a caller's signal still ends: it is abandoned after this long. */
const FALLBACK_TIMEOUT_MS = 60_000;
/** Idle pooled connections close after this long. */
const IDLE_MS = 30_000;
/** A watch that brings nothing (not even a bookmark) for this long is ended as timed out, as client-node's is. */
const WATCH_IDLE_MS = 30_000;

interface Connection {
  /** The pool of calls. */
  readonly agent: HttpAgent;
  /** Watches: a connection each, outside the pool, so that a long watch takes no call's place. */
  readonly watchAgent: HttpAgent;
  readonly send: typeof tlsRequest;
}

export class HttpsLeaseApi implements LeaseApi {
  private readonly base: string;
  private connection: Promise<Connection> | undefined;
  private credentials: { readonly headers: OutgoingHttpHeaders; readonly until: number } | undefined;

  /** `connections`: the most calls in flight at once (each watch has a connection of its own). */
  constructor(
    private readonly kubeConfig: KubeConfig,
    private readonly namespace: string,
    private readonly connections: number,
  ) {
    const server = kubeConfig.getCurrentCluster()?.server ?? "";
    this.base = `${server.replace(/\/+$/, "")}/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases`;
  }

  /** Whether this class can reach the configured cluster: client-node alone speaks to proxies. */
  static supports(kubeConfig: KubeConfig): boolean {
    const cluster = kubeConfig.getCurrentCluster();
    return cluster !== null && !cluster.proxyUrl && /^https?:\/\//.test(cluster.server);
  }

  describe(): string {
    return this.kubeConfig.getCurrentCluster()?.server ?? "?";
  }

  read(name: string, signal?: AbortSignal): Promise<V1Lease> {
    return this.call("GET", `/${encodeURIComponent(name)}`, undefined, undefined, signal);
  }

  create(body: V1Lease, signal?: AbortSignal): Promise<V1Lease> {
    return this.call("POST", "", body, "application/json", signal);
  }

  replace(name: string, body: V1Lease, signal?: AbortSignal): Promise<V1Lease> {
    return this.call("PUT", `/${encodeURIComponent(name)}`, body, "application/json", signal);
  }

  mergePatch(name: string, patch: object, signal?: AbortSignal): Promise<V1Lease> {
    return this.call("PATCH", `/${encodeURIComponent(name)}`, patch, "application/merge-patch+json", signal);
  }

  jsonPatch(name: string, operations: readonly JsonPatchOperation[], signal?: AbortSignal): Promise<V1Lease> {
    return this.call("PATCH", `/${encodeURIComponent(name)}`, operations, "application/json-patch+json", signal);
  }

  list(labelSelector: string, limit: number | undefined, signal?: AbortSignal): Promise<V1LeaseList> {
    const query = new URLSearchParams({ labelSelector });
    if (limit !== undefined) query.set("limit", String(limit));
    return this.call("GET", `?${query}`, undefined, undefined, signal);
  }

  async watch(
    query: LeaseWatchQuery,
    onEvent: (type: string, object: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    const controller = new AbortController();
    let finished = false;
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    let req: ClientRequest | undefined;
    const finish = (err: unknown) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      req?.destroy();
      done(timedOut ? new DOMException("The operation was aborted due to timeout", "TimeoutError") : err);
    };
    // Until the answer starts, the time to connect; then the time between two chunks of it.
    const idle = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        timedOut = true;
        finish(undefined);
      }, WATCH_IDLE_MS);
      timer.unref();
    };
    try {
      const [connection, headers] = await this.prepare();
      const params = new URLSearchParams({
        watch: "true",
        labelSelector: query.labelSelector,
        resourceVersion: query.resourceVersion,
        allowWatchBookmarks: String(query.allowWatchBookmarks),
        timeoutSeconds: String(query.timeoutSeconds),
      });
      idle();
      req = connection.send(`${this.base}?${params}`, { method: "GET", agent: connection.watchAgent, headers, signal: controller.signal });
      req.on("error", finish);
      req.on("response", (res: IncomingMessage) => {
        if (res.statusCode !== 200) {
          // As client-node says it: the status's text, and the code for the watcher to tell a refusal.
          const error = Object.assign(new Error(STATUS_CODES[res.statusCode ?? 500] ?? "Internal Server Error"), {
            statusCode: res.statusCode,
          });
          res.resume();
          return finish(error);
        }
        idle();
        let buffer = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          idle();
          buffer += chunk;
          for (let newline = buffer.indexOf("\n"); newline >= 0; newline = buffer.indexOf("\n")) {
            const line = buffer.slice(0, newline);
            buffer = buffer.slice(newline + 1);
            if (finished || line.trim() === "") continue;
            let event: { type: string; object: unknown };
            try {
              event = JSON.parse(line) as { type: string; object: unknown };
            } catch {
              continue; // a line that is not an event is skipped, as client-node skips it
            }
            onEvent(event.type, event.object);
          }
        });
        res.on("error", finish);
        res.on("end", () => finish(undefined));
        res.on("close", () => finish(undefined));
      });
      req.end();
    } catch (err) {
      finish(err);
    }
    return controller;
  }

  private async call<T>(
    method: string,
    path: string,
    body: unknown,
    contentType: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<T> {
    signal?.throwIfAborted();
    const [connection, headers] = await this.prepare();
    signal?.throwIfAborted();
    const payload = body === undefined ? undefined : JSON.stringify(body);
    if (payload !== undefined) {
      headers["Content-Type"] = contentType;
      headers["Content-Length"] = Buffer.byteLength(payload);
    }
    const options: RequestOptions = { method, agent: connection.agent, headers, signal };
    const { status, text } = await exchange(connection.send(this.base + path, options), payload, signal);
    if (status >= 200 && status < 300) return JSON.parse(text) as T;
    if (status === 401) this.credentials = undefined;
    throw new LeaseApiError(status, parseBody(text), `HTTP-Code: ${status}\nBody: ${text}`);
  }

  /** The connections, and the headers of a request: credentials, what it accepts, who sends it. */
  private async prepare(): Promise<[Connection, OutgoingHttpHeaders]> {
    const [connection, credentials] = await Promise.all([this.connect(), this.headers()]);
    return [connection, { ...credentials, Accept: "application/json", "User-Agent": USER_AGENT }];
  }

  /** The pool, made on the first call from the TLS material client-node reads. */
  private connect(): Promise<Connection> {
    this.connection ??= (async () => {
      const tls: RequestOptions & {
        ca?: unknown;
        cert?: unknown;
        key?: unknown;
        pfx?: unknown;
        passphrase?: string;
        rejectUnauthorized?: boolean;
        servername?: string;
      } = {};
      await this.kubeConfig.applyToHTTPSOptions(tls);
      const pool = { keepAlive: true, maxSockets: this.connections, timeout: IDLE_MS, scheduling: "lifo" as const };
      if (this.base.startsWith("http:"))
        return { agent: new PlainAgent(pool), watchAgent: new PlainAgent(), send: plainRequest as unknown as typeof tlsRequest };
      const material = {
        secureContext: createSecureContext({
          ca: tls.ca as string | undefined,
          cert: tls.cert as string | undefined,
          key: tls.key as string | undefined,
          pfx: tls.pfx as string | undefined,
          passphrase: tls.passphrase,
        }),
        rejectUnauthorized: tls.rejectUnauthorized,
        servername: tls.servername,
      };
      return { agent: new TlsAgent({ ...pool, ...material }), watchAgent: new TlsAgent(material), send: tlsRequest };
    })();
    this.connection.catch(() => (this.connection = undefined));
    return this.connection;
  }

  /** The credential headers (Authorization, Impersonate-User) client-node would send now, reused for CREDENTIALS_MS. */
  private async headers(): Promise<OutgoingHttpHeaders> {
    const now = Date.now();
    if (this.credentials !== undefined && this.credentials.until > now) return this.credentials.headers;
    const options: RequestOptions = { headers: {} };
    await this.kubeConfig.applyToHTTPSOptions(options);
    const headers: OutgoingHttpHeaders = { ...(options.headers as OutgoingHttpHeaders) };
    if (options.auth) headers.Authorization = `Basic ${Buffer.from(options.auth).toString("base64")}`;
    this.credentials = { headers, until: now + CREDENTIALS_MS };
    return headers;
  }
}

/** Sends `payload` on `req` and reads the whole answer; the caller's signal (or the fallback timeout) ends it. */
function exchange(
  req: ClientRequest,
  payload: string | undefined,
  signal: AbortSignal | undefined,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    if (signal === undefined) req.setTimeout(FALLBACK_TIMEOUT_MS, () => req.destroy(new Error(`no answer in ${FALLBACK_TIMEOUT_MS} ms`)));
    req.on("error", reject);
    req.on("response", (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
      res.on("aborted", () => reject(new Error("the API server closed the connection mid-answer")));
    });
    req.end(payload);
  });
}

function parseBody(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
