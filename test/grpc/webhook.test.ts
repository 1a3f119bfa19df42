// The injection webhook's HTTP edge (daemon/inject/webhook.ts), served on
// loopback over TLS with a CA made here: only v1 AdmissionReviews are
// answered, only Pods are patched, an oversized body gets 413 without being
// read, a malformed one 400 with a message, and the webhook keeps serving.
// Start-up mistakes (--listen, the certificate files) give one line naming
// the flag and the file. (The webhook called by the real API server is in
// test/kube/injection.test.ts.)
import test from "ava";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { createLogger } from "../../daemon/log.js";
import { ANNOTATIONS } from "../../daemon/inject/sidecar.js";
import { MAX_BODY_BYTES, type Webhook, startWebhook } from "../../daemon/inject/webhook.js";
import { certificates } from "../support/certificates.js";
import { DAEMON_MAIN } from "../support/daemon-process.js";

const defaults = { image: "registry.example/metaparticle-sync:0.1.0", mode: "native" as const };
const dir = mkdtempSync(join(tmpdir(), "msync-webhook-edge-"));
const tls = certificates(dir);
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

let webhook: Webhook;
test.before(async () => {
  webhook = await startWebhook({ ...defaults, listen: "127.0.0.1:0", certFile: tls.cert, keyFile: tls.key }, createLogger("silent"));
});
test.after.always(() => webhook?.close());

interface Answer {
  status: number;
  body: string;
}

/** POSTs `body` to /mutate; answers the status and body (also when the server closes the connection after answering). */
function post(body: string | Buffer, headers: Record<string, string | number> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port: webhook.port,
        path: "/mutate",
        method: "POST",
        ca: [readCa()],
        headers: { "content-type": "application/json", ...headers },
        timeout: 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
        res.on("error", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
      },
    );
    req.on("timeout", () => req.destroy(new Error("no answer within 10 s")));
    req.on("error", reject);
    req.end(body);
  });
}

function readCa(): Buffer {
  return readFileSync(tls.ca);
}

function review(apiVersion: string, kind: { group: string; version: string; kind: string }, object: unknown) {
  return JSON.stringify({ apiVersion, kind: "AdmissionReview", request: { uid: "u-1", kind, operation: "CREATE", object } });
}
const POD = { group: "", version: "v1", kind: "Pod" };
const annotatedPod = {
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name: "p", annotations: { [ANNOTATIONS.inject]: "true" } },
  spec: { containers: [{ name: "app", image: "app:1" }] },
};

test("a v1 review of an annotated Pod is patched, in v1", async (t) => {
  const answer = await post(review("admission.k8s.io/v1", POD, annotatedPod));
  t.is(answer.status, 200, answer.body);
  const json = JSON.parse(answer.body);
  t.is(json.apiVersion, "admission.k8s.io/v1");
  t.is(json.response.uid, "u-1");
  t.is(json.response.patchType, "JSONPatch");
});

test("a pod declaring one of the sidecar's ports is denied, naming the annotation that moves it; moved, it is patched", async (t) => {
  const clashing = {
    ...annotatedPod,
    spec: { containers: [{ name: "app", image: "app:1", ports: [{ containerPort: 13132 }] }] },
  };
  const denied = JSON.parse((await post(review("admission.k8s.io/v1", POD, clashing))).body);
  t.is(denied.response.allowed, false);
  t.is(
    denied.response.status.message,
    'metaparticle-sync: annotation sync.metaparticle.io/health-port: the sidecar\'s port 13132 is also declared by container "app" ' +
      "(containerPort); they share the pod's network, so set sync.metaparticle.io/health-port to a free port",
  );
  const moved = { ...clashing, metadata: { name: "p", annotations: { [ANNOTATIONS.inject]: "true", [ANNOTATIONS.healthPort]: "13140" } } };
  const patched = JSON.parse((await post(review("admission.k8s.io/v1", POD, moved))).body);
  t.is(patched.response.patchType, "JSONPatch");
  const patch = JSON.parse(Buffer.from(patched.response.patch, "base64").toString("utf8"));
  t.true(patch[0].value[0].args.includes("--health-listen=0.0.0.0:13140"));
});

test("a v1beta1 or unknown AdmissionReview apiVersion is refused with 400 and a message, not answered as v1", async (t) => {
  for (const version of ["admission.k8s.io/v1beta1", "admission.k8s.io/v2", undefined]) {
    const body = JSON.parse(review("admission.k8s.io/v1", POD, annotatedPod));
    body.apiVersion = version;
    const answer = await post(JSON.stringify(body));
    t.is(answer.status, 400, `${version}: ${answer.body}`);
    t.regex(answer.body, /apiVersion .* is not supported: this webhook speaks only admission\.k8s\.io\/v1/);
  }
});

test("anything but a Pod is allowed without a patch, whatever its annotations", async (t) => {
  const kinds = [
    { group: "apps", version: "v1", kind: "Deployment" },
    { group: "example.com", version: "v1", kind: "Pod" },
    { group: "", version: "v1", kind: "ConfigMap" },
  ];
  for (const kind of kinds) {
    const answer = await post(review("admission.k8s.io/v1", kind, annotatedPod));
    t.is(answer.status, 200, answer.body);
    const json = JSON.parse(answer.body);
    t.deepEqual(json.response, { uid: "u-1", allowed: true }, JSON.stringify(kind));
  }
});

test("an oversized body is answered 413 and not read; the webhook keeps serving", async (t) => {
  const big = Buffer.alloc(10 * 1024 * 1024, " ");
  const declared = await post(big);
  t.is(declared.status, 413);
  t.regex(declared.body, new RegExp(`request body over ${MAX_BODY_BYTES} bytes`));
  // Without a length up front (chunked), it is cut off as it passes the limit.
  const chunked = await post(big, { "transfer-encoding": "chunked" });
  t.is(chunked.status, 413);
  t.is((await post(review("admission.k8s.io/v1", POD, annotatedPod))).status, 200);
});

test("a malformed or null body gets 400 with a message; the webhook keeps serving", async (t) => {
  const cases: Array<[string, RegExp]> = [
    ["null", /expected an AdmissionReview object, got null/],
    ["[]", /expected an AdmissionReview object, got an array/],
    ["{not json", /the body is not JSON/],
    ["", /the body is not JSON/],
    ['{"apiVersion":"admission.k8s.io/v1","kind":"Pod"}', /expected kind AdmissionReview, got "Pod"/],
    ['{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}', /has no request/],
    ['{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":null}', /has no request/],
    ['{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{}}', /request has no uid/],
  ];
  for (const [body, message] of cases) {
    const answer = await post(body);
    t.is(answer.status, 400, body);
    t.regex(answer.body, message, body);
  }
  // A Pod with odd metadata is still answered (allowed), not a crash.
  const odd = await post(review("admission.k8s.io/v1", POD, { metadata: null, spec: { containers: [] } }));
  t.is(odd.status, 200, odd.body);
  const typed = await post(
    review("admission.k8s.io/v1", POD, { ...annotatedPod, metadata: { annotations: { [ANNOTATIONS.inject]: true } } }),
  );
  t.is(JSON.parse(typed.body).response.allowed, false);
  t.regex(
    JSON.parse(typed.body).response.status.message,
    /annotation sync\.metaparticle\.io\/inject: must be the string "true" or "false"/,
  );
  t.is((await post(review("admission.k8s.io/v1", POD, annotatedPod))).status, 200);
});

const run = promisify(execFile);

/** Runs `main.js webhook ARGS`; answers its exit code and stderr. */
async function webhookCommand(args: string[]): Promise<{ code: number; stderr: string }> {
  try {
    await run(process.execPath, [DAEMON_MAIN, "webhook", ...args], { timeout: 30_000 });
    return { code: 0, stderr: "" };
  } catch (err) {
    const e = err as { code: number; stderr: string };
    return { code: e.code, stderr: e.stderr };
  }
}

test("start-up mistakes give one line naming the flag and the file", async (t) => {
  const notPem = join(dir, "not-pem.crt");
  writeFileSync(notPem, "hello\n");
  const files = [`--tls-cert=${tls.cert}`, `--tls-key=${tls.key}`];
  const cases: Array<[string[], string]> = [
    [["--listen=localhost", ...files], 'metaparticle-sync: bad setting --listen: must be host:port, got "localhost"'],
    [["--listen=127.0.0.1:http", ...files], 'metaparticle-sync: bad setting --listen: must be host:port, got "127.0.0.1:http"'],
    [
      ["--listen=127.0.0.1:0", `--tls-cert=${dir}/missing.crt`, `--tls-key=${tls.key}`],
      `metaparticle-sync: bad setting --tls-cert: cannot read ${dir}/missing.crt: ENOENT`,
    ],
    [
      ["--listen=127.0.0.1:0", `--tls-cert=${notPem}`, `--tls-key=${tls.key}`],
      `metaparticle-sync: bad setting --tls-cert: ${notPem} is not a PEM certificate (tls.crt of a kubernetes.io/tls Secret)`,
    ],
    [
      ["--listen=127.0.0.1:0", `--tls-cert=${tls.cert}`, `--tls-key=${notPem}`],
      `metaparticle-sync: bad setting --tls-key: ${notPem} is not a PEM private key (tls.key of a kubernetes.io/tls Secret)`,
    ],
    [
      ["--listen=127.0.0.1:0", `--tls-cert=${tls.cert}`, `--tls-key=${dir}/ca.key`],
      `metaparticle-sync: bad setting --tls-key: the key in ${dir}/ca.key does not belong to the certificate in ${tls.cert}`,
    ],
  ];
  for (const [args, line] of cases) {
    const { code, stderr } = await webhookCommand(args);
    t.is(code, 2, args.join(" "));
    t.is(stderr, `${line}\n`);
  }
  // A busy port.
  const busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, "127.0.0.1", resolve));
  t.teardown(() => busy.close());
  const port = (busy.address() as { port: number }).port;
  const { code, stderr } = await webhookCommand([`--listen=127.0.0.1:${port}`, ...files, "--log-level=error"]);
  t.is(code, 2);
  t.is(stderr, `metaparticle-sync: bad setting --listen: cannot listen on 127.0.0.1:${port}: the address is already in use\n`);
});
