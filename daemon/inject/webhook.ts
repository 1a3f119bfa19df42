// The mutating admission webhook: the API server sends each new Pod in an
// AdmissionReview; a pod annotated sync.metaparticle.io/inject: "true" gets
// the sidecar (sidecar.ts) as a JSON Patch, every other pod is allowed as it
// is. A bad override annotation is denied with a message naming it, so the
// mistake shows in `kubectl apply` or the ReplicaSet's events rather than as
// a sidecar that will not start. Served over TLS with the certificate and key
// from files (a Secret mounted as tls.crt and tls.key, as cert-manager
// writes it), re-read when they change.
//
// Only admission.k8s.io/v1 is spoken: the API server sends the first version
// of the configuration's admissionReviewVersions that it knows, and takes an
// answer only in the version it sent, so a v1beta1 (or unknown) review is
// answered 400 with a message rather than in the wrong version. Anything but
// a Pod is allowed unchanged; a body over MAX_BODY_BYTES gets 413 and no more
// of it is kept; one that is not an AdmissionReview gets 400 with a message.
import { X509Certificate, createPrivateKey } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { createSecureContext } from "node:tls";
import { ConfigError } from "../config.js";
import { type Server, createServer } from "node:https";
import type { AddressInfo } from "node:net";
import type { V1Pod, V1PodSpec } from "@kubernetes/client-node";
import type { Logger } from "../log.js";
import { type InjectDefaults, InjectError, sidecarPatch, wantsSidecar } from "./sidecar.js";

/** The largest AdmissionReview read: a Pod is at most what etcd stores (1.5 MiB by default), sent as JSON once. */
export const MAX_BODY_BYTES = 4 * 1024 * 1024;
export const ADMISSION_VERSION = "admission.k8s.io/v1";

/** A request that is not an AdmissionReview this webhook can answer; the message says why. */
export class BadReview extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BadReview";
  }
}

export interface WebhookOptions extends InjectDefaults {
  /** host:port to listen on. */
  readonly listen: string;
  readonly certFile: string;
  readonly keyFile: string;
  /** How often to look for a renewed certificate; default one minute. */
  readonly reloadIntervalMs?: number;
  /** Called after each review with the pod's name and what was answered (for metrics, logs and tests). */
  readonly onReview?: (pod: string, outcome: "patched" | "allowed" | "denied") => void;
}

interface AdmissionReview {
  apiVersion?: string;
  kind?: string;
  request?: {
    uid: string;
    kind?: { group?: string; version?: string; kind?: string };
    subResource?: string;
    object?: V1Pod;
    namespace?: string;
  };
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);

/** Checks that `body` is a v1 AdmissionReview with a request; throws BadReview saying what is wrong. */
function checkReview(body: unknown): asserts body is AdmissionReview {
  if (!isObject(body))
    throw new BadReview(
      `expected an AdmissionReview object, got ${body === null ? "null" : Array.isArray(body) ? "an array" : typeof body}`,
    );
  if (body.kind !== "AdmissionReview") throw new BadReview(`expected kind AdmissionReview, got ${JSON.stringify(body.kind ?? null)}`);
  if (body.apiVersion !== ADMISSION_VERSION) {
    throw new BadReview(
      `AdmissionReview apiVersion ${JSON.stringify(body.apiVersion ?? null)} is not supported: this webhook speaks only ${ADMISSION_VERSION} ` +
        `(admissionReviewVersions: ["v1"] in the MutatingWebhookConfiguration)`,
    );
  }
  const request = body.request;
  if (!isObject(request)) throw new BadReview("the AdmissionReview has no request");
  if (typeof request.uid !== "string" || request.uid === "") throw new BadReview("the AdmissionReview's request has no uid");
}

/** Whether the request is for a Pod itself (core group, v1; not a subresource such as pods/binding). */
function isPod(request: NonNullable<AdmissionReview["request"]>): boolean {
  const kind = request.kind;
  return isObject(kind) && kind.kind === "Pod" && (kind.group ?? "") === "" && (kind.version ?? "v1") === "v1" && !request.subResource;
}

/**
 * The answer to one AdmissionReview: allowed with a patch, allowed as is, or
 * denied. Throws BadReview for a body that is not a v1 AdmissionReview.
 */
export function review(body: unknown, defaults: InjectDefaults, log: Logger): object {
  checkReview(body);
  const request = body.request!;
  const answer = (response: object) => ({
    apiVersion: ADMISSION_VERSION,
    kind: "AdmissionReview",
    response: { uid: request.uid, ...response },
  });
  if (!isPod(request)) return answer({ allowed: true });
  const pod = request.object;
  if (!isObject(pod) || !isObject(pod.spec)) return answer({ allowed: true });
  const metadata = isObject(pod.metadata) ? pod.metadata : {};
  const annotations = isObject(metadata.annotations) ? metadata.annotations : undefined;
  const labels = isObject(metadata.labels) ? metadata.labels : undefined;
  let patch: object[];
  try {
    if (!wantsSidecar(annotations, labels)) return answer({ allowed: true });
    patch = sidecarPatch(annotations, pod.spec as unknown as V1PodSpec, defaults);
  } catch (err) {
    if (!(err instanceof InjectError)) throw err;
    const name = String(metadata.name ?? metadata.generateName ?? "");
    log.info({ namespace: request.namespace, pod: name, annotation: err.annotation }, `denied: ${err.message}`);
    return answer({ allowed: false, status: { code: 400, reason: "BadRequest", message: `metaparticle-sync: ${err.message}` } });
  }
  if (patch.length === 0) return answer({ allowed: true });
  return answer({ allowed: true, patchType: "JSONPatch", patch: Buffer.from(JSON.stringify(patch)).toString("base64") });
}

/**
 * Reads and checks the certificate and key, throwing ConfigError naming the
 * flag and the file at fault: unreadable, not PEM, or a key that does not
 * belong to the certificate.
 */
export function checkCredentials(certFile: string, keyFile: string): { cert: Buffer; key: Buffer } {
  const read = (flag: string, file: string) => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new ConfigError(flag, `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  const cert = read("--tls-cert", certFile);
  const key = read("--tls-key", keyFile);
  try {
    new X509Certificate(cert);
  } catch {
    throw new ConfigError("--tls-cert", `${certFile} is not a PEM certificate (tls.crt of a kubernetes.io/tls Secret)`);
  }
  try {
    createPrivateKey(key);
  } catch {
    throw new ConfigError("--tls-key", `${keyFile} is not a PEM private key (tls.key of a kubernetes.io/tls Secret)`);
  }
  try {
    createSecureContext({ cert, key });
  } catch {
    throw new ConfigError("--tls-key", `the key in ${keyFile} does not belong to the certificate in ${certFile}`);
  }
  return { cert, key };
}

export interface Webhook {
  readonly port: number;
  close(): Promise<void>;
}

/** Serves POST /mutate (AdmissionReview v1) and GET /healthz over TLS. */
export async function startWebhook(options: WebhookOptions, log: Logger): Promise<Webhook> {
  const credentials = () => checkCredentials(options.certFile, options.keyFile);
  const server: Server = createServer({ ...credentials(), minVersion: "TLSv1.2" }, (req, res) => {
    if (req.method === "GET" && req.url === "/healthz") {
      res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
      return;
    }
    if (req.method !== "POST" || req.url?.split("?")[0] !== "/mutate") {
      res.writeHead(404).end();
      return;
    }
    const refuse = (status: number, message: string) => {
      log.warn({ status, err: message }, "bad admission request");
      if (!res.headersSent) res.writeHead(status, { "content-type": "text/plain", connection: "close" }).end(`${message}\n`);
    };
    const tooLarge = () => {
      refuse(413, `request body over ${MAX_BODY_BYTES} bytes: an AdmissionReview of one Pod is far smaller`);
      // Nothing more is kept. What is still in flight is read and dropped for a few seconds, so that the
      // client reads the answer (closing on unread data would reset the connection under it), then the
      // connection is closed.
      req.removeAllListeners("data");
      req.resume();
      const cutOff = setTimeout(() => req.socket.destroy(), 5_000);
      cutOff.unref();
      req.once("end", () => clearTimeout(cutOff));
      req.once("close", () => clearTimeout(cutOff));
    };
    if (Number(req.headers["content-length"] ?? 0) > MAX_BODY_BYTES) {
      tooLarge();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("error", () => undefined);
    req.on("data", (chunk: Buffer) => {
      if (size > MAX_BODY_BYTES) return;
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        chunks.length = 0;
        tooLarge();
      } else chunks.push(chunk);
    });
    req.on("end", () => {
      if (size > MAX_BODY_BYTES) return;
      try {
        let body: unknown;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
        } catch (err) {
          throw new BadReview(`the body is not JSON: ${(err as Error).message}`);
        }
        const answer = review(body, options, log) as { response: { allowed: boolean; patch?: string } };
        const pod: unknown = (body as AdmissionReview).request?.object?.metadata;
        options.onReview?.(
          isObject(pod) ? String(pod.name ?? pod.generateName ?? "") : "",
          !answer.response.allowed ? "denied" : answer.response.patch ? "patched" : "allowed",
        );
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(answer));
      } catch (err) {
        if (err instanceof BadReview) refuse(400, err.message);
        else {
          log.error({ err }, "could not answer an admission request");
          refuse(500, `internal error: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
    });
  });
  server.on("clientError", (_err, socket) => socket.destroy());
  // cert-manager renews the Secret; the kubelet updates the mounted files; new connections get the new certificate.
  const modified = () => `${statSync(options.certFile).mtimeMs}/${statSync(options.keyFile).mtimeMs}`;
  let seen = modified();
  const reload = setInterval(() => {
    try {
      const now = modified();
      if (now === seen) return;
      server.setSecureContext(credentials());
      seen = now;
      log.info({ certFile: options.certFile }, "loaded a renewed certificate");
    } catch (err) {
      log.warn({ err: err instanceof Error ? err.message : String(err) }, "could not reload the certificate; keeping the current one");
    }
  }, options.reloadIntervalMs ?? 60_000);
  reload.unref();
  const [host, port] = splitHostPort(options.listen);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => resolve());
    });
  } catch (err) {
    clearInterval(reload);
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === "EADDRINUSE"
        ? "the address is already in use"
        : code === "EADDRNOTAVAIL"
          ? "no interface has that address"
          : (err as Error).message;
    throw new ConfigError("--listen", `cannot listen on ${options.listen}: ${why}`);
  }
  const address = server.address() as AddressInfo;
  log.info({ address: `${address.address}:${address.port}`, image: options.image, mode: options.mode }, "injection webhook listening");
  return {
    port: address.port,
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(reload);
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function splitHostPort(address: string): [string, number] {
  const colon = address.lastIndexOf(":");
  return [address.slice(0, colon).replace(/^\[|\]$/g, ""), Number(address.slice(colon + 1))];
}
