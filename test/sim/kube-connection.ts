// One simulated daemon's connection to the simulated API server, as the
// LeaseApi its real KubernetesStore calls: the same call faults as on the
// memory store (call-faults.ts) with the errors an HTTP client sees, a network
// that can be cut (calls refused; open watches go silent, then end with a
// reset when it heals), watches that break (end at once, and new ones are
// refused for a while), watch events that arrive late, and a process that is
// frozen (what arrives waits) or dead (nothing arrives).
import type { V1Lease, V1LeaseList } from "@kubernetes/client-node";
import type { Clock } from "../../daemon/engine/clock.js";
import type { JsonPatchOperation, LeaseApi, LeaseWatchQuery } from "../../daemon/store/kubernetes/lease-api.js";
import type { StoreOperation } from "../../daemon/store/memory/memory-store.js";
import type { PartitionMode } from "../support/connection-store.js";
import { type CallFault, type FaultErrors, runWithFault } from "./call-faults.js";
import { NAME_LABEL } from "../../daemon/store/kubernetes/lease-convert.js";
import { type SimApiServer, status } from "./kube-api-server.js";

/** What the connection needs of its daemon and of the world. */
export interface ConnectionLink {
  /** Chooses the fault of one call; `acquiring`: a write that makes this daemon the holder. */
  decide(operation: StoreOperation, name: string, hasDeadline: boolean, acquiring: boolean): CallFault;
  /** A call with a fault began; returns what to call once it has answered. */
  faultBegan(fault: CallFault, operation: StoreOperation, name: string, hasDeadline: boolean): () => void;
  /** Hands something to the daemon process (see FaultyStore.deliver). */
  deliver(fn: () => void): void;
  /** Latency of every call now. */
  baseLatencyMs(): number;
  /** Extra latency of watch events now. */
  watchDelayMs(): number;
  traceCall?(line: string): void;
  /**
   * A request waited `waitMs` for its turn at an API server that cannot keep
   * up (`name` "" for a list); `deaf`: no watch of this daemon was open, so it
   * hears nothing until a list or watch of its is served.
   */
  waited?(operation: StoreOperation | "list", name: string, waitMs: number, deaf: boolean): void;
  /**
   * The API server's backlog held up what the daemon's watch tells it from
   * `from` to `to`: no watch of its was open while a request of its waited, or
   * the read that confirms a deletion its watch reported waited. Its cache
   * may have been as old as `from` until `to`.
   */
  watchHeldUp?(from: number, to: number): void;
  /**
   * A read with a fault (a hang, latency, a late reply) began while no watch
   * of this daemon was open: it may be the watch's own check of a name the
   * list did not return, which the list that opens the watch waits for, so
   * the daemon may hear nothing until it ends. Returns what to call then.
   */
  deafRead?(): () => void;
}

/** A failure without an answer, as fetch reports one. */
function network(code: string, doing: string): Error {
  return Object.assign(new TypeError(`fetch failed (${doing}, simulated)`), { cause: { code } });
}

function errorsFor(operation: StoreOperation, name: string): FaultErrors {
  return {
    conflict: () =>
      status(
        409,
        "Conflict",
        `Operation cannot be fulfilled on leases.coordination.k8s.io "${name}": the object has been modified (simulated 409)`,
      ),
    lostReply: () => network("ECONNRESET", `${operation} ${name}: reply lost; the write was applied`),
    abandoned: () => Object.assign(new Error(`${operation} ${name}: abandoned at the caller's deadline`), { name: "AbortError" }),
    clientTimeout: () => network("ETIMEDOUT", `${operation} ${name}: HTTP client timeout`),
  };
}

interface ClientWatch {
  /** Ends it from the server's side without telling the client. */
  readonly close: () => void;
  readonly done: (err: unknown) => void;
  /** Cut off by a partition: events are lost, and the client learns of it when the network heals. */
  severed: boolean;
  over: boolean;
  /** The server stops sending it what is written (it ended, or the network is cut). */
  deaf: () => void;
}

export class SimApiConnection implements LeaseApi {
  /** Calls are refused (a partition that cuts writes). */
  private callsCut = false;
  /** Watches are silent (a partition that cuts hearing: a half-open connection). */
  private hearingCut = false;
  private dead = false;
  private watchRefusedUntil = -Infinity;
  private readonly open = new Set<ClientWatch>();
  private lastEventAt = 0;
  /** Watches the server is sending to now (accepted, not ended, not cut off). */
  private hearing = 0;
  /** Since when none is (the connection's start, or the end of the last one); undefined while one is. */
  private deafSince: number | undefined;
  /** A request of this daemon waited in the API server's backlog since `deafSince`. */
  private waitedWhileDeaf = false;
  /**
   * Leases a watch selected by name told this daemon of as DELETED, and when:
   * the store reads each before it believes the deletion (kubernetes-store.ts).
   */
  private readonly leftWatch = new Map<string, number>();

  constructor(
    private readonly server: SimApiServer,
    /** The network's time, which no daemon fault stops. */
    private readonly clock: Clock,
    private readonly link: ConnectionLink,
  ) {
    this.deafSince = clock.now();
  }

  describe(): string {
    return "simulated API server";
  }

  read(name: string, signal?: AbortSignal): Promise<V1Lease> {
    return this.call("get", name, signal, false, () => this.server.read(name));
  }

  create(body: V1Lease, signal?: AbortSignal): Promise<V1Lease> {
    const name = body.metadata?.name ?? "";
    return this.call("create", name, signal, (body.spec?.holderIdentity ?? "") !== "", () => this.server.create(body));
  }

  replace(name: string, body: V1Lease, signal?: AbortSignal): Promise<V1Lease> {
    const current = this.server.peek(name);
    const acquiring =
      (body.spec?.holderIdentity ?? "") !== "" && current !== undefined && body.spec?.leaseTransitions !== current.spec?.leaseTransitions;
    return this.call("update", name, signal, acquiring, () => this.server.replace(name, body));
  }

  mergePatch(name: string, patch: object, signal?: AbortSignal): Promise<V1Lease> {
    return this.call("patch", name, signal, false, () => this.server.mergePatch(name, patch));
  }

  jsonPatch(name: string, operations: readonly JsonPatchOperation[], signal?: AbortSignal): Promise<V1Lease> {
    return this.call("patch", name, signal, false, () => this.server.jsonPatch(name, operations));
  }

  list(labelSelector: string, limit: number | undefined, signal?: AbortSignal): Promise<V1LeaseList> {
    return this.call("list", "", signal, false, () => this.server.list(labelSelector, limit));
  }

  watch(query: LeaseWatchQuery, onEvent: (type: string, object: unknown) => void, done: (err: unknown) => void): Promise<AbortController> {
    const controller = new AbortController();
    if (this.dead) return Promise.resolve(controller);
    const trace = this.link.traceCall;
    if (trace !== undefined) {
      trace(`api watch ${query.labelSelector} from ${query.resourceVersion || "now"}`);
      const told = done;
      done = (err) => {
        trace(
          `api watch from ${query.resourceVersion || "now"} ended: ${err === null || err === undefined ? "by the server" : ((err as Error).message ?? String(err))}`,
        );
        told(err);
      };
    }
    if (this.hearingCut || this.clock.now() < this.watchRefusedUntil) {
      const reason = this.hearingCut ? "ECONNREFUSED" : "ECONNRESET";
      this.clock.setTimer(this.link.baseLatencyMs(), () => this.link.deliver(() => done(network(reason, "watch"))));
      return Promise.resolve(controller);
    }
    let closeServer = () => {};
    const watch: ClientWatch = {
      close: () => {
        watch.over = true;
        closeServer();
      },
      done: (err) => {
        if (watch.over) return;
        watch.over = true;
        this.open.delete(watch);
        done(err);
      },
      severed: false,
      over: false,
      deaf: () => {},
    };
    this.open.add(watch);
    // Whether the server sends this watch what is written: from its acceptance until it ends (or is cut off).
    let heard = false;
    let endedAtOnce = false;
    watch.deaf = () => {
      if (!heard) return;
      heard = false;
      this.hearing -= 1;
      if (this.hearing === 0) this.deafSince = this.clock.now();
    };
    closeServer = this.server.watch(
      query,
      (type, object) => {
        if (!watch.severed)
          this.event(() => {
            if (watch.over) return;
            const name = (object as V1Lease).metadata?.name;
            if (name !== undefined && type !== "BOOKMARK" && type !== "ERROR") {
              if (type === "DELETED" && query.labelSelector.includes(NAME_LABEL)) this.leftWatch.set(name, this.clock.now());
              else this.leftWatch.delete(name);
            }
            onEvent(type, object);
          });
      },
      (err) => {
        endedAtOnce = true;
        watch.deaf();
        if (!watch.severed && !watch.over) this.event(() => watch.done(err));
      },
    );
    // (One answered 410, or refused, ended within the request: it was never heard.)
    if (!endedAtOnce) {
      heard = true;
      this.hearing += 1;
      if (this.hearing === 1) this.hears();
    }
    // An abort ends the request on the client's side at once, whatever the network does.
    controller.signal.addEventListener(
      "abort",
      () => {
        if (watch.over) return;
        watch.close();
        this.open.delete(watch);
        watch.over = false;
        this.event(() => watch.done(Object.assign(new Error("The operation was aborted."), { name: "AbortError" })));
      },
      { once: true },
    );
    return Promise.resolve(controller);
  }

  /** The network between the daemon and the API server is cut: both ways, or only its writes, or only what it hears. */
  partition(mode: PartitionMode = "both"): void {
    this.callsCut = mode !== "hearing";
    this.hearingCut = mode !== "writes";
    if (this.hearingCut)
      for (const watch of this.open) {
        watch.severed = true;
        watch.deaf();
      }
  }

  /** The network is back: watches cut meanwhile end with a reset, and the store resumes them. */
  heal(): void {
    this.callsCut = false;
    this.hearingCut = false;
    for (const watch of [...this.open]) {
      if (!watch.severed) continue;
      watch.close();
      this.open.delete(watch);
      watch.over = false;
      this.event(() => watch.done(network("ECONNRESET", "watch")));
    }
  }

  /** The daemon's watches end now (reset or a clean end) and new ones are refused for `ms`. */
  breakWatches(ms: number, withError: boolean): void {
    this.watchRefusedUntil = this.clock.now() + ms;
    for (const watch of [...this.open]) {
      watch.close();
      this.open.delete(watch);
      watch.over = false;
      this.event(() => watch.done(withError ? network("ECONNRESET", "watch") : null));
    }
  }

  /** SIGKILL: nothing reaches the process again; its watches are dropped. */
  kill(): void {
    this.dead = true;
    for (const watch of this.open) watch.close();
    this.open.clear();
  }

  /**
   * A watch is heard again: if a request of this daemon waited in the API
   * server's backlog meanwhile, the backlog held its watch up from the end of
   * the last one (or the start) until now.
   */
  private hears(): void {
    if (this.waitedWhileDeaf && this.deafSince !== undefined) this.link.watchHeldUp?.(this.deafSince, this.clock.now());
    this.deafSince = undefined;
    this.waitedWhileDeaf = false;
  }

  /** Delivers a watch event (or end) after the current watch delay, never before an earlier one. */
  private event(fn: () => void): void {
    const now = this.clock.now();
    const at = Math.max(now + this.link.watchDelayMs(), this.lastEventAt);
    this.lastEventAt = at;
    if (at <= now) this.link.deliver(fn);
    else this.clock.setTimer(at - now, () => this.link.deliver(fn));
  }

  private call<T>(
    operation: StoreOperation | "list",
    name: string,
    signal: AbortSignal | undefined,
    acquiring: boolean,
    serve: () => T,
  ): Promise<T> {
    if (this.dead) return new Promise(() => {});
    const hasDeadline = signal !== undefined;
    const fault: CallFault =
      operation === "list" || this.callsCut ? { kind: "none" } : this.faultOf(operation, name, hasDeadline, acquiring);
    const ended = fault.kind === "none" || operation === "list" ? undefined : this.link.faultBegan(fault, operation, name, hasDeadline);
    const deafRead = ended !== undefined && operation === "get" && this.hearing === 0 ? this.link.deafRead?.() : undefined;
    // Its turn at the API server, behind the requests of every daemon before it, then the network.
    const waitMs = this.callsCut ? 0 : this.server.admit();
    const leftAt = operation === "get" ? this.leftWatch.get(name) : undefined;
    this.leftWatch.delete(name);
    if (waitMs > 0) {
      if (this.hearing === 0) this.waitedWhileDeaf = true;
      this.link.waited?.(operation, name, waitMs, this.hearing === 0);
    }
    this.link.traceCall?.(
      `api ${operation} ${name}${fault.kind === "none" ? "" : ` [${fault.kind}]`}${waitMs > 0 ? ` (waits ${Math.round(waitMs)} ms for its turn)` : ""}`,
    );
    const answered = runWithFault<T>({
      clock: this.clock,
      fault,
      baseLatencyMs: waitMs + this.link.baseLatencyMs(),
      signal,
      ended,
      deliver: (fn) => this.link.deliver(fn),
      perform: () => {
        if (this.callsCut) return Promise.reject(network("ECONNREFUSED", `${operation} ${name}`));
        try {
          return Promise.resolve(serve());
        } catch (err) {
          return Promise.reject(err);
        }
      },
      errors: errorsFor(operation === "list" ? "get" : operation, name),
    });
    if (deafRead !== undefined) answered.then(deafRead, deafRead);
    // The read that confirms a deletion waited its turn: the daemon hears of the change only once it answers.
    if (leftAt !== undefined && waitMs > 0) {
      const heard = () => this.link.watchHeldUp?.(leftAt, this.clock.now());
      answered.then(heard, heard);
    }
    return answered;
  }

  private faultOf(operation: StoreOperation, name: string, hasDeadline: boolean, acquiring: boolean): CallFault {
    const fault = this.link.decide(operation, name, hasDeadline, acquiring);
    if (operation !== "update" && fault.kind === "conflict") return { kind: "none" };
    if (operation === "get" && fault.kind === "lost-reply") return { kind: "hang", applied: false };
    return fault;
  }
}
