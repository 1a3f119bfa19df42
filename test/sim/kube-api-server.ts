// A simulated Kubernetes API server for the Leases of one namespace, with the
// semantics the Kubernetes store depends on, so the store's own code (list,
// scoped watch, resume, bookmarks, 410 and relist) runs in the simulator:
//
// - one resourceVersion counter for every write, increasing;
// - create answers 409 AlreadyExists, a replace whose resourceVersion is not
//   the stored one 409 Conflict, a read or replace of a missing Lease 404;
// - a JSON merge patch (RFC 7386) is applied to the stored object whatever its
//   resourceVersion (one in the patch makes it conditional), 404 when it is
//   missing, 422 when the patch names a uid that is not the stored one (the
//   uid is immutable; so answers kube-apiserver of test/controlplane);
// - a JSON patch (RFC 6902) is applied whole or not at all: an operation that
//   fails (a `test` that does not hold, of a uid or a key, or one on a missing
//   key) answers 422 Invalid with one message for all, and writes nothing;
// - an update that changes nothing keeps the resourceVersion and sends no event;
// - label selectors as the store sends them, evaluated here; a watch sends an
//   object that stops matching as DELETED (its content before, the event's
//   resourceVersion) and one that starts matching as ADDED;
// - watches are served from a cache whose events may lag behind the writes
//   (a list reads the store itself, and is never stale);
// - the cache keeps a window of events: a watch from an older resourceVersion
//   gets an ERROR event with a 410 Expired Status, and so does one after
//   `compact()`;
// - BOOKMARK events when asked for, and watches that end after their timeout.
//
// Every object crosses the boundary as JSON, as it would over HTTP.
import type { V1Lease, V1LeaseList } from "@kubernetes/client-node";
import type { Clock, Timer } from "../../daemon/engine/clock.js";
import { type JsonPatchOperation, type LeaseApi, LeaseApiError, type LeaseWatchQuery } from "../../daemon/store/kubernetes/lease-api.js";

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED";

/** One write, as the watch cache keeps it. */
interface Change {
  readonly rv: number;
  readonly type: WatchEventType;
  /** The object after the write (before it, for a deletion). */
  readonly object: V1Lease;
  /** The object before the write; undefined for a creation. */
  readonly previous: V1Lease | undefined;
}

export interface ApiServerOptions {
  /** How long each write takes to reach the watch cache (ms); 0 by default. Events keep their order. */
  readonly cacheLagMs?: () => number;
  /** How many events the watch cache keeps: a watch from before them is answered 410. */
  readonly cacheEvents?: number;
  /** How often a watch that asked for them gets a BOOKMARK (ms). */
  readonly bookmarkMs?: number;
  /** The longest a watch lasts whatever timeoutSeconds it asked for (ms); undefined: as asked. */
  readonly maxWatchMs?: number;
  /**
   * Requests it serves per second, one after another in arrival order (an API
   * server, or the priority level of its flow control, that cannot keep up);
   * undefined: no limit (now). A request waits its turn before it is served.
   */
  readonly callsPerSecond?: () => number | undefined;
}

interface OpenWatch {
  readonly matches: (lease: V1Lease) => boolean;
  /** The last resourceVersion sent. */
  sentRv: number;
  readonly onEvent: (type: string, object: unknown) => void;
  readonly end: (err: unknown) => void;
  readonly bookmarks: boolean;
}

/** The server's reply as a Status, the way the API server sends it. */
export function status(code: number, reason: string, message: string): LeaseApiError {
  return new LeaseApiError(
    code,
    { kind: "Status", apiVersion: "v1", status: "Failure", code, reason, message },
    `HTTP ${code}: ${message}`,
  );
}

export class SimApiServer {
  /** The namespace's Leases, as stored (JSON copies). */
  private readonly objects = new Map<string, V1Lease>();
  private rv = 1_000;
  /** The watch cache: the writes it has seen, oldest first, at most `cacheEvents`. */
  private readonly cache: Change[] = [];
  /** Watches whose resourceVersion is before this are answered 410. */
  private oldestRv = 1_000;
  /** The resourceVersion the watch cache has reached. */
  private cacheRv = 1_000;
  /** Writes on their way to the watch cache. */
  private readonly pending: Change[] = [];
  private lastArrival = 0;
  private readonly watches = new Set<OpenWatch>();
  private uid = 0;
  /** Calls served, by verb (admin writes excluded). */
  readonly calls = { get: 0, create: 0, update: 0, patch: 0, list: 0, watch: 0 };
  /** When the next request can be served, with `callsPerSecond`. */
  private nextFree = 0;
  /** Told of every write, at once (the harness's own view; no cache, no lag). */
  readonly writes = new Set<(change: { type: WatchEventType; object: V1Lease }) => void>();

  constructor(
    private readonly clock: Clock,
    private readonly options: ApiServerOptions = {},
  ) {}

  /** The newest resourceVersion issued. */
  get resourceVersion(): string {
    return String(this.rv);
  }

  /** The Lease as stored now (a copy), for the harness. */
  peek(name: string): V1Lease | undefined {
    const object = this.objects.get(name);
    return object === undefined ? undefined : copy(object);
  }

  /** How long a request arriving now waits for its turn (0 without a capacity limit); takes that turn. */
  admit(): number {
    const rate = this.options.callsPerSecond?.();
    if (rate === undefined) return 0;
    const now = this.clock.now();
    const at = Math.max(now, this.nextFree);
    this.nextFree = at + 1000 / rate;
    return at - now;
  }

  read(name: string): V1Lease {
    this.calls.get += 1;
    const object = this.objects.get(name);
    if (object === undefined) throw notFound(name);
    return copy(object);
  }

  create(body: V1Lease): V1Lease {
    this.calls.create += 1;
    const name = body.metadata?.name ?? "";
    if (name === "") throw status(422, "Invalid", "Lease.coordination.k8s.io is invalid: metadata.name: Required value");
    if (this.objects.has(name)) throw status(409, "AlreadyExists", `leases.coordination.k8s.io "${name}" already exists`);
    if (body.metadata?.resourceVersion) throw status(400, "BadRequest", "resourceVersion should not be set on objects to be created");
    const object = copy(body);
    object.metadata = { ...object.metadata, uid: `uid-${++this.uid}`, creationTimestamp: this.clock.wallTime() };
    return this.commit("ADDED", object, undefined);
  }

  /** A replace: conditional on the body's resourceVersion when it has one (a kubectl edit sends it too). */
  replace(name: string, body: V1Lease): V1Lease {
    this.calls.update += 1;
    const current = this.objects.get(name);
    if (current === undefined) throw notFound(name);
    if ((body.metadata?.name ?? name) !== name)
      throw status(400, "BadRequest", "the name of the object does not match the name on the URL");
    const wanted = body.metadata?.resourceVersion;
    if (wanted !== undefined && wanted !== "" && wanted !== current.metadata?.resourceVersion)
      throw status(
        409,
        "Conflict",
        `Operation cannot be fulfilled on leases.coordination.k8s.io "${name}": the object has been modified; please apply your changes to the latest version and try again`,
      );
    return this.modified(copy(body), current);
  }

  /**
   * Stores `object` in place of `current`, keeping what the server owns as it
   * was. A write that changes nothing is not a write: same resourceVersion, no
   * event (a replace and a patch alike).
   */
  private modified(object: V1Lease, current: V1Lease): V1Lease {
    object.metadata = {
      ...object.metadata,
      uid: current.metadata?.uid,
      creationTimestamp: current.metadata?.creationTimestamp,
      resourceVersion: current.metadata?.resourceVersion,
      managedFields: undefined,
    };
    if (canonical(object) === canonical(current)) return copy(current);
    return this.commit("MODIFIED", object, current);
  }

  /** A JSON merge patch (application/merge-patch+json), as a PATCH of the Lease. */
  mergePatch(name: string, patch: unknown): V1Lease {
    this.calls.patch += 1;
    const current = this.objects.get(name);
    if (current === undefined) throw notFound(name);
    if (typeof patch !== "object" || patch === null || Array.isArray(patch))
      throw status(400, "BadRequest", "the body of a merge patch must be a JSON object");
    const metadata = (patch as { metadata?: { uid?: unknown; resourceVersion?: unknown; name?: unknown } }).metadata;
    if (metadata?.uid !== undefined && metadata.uid !== current.metadata?.uid)
      throw status(
        422,
        "Invalid",
        `Lease.coordination.k8s.io "${name}" is invalid: metadata.uid: Invalid value: "${String(metadata.uid)}": field is immutable`,
      );
    const wanted = metadata?.resourceVersion;
    if (typeof wanted === "string" && wanted !== "" && wanted !== current.metadata?.resourceVersion)
      throw status(409, "Conflict", `Operation cannot be fulfilled on leases.coordination.k8s.io "${name}": the object has been modified`);
    if (metadata?.name !== undefined && metadata.name !== name)
      throw status(400, "BadRequest", "the name of the object does not match the name on the URL");
    return this.modified(mergePatched(copy(current), copy(patch)) as V1Lease, current);
  }

  /** A JSON patch (application/json-patch+json), as a PATCH of the Lease: every operation, or none. */
  jsonPatch(name: string, operations: unknown): V1Lease {
    this.calls.patch += 1;
    const current = this.objects.get(name);
    if (current === undefined) throw notFound(name);
    if (!Array.isArray(operations)) throw status(400, "BadRequest", "json: cannot unmarshal object into Go value of type jsonpatch.Patch");
    let patched: unknown = copy(current);
    try {
      for (const operation of copy(operations)) patched = applyOperation(patched, operation);
    } catch (err) {
      if (!(err instanceof PatchFailed)) throw err;
      // The API server's message is generic and the same for every failed operation (its cause is in the details).
      throw status(422, "Invalid", "the server rejected our request due to an error in our request");
    }
    const metadata = (patched as V1Lease).metadata;
    if (metadata?.name !== name) throw status(400, "BadRequest", "the name of the object does not match the name on the URL");
    return this.modified(patched as V1Lease, current);
  }

  /** Deletes a Lease (an administrator's kubectl delete). */
  delete(name: string): void {
    const current = this.objects.get(name);
    if (current === undefined) return;
    this.objects.delete(name);
    this.rv += 1;
    const object = copy(current);
    object.metadata = { ...object.metadata, resourceVersion: String(this.rv) };
    this.record({ rv: this.rv, type: "DELETED", object, previous: current });
  }

  list(labelSelector: string, limit?: number): V1LeaseList {
    this.calls.list += 1;
    const matches = parseSelector(labelSelector);
    const items = [...this.objects.values()]
      .filter(matches)
      .sort((a, b) => (a.metadata!.name! < b.metadata!.name! ? -1 : 1))
      .map(copy);
    const limited = limit !== undefined && limit > 0 ? items.slice(0, limit) : items;
    return {
      apiVersion: "coordination.k8s.io/v1",
      kind: "LeaseList",
      metadata: { resourceVersion: String(this.rv), ...(limited.length < items.length ? { _continue: "more" } : {}) },
      items: limited,
    };
  }

  /**
   * Drops every event from the watch cache, as a compaction would: a watch
   * resumed from a resourceVersion before now gets 410 Expired.
   */
  compact(): void {
    this.cache.length = 0;
    this.oldestRv = this.cacheRv;
  }

  /** One watch request; see LeaseApi.watch. Returns the function that ends it from the client's side. */
  watch(query: LeaseWatchQuery, onEvent: (type: string, object: unknown) => void, done: (err: unknown) => void): () => void {
    this.calls.watch += 1;
    let matches: (lease: V1Lease) => boolean;
    try {
      matches = parseSelector(query.labelSelector);
    } catch (err) {
      done(Object.assign(new Error((err as Error).message), { statusCode: 400 }));
      return () => {};
    }
    const timers: Timer[] = [];
    let ended = false;
    const end = (err: unknown) => {
      if (ended) return;
      ended = true;
      for (const timer of timers) timer.cancel();
      this.watches.delete(watch);
      done(err);
    };
    const watch: OpenWatch = { matches, sentRv: 0, onEvent, end, bookmarks: query.allowWatchBookmarks };
    const from = query.resourceVersion === "" ? undefined : Number(query.resourceVersion);
    if (from !== undefined && (!Number.isInteger(from) || from < this.oldestRv)) {
      // The API server accepts the watch, sends the error as an event, and ends it.
      onEvent("ERROR", {
        kind: "Status",
        apiVersion: "v1",
        status: "Failure",
        code: 410,
        reason: "Expired",
        message: `too old resource version: ${query.resourceVersion} (${this.oldestRv})`,
      });
      end(null);
      return () => {};
    }
    if (from === undefined) {
      // Without a resourceVersion: the cache's current state as ADDED events, then what follows.
      for (const object of this.stateAt(this.cacheRv)) if (matches(object)) onEvent("ADDED", copy(object));
      watch.sentRv = this.cacheRv;
    } else {
      watch.sentRv = from;
      for (const change of this.cache) if (change.rv > from) this.send(watch, change);
    }
    this.watches.add(watch);
    const lastsMs = Math.min(query.timeoutSeconds * 1000, this.options.maxWatchMs ?? Infinity);
    timers.push(this.clock.setTimer(lastsMs, () => end(null)));
    if (query.allowWatchBookmarks) {
      const every = this.options.bookmarkMs ?? 60_000;
      const bookmark = () => {
        if (ended) return;
        const rv = Math.max(watch.sentRv, this.cacheRv);
        watch.sentRv = rv;
        onEvent("BOOKMARK", { kind: "Lease", apiVersion: "coordination.k8s.io/v1", metadata: { resourceVersion: String(rv) } });
        timers.push(this.clock.setTimer(every, bookmark));
      };
      timers.push(this.clock.setTimer(every, bookmark));
    }
    return () => end(Object.assign(new Error("The operation was aborted."), { name: "AbortError" }));
  }

  /** Ends every open watch (the API server restarts, or drops its watchers). */
  endWatches(): void {
    for (const watch of [...this.watches]) watch.end(null);
  }

  private commit(type: WatchEventType, body: V1Lease, previous: V1Lease | undefined): V1Lease {
    const object = copy(body);
    this.rv += 1;
    object.metadata = { ...object.metadata, resourceVersion: String(this.rv) };
    this.objects.set(object.metadata.name!, object);
    this.record({ rv: this.rv, type, object: copy(object), previous });
    return copy(object);
  }

  /** A write on its way to the watch cache, which receives writes in order (lag 0: at the same instant, after it). */
  private record(change: Change): void {
    for (const listener of this.writes) listener({ type: change.type, object: copy(change.object) });
    const at = Math.max(this.clock.now() + (this.options.cacheLagMs?.() ?? 0), this.lastArrival);
    this.lastArrival = at;
    this.pending.push(change);
    // Never within the write itself: a watcher hears of a write after it is made, at the earliest.
    this.clock.setTimer(at - this.clock.now(), () => this.arrive());
  }

  private arrive(): void {
    const change = this.pending.shift();
    if (change === undefined) return;
    this.cache.push(change);
    this.cacheRv = change.rv;
    const keep = this.options.cacheEvents ?? 1_000;
    while (this.cache.length > keep) this.oldestRv = this.cache.shift()!.rv;
    for (const watch of [...this.watches]) if (change.rv > watch.sentRv) this.send(watch, change);
  }

  /** Sends `change` as `watch`'s selector sees it: an object that enters it is ADDED, one that leaves it DELETED. */
  private send(watch: OpenWatch, change: Change): void {
    watch.sentRv = change.rv;
    const now = change.type === "DELETED" ? false : watch.matches(change.object);
    const before = change.previous !== undefined && watch.matches(change.previous);
    if (change.type === "DELETED") {
      if (before) watch.onEvent("DELETED", copy(change.object));
      return;
    }
    if (now && before) watch.onEvent("MODIFIED", copy(change.object));
    else if (now) watch.onEvent("ADDED", copy(change.object));
    else if (before) {
      // The content before, at the event's resourceVersion.
      const gone = copy(change.previous!);
      gone.metadata = { ...gone.metadata, resourceVersion: String(change.rv) };
      watch.onEvent("DELETED", gone);
    }
  }

  /** The objects as of `rv` (for a watch without a resourceVersion): the stored ones, less writes the cache has not reached. */
  private stateAt(rv: number): V1Lease[] {
    const state = new Map([...this.objects].map(([name, object]) => [name, object]));
    for (const change of [...this.pending].reverse()) {
      if (change.rv <= rv) continue;
      const name = change.object.metadata!.name!;
      if (change.previous === undefined) state.delete(name);
      else state.set(name, change.previous);
    }
    return [...state.values()];
  }
}

/** One daemon-side view of the server as a LeaseApi, with no faults: for tests. */
export class DirectLeaseApi implements LeaseApi {
  constructor(private readonly server: SimApiServer) {}

  describe(): string {
    return "simulated API server";
  }

  read(name: string): Promise<V1Lease> {
    return attempt(() => this.server.read(name));
  }

  create(body: V1Lease): Promise<V1Lease> {
    return attempt(() => this.server.create(body));
  }

  replace(name: string, body: V1Lease): Promise<V1Lease> {
    return attempt(() => this.server.replace(name, body));
  }

  mergePatch(name: string, patch: object): Promise<V1Lease> {
    return attempt(() => this.server.mergePatch(name, patch));
  }

  jsonPatch(name: string, operations: readonly JsonPatchOperation[]): Promise<V1Lease> {
    return attempt(() => this.server.jsonPatch(name, operations));
  }

  list(labelSelector: string, limit: number | undefined): Promise<V1LeaseList> {
    return attempt(() => this.server.list(labelSelector, limit));
  }

  watch(query: LeaseWatchQuery, onEvent: (type: string, object: unknown) => void, done: (err: unknown) => void): Promise<AbortController> {
    const controller = new AbortController();
    const end = this.server.watch(query, onEvent, done);
    controller.signal.addEventListener("abort", end, { once: true });
    return Promise.resolve(controller);
  }
}

function attempt<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (err) {
    return Promise.reject(err);
  }
}

function notFound(name: string): LeaseApiError {
  return status(404, "NotFound", `leases.coordination.k8s.io "${name}" not found`);
}

/** A deep copy through JSON, as an object crossing HTTP is (times become strings). */
export function copy<T>(object: T): T {
  return JSON.parse(JSON.stringify(object)) as T;
}

/**
 * RFC 7386: a patch that is an object merges into the target key by key (a
 * null removes the key); anything else replaces the target.
 */
export function mergePatched(target: unknown, patch: unknown): unknown {
  if (typeof patch !== "object" || patch === null || Array.isArray(patch)) return patch;
  const result: Record<string, unknown> =
    typeof target === "object" && target !== null && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [key, value] of Object.entries(patch as Record<string, unknown>)) {
    if (value === null) delete result[key];
    else result[key] = mergePatched(result[key], value);
  }
  return result;
}

/** A JSON patch operation that cannot be applied: the API server answers 422. */
class PatchFailed extends Error {}

/**
 * `target` after one JSON patch operation (RFC 6902): `test`, `add`,
 * `remove` and `replace` (the store sends no other), on object members and
 * array elements. A `test` compares JSON values; a path that does not lead
 * to a value fails, as does a `remove` or `replace` of one that is missing.
 */
function applyOperation(target: unknown, operation: unknown): unknown {
  const { op, path, value } = (operation ?? {}) as { op?: unknown; path?: unknown; value?: unknown };
  if (typeof path !== "string" || (path !== "" && !path.startsWith("/"))) throw new PatchFailed(`bad path ${String(path)}`);
  const tokens =
    path === ""
      ? []
      : path
          .slice(1)
          .split("/")
          .map((token) => token.replaceAll("~1", "/").replaceAll("~0", "~"));
  if (op === "test") {
    if (stable(valueAt(target, tokens)) !== stable(value)) throw new PatchFailed(`test of ${path} failed`);
    return target;
  }
  if (op !== "add" && op !== "remove" && op !== "replace") throw status(400, "BadRequest", `operation ${String(op)} is not simulated`);
  if (tokens.length === 0) {
    if (op === "remove") throw new PatchFailed("cannot remove the whole document");
    return copy(value);
  }
  const parent = valueAt(target, tokens.slice(0, -1));
  const last = tokens.at(-1)!;
  if (Array.isArray(parent)) {
    const index = last === "-" && op === "add" ? parent.length : Number(last);
    const limit = op === "add" ? parent.length : parent.length - 1;
    if (!/^(0|[1-9][0-9]*|-)$/.test(last) || !Number.isInteger(index) || index > limit) throw new PatchFailed(`no element ${path}`);
    if (op === "add") parent.splice(index, 0, copy(value));
    else if (op === "remove") parent.splice(index, 1);
    else parent[index] = copy(value);
    return target;
  }
  if (typeof parent !== "object" || parent === null) throw new PatchFailed(`no parent of ${path}`);
  const members = parent as Record<string, unknown>;
  if (op !== "add" && !Object.hasOwn(members, last)) throw new PatchFailed(`no member ${path}`);
  if (op === "remove") delete members[last];
  else members[last] = copy(value);
  return target;
}

/** The value at the JSON pointer `tokens` in `target`; fails when there is none. */
function valueAt(target: unknown, tokens: readonly string[]): unknown {
  let at = target;
  for (const token of tokens) {
    if (Array.isArray(at) && /^(0|[1-9][0-9]*)$/.test(token) && Number(token) < at.length) at = at[Number(token)];
    else if (typeof at === "object" && at !== null && !Array.isArray(at) && Object.hasOwn(at, token))
      at = (at as Record<string, unknown>)[token];
    else throw new PatchFailed(`no value at /${tokens.join("/")}`);
  }
  return at;
}

/** What a write may change, in a stable form: two writes with the same are the same object. */
function canonical(lease: V1Lease): string {
  const { resourceVersion: _rv, managedFields: _mf, ...metadata } = lease.metadata ?? {};
  return stable({ metadata, spec: lease.spec ?? {} });
}

function stable(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (value instanceof Date) return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(stable).join(",")}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : 1));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stable(v)}`).join(",")}}`;
}

/**
 * A label selector as the API server reads it: requirements joined by
 * commas (all must hold), each `key`, `!key`, `key=value`, `key==value`,
 * `key!=value`, `key in (a,b)` or `key notin (a,b)`.
 */
export function parseSelector(selector: string): (lease: V1Lease) => boolean {
  const requirements: Array<(labels: Record<string, string>) => boolean> = [];
  for (const part of splitTopLevel(selector)) {
    const text = part.trim();
    if (text === "") continue;
    let m: RegExpMatchArray | null;
    if ((m = text.match(/^([^\s!=(),]+)\s+(in|notin)\s+\(([^)]*)\)$/)) !== null) {
      const [, key, op, list] = m as unknown as [string, string, string, string];
      const values = new Set(
        list
          .split(",")
          .map((v) => v.trim())
          .filter((v) => v !== ""),
      );
      requirements.push(op === "in" ? (l) => key in l && values.has(l[key]!) : (l) => !(key in l) || !values.has(l[key]!));
    } else if ((m = text.match(/^([^\s!=(),]+)\s*(==|=|!=)\s*([^\s!=(),]*)$/)) !== null) {
      const [, key, op, value] = m as unknown as [string, string, string, string];
      requirements.push(op === "!=" ? (l) => l[key] !== value : (l) => l[key] === value);
    } else if ((m = text.match(/^!\s*([^\s!=(),]+)$/)) !== null) {
      const key = m[1]!;
      requirements.push((l) => !(key in l));
    } else if ((m = text.match(/^([^\s!=(),]+)$/)) !== null) {
      const key = m[1]!;
      requirements.push((l) => key in l);
    } else throw status(400, "BadRequest", `unable to parse requirement: ${text}`);
  }
  return (lease) => {
    const labels = lease.metadata?.labels ?? {};
    return requirements.every((holds) => holds(labels));
  };
}

function splitTopLevel(selector: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = "";
  for (const ch of selector) {
    if (ch === "(") depth += 1;
    if (ch === ")") depth -= 1;
    if (ch === "," && depth === 0) {
      parts.push(current);
      current = "";
    } else current += ch;
  }
  parts.push(current);
  return parts;
}
