// The sidecar that injection adds to a pod: the container of deploy/'s
// example (probes on a health-only port, the downward API, resources and a
// locked-down security context), with per-pod overrides read from the pod's
// annotations. The webhook and `inject` both use this file, so a pod comes
// out the same either way.
import type { V1Container, V1PodSpec } from "@kubernetes/client-node";
import { ConfigError, loadConfig } from "../config.js";

/** The annotations injection reads, all under sync.metaparticle.io/. */
export const ANNOTATIONS = {
  /** "true" adds the sidecar (the webhook needs it; `inject` adds it unless "false"). */
  inject: "sync.metaparticle.io/inject",
  /** "native" (default: an init container with restartPolicy Always, Kubernetes 1.29+) or "container". */
  mode: "sync.metaparticle.io/mode",
  image: "sync.metaparticle.io/image",
  leaseDuration: "sync.metaparticle.io/lease-duration",
  renewDeadline: "sync.metaparticle.io/renew-deadline",
  logLevel: "sync.metaparticle.io/log-level",
  cpuRequest: "sync.metaparticle.io/cpu-request",
  memoryRequest: "sync.metaparticle.io/memory-request",
  cpuLimit: "sync.metaparticle.io/cpu-limit",
  memoryLimit: "sync.metaparticle.io/memory-limit",
} as const;

/** The container's name; a pod that has a container or init container of this name is left alone. */
export const SIDECAR_NAME = "metaparticle-sync";

export type SidecarMode = "native" | "container";

export interface InjectDefaults {
  /** The sidecar image unless a pod's annotation names another. */
  readonly image: string;
  /** How the sidecar is added unless a pod's annotation says otherwise. */
  readonly mode: SidecarMode;
}

/** A pod annotation that cannot be applied; the message names it. */
export class InjectError extends Error {
  constructor(
    readonly annotation: string,
    problem: string,
  ) {
    super(`annotation ${annotation}: ${problem}`);
    this.name = "InjectError";
  }
}

const HEALTH_PORT = 13132;
const METRICS_PORT = 9464;
/** The sidecar's --shutdown-timeout; the pod's grace period must exceed it (deploy/ uses 30 s, the default). */
const SHUTDOWN_TIMEOUT_S = 20;
/** A Kubernetes resource quantity, such as 20m, 0.5, 192Mi or 1G. */
const QUANTITY = /^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;
const CONFIG_FLAGS: Record<string, string> = {
  "--lease-duration": ANNOTATIONS.leaseDuration,
  "--renew-deadline": ANNOTATIONS.renewDeadline,
  "--log-level": ANNOTATIONS.logLevel,
};

export type Annotations = Readonly<Record<string, string>> | undefined;

/** Whether the webhook should add the sidecar to a pod with these annotations. */
export function wantsSidecar(annotations: Annotations): boolean {
  return annotations?.[ANNOTATIONS.inject] === "true";
}

export function hasSidecar(spec: V1PodSpec): boolean {
  return [...(spec.initContainers ?? []), ...(spec.containers ?? [])].some((c) => c.name === SIDECAR_NAME);
}

/** Where the sidecar goes for these annotations. Throws InjectError for a mode that is neither native nor container. */
export function modeFor(annotations: Annotations, defaults: InjectDefaults): SidecarMode {
  const mode = annotations?.[ANNOTATIONS.mode] ?? defaults.mode;
  if (mode !== "native" && mode !== "container")
    throw new InjectError(ANNOTATIONS.mode, `must be native or container, got ${JSON.stringify(mode)}`);
  return mode;
}

/**
 * The sidecar container for a pod with these annotations. Every override is
 * checked as the daemon checks its settings, so a pod is never created with a
 * sidecar that would refuse to start; a bad one throws InjectError naming it.
 */
export function sidecarContainer(annotations: Annotations, defaults: InjectDefaults): V1Container {
  const mode = modeFor(annotations, defaults);
  const value = (key: string) => {
    const text = annotations?.[key];
    return text === undefined ? undefined : text.trim();
  };
  const args = [
    `--listen=127.0.0.1:13131`,
    `--health-listen=0.0.0.0:${HEALTH_PORT}`,
    `--metrics-listen=0.0.0.0:${METRICS_PORT}`,
    `--shutdown-timeout=${SHUTDOWN_TIMEOUT_S}s`,
  ];
  const overrides: string[] = [];
  for (const [flag, annotation] of Object.entries(CONFIG_FLAGS)) {
    const text = value(annotation);
    if (text !== undefined) overrides.push(`${flag}=${text}`);
  }
  try {
    loadConfig({ argv: ["--backend=memory", ...overrides], env: {}, readFile: () => undefined });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const flag = Object.keys(CONFIG_FLAGS).find((f) => err.message.startsWith(`${f}:`));
    if (flag === undefined) throw err;
    throw new InjectError(CONFIG_FLAGS[flag]!, err.message.slice(flag.length + 2));
  }
  args.push(...overrides);

  const quantity = (annotation: string, fallback: string) => {
    const text = value(annotation) ?? fallback;
    if (!QUANTITY.test(text))
      throw new InjectError(annotation, `${JSON.stringify(text)} is not a resource quantity such as 100m, 0.5, 192Mi or 1Gi`);
    return text;
  };
  const image = value(ANNOTATIONS.image) ?? defaults.image;
  if (image === "" || /\s/.test(image)) throw new InjectError(ANNOTATIONS.image, `${JSON.stringify(image)} is not an image reference`);

  const probe = (service: string, periodSeconds: number, failureThreshold: number) => ({
    grpc: { port: HEALTH_PORT, service },
    periodSeconds,
    failureThreshold,
  });
  return {
    name: SIDECAR_NAME,
    image,
    ...(mode === "native" ? { restartPolicy: "Always" } : {}),
    args,
    env: [
      { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
      { name: "POD_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
    ],
    ports: [
      { name: "msync-health", containerPort: HEALTH_PORT },
      { name: "msync-metrics", containerPort: METRICS_PORT },
    ],
    startupProbe: probe("readiness", 1, 60),
    readinessProbe: probe("readiness", 5, 3),
    livenessProbe: probe("liveness", 10, 3),
    resources: {
      requests: { cpu: quantity(ANNOTATIONS.cpuRequest, "20m"), memory: quantity(ANNOTATIONS.memoryRequest, "96Mi") },
      limits: { cpu: quantity(ANNOTATIONS.cpuLimit, "500m"), memory: quantity(ANNOTATIONS.memoryLimit, "384Mi") },
    },
    securityContext: {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    },
  };
}

/**
 * The pod spec with the sidecar added, or undefined if it already has one.
 * Native: first among the init containers, so that init containers can take
 * locks too, and ready before the app starts. Container: last among the
 * containers, so that the app stays the pod's default container.
 */
export function withSidecar(annotations: Annotations, spec: V1PodSpec, defaults: InjectDefaults): V1PodSpec | undefined {
  if (hasSidecar(spec)) return undefined;
  const sidecar = sidecarContainer(annotations, defaults);
  if (modeFor(annotations, defaults) === "native") return { ...spec, initContainers: [sidecar, ...(spec.initContainers ?? [])] };
  return { ...spec, containers: [...(spec.containers ?? []), sidecar] };
}

/** The JSON Patch (RFC 6902) that turns `spec`, at `path`, into `withSidecar`'s result; empty if nothing changes. */
export function sidecarPatch(annotations: Annotations, spec: V1PodSpec, defaults: InjectDefaults, path = "/spec"): object[] {
  if (hasSidecar(spec)) return [];
  const sidecar = sidecarContainer(annotations, defaults);
  if (modeFor(annotations, defaults) === "native") {
    return spec.initContainers === undefined
      ? [{ op: "add", path: `${path}/initContainers`, value: [sidecar] }]
      : [{ op: "add", path: `${path}/initContainers/0`, value: sidecar }];
  }
  return [{ op: "add", path: `${path}/containers/-`, value: sidecar }];
}
