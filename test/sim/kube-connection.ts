// One simulated daemon's connection to the simulated API server, as the
// LeaseApi its real KubernetesStore calls: the same call faults as on the
// memory store (call-faults.ts) with the errors an HTTP client sees, a network
// that can be cut (calls refused; open watches go silent, then end with a
// reset when it heals), watches that break (end at once, and new ones are
// refused for a while), watch events that arrive late, and a process that is
// frozen (what arrives waits) or dead (nothing arrives).
import type { V1Lease, V1LeaseList } from "@kubernetes/client-node";
import type { Clock } from "../../daemon/engine/clock.js";
import type { LeaseApi, LeaseWatchQuery } from "../../daemon/store/kubernetes/lease-api.js";
import type { StoreOperation } from "../../daemon/store/memory/memory-store.js";
import type { PartitionMode } from "../support/connection-store.js";
import { type CallFault, type FaultErrors, runWithFault } from "./call-faults.js";
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

  constructor(
    private readonly server: SimApiServer,
    /** The network's time, which no daemon fault stops. */
    private readonly clock: Clock,
    private readonly link: ConnectionLink,
  ) {}

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
    };
    this.open.add(watch);
    closeServer = this.server.watch(
      query,
      (type, object) => {
        if (!watch.severed) this.event(() => !watch.over && onEvent(type, object));
      },
      (err) => {
        if (!watch.severed && !watch.over) this.event(() => watch.done(err));
      },
    );
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
    if (this.hearingCut) for (const watch of this.open) watch.severed = true;
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
    this.link.traceCall?.(`api ${operation} ${name}${fault.kind === "none" ? "" : ` [${fault.kind}]`}`);
    return runWithFault<T>({
      clock: this.clock,
      fault,
      // Its turn at the API server, behind the requests of every daemon before it, then the network.
      baseLatencyMs: this.server.admit() + this.link.baseLatencyMs(),
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
  }

  private faultOf(operation: StoreOperation, name: string, hasDeadline: boolean, acquiring: boolean): CallFault {
    const fault = this.link.decide(operation, name, hasDeadline, acquiring);
    if (operation !== "update" && fault.kind === "conflict") return { kind: "none" };
    if (operation === "get" && fault.kind === "lost-reply") return { kind: "hang", applied: false };
    return fault;
  }
}
