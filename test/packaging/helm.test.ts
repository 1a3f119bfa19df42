// The Helm chart (deploy/helm/metaparticle-sync) with a helm built from its Go
// module (scripts/install-helm.sh): it lints, renders what the kustomize base
// and the injector components install, refuses incomplete certificate values
// naming the value, and every object it renders passes server-side dry-run
// apply on the real API server of test/controlplane (cert-manager's objects
// against cert-manager's own CRDs); then helm itself installs and uninstalls it.
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { load, loadAll } from "js-yaml";
import { INJECTOR_LABEL } from "../../daemon/inject/sidecar.js";
import type { ControlPlane } from "../controlplane/controlplane.js";
import { certificates } from "../support/certificates.js";
import { kubeSuite } from "../support/kube-env.js";

/** Every test here administers the harness's own control plane (CRDs, dry-run applies, a helm install). */
const { controlPlaneTest: chartTest } = kubeSuite();

const REPO = fileURLToPath(new URL("../../../", import.meta.url));
const CHART = join(REPO, "deploy", "helm", "metaparticle-sync");
const HELM = join(REPO, ".cache", "tools", "bin", "helm");
const CERT_MANAGER_CRDS = join(REPO, ".cache", "tools", "cert-manager-crds");
const HELM_TIMEOUT_MS = 60_000;

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: any;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function helm(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      HELM,
      args,
      {
        timeout: HELM_TIMEOUT_MS,
        maxBuffer: 16 * 1024 * 1024,
        // helm keeps its cache, config and data under these; none of the user's.
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          HELM_CACHE_HOME: helmHome,
          HELM_CONFIG_HOME: helmHome,
          HELM_DATA_HOME: helmHome,
          ...env,
        },
      },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const helmHome = mkdtempSync(join(tmpdir(), "msync-helm-home-"));
process.on("exit", () => rmSync(helmHome, { recursive: true, force: true }));

/** `helm template` of the chart into `namespace`; throws with helm's message if it fails. */
async function render(namespace: string, set: string[] = []): Promise<K8sObject[]> {
  const run = await helm(["template", "msync", CHART, "--namespace", namespace, ...set.flatMap((s) => ["--set", s])]);
  if (run.code !== 0) throw new Error(`helm template failed (${run.code}): ${run.stderr}`);
  return (loadAll(run.stdout) as Array<K8sObject | null>).filter((o): o is K8sObject => o !== null);
}

function byKind(objects: K8sObject[], kind: string): K8sObject {
  const found = objects.filter((o) => o.kind === kind);
  if (found.length !== 1) throw new Error(`expected one ${kind}, rendered ${found.length}`);
  return found[0]!;
}

/** A kustomize source file's objects. */
function deployFile(path: string): K8sObject[] {
  return loadAll(readFileSync(join(REPO, "deploy", path), "utf8")) as K8sObject[];
}

const collections: Record<string, { path: string; namespaced: boolean }> = {
  ServiceAccount: { path: "/api/v1", namespaced: true },
  Service: { path: "/api/v1", namespaced: true },
  Role: { path: "/apis/rbac.authorization.k8s.io/v1", namespaced: true },
  RoleBinding: { path: "/apis/rbac.authorization.k8s.io/v1", namespaced: true },
  Deployment: { path: "/apis/apps/v1", namespaced: true },
  MutatingWebhookConfiguration: { path: "/apis/admissionregistration.k8s.io/v1", namespaced: false },
  Issuer: { path: "/apis/cert-manager.io/v1", namespaced: true },
  Certificate: { path: "/apis/cert-manager.io/v1", namespaced: true },
};

/** Server-side apply of one object with dryRun=All: the API server validates it (schemas, defaults, admission) and keeps nothing. */
async function dryRunApply(cp: ControlPlane, object: K8sObject) {
  const collection = collections[object.kind];
  if (collection === undefined) throw new Error(`the test has no API path for kind ${object.kind}; add it`);
  const plural = `${object.kind.toLowerCase()}${object.kind.endsWith("s") ? "es" : "s"}`;
  const scope = collection.namespaced ? `/namespaces/${object.metadata.namespace}` : "";
  const path = `${collection.path}${scope}/${plural}/${object.metadata.name}?fieldManager=metaparticle-sync-test&dryRun=All&fieldValidation=Strict`;
  return cp.request("PATCH", path, object, { contentType: "application/apply-patch+yaml" });
}

/** A CA bundle as a user would give it: base64 of the CA's PEM. */
function caBundle(): string {
  const dir = mkdtempSync(join(tmpdir(), "msync-chart-ca-"));
  try {
    return readFileSync(certificates(dir).ca).toString("base64");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

chartTest("helm lint passes, with a provided Secret and with cert-manager", async (t) => {
  for (const values of [[`injector.tls.caBundle=${caBundle()}`], ["injector.tls.source=cert-manager"], ["injector.enabled=false"]]) {
    const run = await helm(["lint", "--strict", CHART, ...values.flatMap((v) => ["--set", v])]);
    t.is(run.code, 0, `helm lint --set ${values.join(",")}:\n${run.stdout}${run.stderr}`);
    t.regex(run.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
  }
});

chartTest("incomplete or invalid values are refused before anything is applied, naming the value", async (t) => {
  const missing = await helm(["template", "msync", CHART]);
  t.not(missing.code, 0);
  t.regex(missing.stderr, /injector\.tls\.caBundle is required with injector\.tls\.source=secret/);
  // values.schema.json
  for (const [value, message] of [
    ["injector.tls.source=vault", /at '\/injector\/tls\/source': value must be one of 'secret', 'cert-manager'/],
    ["injector.mode=sidecar", /at '\/injector\/mode': value must be one of 'native', 'container'/],
    ["injector.failurePolicy=Sometimes", /at '\/injector\/failurePolicy': value must be one of 'Ignore', 'Fail'/],
    ["injector.port=99999", /at '\/injector\/port': maximum/],
  ] as const) {
    const refused = await helm(["template", "msync", CHART, "--set", "injector.tls.caBundle=Y2E=", "--set", value]);
    t.not(refused.code, 0, value);
    t.regex(refused.stderr, message, value);
  }
  // Without the injector, no certificate is needed.
  const rbacOnly = await render("apps", ["injector.enabled=false"]);
  t.deepEqual(rbacOnly.map((o) => o.kind).sort(), ["Role", "RoleBinding", "ServiceAccount"]);
});

chartTest("the chart installs what the kustomize base and the injector components install", async (t) => {
  const bundle = caBundle();
  const objects = await render("default", [`injector.tls.caBundle=${bundle}`]);
  t.deepEqual(objects.map((o) => `${o.kind}/${o.metadata.name}`).sort(), [
    "Deployment/metaparticle-sync-injector",
    "MutatingWebhookConfiguration/metaparticle-sync-injector",
    "Role/metaparticle-sync",
    "RoleBinding/metaparticle-sync",
    "Service/metaparticle-sync-injector",
    "ServiceAccount/metaparticle-sync",
    "ServiceAccount/metaparticle-sync-injector",
  ]);
  for (const object of objects) {
    t.is(object.metadata.labels?.["app.kubernetes.io/part-of"], "metaparticle-sync", `${object.kind} is labelled as the base's`);
    if (object.kind !== "MutatingWebhookConfiguration") t.is(object.metadata.namespace, "default", `${object.kind} has its namespace`);
  }

  // The sidecar's RBAC: the same Role, bound to the same ServiceAccount.
  const [role] = deployFile("role.yaml");
  t.deepEqual(byKind(objects, "Role").rules, role!.rules);
  const [binding] = deployFile("rolebinding.yaml");
  t.deepEqual(byKind(objects, "RoleBinding").roleRef, binding!.roleRef);
  t.deepEqual(byKind(objects, "RoleBinding").subjects, binding!.subjects);

  // The webhook configuration: the same webhook, with the CA given.
  const [kustomizeWebhook] = deployFile("components/injector/mutatingwebhookconfiguration.yaml");
  const [chartHook] = byKind(objects, "MutatingWebhookConfiguration").webhooks;
  const [baseHook] = kustomizeWebhook!.webhooks;
  t.is(chartHook.clientConfig.caBundle, bundle);
  t.deepEqual({ ...chartHook, clientConfig: { service: chartHook.clientConfig.service } }, baseHook);

  // The injector: the same pod, but for the chart's extra labels and the settings it spells out.
  const [kustomizeDeployment] = deployFile("components/injector/deployment.yaml");
  const chartDeployment = byKind(objects, "Deployment");
  t.is(chartDeployment.spec.replicas, kustomizeDeployment!.spec.replicas);
  const chartPod = chartDeployment.spec.template.spec;
  const basePod = kustomizeDeployment!.spec.template.spec;
  // The label by which the webhook's objectSelector and inject --all leave the injector's own pods alone.
  t.is(chartDeployment.spec.template.metadata.labels[INJECTOR_LABEL.key], INJECTOR_LABEL.value);
  t.deepEqual(chartHook.objectSelector.matchExpressions, [{ key: INJECTOR_LABEL.key, operator: "NotIn", values: [INJECTOR_LABEL.value] }]);
  const [chartContainer] = chartPod.containers;
  const [baseContainer] = basePod.containers;
  t.deepEqual(
    baseContainer.args.filter((arg: string) => !chartContainer.args.includes(arg)),
    [],
    "every argument of the kustomize injector is the chart's too",
  );
  const probe = (p: { httpGet: { port: unknown } }) => ({ ...p, httpGet: { ...p.httpGet, port: 8443 } });
  t.deepEqual(probe(chartContainer.readinessProbe), probe(baseContainer.readinessProbe));
  t.deepEqual(probe(chartContainer.livenessProbe), probe(baseContainer.livenessProbe));
  for (const field of ["name", "image", "ports", "resources", "securityContext", "volumeMounts"]) {
    t.deepEqual(chartContainer[field], baseContainer[field], `container ${field}`);
  }
  for (const field of ["serviceAccountName", "automountServiceAccountToken", "securityContext", "volumes"]) {
    t.deepEqual(chartPod[field], basePod[field], `pod ${field}`);
  }
  const [kustomizeService] = deployFile("components/injector/service.yaml");
  t.deepEqual(byKind(objects, "Service").spec.ports, kustomizeService!.spec.ports);
  const [kustomizeAccount] = deployFile("components/injector/serviceaccount.yaml");
  t.is(
    objects.find((o) => o.metadata.name === "metaparticle-sync-injector" && o.kind === "ServiceAccount")!.automountServiceAccountToken,
    kustomizeAccount!.automountServiceAccountToken,
  );

  // With cert-manager: the same Issuer and Certificate as the cert-manager component, and the CA injected.
  const withCertManager = await render("default", ["injector.tls.source=cert-manager"]);
  const componentObjects = deployFile("components/injector-cert-manager/certificate.yaml");
  for (const kind of ["Issuer", "Certificate"]) {
    t.deepEqual(byKind(withCertManager, kind).spec, byKind(componentObjects, kind).spec, `${kind} spec`);
  }
  const hook = byKind(withCertManager, "MutatingWebhookConfiguration");
  t.is(
    hook.metadata.annotations?.["cert-manager.io/inject-ca-from"],
    kustomizeWebhook!.metadata.annotations?.["cert-manager.io/inject-ca-from"],
  );
  t.is(hook.webhooks[0].clientConfig.caBundle, undefined);
});

chartTest("every object the chart renders passes server-side dry-run apply, cert-manager's against its own CRDs", async (t) => {
  const cp = t.context.env.controlPlane!;
  // cert-manager's CRDs, from its Go module (scripts/install-helm.sh), created for real and waited on until established.
  for (const file of readdirSync(CERT_MANAGER_CRDS)) {
    const crd = (loadAll(readFileSync(join(CERT_MANAGER_CRDS, file), "utf8")) as K8sObject[]).find(
      (o) => o?.kind === "CustomResourceDefinition",
    )!;
    const created = await cp.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd);
    t.true(created.status === 201 || created.status === 409, `CRD ${crd.metadata.name}: ${created.status} ${created.body.slice(0, 300)}`);
    let established = false;
    for (let attempt = 0; attempt < 100 && !established; attempt++) {
      const got = await cp.request("GET", `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}`);
      established = (got.json?.status?.conditions ?? []).some(
        (c: { type: string; status: string }) => c.type === "Established" && c.status === "True",
      );
      if (!established) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    t.true(established, `CRD ${crd.metadata.name} established within 10 s`);
  }

  const variants: Record<string, string[]> = {
    "a provided Secret": [`injector.tls.caBundle=${caBundle()}`, "rbac.extraServiceAccounts={my-app,default}"],
    "cert-manager, self-signed": [
      "injector.tls.source=cert-manager",
      "injector.mode=container",
      "image.repository=registry.example/metaparticle-sync",
    ],
    "cert-manager, an issuer of yours": [
      "injector.tls.source=cert-manager",
      "injector.tls.certManager.issuerRef.name=my-ca",
      "injector.tls.certManager.issuerRef.kind=ClusterIssuer",
    ],
    "no injector": ["injector.enabled=false", "serviceAccount.create=false", "serviceAccount.name=my-app"],
  };
  for (const [variant, values] of Object.entries(variants)) {
    const namespace = await t.context.env.newNamespace("chart");
    const objects = await render(namespace, values);
    t.true(objects.length >= 2, variant);
    for (const object of objects) {
      const response = await dryRunApply(cp, object);
      t.true(
        response.status === 200 || response.status === 201,
        `${variant}: ${object.kind}/${object.metadata.name}: ${response.status} ${response.body.slice(0, 400)}`,
      );
    }
  }

  // The dry run judges: a value the API server refuses is caught here, not at install time.
  const namespace = await t.context.env.newNamespace("chart-bad");
  const bad = await render(namespace, [
    `injector.tls.caBundle=${caBundle()}`,
    "injector.namespaceSelector.matchLabels.team=not a label value!",
  ]);
  const refused = await dryRunApply(cp, byKind(bad, "MutatingWebhookConfiguration"));
  t.is(refused.status, 422, refused.body.slice(0, 300));
  t.regex(refused.body, /namespaceSelector/);
});

chartTest("helm install and uninstall the packaged chart on the real API server", async (t) => {
  const cp = t.context.env.controlPlane!;
  const namespace = await t.context.env.newNamespace("helm");
  const env = { KUBECONFIG: cp.kubeconfigPath };
  // The chart as a user gets it: packaged (helm package), at the one version.
  const packaged = mkdtempSync(join(tmpdir(), "msync-chart-"));
  t.teardown(() => rmSync(packaged, { recursive: true, force: true }));
  const pack = await helm(["package", CHART, "--destination", packaged]);
  t.is(pack.code, 0, pack.stdout + pack.stderr);
  const archive = join(
    packaged,
    `metaparticle-sync-${(load(readFileSync(join(CHART, "Chart.yaml"), "utf8")) as { version: string }).version}.tgz`,
  );
  // No injector: its cluster-wide webhook configuration would be shared with the other tests' namespaces.
  const install = await helm(
    [
      "install",
      "msync",
      archive,
      "--namespace",
      namespace,
      "--set",
      "injector.enabled=false",
      "--set",
      "rbac.extraServiceAccounts={my-app}",
    ],
    env,
  );
  t.is(install.code, 0, install.stdout + install.stderr);
  t.regex(install.stdout, /STATUS: deployed/);
  const binding = await cp.request("GET", `/apis/rbac.authorization.k8s.io/v1/namespaces/${namespace}/rolebindings/metaparticle-sync`);
  t.is(binding.status, 200, binding.body);
  t.deepEqual(
    binding.json.subjects.map((s: { name: string }) => s.name),
    ["metaparticle-sync", "my-app"],
  );
  const uninstall = await helm(["uninstall", "msync", "--namespace", namespace], env);
  t.is(uninstall.code, 0, uninstall.stdout + uninstall.stderr);
  t.is((await cp.request("GET", `/apis/rbac.authorization.k8s.io/v1/namespaces/${namespace}/roles/metaparticle-sync`)).status, 404);
});
