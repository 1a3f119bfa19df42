// The mutating admission webhook: the API server sends each new Pod in an
// AdmissionReview; a pod annotated sync.metaparticle.io/inject: "true" gets
// the sidecar (sidecar.ts) as a JSON Patch, every other pod is allowed as it
// is. A bad override annotation is denied with a message naming it, so the
// mistake shows in `kubectl apply` or the ReplicaSet's events rather than as
// a sidecar that will not start. Served over TLS with the certificate and key
// from files (a Secret mounted as tls.crt and tls.key, as cert-manager
// writes it), re-read when they change.
import { readFileSync, statSync } from "node:fs";
import { type Server, createServer } from "node:https";
import type { AddressInfo } from "node:net";
import type { V1Pod } from "@kubernetes/client-node";
import type { Logger } from "../log.js";
import { type InjectDefaults, InjectError, sidecarPatch, wantsSidecar } from "./sidecar.js";

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
  request?: { uid: string; kind?: { kind: string }; object?: V1Pod; namespace?: string };
}

/** The answer to one AdmissionReview: allowed with a patch, allowed as is, or denied. */
export function review(body: AdmissionReview, defaults: InjectDefaults, log: Logger): object {
  const request = body.request;
  if (request === undefined) throw new Error("not an AdmissionReview: no request");
  const answer = (response: object) => ({
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    response: { uid: request.uid, ...response },
  });
  const pod = request.object;
  if (request.kind?.kind !== "Pod" || pod?.spec === undefined || !wantsSidecar(pod.metadata?.annotations)) return answer({ allowed: true });
  let patch: object[];
  try {
    patch = sidecarPatch(pod.metadata?.annotations, pod.spec, defaults);
  } catch (err) {
    if (!(err instanceof InjectError)) throw err;
    const name = pod.metadata?.name ?? pod.metadata?.generateName ?? "";
    log.info({ namespace: request.namespace, pod: name, annotation: err.annotation }, `denied: ${err.message}`);
    return answer({ allowed: false, status: { code: 400, reason: "BadRequest", message: `metaparticle-sync: ${err.message}` } });
  }
  if (patch.length === 0) return answer({ allowed: true });
  return answer({ allowed: true, patchType: "JSONPatch", patch: Buffer.from(JSON.stringify(patch)).toString("base64") });
}

export interface Webhook {
  readonly port: number;
  close(): Promise<void>;
}

/** Serves POST /mutate (AdmissionReview v1) and GET /healthz over TLS. */
export async function startWebhook(options: WebhookOptions, log: Logger): Promise<Webhook> {
  const credentials = () => ({ cert: readFileSync(options.certFile), key: readFileSync(options.keyFile) });
  const server: Server = createServer({ ...credentials(), minVersion: "TLSv1.2" }, (req, res) => {
    if (req.method === "GET" && req.url === "/healthz") {
      res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
      return;
    }
    if (req.method !== "POST" || req.url?.split("?")[0] !== "/mutate") {
      res.writeHead(404).end();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > 8 * 1024 * 1024)
        req.destroy(); // the API server sends at most a few MiB
      else chunks.push(chunk);
    });
    req.on("end", () => {
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as AdmissionReview;
        const answer = review(body, options, log) as { response: { allowed: boolean; patch?: string } };
        const pod = body.request?.object?.metadata;
        options.onReview?.(
          pod?.name ?? pod?.generateName ?? "",
          !answer.response.allowed ? "denied" : answer.response.patch ? "patched" : "allowed",
        );
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(answer));
      } catch (err) {
        log.warn({ err: err instanceof Error ? err.message : String(err) }, "bad admission request");
        res.writeHead(400, { "content-type": "text/plain" }).end(`${err instanceof Error ? err.message : String(err)}\n`);
      }
    });
  });
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
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
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
