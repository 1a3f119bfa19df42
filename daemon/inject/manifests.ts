// `inject`: adds the sidecar to the workloads in Kubernetes manifests, for
// GitOps and for clusters without the webhook. Multi-document YAML in,
// multi-document YAML out. Only pod templates that opt in (annotation
// sync.metaparticle.io/inject: "true", the webhook's rule) get the sidecar,
// or, with `all`, every one that does not say "false"; the injector's own
// pods never do.
//
// The stream is read with the `yaml` package's concrete syntax tree, so that
// what is not changed is written back as it was read: a document that does
// not change comes out byte for byte (and so does everything between
// documents), and in one that does, only the container list the sidecar joins
// is new: comments, quoting, anchors and merge keys (`<<: *base`, resolved as
// kubectl resolves them, YAML 1.1) are kept, and so are CRLF line endings.
// Running it twice changes nothing.
import type { V1PodSpec } from "@kubernetes/client-node";
import { type Document, LineCounter, type Node, Parser, YAMLMap, YAMLSeq, CST, Composer, isMap, isScalar, isSeq, visit } from "yaml";
import { type InjectDefaults, InjectError, wantsSidecar, withSidecar } from "./sidecar.js";

/** Where each workload kind keeps its pod template, as a path from the object. */
const TEMPLATES: Record<string, readonly string[]> = {
  Pod: [],
  PodTemplate: ["template"],
  Deployment: ["spec", "template"],
  StatefulSet: ["spec", "template"],
  DaemonSet: ["spec", "template"],
  ReplicaSet: ["spec", "template"],
  ReplicationController: ["spec", "template"],
  Job: ["spec", "template"],
  CronJob: ["spec", "jobTemplate", "spec", "template"],
};

export interface InjectOptions {
  /** Add the sidecar to every pod template that does not say inject: "false", not only to those that say "true". */
  readonly all?: boolean;
}

/** A manifest that cannot be read or injected; the message names the file, the document and the line. */
export class ManifestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ManifestError";
  }
}

/** A document inject cannot change as asked, and where in the text. */
class DocumentProblem extends Error {
  constructor(
    message: string,
    readonly offset: number | undefined,
    /** An anchor whose definition the message is about: the line given is that of its &name. */
    readonly anchor?: string,
  ) {
    super(message);
  }
}

/** YAML 1.1, as kubectl reads manifests: merge keys, and yes/no/on/off are booleans. */
const PARSE_OPTIONS = { version: "1.1", merge: true, keepSourceTokens: true } as const;

/**
 * The manifests in `text` with the sidecar added to every pod template that
 * opts in. Throws ManifestError for YAML that does not parse or an
 * annotation that cannot be applied, naming `source`, the document (from 1)
 * and the line in the file.
 */
export function injectManifests(text: string, defaults: InjectDefaults, source = "input", options: InjectOptions = {}): string {
  const lines = new LineCounter();
  const tokens = [...new Parser(lines.addNewLine).parse(text)];
  // Each document on its own, so that it holds only its own text (a comment before the first "---" stays outside it).
  const list = tokens.filter((token) => token.type === "document").map((token) => [...new Composer(PARSE_OPTIONS).compose([token])][0]!);
  const crlf = /\r\n/.test(text);
  const where = (index: number, offset: number | undefined, column = false) => {
    if (offset === undefined) return `${source}, document ${index + 1}`;
    const position = lines.linePos(offset);
    return `${source}, document ${index + 1}, line ${position.line}${column ? `, column ${position.col}` : ""}`;
  };
  for (const token of tokens) {
    if (token.type === "error") {
      const index = tokens.slice(0, tokens.indexOf(token)).filter((t) => t.type === "document").length;
      throw new ManifestError(`${where(index, token.offset, true)}: ${firstLine(token.message)}`);
    }
  }
  list.forEach((document, index) => {
    const error = document.errors[0];
    if (error !== undefined) {
      const problem = firstLine(error.message).replace(/ at line \d+, column \d+:?$/, "");
      throw new ManifestError(`${where(index, error.pos[0], true)}: ${problem}`);
    }
  });
  let index = -1;
  return tokens
    .map((token) => {
      if (token.type !== "document") return CST.stringify(token);
      index += 1;
      const document = list[index]!;
      const original = CST.stringify(token);
      let changed: boolean;
      try {
        changed = injectDocument(document, defaults, options);
      } catch (err) {
        if (!(err instanceof InjectError || err instanceof DocumentProblem)) throw err;
        let offset = err.offset ?? document.range[0];
        if (err instanceof DocumentProblem && err.anchor !== undefined) {
          const at = text.lastIndexOf(`&${err.anchor}`, offset);
          if (at >= document.range[0]) offset = at;
        }
        throw new ManifestError(`${where(index, offset)}: ${err.message}`);
      }
      if (!changed) return original;
      let out = document.toString(stringifyOptions(original));
      // The document token ends where the next begins: keep what ended it (a blank line, say) as it was.
      const trailing = /(\r?\n)*$/.exec(original)![0];
      out = out.replace(/\n*$/, "") + (trailing === "" ? "" : "\n".repeat(trailing.split(/\r?\n/).length - 1));
      return crlf ? out.replace(/\r?\n/g, "\r\n") : out;
    })
    .join("");
}

function firstLine(message: string): string {
  return message.split("\n")[0]!;
}

/** Writes a changed document in the style of its source: sequences indented or not, flow collections padded or not. */
function stringifyOptions(source: string) {
  // "key:" followed by "- item" at the same indentation: sequences are not indented.
  const unindented = /^( *)[^\s#-][^\n]*:[ \t]*\r?\n\1- /m.test(source);
  const padded = !/[{[][^\s}\]]/.test(source.replace(/#[^\n]*/g, ""));
  return { indentSeq: !unindented, flowCollectionPadding: padded, lineWidth: 0 } as const;
}

/** Adds the sidecar to the document's pod templates that opt in (to each item of a List); true if anything changed. */
function injectDocument(document: Document, defaults: InjectDefaults, options: InjectOptions): boolean {
  const root = document.contents;
  if (!isMap(root)) return false;
  const kind = root.get("kind");
  if (typeof kind === "string" && kind.endsWith("List") && isSeq(root.get("items", true))) {
    let changed = false;
    for (const item of (root.get("items", true) as unknown as YAMLSeq).items) {
      if (isMap(item) && injectObject(document, item, defaults, options)) changed = true;
    }
    return changed;
  }
  return injectObject(document, root, defaults, options);
}

/** Adds the sidecar to one object's pod template if it is a workload that opts in; true if it changed. */
function injectObject(document: Document, object: YAMLMap, defaults: InjectDefaults, options: InjectOptions): boolean {
  const kind = object.get("kind");
  const path = typeof kind === "string" ? TEMPLATES[kind] : undefined;
  if (path === undefined) return false;
  // The template as kubectl would read it: aliases and merge keys resolved.
  const objectJs = toJs(document, object);
  const template = path.reduce<any>((value, key) => (value && typeof value === "object" ? value[key] : undefined), objectJs);
  if (template === null || typeof template !== "object" || template.spec === null || typeof template.spec !== "object") return false;
  const annotations = template.metadata?.annotations as Record<string, unknown> | undefined;
  const labels = template.metadata?.labels as Record<string, unknown> | undefined;
  const templateNode = nodeAt(object, path);
  const annotationNode = (key: string) => {
    const metadata = templateNode === undefined ? undefined : templateNode.get("metadata", true);
    const map = isMap(metadata) ? metadata.get("annotations", true) : undefined;
    if (!isMap(map)) return undefined;
    const pair = map.items.find((p) => isScalar(p.key) && p.key.value === key);
    return (pair?.value as Node | undefined) ?? (pair?.key as Node | undefined);
  };
  const locate = (err: unknown) => {
    if (err instanceof InjectError) {
      const name = template.metadata?.name ?? objectJs.metadata?.name ?? objectJs.metadata?.generateName ?? "(no name)";
      const located = new InjectError(err.annotation, `${err.message.slice(err.message.indexOf(": ") + 2)} (${kind} ${name})`);
      located.offset = annotationNode(err.annotation)?.range?.[0] ?? object.range?.[0];
      return located;
    }
    return err;
  };
  let spec: V1PodSpec | undefined;
  try {
    if (!wantsSidecar(annotations, labels, options.all === true)) return false;
    spec = withSidecar(annotations, template.spec as V1PodSpec, defaults);
  } catch (err) {
    throw locate(err);
  }
  if (spec === undefined) return false;
  setPodSpec(document, object, [...path, "spec"], template.spec as V1PodSpec, spec);
  return true;
}

/** The JavaScript value of one node of the document, aliases and merge keys resolved. */
function toJs(document: Document, node: Node): any {
  return node.toJS(document, { maxAliasCount: -1 }) as unknown;
}

/** The map at `path` under `map`, written there (not through an alias or a merge key); undefined otherwise. */
function nodeAt(map: YAMLMap, path: readonly string[]): YAMLMap | undefined {
  let node: YAMLMap = map;
  for (const key of path) {
    const next = node.get(key, true);
    if (!isMap(next)) return undefined;
    node = next;
  }
  return node;
}

/**
 * Writes the sidecar into the document's pod spec at `path`, changing as
 * little as possible: one item added to the container list written there.
 * Where a part of the path is an alias or comes from a merge key, the value
 * at that point is written out in full in its place, so the anchor's other
 * uses do not change.
 */
function setPodSpec(document: Document, object: YAMLMap, path: readonly string[], before: V1PodSpec, after: V1PodSpec): void {
  // What would change in place: the maps from the object down, and the container lists. If one is an
  // anchor that an alias uses elsewhere, the sidecar would appear there too: refuse rather than do that.
  const changed: Node[] = [object];
  for (let node: YAMLMap = object, depth = 0; depth < path.length && isMap(node.get(path[depth]!, true)); depth++) {
    node = node.get(path[depth]!, true) as unknown as YAMLMap;
    changed.push(node);
  }
  const spec = nodeAt(object, path);
  for (const key of ["initContainers", "containers"]) {
    const list = spec?.get(key, true);
    if (isSeq(list)) changed.push(list);
  }
  const anchors = new Map(changed.filter((n) => n.anchor !== undefined).map((n) => [n.anchor!, n]));
  visit(document, {
    Alias(_, alias) {
      const anchored = anchors.get(alias.source);
      if (anchored === undefined) return;
      throw new DocumentProblem(
        `the pod template's &${alias.source} is also used through *${alias.source} elsewhere, which would get the sidecar too; ` +
          `write the pod template out in full`,
        anchored.range?.[0],
        alias.source,
      );
    },
  });
  const written = spec;
  if (written === undefined) {
    // Find the deepest map written in place, and write the rest out there.
    let node = object;
    let depth = 0;
    while (depth < path.length && isMap(node.get(path[depth]!, true))) node = node.get(path[depth++]!, true) as unknown as YAMLMap;
    const rest = path.slice(depth);
    let replacement: any = after;
    if (rest.length > 1) {
      replacement = structuredClone(toJs(document, node)[rest[0]!]);
      let target = replacement;
      for (const key of rest.slice(1, -1)) target = target[key];
      target[rest.at(-1)!] = after;
    }
    node.set(rest[0]!, document.createNode(replacement));
    return;
  }
  for (const key of ["initContainers", "containers"] as const) {
    const old = before[key] ?? [];
    const now = after[key] ?? [];
    if (now.length === old.length) continue;
    const list = written.get(key, true);
    if (isSeq(list) && list.items.length === old.length) {
      // The sidecar goes first among init containers, last among containers.
      const item = document.createNode(key === "initContainers" ? now[0] : now.at(-1));
      if (key === "initContainers") list.items.unshift(item);
      else list.items.push(item);
      if (list.flow) list.flow = false;
    } else {
      written.set(key, document.createNode(now));
    }
  }
}
