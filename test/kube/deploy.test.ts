// deploy/ against the real API server: every manifest passes server-side
// dry-run apply, and the RBAC is proven both ways with real ServiceAccount
// tokens (TokenRequest).
import { readFileSync } from "node:fs";
import { loadAllYaml } from "@kubernetes/client-node";
import { SyncClientError, status } from "metaparticle-sync-client";
import type { ControlPlane } from "../controlplane/controlplane.js";
import { kubeSuite, spawnKubeDaemon } from "../support/kube-env.js";

/** Every test here administers the harness's own control plane (tokens, dry-run applies). */
const { controlPlaneTest: deployTest } = kubeSuite();

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  subjects?: Array<{ kind: string; namespace?: string }>;
}

const deployDir = new URL("../../../deploy/", import.meta.url);

/** The base's objects as kustomize would render them into `namespace`. */
function renderBase(namespace: string): Manifest[] {
  const kustomization = loadAllYaml(readFileSync(new URL("kustomization.yaml", deployDir), "utf8"))[0] as {
    resources: string[];
    labels?: Array<{ pairs: Record<string, string> }>;
  };
  return kustomization.resources.flatMap((file) =>
    (loadAllYaml(readFileSync(new URL(file, deployDir), "utf8")) as Manifest[]).map((object) => {
      const labels = Object.assign({}, ...(kustomization.labels ?? []).map((l) => l.pairs));
      const metadata = { ...object.metadata, namespace, labels: { ...(object.metadata as { labels?: object }).labels, ...labels } };
      const subjects = object.subjects?.map((s) => (s.kind === "ServiceAccount" ? { ...s, namespace } : s));
      return { ...object, metadata, ...(subjects ? { subjects } : {}) };
    }),
  );
}

const resourcePaths: Record<string, string> = {
  ServiceAccount: "/api/v1/namespaces/NS/serviceaccounts",
  Role: "/apis/rbac.authorization.k8s.io/v1/namespaces/NS/roles",
  RoleBinding: "/apis/rbac.authorization.k8s.io/v1/namespaces/NS/rolebindings",
  Deployment: "/apis/apps/v1/namespaces/NS/deployments",
};

/** Server-side apply of one object; `dryRun` validates without persisting. */
async function apply(cp: ControlPlane, object: Manifest, dryRun: boolean) {
  const base = resourcePaths[object.kind];
  if (base === undefined) throw new Error(`no path for kind ${object.kind}`);
  const path = `${base.replace("NS", object.metadata.namespace!)}/${object.metadata.name}?fieldManager=metaparticle-sync-test${dryRun ? "&dryRun=All" : ""}`;
  return cp.request("PATCH", path, object, { contentType: "application/apply-patch+yaml" });
}

async function serviceAccountToken(cp: ControlPlane, namespace: string, name: string): Promise<string> {
  const response = await cp.request("POST", `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`, {
    apiVersion: "authentication.k8s.io/v1",
    kind: "TokenRequest",
    spec: { expirationSeconds: 3600 },
  });
  if (response.status !== 201) throw new Error(`TokenRequest: ${response.status} ${response.body}`);
  return response.json.status.token as string;
}

deployTest("every manifest in deploy/ passes server-side dry-run apply", async (t) => {
  const namespace = await t.context.env.newNamespace("deploy");
  const objects = renderBase(namespace);
  t.deepEqual(objects.map((o) => o.kind).sort(), ["Deployment", "Role", "RoleBinding", "ServiceAccount"]);
  for (const object of objects) {
    const response = await apply(t.context.env.controlPlane!, object, true);
    t.true(
      response.status === 200 || response.status === 201,
      `${object.kind}/${object.metadata.name}: ${response.status} ${response.body.slice(0, 300)}`,
    );
  }
});

deployTest("RBAC: a daemon with only the deploy/ ServiceAccount's token works", async (t) => {
  const { env } = t.context;
  const cp = env.controlPlane!;
  const namespace = await env.newNamespace("rbac");
  for (const object of renderBase(namespace).filter((o) => o.kind !== "Deployment")) {
    t.is((await apply(cp, object, false)).status, 201, `${object.kind} applied`);
  }
  const kubeconfig = cp.kubeconfigForToken("metaparticle-sync", await serviceAccountToken(cp, namespace, "metaparticle-sync"), namespace);
  const daemon = await spawnKubeDaemon(env, namespace, [], kubeconfig);
  t.teardown(async () => {
    daemon.client.close();
    await daemon.stop();
  });
  const lock = await daemon.client.lock("rbac-lock", { waitTimeout: 30_000 });
  t.is(lock.token, 1);
  await lock.release();
  const leased = await daemon.client.tryLock("rbac-lease");
  t.truthy(leased, "create, update and get are allowed");
  await leased!.renew();
  await leased!.release();
  const campaign = daemon.client.campaign("rbac-election", { candidate: "pod-0" });
  t.teardown(() => campaign.close());
  const events = campaign[Symbol.asyncIterator]();
  while ((await events.next()).value?.type !== "elected");
  t.like(await daemon.client.getLeader("rbac-election", { fresh: true }), { leader: "pod-0", term: 1 });
});

deployTest("RBAC: a token without the Role gets PERMISSION_DENIED naming the verb and resource", async (t) => {
  const { env } = t.context;
  const cp = env.controlPlane!;
  const namespace = await env.newNamespace("norole");
  const sa = renderBase(namespace).find((o) => o.kind === "ServiceAccount")!;
  t.is((await apply(cp, sa, false)).status, 201);
  const kubeconfig = cp.kubeconfigForToken("no-role", await serviceAccountToken(cp, namespace, sa.metadata.name), namespace);
  const daemon = await spawnKubeDaemon(env, namespace, [], kubeconfig, { waitReady: false });
  t.teardown(async () => {
    daemon.client.close();
    await daemon.stop();
  });
  const err = (await daemon.client.lock("denied", { waitTimeout: 30_000 }).catch((e: unknown) => e)) as SyncClientError;
  t.is(err.code, status.PERMISSION_DENIED, err.message);
  t.regex(err.message, /cannot list resource "leases"/);
  const tried = (await daemon.client.tryLock("denied").catch((e: unknown) => e)) as SyncClientError;
  t.is(tried.code, status.PERMISSION_DENIED);
  const read = (await daemon.client.getLock("denied").catch((e: unknown) => e)) as SyncClientError;
  t.is(read.code, status.PERMISSION_DENIED);
});

deployTest("RBAC: a daemon whose ServiceAccount lives in another namespace cannot touch our Leases", async (t) => {
  const { env } = t.context;
  const cp = env.controlPlane!;
  const ours = await env.newNamespace("ours");
  const theirs = await env.newNamespace("theirs");
  for (const namespace of [ours, theirs]) {
    for (const object of renderBase(namespace).filter((o) => o.kind !== "Deployment")) await apply(cp, object, false);
  }
  // A lock held in our namespace by a daemon with our own token.
  const ourKubeconfig = cp.kubeconfigForToken("ours", await serviceAccountToken(cp, ours, "metaparticle-sync"), ours);
  const owner = await spawnKubeDaemon(env, ours, [], ourKubeconfig);
  t.teardown(async () => {
    owner.client.close();
    await owner.stop();
  });
  const held = await owner.client.lock("ours-only");
  // A daemon with the other namespace's ServiceAccount, pointed at our namespace.
  const theirKubeconfig = cp.kubeconfigForToken("theirs", await serviceAccountToken(cp, theirs, "metaparticle-sync"), theirs);
  const intruder = await spawnKubeDaemon(env, ours, [], theirKubeconfig, { waitReady: false });
  t.teardown(async () => {
    intruder.client.close();
    await intruder.stop();
  });
  const err = (await intruder.client.tryLock("ours-only").catch((e: unknown) => e)) as SyncClientError;
  t.is(err.code, status.PERMISSION_DENIED, err.message);
  t.regex(err.message, new RegExp(`system:serviceaccount:${theirs}:metaparticle-sync`));
  t.false(held.lost, "our holder is untouched");
  t.like(await owner.client.getLock("ours-only", { fresh: true }), { held: true, token: held.token });
  await held.release();
});
