// The sidecar that injection adds to a pod: the container of deploy/'s
// example (probes on a health-only port, the downward API, resources and a
// locked-down security context), with per-pod overrides read from the pod's
// annotations. The webhook and `inject` both use this file, so a pod comes
// out the same either way.
import type { V1Container, V1PodSpec } from "@kubernetes/client-node";
import { ConfigError, loadConfig } from "../config.js";

/** The annotations injection reads, all under sync.metaparticle.io/. */
export const ANNOTATIONS = {
  /** "true" on the pod (template) opts in: the one rule of the webhook and `inject` (README, "Add it to your workloads"). */
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
  /** The sidecar's gRPC port, on 127.0.0.1 (default 13131); the app's client must be pointed at it (MSYNC_ADDRESS). */
  grpcPort: "sync.metaparticle.io/grpc-port",
  /** The port of the kubelet's gRPC probes, on 0.0.0.0 (default 13132). */
  healthPort: "sync.metaparticle.io/health-port",
  /** A port for Prometheus metrics on 0.0.0.0; none (metrics off) unless set. */
  metricsPort: "sync.metaparticle.io/metrics-port",
} as const;

/** The label of the injector's own pods (deploy/components/injector), which are never injected. */
export const INJECTOR_LABEL = { key: "app.kubernetes.io/name", value: "metaparticle-sync-injector" } as const;

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
  /** Where in the manifest's text the annotation is, when it came from one (`inject`). */
  offset: number | undefined;
  constructor(
    readonly annotation: string,
    problem: string,
  ) {
    super(`annotation ${annotation}: ${problem}`);
    this.name = "InjectError";
  }
}

/** The sidecar's ports unless annotations move them; metrics are off unless a port is given. */
export const DEFAULT_PORTS = { grpc: 13131, health: 13132 } as const;
/** The sidecar's --shutdown-timeout; the pod's grace period must exceed it (deploy/ uses 30 s, the default). */
const SHUTDOWN_TIMEOUT_S = 20;
/** A Kubernetes resource quantity, such as 20m, 0.5, 192Mi or 1G. */
const QUANTITY = /^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;
const CONFIG_FLAGS: Record<string, string> = {
  "--lease-duration": ANNOTATIONS.leaseDuration,
  "--renew-deadline": ANNOTATIONS.renewDeadline,
  "--log-level": ANNOTATIONS.logLevel,
};

/** A pod's annotations; values are strings in the API, but manifests and requests may hold anything. */
export type Annotations = Readonly<Record<string, unknown>> | undefined;
export type Labels = Readonly<Record<string, unknown>> | undefined;

/**
 * Whether a pod (template) with these annotations and labels gets the
 * sidecar: the one opt-in rule, annotation sync.metaparticle.io/inject: "true".
 * `all` (inject --all) adds it to every pod that does not say "false". The
 * injector's own pods never get it. A value that is not the string "true" or
 * "false" (an unquoted YAML boolean, say) is refused: the API server would
 * refuse it too, since annotation values are strings.
 */
export function wantsSidecar(annotations: Annotations, labels?: Labels, all = false): boolean {
  if (labels?.[INJECTOR_LABEL.key] === INJECTOR_LABEL.value) return false;
  const value = annotations?.[ANNOTATIONS.inject];
  if (value === undefined) return all;
  if (value === "true") return true;
  if (value === "false") return false;
  throw new InjectError(ANNOTATIONS.inject, `must be the string "true" or "false", got ${describe(value)}`);
}

/** How a value that is not a string shows in a message: `false (a YAML boolean: quote it, "false")`. */
function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  const kind = typeof value === "boolean" ? "boolean" : typeof value === "number" ? "number" : value === null ? "null" : "map or list";
  const text = value === null ? "null" : typeof value === "object" ? JSON.stringify(value) : String(value);
  return `${text}, a YAML ${kind}; annotation values are strings: quote it ("${text}")`;
}

/** The annotation's text, trimmed; undefined if unset. Throws InjectError for a value that is not a string. */
function annotationText(annotations: Annotations, key: string): string | undefined {
  const value = annotations?.[key];
  if (value === undefined) return undefined;
  if (typeof value !== "string") throw new InjectError(key, `must be a string, got ${describe(value)}`);
  return value.trim();
}

/** The sidecar's ports for a pod with these annotations; metrics undefined when off. */
export function sidecarPorts(annotations: Annotations): { grpc: number; health: number; metrics: number | undefined } {
  const port = (key: string, fallback: number | undefined) => {
    const text = annotationText(annotations, key);
    if (text === undefined) return fallback;
    if (key === ANNOTATIONS.metricsPort && (text === "" || text === "off")) return undefined;
    const n = Number(text);
    if (!/^[0-9]+$/.test(text) || n < 1 || n > 65535)
      throw new InjectError(
        key,
        `must be a port number from 1 to 65535${key === ANNOTATIONS.metricsPort ? ' or "off"' : ""}, got ${JSON.stringify(text)}`,
      );
    return n;
  };
  const ports = {
    grpc: port(ANNOTATIONS.grpcPort, DEFAULT_PORTS.grpc)!,
    health: port(ANNOTATIONS.healthPort, DEFAULT_PORTS.health)!,
    metrics: port(ANNOTATIONS.metricsPort, undefined),
  };
  const named: Array<[string, number | undefined]> = [
    [ANNOTATIONS.grpcPort, ports.grpc],
    [ANNOTATIONS.healthPort, ports.health],
    [ANNOTATIONS.metricsPort, ports.metrics],
  ];
  for (const [i, [key, n]] of named.entries()) {
    const other = named.slice(0, i).find(([, m]) => m === n);
    if (n !== undefined && other !== undefined)
      throw new InjectError(key, `port ${n} is also the sidecar's ${other[0]}; give each a different port`);
  }
  return ports;
}

/**
 * Throws InjectError if a sidecar port is one the pod's own containers
 * declare (containerPort): they share the pod's network, so one of the two
 * would fail to listen at run time, while the API server only warns.
 */
export function checkPortClash(annotations: Annotations, spec: V1PodSpec): void {
  const ports = sidecarPorts(annotations);
  const named: Array<[string, number | undefined]> = [
    [ANNOTATIONS.grpcPort, ports.grpc],
    [ANNOTATIONS.healthPort, ports.health],
    [ANNOTATIONS.metricsPort, ports.metrics],
  ];
  for (const container of [...(spec.initContainers ?? []), ...(spec.containers ?? [])]) {
    for (const declared of container.ports ?? []) {
      const clash = named.find(([, n]) => n !== undefined && n === declared.containerPort);
      if (clash !== undefined) {
        throw new InjectError(
          clash[0],
          `the sidecar's port ${clash[1]} is also declared by container ${JSON.stringify(container.name)} (containerPort); ` +
            `they share the pod's network, so set ${clash[0]} to a free port`,
        );
      }
    }
  }
}

export function hasSidecar(spec: V1PodSpec): boolean {
  return [...(spec.initContainers ?? []), ...(spec.containers ?? [])].some((c) => c.name === SIDECAR_NAME);
}

/** Where the sidecar goes for these annotations. Throws InjectError for a mode that is neither native nor container. */
export function modeFor(annotations: Annotations, defaults: InjectDefaults): SidecarMode {
  const mode = annotationText(annotations, ANNOTATIONS.mode) ?? defaults.mode;
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
  const value = (key: string) => annotationText(annotations, key);
  const ports = sidecarPorts(annotations);
  const args = [
    `--listen=127.0.0.1:${ports.grpc}`,
    `--health-listen=0.0.0.0:${ports.health}`,
    ...(ports.metrics === undefined ? [] : [`--metrics-listen=0.0.0.0:${ports.metrics}`]),
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
    grpc: { port: ports.health, service },
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
      { name: "msync-health", containerPort: ports.health },
      ...(ports.metrics === undefined ? [] : [{ name: "msync-metrics", containerPort: ports.metrics }]),
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
  checkPortClash(annotations, spec);
  const sidecar = sidecarContainer(annotations, defaults);
  if (modeFor(annotations, defaults) === "native") return { ...spec, initContainers: [sidecar, ...(spec.initContainers ?? [])] };
  return { ...spec, containers: [...(spec.containers ?? []), sidecar] };
}

/** The JSON Patch (RFC 6902) that turns `spec`, at `path`, into `withSidecar`'s result; empty if nothing changes. */
export function sidecarPatch(annotations: Annotations, spec: V1PodSpec, defaults: InjectDefaults, path = "/spec"): object[] {
  if (hasSidecar(spec)) return [];
  checkPortClash(annotations, spec);
  const sidecar = sidecarContainer(annotations, defaults);
  if (modeFor(annotations, defaults) === "native") {
    return spec.initContainers === undefined
      ? [{ op: "add", path: `${path}/initContainers`, value: [sidecar] }]
      : [{ op: "add", path: `${path}/initContainers/0`, value: sidecar }];
  }
  return [{ op: "add", path: `${path}/containers/-`, value: sidecar }];
}
