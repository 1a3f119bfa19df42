// Fencing where the write lands, on Kubernetes objects (docs/design.md 3.12):
// the policy of deploy/components/fencing in the real kube-apiserver of
// test/controlplane, two real daemons on the Kubernetes backend, and holders
// in TypeScript and Go that stamp their token with their client's helper.
// The same scenario runs first without the policy, where the paused holder's
// stale write must land (so the scenario really produces one), then with it.
import type { ExecutionContext } from "ava";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadAllYaml } from "@kubernetes/client-node";
import { fenceAnnotationKey } from "metaparticle-sync-client";
import type { ControlPlane } from "../controlplane/controlplane.js";
import { type KubeEnv, kubeSuite } from "../support/kube-env.js";
import { type Language, type Outcome, Holder, ROOT, type Reply, pauseHolderPastLease, twoSidecars } from "./harness.js";

const { controlPlaneTest: test } = kubeSuite();

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
}

const COMPONENT = `${ROOT}deploy/components/fencing/`;
const PATHS: Record<string, string> = {
  ValidatingAdmissionPolicy: "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies",
  ValidatingAdmissionPolicyBinding: "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings",
};

/** The component's objects, in the order its kustomization lists them. */
function componentObjects(): Manifest[] {
  const kustomization = loadAllYaml(readFileSync(`${COMPONENT}kustomization.yaml`, "utf8"))[0] as { kind: string; resources: string[] };
  if (kustomization.kind !== "Component") throw new Error(`deploy/components/fencing is a ${kustomization.kind}, not a Component`);
  return kustomization.resources.flatMap((file) => loadAllYaml(readFileSync(`${COMPONENT}${file}`, "utf8")) as Manifest[]);
}

function applyObject(cp: ControlPlane, object: Manifest, dryRun: boolean) {
  const base = PATHS[object.kind];
  if (base === undefined) throw new Error(`no path for kind ${object.kind}`);
  const query = `fieldManager=metaparticle-sync-test${dryRun ? "&dryRun=All" : ""}`;
  return cp.request("PATCH", `${base}/${object.metadata.name}?${query}`, object, { contentType: "application/apply-patch+yaml" });
}

const configMaps = (namespace: string) => `/api/v1/namespaces/${namespace}/configmaps`;

/**
 * Waits until the API server enforces the policy: it takes effect only when
 * its policy cache has synced. The probe is a dry-run update lowering a
 * probe object's fence (nothing is stored), repeated until refused; bounded.
 */
async function waitForPolicy(cp: ControlPlane): Promise<number> {
  const namespace = "fencing-probe";
  await cp.createNamespace(namespace);
  const probe = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "probe", annotations: { [fenceAnnotationKey("probe")]: "2" } } };
  const created = await cp.request("POST", configMaps(namespace), probe);
  if (created.status !== 201) throw new Error(`probe object: ${created.status} ${created.body}`);
  const started = performance.now();
  for (let attempt = 1; attempt <= 300; attempt++) {
    const lowered = { ...created.json, metadata: { ...created.json.metadata, annotations: { [fenceAnnotationKey("probe")]: "1" } } };
    const answer = await cp.request("PUT", `${configMaps(namespace)}/probe?dryRun=All`, lowered);
    if (answer.status === 403 && answer.json?.message?.includes("stale fencing token")) return attempt;
    if (answer.status !== 200) throw new Error(`probe update: ${answer.status} ${answer.body}`);
    if (performance.now() - started > 30_000) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error("the fencing policy was not enforced within 30 s of being created");
}

/** The fenced object as stored at the end. */
type KubeOutcome = Outcome<{ writer: string; fence: string | undefined }>;

async function scenario(t: ExecutionContext<{ env: KubeEnv }>, language: Language): Promise<KubeOutcome> {
  const env = t.context.env;
  const cp = env.controlPlane!;
  const { a: sidecarA, b: sidecarB, namespace } = await twoSidecars(env, `fencing-${language.slice(0, 2)}`);
  const caFile = join(mkdtempSync(join(tmpdir(), "msync-fencing-")), "ca.pem");
  writeFileSync(caFile, cp.caPem);
  const holderA = await Holder.start(language);
  const holderB = await Holder.start(language);
  try {
    for (const holder of [holderA, holderB]) await holder.must("kubeConnect", { server: cp.server, token: cp.tokens.admin, caFile });
    const write = (holder: Holder, configMap: string, writer: string, lock?: string) =>
      holder.send("kubeWrite", { namespace, configMap, data: { writer }, ...(lock ? { lock } : {}) });

    const token = (await holderA.must("lock", { address: sidecarA.address, name: "orders" })).token as number;
    await holderA.must("kubeWrite", { namespace, configMap: "orders", data: { writer: "a" }, lock: "orders" });
    await holderA.must("kubeWrite", { namespace, configMap: "plain", data: { writer: "a" } });

    let newerToken = 0;
    await pauseHolderPastLease(holderA, sidecarA, async () => {
      newerToken = (await holderB.must("lock", { address: sidecarB.address, name: "orders" })).token as number;
      await holderB.must("kubeWrite", { namespace, configMap: "orders", data: { writer: "b" }, lock: "orders" });
    });
    const staleWrite = await write(holderA, "orders", "a-late", "orders");
    const newerSecondWrite = await write(holderB, "orders", "b-again", "orders");
    const unfencedWrite = await write(holderA, "plain", "a-late");
    const stored = (await cp.request("GET", `${configMaps(namespace)}/orders`)).json;
    sidecarA.signal("SIGCONT");
    return {
      token,
      newerToken,
      staleWrite,
      newerSecondWrite,
      unfencedWrite,
      stored: { writer: stored.data.writer, fence: stored.metadata.annotations?.[fenceAnnotationKey("orders")] },
    };
  } finally {
    sidecarA.signal("SIGCONT");
    await Promise.all([holderA.stop(), holderB.stop()]);
    await Promise.all([sidecarA.stop(), sidecarB.stop()]);
  }
}

test("fencing policy: the component's manifests pass server-side dry-run apply", async (t) => {
  const objects = componentObjects();
  t.deepEqual(objects.map((o) => o.kind).sort(), ["ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"]);
  for (const object of objects) {
    const answer = await applyObject(t.context.env.controlPlane!, object, true);
    t.true(answer.status === 200 || answer.status === 201, `${object.kind}: ${answer.status} ${answer.body.slice(0, 400)}`);
  }
});

async function fencingPolicyRemoved(t: ExecutionContext<{ env: KubeEnv }>, language: Language): Promise<void> {
  const outcome = await scenario(t, language);
  t.log(JSON.stringify(outcome));
  t.true(outcome.newerToken > outcome.token);
  t.true(outcome.staleWrite.ok, JSON.stringify(outcome.staleWrite));
  t.is(outcome.stored.writer, "b-again");
  // B's second write read A's stale stamp back, and wrote its own over it.
}

test("fencing policy removed [typescript]: the paused holder's stale write lands (the scenario really makes one)", (t) =>
  fencingPolicyRemoved(t, "typescript"));

test("fencing policy removed [go]: the paused holder's stale write lands (the scenario really makes one)", (t) =>
  fencingPolicyRemoved(t, "go"));

test("fencing policy: applied, it is enforced once the API server's policy cache has synced", async (t) => {
  const cp = t.context.env.controlPlane!;
  for (const object of componentObjects()) {
    const answer = await applyObject(cp, object, false);
    t.true(answer.status === 200 || answer.status === 201, `${object.kind}: ${answer.status} ${answer.body.slice(0, 400)}`);
  }
  const attempts = await waitForPolicy(cp);
  t.log(`enforced after ${attempts} probe(s)`);
  // Lowering, removing and malformed fences are refused, naming the lock and both tokens; a higher one passes.
  const namespace = "fencing-rules";
  await cp.createNamespace(namespace);
  const key = fenceAnnotationKey("rules");
  const created = await cp.request("POST", configMaps(namespace), {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: "rules", annotations: { [key]: "5", other: "x" } },
  });
  t.is(created.status, 201, created.body);
  const update = (annotations: Record<string, string>) =>
    cp.request("PUT", `${configMaps(namespace)}/rules`, { ...created.json, metadata: { ...created.json.metadata, annotations } });
  const removed = await update({ other: "x" });
  t.is(removed.status, 403);
  t.regex(removed.json.message, /stale fencing token for lock "rules": this write carries no token, the current token is 5$/);
  const malformed = await update({ [key]: "05" });
  t.is(malformed.status, 422);
  t.regex(
    malformed.json.message,
    /fence annotation fence\.sync\.metaparticle\.io\/rules must be a fencing token \(a positive decimal integer\), got "05"$/,
  );
  const badCreate = await cp.request("POST", configMaps(namespace), {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: "bad", annotations: { [key]: "-1" } },
  });
  t.is(badCreate.status, 422, badCreate.body);
  const raised = await update({ [key]: "6", other: "x" });
  t.is(raised.status, 200, raised.body);
});

async function fencingPolicy(t: ExecutionContext<{ env: KubeEnv }>, language: Language): Promise<void> {
  const outcome = await scenario(t, language);
  t.log(JSON.stringify(outcome));
  t.true(outcome.newerToken > outcome.token);
  t.false(outcome.staleWrite.ok, JSON.stringify(outcome.staleWrite));
  t.is(outcome.staleWrite.status, 403);
  t.is(
    outcome.staleWrite.message,
    `configmaps "orders" is forbidden: ValidatingAdmissionPolicy 'fencing.sync.metaparticle.io' with binding ` +
      `'fencing.sync.metaparticle.io' denied request: stale fencing token for lock "orders": ` +
      `this write carries token ${outcome.token}, the current token is ${outcome.newerToken}`,
  );
  t.true(outcome.newerSecondWrite.ok, JSON.stringify(outcome.newerSecondWrite));
  t.true(outcome.unfencedWrite.ok, JSON.stringify(outcome.unfencedWrite));
  t.deepEqual(outcome.stored, { writer: "b-again", fence: String(outcome.newerToken) });
}

test("fencing policy [typescript]: a holder paused past its lease cannot overwrite the next holder's write", (t) =>
  fencingPolicy(t, "typescript"));

test("fencing policy [go]: a holder paused past its lease cannot overwrite the next holder's write", (t) => fencingPolicy(t, "go"));
