// The Kubernetes backend of a simulated run: one simulated API server that
// every daemon reaches through its own faulty connection, each daemon running
// the real KubernetesStore on it. It shows the harness the same face as the
// shared MemoryStore does (peek, hand edits, its own watch), so the oracles
// read both backends alike.
import type { V1Lease } from "@kubernetes/client-node";
import type { Clock } from "../../daemon/engine/clock.js";
import { KubernetesStore } from "../../daemon/store/kubernetes/kubernetes-store.js";
import {
  HOLDER_ANNOTATION,
  HOLDER_OF_ANNOTATION,
  KIND_LABEL,
  MANAGED_BY,
  MANAGED_BY_LABEL,
  NAME_LABEL,
  QUEUE_ANNOTATION,
  isManaged,
  leaseToRecord,
} from "../../daemon/store/kubernetes/lease-convert.js";
import type { LeaseFields, LeaseRecord, WatchEvent } from "../../daemon/store/lease-store.js";
import { createLogger } from "../../daemon/log.js";
import { type ApiServerOptions, SimApiServer } from "./kube-api-server.js";
import { type ConnectionLink, SimApiConnection } from "./kube-connection.js";

export const SIM_NAMESPACE = "sim";

export class KubeBackend {
  readonly server: SimApiServer;

  constructor(
    private readonly clock: Clock,
    options: ApiServerOptions,
  ) {
    this.server = new SimApiServer(clock, options);
  }

  /** API calls served, by verb. */
  get calls(): { get: number; create: number; update: number } {
    return this.server.calls;
  }

  isNewer(a: string, b: string): boolean {
    return Number(a) > Number(b);
  }

  /** The managed Lease as stored now, as a record. */
  peek(name: string): LeaseRecord | undefined {
    const lease = this.server.peek(name);
    return lease === undefined || !isManaged(lease) ? undefined : leaseToRecord(lease);
  }

  /** kubectl delete. */
  delete(name: string): void {
    this.server.delete(name);
  }

  /**
   * kubectl edit of the fields a person changes (holder, duration, queue):
   * the spec and the queue annotation change, nothing else (the daemons'
   * other annotations stay as they were).
   */
  edit(name: string, change: (record: LeaseRecord) => LeaseFields): void {
    this.handEdit(name, (lease) => {
      const next = change(leaseToRecord(lease));
      lease.spec = { ...lease.spec, holderIdentity: next.holderIdentity, leaseDurationSeconds: next.leaseDurationSeconds };
      const annotations = { ...lease.metadata?.annotations };
      if (next.queue.length > 0) annotations[QUEUE_ANNOTATION] = JSON.stringify(next.queue);
      else delete annotations[QUEUE_ANNOTATION];
      lease.metadata = { ...lease.metadata, annotations };
    });
  }

  /** Someone removes the name label (kubectl label lease X name-): the Lease leaves every watch selected by name. */
  relabel(name: string): void {
    this.handEdit(name, (lease) => {
      const { [NAME_LABEL]: _removed, ...labels } = lease.metadata?.labels ?? {};
      lease.metadata = { ...lease.metadata, labels };
    });
  }

  /**
   * True when no daemon of this version has written the holder of `name`:
   * without the holder-identity annotation, a holder annotation an older
   * daemon left naming someone is trusted whoever holds the Lease
   * (lease-convert.ts); with none left, the holderIdentity is reported.
   */
  holderUnrecorded(name: string): boolean {
    const annotations = this.server.peek(name)?.metadata?.annotations ?? {};
    return annotations[HOLDER_OF_ANNOTATION] === undefined && (annotations[HOLDER_ANNOTATION] ?? "") !== "";
  }

  /**
   * A program that is not a daemon (client-go's leader election) takes the
   * Lease as client-go does: its identity, fresh times, one more transition,
   * our annotations left as they were.
   */
  takeOver(name: string, identity: string, leaseDurationSeconds: number): void {
    this.handEdit(name, (lease) => {
      const now = this.clock.wallTime().toISOString().replace("Z", "000Z");
      lease.spec = {
        ...lease.spec,
        holderIdentity: identity,
        leaseDurationSeconds,
        acquireTime: now as unknown as Date,
        renewTime: now as unknown as Date,
        leaseTransitions: (lease.spec?.leaseTransitions ?? 0) + 1,
      };
    });
  }

  /**
   * A daemon from before the name label (issue 19, defect 5) holds `name`
   * for `holdMs`, renewing it every two seconds, then gives it back: all
   * its writes leave the Lease without the name label. Returns its
   * identity and the holder name its clients see.
   */
  legacyHold(name: string, kind: "lock" | "election", holdMs: number): { identity: string; holder: string } {
    const identity = "old-daemon";
    const holder = "old-candidate";
    const wall = () => this.clock.wallTime().toISOString().replace("Z", "000Z") as unknown as Date;
    this.server.create({
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: {
        name,
        namespace: SIM_NAMESPACE,
        labels: { [MANAGED_BY_LABEL]: MANAGED_BY, [KIND_LABEL]: kind },
        annotations: { [HOLDER_ANNOTATION]: holder },
      },
      spec: { holderIdentity: identity, leaseDurationSeconds: 15, leaseTransitions: 1, acquireTime: wall(), renewTime: wall() },
    });
    const until = this.clock.now() + holdMs;
    const renew = () => {
      // It renews (or gives back) only what it still holds: a Lease shortened by hand may have run out and been taken.
      if (this.server.peek(name)?.spec?.holderIdentity !== identity) return;
      const done = this.clock.now() >= until;
      this.handEdit(name, (lease) => {
        lease.spec = { ...lease.spec, renewTime: wall(), ...(done ? { holderIdentity: "" } : {}) };
        const { [HOLDER_ANNOTATION]: _holder, ...annotations } = lease.metadata?.annotations ?? {};
        lease.metadata = { ...lease.metadata, annotations: done ? annotations : lease.metadata?.annotations };
      });
      if (!done) this.clock.setTimer(Math.min(2_000, until - this.clock.now()), renew);
    };
    this.clock.setTimer(Math.min(2_000, holdMs), renew);
    return { identity, holder };
  }

  /** The harness's own watch: every write, at once, in order (no cache, no lag, no selector). */
  watch(listener: (event: WatchEvent) => void): void {
    this.server.writes.add(({ type, object }) => {
      if (type === "DELETED")
        listener({ type: "delete", name: object.metadata?.name ?? "", version: object.metadata?.resourceVersion ?? "" });
      else if (isManaged(object)) listener({ type: "upsert", lease: leaseToRecord(object) });
    });
  }

  /** One daemon's connection and the real store on it; `clock` and `random` are the daemon's own. */
  connect(
    network: Clock,
    link: ConnectionLink,
    clock: Clock,
    random: () => number,
  ): { connection: SimApiConnection; store: KubernetesStore } {
    const connection = new SimApiConnection(this.server, network, link);
    const store = new KubernetesStore({ api: connection, namespace: SIM_NAMESPACE, log: createLogger("silent"), clock, random });
    return { connection, store };
  }

  private handEdit(name: string, change: (lease: V1Lease) => void): void {
    const lease = this.server.peek(name);
    if (lease === undefined) return;
    change(lease);
    // An unconditional replace, as an edit retried until it applies.
    lease.metadata = { ...lease.metadata, resourceVersion: undefined };
    this.server.replace(name, lease);
  }
}
