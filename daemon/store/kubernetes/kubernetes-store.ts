// LeaseStore on coordination.k8s.io/v1 Lease objects in one namespace.
//
// Writes are replaces conditional on resourceVersion, so a 409 means someone
// else wrote first. One watch per daemon follows the managed Leases its
// clients use, selected by a label holding each Lease's name (`name in
// (...)`), or every managed Lease of the namespace once a daemon uses more
// than MAX_SCOPED_NAMES. It resumes from the last resourceVersion it saw
// (bookmarks keep that fresh) and relists when the API server answers 410 Gone
// or the set of names grows. A daemon whose clients use no name holds no watch.
// A Lease without the managed label is never written: calls on it fail with
// reason "foreign".
// The API calls themselves go through a LeaseApi (lease-api.ts): node:https on
// a real cluster (client-node through a proxy), a simulated API server in
// test/sim.
import type { V1Lease, V1LeaseList } from "@kubernetes/client-node";
import { KubeConfig } from "@kubernetes/client-node/dist/config.js";
import { type Clock, systemClock } from "../../engine/clock.js";
import type { Logger } from "../../log.js";
import {
  type CallOptions,
  type LeaseFields,
  type LeaseRecord,
  type LeaseStore,
  type Seat,
  StoreError,
  type StoreErrorReason,
  type WatchEvent,
  type WatchHandle,
  type WatchOptions,
  type WatchScope,
  coversAll,
  inScope,
  isStoreError,
} from "../lease-store.js";
import {
  MANAGED_SELECTOR,
  NAME_LABEL,
  isManaged,
  leaseToRecord,
  recordToLease,
  seatPatch,
  selectorFor,
  waitPatch,
  watchedChange,
} from "./lease-convert.js";
import { ClientNodeLeaseApi } from "./client-node-lease-api.js";
import { HttpsLeaseApi, MAX_CONNECTIONS } from "./https-lease-api.js";
import { type LeaseApi, LeaseApiError } from "./lease-api.js";
import { MIN_RETRY_MS, nextRetryMs, retryPauseMs } from "./watch-backoff.js";

/** What the store reports for metrics: every API call's outcome and every watch restart. */
export interface StoreObserver {
  request(verb: "get" | "create" | "update" | "patch" | "list", code: number | "error", ms: number): void;
  watchRestart(reason: "ended" | "expired" | "error"): void;
  /** One event received on the Lease watch (ADDED, MODIFIED, DELETED, BOOKMARK, ERROR). */
  watchEvent(type: string): void;
}

export type KubernetesStoreOptions = {
  readonly namespace: string;
  readonly log: Logger;
  readonly observer?: StoreObserver;
  /** Time for the watch's pauses and call timings; the process's clock by default. */
  readonly clock?: Clock;
  /** Randomness for the watch's timeouts and backoff jitter; Math.random by default. */
  readonly random?: () => number;
} & (
  | { readonly kubeConfig: KubeConfig }
  /** The Lease API of `namespace` to call instead of a cluster's (the simulator's). */
  | { readonly api: LeaseApi }
);

export class KubernetesStore implements LeaseStore {
  readonly distributed = true;
  /** One fewer than the connections to the API server: the watch keeps one (see https-lease-api.ts). */
  readonly maxCallsInFlight = MAX_CONNECTIONS - 1;
  readonly namespace: string;
  readonly clock: Clock;
  readonly random: () => number;
  private readonly api: LeaseApi;
  private readonly log: Logger;
  private readonly observer: StoreObserver | undefined;

  constructor(options: KubernetesStoreOptions) {
    this.namespace = options.namespace;
    this.log = options.log;
    this.observer = options.observer;
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.api = "api" in options ? options.api : leaseApiFor(options.kubeConfig, options.namespace);
  }

  /**
   * Loads credentials from the pod's service account, or from `kubeconfig`
   * when given. The namespace is the configured one, else the kubeconfig
   * context's, else "default".
   */
  static fromConfig(config: { kubeconfig: string | undefined; namespace: string }, log: Logger, observer?: StoreObserver): KubernetesStore {
    const kubeConfig = new KubeConfig();
    if (config.kubeconfig !== undefined) kubeConfig.loadFromFile(config.kubeconfig);
    else kubeConfig.loadFromCluster();
    const context = kubeConfig.getContextObject(kubeConfig.getCurrentContext());
    const namespace = config.namespace || context?.namespace || "default";
    return new KubernetesStore({ kubeConfig, namespace, log, observer });
  }

  describe(): string {
    return `Kubernetes Leases in namespace ${this.namespace} at ${this.api.describe()}`;
  }

  isNewer(a: string, b: string): boolean {
    // resourceVersions are opaque by contract; etcd-backed API servers issue
    // increasing integers, which lets replies and watch events be ordered.
    if (/^\d+$/.test(a) && /^\d+$/.test(b)) return BigInt(a) > BigInt(b);
    return a !== b;
  }

  async get(name: string, options?: CallOptions): Promise<LeaseRecord | undefined> {
    let lease: V1Lease;
    try {
      lease = await this.call("get", `get lease ${name}`, options, (signal) => this.api.read(name, signal));
    } catch (err) {
      if (err instanceof StoreError && err.reason === "not-found") return undefined;
      throw err;
    }
    if (!isManaged(lease)) throw foreign(name, this.namespace);
    return leaseToRecord(lease);
  }

  async create(fields: LeaseFields, options?: CallOptions): Promise<LeaseRecord> {
    const body = recordToLease(fields, this.namespace);
    const lease = await this.call("create", `create lease ${fields.name}`, options, (signal) => this.api.create(body, signal));
    return leaseToRecord(lease);
  }

  async update(record: LeaseRecord, options?: CallOptions): Promise<LeaseRecord> {
    const body = recordToLease(record, this.namespace);
    const lease = await this.call("update", `update lease ${record.name}`, options, (signal) =>
      this.api.replace(record.name, body, signal),
    );
    return leaseToRecord(lease);
  }

  async markWaiting(lease: LeaseRecord, identity: string, waiting: boolean, options?: CallOptions): Promise<LeaseRecord> {
    const patch = waitPatch(lease, identity, waiting);
    const patched = await this.call("patch", `patch lease ${lease.name}`, options, (signal) =>
      this.api.mergePatch(lease.name, patch, signal),
    ).catch((err: unknown) => {
      // The API server answers a uid that is not the stored one with 422 (the uid cannot change): the Lease seen
      // was deleted and created again, which to the engine is a write that lost to another's.
      if (isStoreError(err, "invalid") && err.message.includes("metadata.uid")) throw new StoreError("conflict", err.message);
      throw err;
    });
    // (A Lease that lost its managed label by hand since it was seen: the patch landed, and it is no longer ours.)
    if (!isManaged(patched)) throw foreign(lease.name, this.namespace);
    return leaseToRecord(patched);
  }

  async patchSeat(lease: LeaseRecord, identity: string, expected: Seat, next: Seat, options?: CallOptions): Promise<LeaseRecord> {
    if (expected.identity !== identity || next.identity !== identity) throw new Error(`patchSeat: the seats are not ${identity}'s`);
    const operations = seatPatch(lease, identity, expected, next);
    if (operations === undefined)
      throw new StoreError("conflict", `patch seat on lease ${lease.name}: the record was not read from a Lease`);
    // kube-apiserver answers 422 alike for a failed test of the seat or of the uid, and for a malformed patch (the
    // message does not tell them apart): the seat changed, or the Lease is another, so the engine reads again.
    const patched = await this.call(
      "patch",
      `patch seat on lease ${lease.name}`,
      options,
      (signal) => this.api.jsonPatch(lease.name, operations, signal),
      { 422: "conflict" },
    );
    if (!isManaged(patched)) throw foreign(lease.name, this.namespace);
    return leaseToRecord(patched);
  }

  watch(listener: (event: WatchEvent) => void, names?: ReadonlySet<string>, options?: WatchOptions): WatchHandle {
    const watcher = new LeaseWatcher(this, listener, names, options?.checkUnlabelled ?? (() => true), this.log, this.observer);
    void watcher.run();
    return { stop: () => watcher.stop(), rescope: () => watcher.rescope() };
  }

  /**
   * Lists the managed Leases in `scope`; used by the watcher to (re)sync. An
   * empty scope lists at most one Lease and returns none: it only proves that
   * the API server answers and RBAC allows the list.
   */
  async list(scope: WatchScope, signal: AbortSignal): Promise<{ leases: LeaseRecord[]; resourceVersion: string }> {
    const empty = scope !== "all" && scope.size === 0;
    const list: V1LeaseList = await this.call("list", "list leases", { signal }, (callSignal) =>
      this.api.list(labelSelector(scope), empty ? 1 : undefined, callSignal),
    );
    const leases = empty ? [] : list.items.map(leaseToRecord).filter((lease) => inScope(scope, lease.name));
    return { leases, resourceVersion: list.metadata?.resourceVersion ?? "" };
  }

  /** Starts one watch request on `scope`; `done` is called once when it ends, with the error if any. */
  startWatch(
    scope: WatchScope,
    resourceVersion: string,
    onEvent: (phase: string, object: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    return this.api.watch(
      {
        labelSelector: labelSelector(scope),
        resourceVersion,
        allowWatchBookmarks: true,
        // The server ends each watch after 5 to 10 minutes; the watcher resumes it.
        timeoutSeconds: 300 + Math.floor(this.random() * 300),
      },
      onEvent,
      done,
    );
  }

  /** Runs one API call with the caller's abort signal, mapping failures to StoreErrors (`reasons` overrides the usual one by HTTP code). */
  private async call<T>(
    verb: "get" | "create" | "update" | "patch" | "list",
    doing: string,
    options: CallOptions | undefined,
    run: (signal: AbortSignal | undefined) => Promise<T>,
    reasons: Readonly<Record<number, StoreErrorReason>> = {},
  ): Promise<T> {
    const started = this.clock.now();
    try {
      const result = await run(options?.signal);
      this.observer?.request(verb, 200, this.clock.now() - started);
      return result;
    } catch (err) {
      const code = err instanceof LeaseApiError ? err.code : "error";
      this.observer?.request(verb, code, this.clock.now() - started);
      const error = toStoreError(err, doing, this.namespace);
      const reason = err instanceof LeaseApiError ? reasons[err.code] : undefined;
      throw reason === undefined ? error : new StoreError(reason, error.message);
    }
  }
}

/** Calls and watches over node:https (a pool for calls, a connection per watch); through a proxy, client-node. */
function leaseApiFor(kubeConfig: KubeConfig, namespace: string): LeaseApi {
  if (HttpsLeaseApi.supports(kubeConfig)) return new HttpsLeaseApi(kubeConfig, namespace, MAX_CONNECTIONS - 1);
  return new ClientNodeLeaseApi(kubeConfig, namespace);
}

/** Maps an API failure to the store's error reasons; RBAC denials keep the API server's message, which names the verb and resource. */
function toStoreError(err: unknown, doing: string, namespace: string): StoreError {
  if (err instanceof LeaseApiError) {
    const status = parseStatus(err.body);
    const message = status?.message ?? err.message;
    const reason: StoreErrorReason | undefined = (
      {
        404: "not-found",
        403: "forbidden",
        401: "forbidden",
        422: "invalid",
        400: "invalid",
      } as Record<number, StoreErrorReason>
    )[err.code];
    if (err.code === 409) return new StoreError(status?.reason === "AlreadyExists" ? "exists" : "conflict", `${doing}: ${message}`);
    if (err.code === 401) return new StoreError("forbidden", `${doing} in namespace ${namespace}: unauthorized (${message})`);
    if (reason !== undefined) return new StoreError(reason, `${doing}: ${message}`);
    return new StoreError("unavailable", `${doing}: API server answered ${err.code}: ${message}`);
  }
  const cause = (err as { cause?: { code?: string } })?.cause?.code;
  const text = err instanceof Error ? err.message : String(err);
  return new StoreError("unavailable", `${doing}: API server unreachable (${cause ?? text})`);
}

function parseStatus(body: unknown): { message?: string; reason?: string } | undefined {
  if (typeof body === "object" && body !== null) return body as { message?: string; reason?: string };
  if (typeof body !== "string") return undefined;
  try {
    return JSON.parse(body) as { message?: string; reason?: string };
  } catch {
    return { message: body };
  }
}

function foreign(name: string, namespace: string): StoreError {
  return new StoreError(
    "foreign",
    `Lease ${namespace}/${name} exists but is not managed by metaparticle-sync (no label ${MANAGED_SELECTOR}); it is never modified. Choose another name.`,
  );
}

/**
 * A daemon using more names than this watches every managed Lease of the
 * namespace instead: the selector stays short (a few KiB of URL), and such a
 * daemon hears most of the namespace's writes anyway.
 */
export const MAX_SCOPED_NAMES = 100;

/** How long the watch waits for one list or read before it gives up and tries again. */
export const WATCH_CALL_TIMEOUT_MS = 10_000;
/**
 * How long the watch waits for the read that checks whether a name not listed
 * is a Lease an older daemon wrote without the name label: a best-effort
 * check, tried again at the next list, that must not hold the watch up. A
 * check is given twice as long as the list before it took, if that is
 * longer, up to WATCH_CALL_TIMEOUT_MS: an API server whose backlog holds
 * every request longer than 2 s would otherwise never answer one (seed
 * 261367), while a single read that hangs on a server that answers the list
 * at once holds the watch up 2 s, not more (seed 293645).
 */
export const LOOKUP_TIMEOUT_MS = 2_000;

/** The scope a watch on `names` lists and watches. */
function scopeOf(names: ReadonlySet<string> | undefined): WatchScope {
  return names === undefined || names.size > MAX_SCOPED_NAMES ? "all" : new Set(names);
}

/** The scope of a watch that covered `scope` and now needs `names` too. */
function grown(scope: WatchScope | undefined, names: ReadonlySet<string> | undefined): WatchScope {
  if (scope === undefined || scope === "all" || names === undefined) return scopeOf(names);
  return scopeOf(new Set([...scope, ...names]));
}

function labelSelector(scope: WatchScope): string {
  return scope === "all" || scope.size === 0 ? MANAGED_SELECTOR : selectorFor(scope);
}

/**
 * The list-then-watch loop behind `KubernetesStore.watch`. After a list it
 * only resumes watches from the last resourceVersion seen; it relists (sending
 * "synced" again) when the API server says that version is gone, when the
 * wanted names outgrow the scope, and, to narrow the scope, when a watch that
 * covers names nobody wants any more ends on its own.
 */
class LeaseWatcher {
  private stopped = false;
  private controller: AbortController | undefined;
  private readonly abort = new AbortController();
  private resourceVersion = "";
  /** What the last list covered; undefined before the first. */
  private scope: WatchScope | undefined;
  private retryMs = MIN_RETRY_MS;
  private wake: (() => void) | undefined;
  /** Names a list did not return that were then looked up one by one, and that every list since has covered. */
  private readonly lookedUp = new Set<string>();
  /**
   * Names this watch last told of as existing (listed, or added and changed
   * since): one missing from the next list was deleted, or lost its name label
   * by hand, and only a read tells which.
   */
  private readonly present = new Set<string>();
  /**
   * A Lease among the names wanted has no name label: an older daemon wrote
   * it, and no selector by name finds it. From then on this watch covers
   * every managed Lease, as before the scoped watch.
   */
  private unlabelled = false;
  /** The last list left names unchecked (their check went unanswered): the watch lists again after `checkRetryMs`. */
  private unchecked = false;
  private recheckDue = false;
  private checkRetryMs = MIN_RETRY_MS;

  constructor(
    private readonly store: KubernetesStore,
    private readonly listener: (event: WatchEvent) => void,
    /** The names wanted, a live set; undefined for every managed Lease. */
    private readonly names: ReadonlySet<string> | undefined,
    /** Whether a name not listed may be an older daemon's Lease without the name label (WatchOptions.checkUnlabelled). */
    private readonly checkUnlabelled: (name: string) => boolean,
    private readonly log: Logger,
    private readonly observer: StoreObserver | undefined,
  ) {}

  async run(): Promise<void> {
    let needList = true;
    while (!this.stopped) {
      try {
        if (needList || !this.covered() || this.recheckDue) {
          // A relist covers the names wanted now; a scope that grows keeps the names it had, whose
          // renewals this daemon has been timing (a name seen afresh waits a whole lease to expire).
          const scope = this.unlabelled ? "all" : needList ? scopeOf(this.names) : grown(this.scope, this.names);
          const listedFrom = this.store.clock.now();
          const { leases, resourceVersion } = await this.withDeadline((signal) => this.store.list(scope, signal));
          const lookupMs = Math.min(Math.max(LOOKUP_TIMEOUT_MS, 2 * (this.store.clock.now() - listedFrom)), WATCH_CALL_TIMEOUT_MS);
          const checked = scope === "all" ? undefined : await this.checkUnlisted(scope, leases, lookupMs);
          if (checked?.unlabelled === true) {
            this.unlabelled = true;
            this.log.info("a Lease in use has no name label (an older daemon wrote it): watching every managed Lease");
            continue;
          }
          this.scope = scope;
          // A name looked up once is not again only while the watch covers it since: out of its scope, it may have
          // been created, or lost its name label, unheard (seed 378565).
          for (const name of this.lookedUp) if (!inScope(scope, name)) this.lookedUp.delete(name);
          this.resourceVersion = resourceVersion;
          this.recheckDue = false;
          // A name whose check went unanswered may be an older daemon's Lease: it is not reported covered (an
          // empty entry is not "nobody"), though the watch selects it, and a list soon checks it again.
          const unchecked = checked?.unanswered ?? [];
          // (Backing off while the checks keep going unanswered.)
          this.checkRetryMs = unchecked.length > 0 && this.unchecked ? nextRetryMs(this.checkRetryMs) : MIN_RETRY_MS;
          this.unchecked = unchecked.length > 0;
          const told = unchecked.length === 0 ? scope : new Set([...scope].filter((name) => !unchecked.includes(name)));
          // What the checks found is told with the list: a Lease labelled since the list was taken is not in it.
          this.tell({ type: "synced", leases: [...leases, ...(checked?.found ?? [])], scope: told, version: resourceVersion });
          needList = false;
          continue; // the names may have grown during the list
        }
        if (this.scope !== "all" && this.scope!.size === 0) {
          await this.pause(undefined); // nothing to watch until a name is wanted
          continue;
        }
        const started = this.store.clock.now();
        const outcome = await this.watchOnce(this.scope!);
        if (outcome === "rescope") continue;
        if (outcome === "expired") {
          this.observer?.watchRestart("expired");
          this.log.info({ resourceVersion: this.resourceVersion }, "watch resource version expired (410 Gone): relisting");
          needList = true;
          continue;
        }
        this.observer?.watchRestart(outcome);
        // A watch that lasted is resumed at once (narrowed to the names still wanted, if fewer);
        // one the server keeps closing right away is retried with backoff.
        if (outcome === "ended" && this.store.clock.now() - started > 1_000) {
          this.retryMs = MIN_RETRY_MS;
          needList = this.narrower();
          continue;
        }
      } catch (err) {
        if (this.stopped) return;
        if (err instanceof StoreError) this.listener({ type: "error", error: err });
        this.observer?.watchRestart("error");
        this.log.warn({ err: err instanceof Error ? err.message : String(err), retryMs: this.retryMs }, "watch failed; retrying");
      }
      await this.pause(retryPauseMs(this.retryMs, this.store.random));
      this.retryMs = nextRetryMs(this.retryMs);
    }
  }

  /** Tells the listener of `event`, keeping `present` up to date. */
  private tell(event: WatchEvent): void {
    if (event.type === "synced") {
      this.present.clear();
      for (const lease of event.leases) this.present.add(lease.name);
    } else if (event.type === "upsert") this.present.add(event.lease.name);
    else if (event.type === "delete") this.present.delete(event.name);
    this.listener(event);
  }

  /** The wanted names changed: a watch that does not cover them all ends, and the loop lists the new scope. */
  rescope(): void {
    if (this.scope === undefined || this.covered()) return;
    this.controller?.abort();
    if (this.scope !== "all" && this.scope.size === 0) this.wake?.();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    this.controller?.abort();
    this.wake?.();
  }

  /** True when the last list covers every wanted name. */
  private covered(): boolean {
    if (this.scope === undefined) return false;
    if (this.unlabelled) return this.scope === "all";
    return this.scope === "all" || (this.names !== undefined && coversAll(this.scope, this.names));
  }

  /**
   * Looks up, once each, the names in `scope` that the list did not return:
   * whether one of them exists, managed, without the name label; what the
   * reads found (a Lease labelled since the list); which went unanswered. A
   * name no older daemon writes (`checkUnlabelled`) is not looked up unless
   * the watch last told of it as existing: then it may have lost its label by
   * hand, and only a read tells that from a deletion.
   */
  private async checkUnlisted(
    scope: ReadonlySet<string>,
    listed: readonly LeaseRecord[],
    timeoutMs: number,
  ): Promise<{ unlabelled: boolean; found: LeaseRecord[]; unanswered: string[] }> {
    const missing = [...scope].filter(
      (name) =>
        (this.present.has(name) || (!this.lookedUp.has(name) && this.checkUnlabelled(name))) &&
        !listed.some((lease) => lease.name === name),
    );
    const found: LeaseRecord[] = [];
    const unanswered: string[] = [];
    let unlabelled = false;
    await Promise.all(
      missing.map(async (name) => {
        // Best effort, and briefly: a read that fails or hangs must not hold up the watch of every other name.
        // It is tried again at the next list.
        let answered = true;
        const record = await this.withDeadline((signal) => this.store.get(name, { signal }), timeoutMs).catch((err: unknown) => {
          if (!(err instanceof StoreError && err.reason === "foreign")) answered = false; // (not ours: the engine says so on use)
          return undefined;
        });
        if (answered) this.lookedUp.add(name);
        // (One the watch last told of as existing counts as deleted, as when a DELETED's read fails.)
        else if (!this.present.has(name)) unanswered.push(name);
        if (record === undefined) return;
        if ((record.native as V1Lease).metadata?.labels?.[NAME_LABEL] === undefined) unlabelled = true;
        else found.push(record);
      }),
    );
    return { unlabelled, found, unanswered };
  }

  /** True when the scope covers names nobody wants any more, and a smaller one would do. */
  private narrower(): boolean {
    if (this.names === undefined || this.scope === undefined || this.unlabelled) return false;
    const next = scopeOf(this.names);
    if (next === "all") return false;
    return this.scope === "all" || this.scope.size > next.size;
  }

  /** One watch request on `scope`, until it ends or the wanted names outgrow it. */
  private watchOnce(scope: WatchScope): Promise<"ended" | "expired" | "error" | "rescope"> {
    return new Promise((resolve) => {
      let expired = false;
      let sawEvent = false;
      const onEvent = (phase: string, object: unknown) => {
        if (this.stopped) return;
        this.observer?.watchEvent(phase);
        const lease = object as V1Lease & { code?: number };
        if (phase === "ERROR") {
          if (lease.code === 410) expired = true;
          return;
        }
        const version = lease.metadata?.resourceVersion;
        if (version !== undefined) this.resourceVersion = version;
        if (!sawEvent) {
          sawEvent = true;
          this.retryMs = MIN_RETRY_MS;
        }
        if (phase === "BOOKMARK") return;
        const name = lease.metadata?.name ?? "";
        if (!inScope(scope, name)) return; // a long name whose label value another name shares
        const change = watchedChange(phase as "ADDED" | "MODIFIED" | "DELETED", lease, scope === "all" ? "all" : "names");
        if (change.type === "read") void this.confirmDeletion(change.name, change.version);
        else this.tell(change);
      };
      // Names left unchecked by the last list: this watch ends after a pause, and the loop lists to check them.
      const recheck = this.unchecked
        ? this.store.clock.setTimer(retryPauseMs(this.checkRetryMs, this.store.random), () => {
            this.recheckDue = true;
            this.controller?.abort();
          })
        : undefined;
      const done = (err: unknown) => {
        recheck?.cancel();
        const status = (err as { statusCode?: number } | null)?.statusCode;
        if (expired || status === 410) resolve("expired");
        else if (!this.stopped && (!this.covered() || this.recheckDue)) resolve("rescope");
        else if (err === null || err === undefined || (err as Error).name === "TimeoutError" || (err as Error).name === "AbortError")
          resolve("ended");
        else {
          this.log.warn({ err: (err as Error).message ?? String(err) }, "watch ended with an error");
          resolve("error");
        }
      };
      this.store.startWatch(scope, this.resourceVersion, onEvent, done).then(
        (controller) => {
          this.controller = controller;
          if (this.stopped || !this.covered() || this.recheckDue) controller.abort();
        },
        (err: unknown) => done(err),
      );
    });
  }

  /**
   * A Lease left a watch selected by name: deleted, or relabelled by hand.
   * Only a read tells; a Lease still there and ours is still held by whoever
   * holds it, and its holder's next write puts the label back. When the read
   * fails the deletion is believed: the holder stops, which is safe; and the
   * watch lists again and looks the name up, so that a Lease still there is
   * heard of again once the API server answers.
   */
  private async confirmDeletion(name: string, version: string): Promise<void> {
    let change: WatchEvent = { type: "delete", name, version };
    try {
      const record = await this.withDeadline((signal) => this.store.get(name, { signal }));
      if (record !== undefined) change = { type: "upsert", lease: record };
      // Still there, without its name label: no watch by name hears of it any more, so watch every managed Lease.
      if (record !== undefined && !this.unlabelled && (record.native as V1Lease).metadata?.labels?.[NAME_LABEL] === undefined) {
        this.unlabelled = true;
        this.log.info({ lease: name }, "a Lease in use lost its name label (edited by hand): watching every managed Lease");
        this.rescope();
      }
    } catch (err) {
      if (!(err instanceof StoreError && err.reason === "foreign")) {
        this.log.warn(
          { lease: name, err: err instanceof Error ? err.message : String(err) },
          "could not read a Lease that left the watch; taking it as deleted",
        );
        // It may still be there without its name label, which no watch by name hears of: the watch lists again (with
        // backoff while the API server fails) and looks the name up, as a name it never checked (seed 404154).
        this.lookedUp.delete(name);
        this.recheckDue = true;
        this.controller?.abort();
      }
    }
    if (!this.stopped) this.tell(change);
  }

  /**
   * Runs one list or read of the watch with a deadline: the loop waits for
   * it, and a request the API server never answers would otherwise hold the
   * watch until the HTTP client's own timeout (minutes).
   */
  private async withDeadline<T>(call: (signal: AbortSignal) => Promise<T>, timeoutMs = WATCH_CALL_TIMEOUT_MS): Promise<T> {
    const controller = new AbortController();
    const stop = () => controller.abort();
    this.abort.signal.addEventListener("abort", stop, { once: true });
    const timer = this.store.clock.setTimer(timeoutMs, stop);
    try {
      return await call(controller.signal);
    } finally {
      timer.cancel();
      this.abort.signal.removeEventListener("abort", stop);
    }
  }

  /** Waits `ms`, or (undefined) until woken by `rescope` or `stop`. */
  private pause(ms: number | undefined): Promise<void> {
    return new Promise((resolve) => {
      const timer = ms === undefined ? undefined : this.store.clock.setTimer(ms, resolve);
      this.wake = () => {
        timer?.cancel();
        resolve();
      };
    });
  }
}
