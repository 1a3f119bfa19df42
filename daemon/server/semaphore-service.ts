// gRPC handlers of SemaphoreService: check the request, call the engine, convert.
import type {
  AcquirePermitRequest,
  AcquirePermitResponse,
  PermitAcquired,
  PermitHolder,
  SemaphoreServiceServer,
} from "metaparticle-sync-client/gen/metaparticle/sync/v1/semaphore_service";
import { type Engine, checkHolder, checkLeaseMs, checkName, checkWaitMs } from "../engine/index.js";
import { type PermitHoldView, checkHoldId, checkPermits } from "../engine/semaphores.js";
import type { Grant } from "../engine/claim.js";
import type { Logger } from "../log.js";
import { durationMs, toDuration, wantsFresh } from "./convert.js";
import { type StreamRegistry, holdSink, unary } from "./calls.js";

export function semaphoreService(engine: Engine, streams: StreamRegistry, log: Logger): SemaphoreServiceServer {
  const semaphores = engine.semaphores;
  const leaseName = (name: string) => checkName(name, semaphores.prefix(), "name");
  const leaseMs = (value: Parameters<typeof durationMs>[0]) => {
    const ms = durationMs(value, "lease_duration");
    return ms === undefined ? undefined : checkLeaseMs(ms, "lease_duration");
  };
  const acquired = (grant: Grant, holder: string, permits: number): PermitAcquired => ({
    holdId: String(grant.token),
    fencingToken: grant.token,
    holder,
    acquireTime: grant.acquireTime,
    leaseDuration: toDuration(grant.leaseMs),
    validFor: toDuration(grant.validForMs),
    permits,
  });

  return {
    acquirePermit(call) {
      const stream = streams.track<AcquirePermitRequest, AcquirePermitResponse>(call);
      try {
        const request = call.request;
        const name = leaseName(request.name);
        const permits = checkPermits(request.permits, "permits");
        const holder = checkHolder(request.holder, "holder");
        const lease = leaseMs(request.leaseDuration) ?? engine.leaseDurationMs;
        const wait = durationMs(request.waitTimeout, "wait_timeout");
        const waitTimeoutMs = wait === undefined ? undefined : checkWaitMs(wait, "wait_timeout");
        semaphores.acquire(
          { leaseName: name, holder, leaseMs: lease, permits, waitTimeoutMs },
          holdSink<PermitAcquired>(
            stream,
            (grant) => acquired(grant, holder, permits),
            log,
            { semaphore: request.name, holder },
            "permit lost",
          ),
          stream.signal,
        );
      } catch (err) {
        stream.end(err);
      }
    },

    tryAcquirePermit: unary(log, async (request, signal) => {
      const name = leaseName(request.name);
      const permits = checkPermits(request.permits, "permits");
      const holder = checkHolder(request.holder, "holder");
      const lease = leaseMs(request.leaseDuration) ?? engine.leaseDurationMs;
      const result = await semaphores.tryAcquire({ leaseName: name, holder, leaseMs: lease, permits }, signal);
      if (result.acquired) return { acquired: true, hold: acquired(result.grant, holder, permits), holders: [] };
      const state = await semaphores.get(name, false);
      return { acquired: false, hold: undefined, holders: state.holders.map(toPermitHolder) };
    }),

    renewPermit: unary(log, async (request, signal) => {
      const name = leaseName(request.name);
      const token = checkHoldId(request.holdId, "hold_id");
      return { validFor: toDuration(await semaphores.renew(name, token, leaseMs(request.leaseDuration), signal)) };
    }),

    releasePermit: unary(log, async (request) => {
      await semaphores.release(leaseName(request.name), checkHoldId(request.holdId, "hold_id"));
      return {};
    }),

    getSemaphore: unary(log, async (request) => {
      const state = await semaphores.get(leaseName(request.name), wantsFresh(request.consistency, "consistency"));
      return {
        permits: state.permits,
        holders: state.holders.map(toPermitHolder),
        fencingToken: state.token,
        waitingDaemons: [...state.waitingDaemons],
      };
    }),
  };
}

function toPermitHolder(hold: PermitHoldView): PermitHolder {
  return {
    holder: hold.holder,
    holderIdentity: hold.holderIdentity,
    fencingToken: hold.token,
    acquireTime: hold.acquireTime,
    leaseDuration: toDuration(hold.leaseMs),
    remaining: toDuration(hold.remainingMs),
  };
}
