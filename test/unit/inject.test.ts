// `inject` (daemon/inject/manifests.ts and sidecar.ts): the sidecar added to
// every kind of workload in multi-document YAML (here with --all; the opt-in
// rule is in inject-fidelity.test.ts), other documents untouched, per-pod
// overrides, and a bad override refused with its annotation named.
import test from "ava";
import { load, loadAll } from "js-yaml";
import { readFileSync } from "node:fs";
import { ManifestError, injectManifests } from "../../daemon/inject/manifests.js";
import { ANNOTATIONS, InjectError, SIDECAR_NAME, sidecarContainer } from "../../daemon/inject/sidecar.js";

const defaults = { image: "registry.example/metaparticle-sync:1.2.3", mode: "native" as const };

const podSpec = `
      containers:
        - name: app
          image: app:1
`;

const manifests = `# a Service passes through as written, comments and all
apiVersion: v1
kind: Service
metadata: {name: web}   # flow style stays
spec:
  ports: [{port: 80}]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    metadata:
      annotations:
        sync.metaparticle.io/lease-duration: 30s
        sync.metaparticle.io/renew-deadline: "20"
        sync.metaparticle.io/memory-limit: 256Mi
    spec:${podSpec}---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: nightly
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          initContainers:
            - name: migrate
              image: migrate:1
          containers:
            - name: report
              image: report:1
---
apiVersion: v1
kind: Pod
metadata:
  name: opted-out
  annotations:
    sync.metaparticle.io/inject: "false"
spec:${podSpec}---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: old-cluster
spec:
  template:
    metadata:
      annotations:
        sync.metaparticle.io/mode: container
    spec:${podSpec}`;

type Doc = Record<string, any>;

test("inject adds the sidecar to each workload, leaves other documents byte for byte, and a second run changes nothing", (t) => {
  const out = injectManifests(manifests, defaults, "input", { all: true });
  const docs = loadAll(out) as Doc[];
  t.deepEqual(
    docs.map((d) => d.kind),
    ["Service", "Deployment", "CronJob", "Pod", "StatefulSet"],
  );
  t.true(out.startsWith(manifests.slice(0, manifests.indexOf("---\n"))), "the Service's text is unchanged");
  t.true(
    out.includes(
      manifests.slice(manifests.indexOf("apiVersion: v1\nkind: Pod"), manifests.indexOf("---\napiVersion: apps/v1\nkind: StatefulSet")),
    ),
    "the opted-out Pod's text is unchanged",
  );

  const deployment = docs[1]!.spec.template.spec;
  t.deepEqual(
    deployment.initContainers.map((c: Doc) => c.name),
    [SIDECAR_NAME],
  );
  const sidecar = deployment.initContainers[0];
  t.is(sidecar.image, defaults.image);
  t.is(sidecar.restartPolicy, "Always");
  t.true(sidecar.args.includes("--lease-duration=30s") && sidecar.args.includes("--renew-deadline=20"), sidecar.args.join(" "));
  t.deepEqual(sidecar.resources, { requests: { cpu: "20m", memory: "96Mi" }, limits: { cpu: "500m", memory: "256Mi" } });
  t.deepEqual(
    deployment.containers.map((c: Doc) => c.name),
    ["app"],
  );

  // A CronJob's pod template; the sidecar comes first, so init containers can take locks too.
  const cron = docs[2]!.spec.jobTemplate.spec.template.spec;
  t.deepEqual(
    cron.initContainers.map((c: Doc) => c.name),
    [SIDECAR_NAME, "migrate"],
  );
  t.is(docs[3]!.spec.initContainers, undefined, "inject: false is respected");
  // Regular-container mode: last among the containers, no restartPolicy.
  const statefulSet = docs[4]!.spec.template.spec;
  t.is(statefulSet.initContainers, undefined);
  t.deepEqual(
    statefulSet.containers.map((c: Doc) => `${c.name}:${c.restartPolicy ?? ""}`),
    ["app:", `${SIDECAR_NAME}:`],
  );

  t.is(injectManifests(out, defaults, "input", { all: true }), out, "idempotent");
});

test("the injected sidecar is deploy/'s: probes on the health port, downward API, resources, locked-down security context", (t) => {
  const sidecar = sidecarContainer(undefined, defaults);
  t.deepEqual(sidecar.args, ["--listen=127.0.0.1:13131", "--health-listen=0.0.0.0:13132", "--shutdown-timeout=20s"]);
  t.deepEqual(
    sidecar.env!.map((e) => `${e.name}=${e.valueFrom?.fieldRef?.fieldPath}`),
    ["POD_NAME=metadata.name", "POD_NAMESPACE=metadata.namespace"],
  );
  t.like(sidecar.startupProbe, { grpc: { port: 13132, service: "readiness" } });
  t.like(sidecar.readinessProbe, { grpc: { port: 13132, service: "readiness" } });
  t.like(sidecar.livenessProbe, { grpc: { port: 13132, service: "liveness" } });
  t.like(sidecar.securityContext, {
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    runAsNonRoot: true,
    capabilities: { drop: ["ALL"] },
  });
  // The same as deploy/deployment.yaml's sidecar where they overlap; that example asks for metrics on 9464.
  const example = load(readFileSync(new URL("../../../deploy/deployment.yaml", import.meta.url), "utf8")) as Doc;
  const deployed = example.spec.template.spec.initContainers[0];
  t.deepEqual(sidecar.resources, deployed.resources);
  t.deepEqual(sidecarContainer({ [ANNOTATIONS.metricsPort]: "9464" }, defaults).args, deployed.args);
});

test("a bad override is refused with the annotation named", (t) => {
  const cases: Array<[string, string, RegExp]> = [
    [ANNOTATIONS.leaseDuration, "soon", /"soon" is not a duration/],
    [ANNOTATIONS.leaseDuration, "1.5s", /whole seconds/],
    [ANNOTATIONS.renewDeadline, "20s", /shorter than the lease duration/],
    [ANNOTATIONS.logLevel, "loud", /must be one of/],
    [ANNOTATIONS.memoryLimit, "lots", /not a resource quantity/],
    [ANNOTATIONS.image, "two words", /not an image reference/],
    [ANNOTATIONS.mode, "sidecar", /must be native or container/],
  ];
  for (const [annotation, value, problem] of cases) {
    const error = t.throws(() => sidecarContainer({ [annotation]: value }, defaults), { instanceOf: InjectError });
    t.is(error?.annotation, annotation);
    t.regex(error!.message, new RegExp(`^annotation ${annotation.replace(/[./]/g, "\\$&")}: `));
    t.regex(error!.message, problem, annotation);
  }
  const inManifest = t.throws(
    () =>
      injectManifests(
        `kind: Pod\nmetadata:\n  name: p\n  annotations:\n    ${ANNOTATIONS.inject}: "true"\n    ${ANNOTATIONS.cpuLimit}: fast\nspec:${podSpec}`,
        defaults,
        "app.yaml",
      ),
    { instanceOf: ManifestError },
  );
  t.regex(inManifest!.message, /^app\.yaml, document 1, line 6: annotation sync\.metaparticle\.io\/cpu-limit: .*\(Pod p\)$/);
});
