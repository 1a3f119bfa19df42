// `inject`: adds the sidecar to the workloads in Kubernetes manifests, for
// GitOps and for clusters without the webhook. Multi-document YAML in,
// multi-document YAML out; a document that does not change (another kind, a
// workload that already has the sidecar or opts out) is written back exactly
// as it was read, so running it twice changes nothing.
import { dump, loadAll } from "js-yaml";
import type { V1PodSpec } from "@kubernetes/client-node";
import { ANNOTATIONS, type InjectDefaults, InjectError, withSidecar } from "./sidecar.js";

interface PodTemplate {
  metadata?: { annotations?: Record<string, string> };
  spec?: V1PodSpec;
}

/** Where each workload kind keeps its pod template. */
const TEMPLATES: Record<string, (object: Record<string, any>) => PodTemplate | undefined> = {
  Pod: (o) => o,
  Deployment: (o) => o.spec?.template,
  StatefulSet: (o) => o.spec?.template,
  DaemonSet: (o) => o.spec?.template,
  ReplicaSet: (o) => o.spec?.template,
  Job: (o) => o.spec?.template,
  CronJob: (o) => o.spec?.jobTemplate?.spec?.template,
};

/** The manifests in `text` with the sidecar added to every workload that does not opt out (inject: "false"). */
export function injectManifests(text: string, defaults: InjectDefaults, source = "input"): string {
  const documents = splitDocuments(text);
  return documents
    .map((document, index) => {
      const objects = loadAll(document);
      if (objects.length !== 1 || objects[0] === null || typeof objects[0] !== "object") return document;
      const object = objects[0] as Record<string, any>;
      const template = TEMPLATES[object.kind]?.(object);
      if (template?.spec === undefined) return document;
      const annotations = template.metadata?.annotations;
      if (annotations?.[ANNOTATIONS.inject] === "false") return document;
      let spec: V1PodSpec | undefined;
      try {
        spec = withSidecar(annotations, template.spec, defaults);
      } catch (err) {
        if (err instanceof InjectError) {
          const name = object.metadata?.name ?? "(no name)";
          throw new InjectError(
            err.annotation,
            `${err.message.slice(err.message.indexOf(": ") + 2)} (${source}, document ${index + 1}, ${object.kind} ${name})`,
          );
        }
        throw err;
      }
      if (spec === undefined) return document;
      template.spec = spec;
      return dump(object, { lineWidth: -1, noRefs: true });
    })
    .join("---\n");
}

/** The documents of a YAML stream, each with its own text, split at "---" lines. */
function splitDocuments(text: string): string[] {
  const documents: string[] = [];
  let current: string[] = [];
  for (const line of text.split(/(?<=\n)/)) {
    if (/^---(\s|$)/.test(line) && current.length > 0) {
      documents.push(current.join(""));
      current = [];
      continue;
    }
    if (/^---(\s|$)/.test(line)) continue;
    current.push(line);
  }
  if (current.length > 0) documents.push(current.join(""));
  // Empty documents (comments only, or nothing) stay as they are.
  return documents;
}
