// `inject` keeps every manifest valid and as written (issue 21): merge keys,
// content on a "---" line, comments, quoting, CRLF, List items, typed
// annotation values, errors that name the file, the document and the line;
// the one opt-in rule (the pod template's annotation, --all for everything,
// never the injector's own pods); the sidecar's ports set by annotation and
// a clash with the app's declared ports refused.
import test from "ava";
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";
import { ManifestError, injectManifests } from "../../daemon/inject/manifests.js";
import { ANNOTATIONS, INJECTOR_LABEL, SIDECAR_NAME, sidecarContainer } from "../../daemon/inject/sidecar.js";

const defaults = { image: "registry.example/metaparticle-sync:1.2.3", mode: "native" as const };
type Doc = Record<string, any>;

/** The documents as kubectl reads them (YAML 1.1: merge keys resolved). */
function kubectlRead(text: string): Doc[] {
  return parseAllDocuments(text, { version: "1.1", merge: true }).map((d) => {
    if (d.errors.length > 0) throw d.errors[0];
    return d.toJS() as Doc;
  });
}

const optIn = `      annotations:\n        sync.metaparticle.io/inject: "true"\n`;

test("a container list with a merge key stays valid: the merge is kept and resolves as before", (t) => {
  const input = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    metadata:
${optIn}    spec:
      containers:
        - &container
          name: app
          image: app:1
        - <<: *container
          name: helper
`;
  const out = injectManifests(input, defaults);
  t.true(out.includes("- <<: *container"), out);
  t.false(out.includes("'<<'"), out);
  const spec = kubectlRead(out)[0]!.spec.template.spec;
  t.deepEqual(spec.containers, [
    { name: "app", image: "app:1" },
    { name: "helper", image: "app:1" },
  ]);
  t.is(spec.initContainers[0].name, SIDECAR_NAME);
});

test("a document with content on its --- line is kept (and injected)", (t) => {
  const input = `--- {kind: Service, apiVersion: v1, metadata: {name: s}}
--- {kind: Pod, apiVersion: v1, metadata: {name: p, annotations: {sync.metaparticle.io/inject: "true"}}, spec: {containers: [{name: app, image: "app:1"}]}}
`;
  const out = injectManifests(input, defaults);
  const docs = kubectlRead(out);
  t.deepEqual(
    docs.map((d) => d.kind),
    ["Service", "Pod"],
  );
  t.true(out.startsWith("--- {kind: Service, apiVersion: v1, metadata: {name: s}}\n"), out);
  t.is(docs[1]!.spec.initContainers[0].name, SIDECAR_NAME);
  t.deepEqual(docs[1]!.spec.containers, [{ name: "app", image: "app:1" }]);
});

test("comments and quoting in an injected document are kept", (t) => {
  const input = `# the web tier
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web # named for the Service
  labels:
    tier: 'front'
spec:
  replicas: 3 # three zones
  template:
    metadata:
${optIn}    spec:
      # the app itself
      containers:
        - name: app
          image: "app:1"
          args: ["--port", "8080"]
          env:
            - name: ENABLED
              value: "yes"
`;
  const out = injectManifests(input, defaults);
  for (const kept of [
    "# the web tier",
    "name: web # named for the Service",
    "tier: 'front'",
    "replicas: 3 # three zones",
    "# the app itself",
    'image: "app:1"',
    'args: ["--port", "8080"]',
    'value: "yes"',
    'sync.metaparticle.io/inject: "true"',
  ]) {
    t.true(out.includes(kept), `${kept}\n---\n${out}`);
  }
  t.is(out.split("# the web tier").length, 2, "the first comment once");
  t.is(kubectlRead(out)[0]!.spec.template.spec.containers[0].env[0].value, "yes", "still a string");
});

test("CRLF line endings are kept, in changed and unchanged documents alike", (t) => {
  const input = [
    "apiVersion: v1",
    "kind: ConfigMap",
    "metadata: {name: c}",
    "---",
    "apiVersion: v1",
    "kind: Pod",
    "metadata:",
    "  name: p",
    "  annotations:",
    '    sync.metaparticle.io/inject: "true"',
    "spec:",
    "  containers:",
    "    - name: app",
    "      image: app:1",
    "",
  ].join("\r\n");
  const out = injectManifests(input, defaults);
  t.true(out.includes(SIDECAR_NAME));
  t.false(/[^\r]\n/.test(out), JSON.stringify(out));
  t.true(out.startsWith("apiVersion: v1\r\nkind: ConfigMap\r\nmetadata: {name: c}\r\n---\r\n"));
});

test("the items of a List are injected", (t) => {
  const input = `apiVersion: v1
kind: List
items:
  - apiVersion: apps/v1
    kind: Deployment
    metadata: {name: web}
    spec:
      template:
        metadata:
          annotations: {sync.metaparticle.io/inject: "true"}
        spec:
          containers: [{name: app, image: "app:1"}]
  - apiVersion: v1
    kind: Service
    metadata: {name: web}
`;
  const out = injectManifests(input, defaults);
  const [list] = kubectlRead(out);
  t.is(list!.items[0].spec.template.spec.initContainers[0].name, SIDECAR_NAME);
  t.deepEqual(list!.items[1], { apiVersion: "v1", kind: "Service", metadata: { name: "web" } });
});

const pod = (annotations: string, labels = "") => `apiVersion: v1
kind: Pod
metadata:
  name: p
${labels}  annotations:
${annotations}spec:
  containers:
    - name: app
      image: app:1
`;

test("an unquoted inject: false never injects: it is refused, naming the annotation, file, document and line", (t) => {
  const input = `kind: ConfigMap\n---\n${pod("    sync.metaparticle.io/inject: false\n")}`;
  for (const all of [false, true]) {
    const error = t.throws(() => injectManifests(input, defaults, "app.yaml", { all }), { instanceOf: ManifestError });
    t.is(
      error!.message,
      'app.yaml, document 2, line 8: annotation sync.metaparticle.io/inject: must be the string "true" or "false", ' +
        'got false, a YAML boolean; annotation values are strings: quote it ("false") (Pod p)',
    );
  }
  t.false(injectManifests(input.replace("inject: false", 'inject: "false"'), defaults, "app.yaml", { all: true }).includes(SIDECAR_NAME));
});

test("an unquoted lease-duration: 30 is refused clearly, not with a TypeError", (t) => {
  const input = pod('    sync.metaparticle.io/inject: "true"\n    sync.metaparticle.io/lease-duration: 30\n');
  const error = t.throws(() => injectManifests(input, defaults, "app.yaml"), { instanceOf: ManifestError });
  t.is(
    error!.message,
    "app.yaml, document 1, line 7: annotation sync.metaparticle.io/lease-duration: must be a string, " +
      'got 30, a YAML number; annotation values are strings: quote it ("30") (Pod p)',
  );
  t.true(injectManifests(input.replace(": 30", ': "30"'), defaults).includes("--lease-duration=30"));
});

test("a YAML error names the file, the document and the line within the file", (t) => {
  const input = `kind: ConfigMap\nmetadata: {name: a}\n---\nkind: ConfigMap\nmetadata:\n  name: b\n   bad: indentation\n`;
  const error = t.throws(() => injectManifests(input, defaults, "app.yaml"), { instanceOf: ManifestError });
  // The line in the file, not in the document (where it would be 3 or 4).
  t.is(error!.message, "app.yaml, document 2, line 6, column 9: Nested mappings are not allowed in compact mappings");
});

test("one opt-in rule: the pod template's annotation; --all for every template but inject: \"false\"; never the injector's pods", (t) => {
  const workload = (name: string, templateMeta: string, ownMeta = "") => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${name}
${ownMeta}spec:
  template:
    metadata:
${templateMeta}    spec:
      containers: [{name: app, image: "app:1"}]
`;
  const input = [
    workload("opted-in", optIn),
    // The workload's own metadata is not the rule: the pod template's is.
    workload("own-metadata-only", "      labels: {app: x}\n", `  annotations:\n    sync.metaparticle.io/inject: "true"\n`),
    workload("silent", "      labels: {app: y}\n"),
    workload("opted-out", `      annotations:\n        sync.metaparticle.io/inject: "false"\n`),
    workload("metaparticle-sync-injector", `      labels:\n        app.kubernetes.io/name: metaparticle-sync-injector\n`),
  ].join("---\n");
  const injected = (out: string) =>
    kubectlRead(out)
      .filter((d) => d.spec.template.spec.initContainers !== undefined)
      .map((d) => d.metadata.name);
  t.deepEqual(injected(injectManifests(input, defaults)), ["opted-in"]);
  t.deepEqual(injected(injectManifests(input, defaults, "input", { all: true })), ["opted-in", "own-metadata-only", "silent"]);
});

test("the sidecar's ports are set by annotation; metrics are off unless a port is given", (t) => {
  const plain = sidecarContainer({}, defaults);
  t.deepEqual(plain.args, ["--listen=127.0.0.1:13131", "--health-listen=0.0.0.0:13132", "--shutdown-timeout=20s"]);
  t.deepEqual(plain.ports, [{ name: "msync-health", containerPort: 13132 }]);
  const moved = sidecarContainer(
    { [ANNOTATIONS.grpcPort]: "7000", [ANNOTATIONS.healthPort]: "7001", [ANNOTATIONS.metricsPort]: "7002" },
    defaults,
  );
  t.deepEqual(moved.args, [
    "--listen=127.0.0.1:7000",
    "--health-listen=0.0.0.0:7001",
    "--metrics-listen=0.0.0.0:7002",
    "--shutdown-timeout=20s",
  ]);
  t.deepEqual(moved.ports, [
    { name: "msync-health", containerPort: 7001 },
    { name: "msync-metrics", containerPort: 7002 },
  ]);
  t.like(moved.readinessProbe, { grpc: { port: 7001 } });
  t.throws(() => sidecarContainer({ [ANNOTATIONS.healthPort]: "70000" }, defaults), {
    message: 'annotation sync.metaparticle.io/health-port: must be a port number from 1 to 65535, got "70000"',
  });
  t.throws(() => sidecarContainer({ [ANNOTATIONS.metricsPort]: "13132" }, defaults), {
    message:
      "annotation sync.metaparticle.io/metrics-port: port 13132 is also the sidecar's sync.metaparticle.io/health-port; give each a different port",
  });
});

test("inject refuses a sidecar port the app declares, naming the annotation that moves it", (t) => {
  const input = `apiVersion: v1
kind: Pod
metadata:
  name: p
  annotations:
    sync.metaparticle.io/inject: "true"
    sync.metaparticle.io/metrics-port: "9464"
spec:
  containers:
    - name: app
      image: app:1
      ports:
        - containerPort: 9464
`;
  const error = t.throws(() => injectManifests(input, defaults, "app.yaml"), { instanceOf: ManifestError });
  t.is(
    error!.message,
    "app.yaml, document 1, line 7: annotation sync.metaparticle.io/metrics-port: the sidecar's port 9464 is also declared by " +
      'container "app" (containerPort); they share the pod\'s network, so set sync.metaparticle.io/metrics-port to a free port (Pod p)',
  );
  const health = t.throws(() => injectManifests(input.replace("containerPort: 9464", "containerPort: 13132"), defaults, "app.yaml"), {
    instanceOf: ManifestError,
  });
  t.regex(health!.message, /annotation sync\.metaparticle\.io\/health-port: the sidecar's port 13132 is also declared by container "app"/);
});

test("a pod spec reached through an alias or merge key gets the sidecar without changing the anchor's other uses", (t) => {
  const input = `apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Pod
    metadata: {name: plain}
    spec: &spec
      containers:
        - name: app
          image: app:1
  - apiVersion: v1
    kind: Pod
    metadata: {name: merged, annotations: {sync.metaparticle.io/inject: "true"}}
    spec:
      <<: *spec
      hostname: merged
  - apiVersion: v1
    kind: Pod
    metadata: {name: aliased, annotations: {sync.metaparticle.io/inject: "true"}}
    spec: *spec
`;
  const out = injectManifests(input, defaults);
  const [list] = kubectlRead(out);
  const names = (spec: Doc) => [...(spec.initContainers ?? []), ...spec.containers].map((c: Doc) => c.name);
  t.deepEqual(
    list!.items.map((item: Doc) => `${item.metadata.name}: ${names(item.spec).join(",")}`),
    ["plain: app", `merged: ${SIDECAR_NAME},app`, `aliased: ${SIDECAR_NAME},app`],
  );
  t.is(list!.items[1].spec.hostname, "merged");
  t.true(out.includes("<<: *spec"), out);
});

test("an opted-in pod template that is an anchor used elsewhere is refused, not changed in both places", (t) => {
  const input = `apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Pod
    metadata: {name: a, annotations: {sync.metaparticle.io/inject: "true"}}
    spec: &spec
      containers: [{name: app, image: "app:1"}]
  - apiVersion: v1
    kind: Pod
    metadata: {name: b}
    spec: *spec
`;
  const error = t.throws(() => injectManifests(input, defaults, "app.yaml"), { instanceOf: ManifestError });
  t.is(
    error!.message,
    "app.yaml, document 1, line 7: the pod template's &spec is also used through *spec elsewhere, which would get the sidecar too; " +
      "write the pod template out in full",
  );
});

test("the injector's own pods: excluded by the webhook configuration's objectSelector, and by inject even with --all", (t) => {
  const folder = new URL("../../../deploy/components/injector/", import.meta.url);
  const deployment = readFileSync(new URL("deployment.yaml", folder), "utf8");
  const [configuration] = kubectlRead(readFileSync(new URL("mutatingwebhookconfiguration.yaml", folder), "utf8"));
  t.deepEqual(configuration!.webhooks[0].objectSelector.matchExpressions, [
    { key: INJECTOR_LABEL.key, operator: "NotIn", values: [INJECTOR_LABEL.value] },
  ]);
  t.is(kubectlRead(deployment)[0]!.spec.template.metadata.labels[INJECTOR_LABEL.key], INJECTOR_LABEL.value);
  t.is(injectManifests(deployment, defaults, "deployment.yaml", { all: true }), deployment);
});
