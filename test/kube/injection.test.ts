// The injection webhook (daemon/inject/webhook.ts) called by the real
// kube-apiserver over TLS on loopback: a MutatingWebhookConfiguration with a
// url client config (https://127.0.0.1:PORT/mutate, no Service needed) and a
// CA made here with openssl.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { load, loadAll } from "js-yaml";
import { createLogger } from "../../daemon/log.js";
import { ANNOTATIONS, SIDECAR_NAME, sidecarContainer } from "../../daemon/inject/sidecar.js";
import { type Webhook, startWebhook } from "../../daemon/inject/webhook.js";
import type { ControlPlane } from "../controlplane/controlplane.js";
import { certificates } from "../support/certificates.js";
import { kubeSuite } from "../support/kube-env.js";

/** Every test here administers the harness's own control plane (webhook configurations). */
const { controlPlaneTest: webhookTest } = kubeSuite();

const defaults = { image: "registry.example/metaparticle-sync:0.1.0", mode: "native" as const };
const OPT_IN = "sync.metaparticle.io/injection";

/** The MutatingWebhookConfiguration of deploy/components/injector, pointed at a url instead of the Service. */
function webhookConfiguration(name: string, port: number, caFile: string) {
  return {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "MutatingWebhookConfiguration",
    metadata: { name },
    webhooks: [
      {
        name: "inject.sync.metaparticle.io",
        clientConfig: { url: `https://127.0.0.1:${port}/mutate`, caBundle: readFileSync(caFile).toString("base64") },
        rules: [{ operations: ["CREATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["pods"], scope: "Namespaced" }],
        namespaceSelector: { matchLabels: { [OPT_IN]: "enabled" } },
        objectSelector: {
          matchExpressions: [{ key: "app.kubernetes.io/name", operator: "NotIn", values: ["metaparticle-sync-injector"] }],
        },
        failurePolicy: "Ignore",
        sideEffects: "None",
        admissionReviewVersions: ["v1"],
        timeoutSeconds: 5,
        reinvocationPolicy: "Never",
      },
    ],
  };
}

async function ok(response: Promise<{ status: number; body: string; json: any }>, what: string) {
  const r = await response;
  if (r.status >= 300) throw new Error(`${what}: HTTP ${r.status} ${r.body.slice(0, 500)}`);
  return r.json;
}

/** JSON of `value`, without the random suffix of the ServiceAccount token volume's name. */
function normal(value: unknown): string {
  return JSON.stringify(value).replace(/kube-api-access-[a-z0-9]+/g, "kube-api-access");
}

function pod(name: string, annotations: Record<string, string> | undefined, extra: Record<string, unknown> = {}) {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, ...(annotations ? { annotations } : {}) },
    spec: { containers: [{ name: "app", image: "app:1" }], ...extra },
  };
}

webhookTest(
  "the API server calls the webhook over TLS: annotated pods get the sidecar, others are untouched, bad overrides are denied, and an outage blocks nothing",
  async (t) => {
    const cp: ControlPlane = t.context.env.controlPlane!;
    const dir = mkdtempSync(join(tmpdir(), "msync-webhook-"));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const tls = certificates(dir);
    const reviews: string[] = [];
    let webhook: Webhook | undefined = await startWebhook(
      {
        ...defaults,
        listen: "127.0.0.1:0",
        certFile: tls.cert,
        keyFile: tls.key,
        onReview: (name, outcome) => reviews.push(`${name}:${outcome}`),
      },
      createLogger("silent"),
    );
    t.teardown(() => webhook?.close());

    const namespace = `inject-${process.pid}`;
    await ok(
      cp.request("POST", "/api/v1/namespaces", {
        apiVersion: "v1",
        kind: "Namespace",
        metadata: { name: namespace, labels: { [OPT_IN]: "enabled" } },
      }),
      "namespace",
    );
    // No controller-manager here to create the namespace's default ServiceAccount, which admission requires.
    await ok(
      cp.request("POST", `/api/v1/namespaces/${namespace}/serviceaccounts`, {
        apiVersion: "v1",
        kind: "ServiceAccount",
        metadata: { name: "default" },
      }),
      "serviceaccount",
    );
    const configName = `msync-inject-${process.pid}`;
    await ok(
      cp.request(
        "POST",
        "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
        webhookConfiguration(configName, webhook.port, tls.ca),
      ),
      "webhook configuration",
    );
    t.teardown(() => cp.request("DELETE", `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${configName}`));
    const create = (body: object) => cp.request("POST", `/api/v1/namespaces/${namespace}/pods`, body);

    // The API server picks up a new webhook configuration within a moment; until then pods are created unmutated.
    const annotations = { [ANNOTATIONS.inject]: "true" };
    let injected: any;
    for (let attempt = 0; attempt < 100 && injected === undefined; attempt++) {
      const created = await ok(create(pod(`annotated-${attempt}`, annotations)), "annotated pod");
      if (created.spec.initContainers?.length) injected = created;
      else await new Promise((resolve) => setTimeout(resolve, 100));
    }
    t.truthy(injected, "the webhook was called within 10 s");
    t.true(reviews.includes(`${injected.metadata.name}:patched`));

    // Exactly as specified: the same as a pod that carries sidecarContainer() itself (which the webhook then leaves alone), after the same API defaults.
    const written = await ok(
      create(pod("written", annotations, { initContainers: [sidecarContainer(annotations, defaults)] })),
      "pod with the sidecar written in",
    );
    t.true(reviews.includes("written:allowed"), "a pod that already has the sidecar is left alone");
    t.is(normal(injected.spec.initContainers), normal(written.spec.initContainers));
    t.true(
      injected.spec.initContainers[0].volumeMounts.some(
        (m: { mountPath: string }) => m.mountPath === "/var/run/secrets/kubernetes.io/serviceaccount",
      ),
      "the sidecar gets the ServiceAccount token, which it needs for the Leases",
    );
    t.deepEqual(
      injected.spec.containers.map((c: { name: string }) => c.name),
      ["app"],
    );
    t.is(injected.spec.initContainers[0].name, SIDECAR_NAME);

    // Unannotated: reviewed, and stored exactly as without any webhook.
    const plain = await ok(create(pod("plain", undefined)), "unannotated pod");
    t.true(reviews.includes("plain:allowed"));
    const elsewhere = `plain-${process.pid}`;
    await ok(cp.request("POST", "/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name: elsewhere } }), "namespace");
    await ok(
      cp.request("POST", `/api/v1/namespaces/${elsewhere}/serviceaccounts`, {
        apiVersion: "v1",
        kind: "ServiceAccount",
        metadata: { name: "default" },
      }),
      "serviceaccount",
    );
    const unreviewed = await ok(
      cp.request("POST", `/api/v1/namespaces/${elsewhere}/pods`, pod("plain", undefined)),
      "pod outside the opted-in namespace",
    );
    t.false(reviews.some((r) => r.startsWith("plain:") && r !== "plain:allowed"));
    t.is(normal(plain.spec), normal(unreviewed.spec), "the same pod, whether the webhook saw it or not");
    t.is(plain.metadata.annotations, undefined);

    // Overrides apply.
    const overridden = await ok(
      create(
        pod("overridden", {
          ...annotations,
          [ANNOTATIONS.leaseDuration]: "30s",
          [ANNOTATIONS.logLevel]: "debug",
          [ANNOTATIONS.memoryLimit]: "300Mi",
          [ANNOTATIONS.image]: "mirror.example/msync:0.1.0",
          [ANNOTATIONS.mode]: "container",
        }),
      ),
      "overridden pod",
    );
    t.is(overridden.spec.initContainers, undefined, "container mode: no init container");
    const sidecar = overridden.spec.containers.at(-1);
    t.is(sidecar.name, SIDECAR_NAME);
    t.is(sidecar.image, "mirror.example/msync:0.1.0");
    t.true(sidecar.args.includes("--lease-duration=30s") && sidecar.args.includes("--log-level=debug"));
    t.is(sidecar.resources.limits.memory, "300Mi");

    // A malformed override: denied, with the annotation named.
    const denied = await create(pod("malformed", { ...annotations, [ANNOTATIONS.renewDeadline]: "forever" }));
    t.is(denied.status, 400, denied.body);
    t.regex(
      denied.json.message,
      /denied the request: metaparticle-sync: annotation sync\.metaparticle\.io\/renew-deadline: "forever" is not a duration/,
    );

    // The webhook down: failurePolicy Ignore, the pod is created, without the sidecar.
    await webhook.close();
    webhook = undefined;
    const during = await ok(create(pod("during-outage", annotations)), "pod during the outage");
    t.is(during.spec.initContainers, undefined);
  },
);

webhookTest("every manifest of deploy/components/injector passes server-side dry-run apply", async (t) => {
  const cp: ControlPlane = t.context.env.controlPlane!;
  const namespace = await t.context.env.newNamespace("injector");
  const folder = new URL("../../../deploy/components/injector/", import.meta.url);
  const component = load(readFileSync(new URL("kustomization.yaml", folder), "utf8")) as { resources: string[] };
  const paths: Record<string, string> = {
    ServiceAccount: `/api/v1/namespaces/${namespace}/serviceaccounts`,
    Deployment: `/apis/apps/v1/namespaces/${namespace}/deployments`,
    Service: `/api/v1/namespaces/${namespace}/services`,
    MutatingWebhookConfiguration: "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
  };
  const kinds: string[] = [];
  for (const file of component.resources) {
    for (const object of loadAll(readFileSync(new URL(file, folder), "utf8")) as Array<{ kind: string; metadata: { name: string } }>) {
      kinds.push(object.kind);
      const path = `${paths[object.kind]}/${object.metadata.name}?fieldManager=metaparticle-sync-test&dryRun=All`;
      const response = await cp.request("PATCH", path, object, { contentType: "application/apply-patch+yaml" });
      t.true(response.status === 200 || response.status === 201, `${object.kind}: ${response.status} ${response.body.slice(0, 300)}`);
    }
  }
  t.deepEqual(kinds.sort(), ["Deployment", "MutatingWebhookConfiguration", "Service", "ServiceAccount"]);
});
