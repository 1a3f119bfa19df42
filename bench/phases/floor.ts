// The floor of a graceful lock handoff on this substrate: what two minimal
// clients of the API server need to hand a Lease over, with no daemon and no
// gRPC between. Each side has its own connection and its own watch on the
// Lease, as two daemons do; the holder writes the release, the other side
// waits for that write on its watch and writes the take-over, and the clock
// stops at the take-over's reply. Ours is reported as a ratio of it, step by
// step, timed by the same separate watch as ours.
import { Agent, request } from "node:https";
import { nowMs, sleep, within } from "../lib/clock.js";
import type { BenchContext } from "../lib/context.js";
import { LeaseWatch, type LeaseObject } from "../lib/lease-watch.js";
import type { HandoffRow, HandoffSteps } from "../lib/results.js";
import type { ControlPlane } from "../../test/controlplane/controlplane.js";

/** One side's connection to the API server: a keep-alive agent of its own, JSON in and out. */
class LeaseClient {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 1 });

  constructor(
    private readonly cp: ControlPlane,
    private readonly namespace: string,
  ) {}

  create(lease: LeaseObject): Promise<LeaseObject> {
    return this.send("POST", `/apis/coordination.k8s.io/v1/namespaces/${this.namespace}/leases`, lease);
  }

  /** PUT: succeeds only over the resourceVersion `lease` carries. */
  replace(lease: LeaseObject): Promise<LeaseObject> {
    return this.send("PUT", `/apis/coordination.k8s.io/v1/namespaces/${this.namespace}/leases/${lease.metadata.name}`, lease);
  }

  close(): void {
    this.agent.destroy();
  }

  private send(method: string, path: string, body: LeaseObject): Promise<LeaseObject> {
    const payload = JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request(
        new URL(this.cp.server + path),
        {
          method,
          agent: this.agent,
          ca: this.cp.caPem || undefined,
          headers: {
            Authorization: `Bearer ${this.cp.tokens.admin}`,
            Accept: "application/json",
            "Content-Type": "application/json",
            "Content-Length": Buffer.byteLength(payload),
          },
        },
        (res) => {
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => (text += chunk));
          res.on("end", () =>
            res.statusCode !== undefined && res.statusCode < 300
              ? resolve(JSON.parse(text) as LeaseObject)
              : reject(new Error(`${method} ${path}: HTTP ${res.statusCode}: ${text.slice(0, 200)}`)),
          );
          res.on("error", reject);
        },
      );
      req.on("error", reject);
      req.end(payload);
    });
  }
}

function microTime(): string {
  return new Date().toISOString().replace("Z", "000Z");
}

/** Release write -> its watch event at the other side -> take-over write -> its reply, `handoffN` times after a warm-up. */
export async function handoffFloor(ctx: BenchContext): Promise<HandoffRow> {
  const { handoffN, handoffWarmup, handoffSettleMs } = ctx.params;
  const namespace = await ctx.newNamespace("handoff-floor");
  const name = "floor";
  const sides = [new LeaseClient(ctx.cp, namespace), new LeaseClient(ctx.cp, namespace)];
  const watches: LeaseWatch[] = [];
  try {
    let lease = await sides[0]!.create({
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: { name },
      spec: { holderIdentity: "floor-0", leaseDurationSeconds: 15, leaseTransitions: 1, acquireTime: microTime(), renewTime: microTime() },
    });
    for (let i = 0; i < 3; i++) watches.push(await LeaseWatch.start(ctx.cp, namespace, name));
    const [probe, ...sideWatches] = watches as [LeaseWatch, LeaseWatch, LeaseWatch];
    const steps: HandoffSteps = { releaseVisibleMs: [], takeoverVisibleMs: [], toClientMs: [] };
    const samples: number[] = [];
    let holder = 0;
    await sleep(handoffSettleMs);
    for (let round = 0; round < handoffWarmup + handoffN && ctx.remainingMs() > 0; round++) {
      const next = 1 - holder;
      const heldAt = lease.metadata.resourceVersion;
      const seen = sideWatches[next]!.next((c) => c.holderIdentity === "" && c.object.metadata.resourceVersion !== heldAt);
      const t0 = nowMs();
      await sides[holder]!.replace({ ...lease, spec: { ...lease.spec, holderIdentity: "" } });
      const released = await within(seen, 30_000, "the release write on the other side's watch");
      const transitions = (released.object.spec.leaseTransitions ?? 0) + 1;
      lease = await sides[next]!.replace({
        ...released.object,
        spec: {
          ...released.object.spec,
          holderIdentity: `floor-${next}`,
          leaseTransitions: transitions,
          acquireTime: microTime(),
          renewTime: microTime(),
        },
      });
      const t1 = nowMs();
      if (round >= handoffWarmup) {
        samples.push(t1 - t0);
        const releaseSeen = probe.firstAfter(t0, (c) => c.holderIdentity === "");
        const takeoverSeen = probe.firstAfter(t0, (c) => c.transitions >= transitions);
        if (releaseSeen && takeoverSeen) {
          steps.releaseVisibleMs.push(releaseSeen.at - t0);
          steps.takeoverVisibleMs.push(takeoverSeen.at - releaseSeen.at);
          steps.toClientMs.push(t1 - takeoverSeen.at);
        }
      }
      holder = next;
      await sleep(handoffSettleMs);
    }
    return {
      samples,
      writesPerRound: 2,
      steps,
      from: "one side sends the release write (PUT, holder cleared)",
      to: "the other side, having seen it on its own watch, has the reply to its take-over write (PUT)",
    };
  } finally {
    for (const watch of watches) watch.close();
    for (const side of sides) side.close();
  }
}
