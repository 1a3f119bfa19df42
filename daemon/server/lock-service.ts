// gRPC handlers of LockService: check the request, call the engine, convert.
import type {
  AcquireRequest,
  AcquireResponse,
  Acquired,
  LockServiceServer,
} from "metaparticle-sync-client/gen/metaparticle/sync/v1/lock_service";
import { type Engine, checkHolder, checkLeaseMs, checkName, checkToken, checkWaitMs } from "../engine/index.js";
import type { Logger } from "../log.js";
import { durationMs, isNonFair, toDuration, wantsFresh } from "./convert.js";
import { type StreamRegistry, holdSink, unary } from "./calls.js";

export function lockService(engine: Engine, streams: StreamRegistry, log: Logger): LockServiceServer {
  const locks = engine.locks;
  const leaseName = (name: string) => checkName(name, locks.prefix(), "name");
  const leaseMs = (field: string, value: Parameters<typeof durationMs>[0]) => {
    const ms = durationMs(value, field);
    return ms === undefined ? undefined : checkLeaseMs(ms, field);
  };

  return {
    acquire(call) {
      const stream = streams.track<AcquireRequest, AcquireResponse>(call);
      try {
        const request = call.request;
        const name = leaseName(request.name);
        const holder = checkHolder(request.holder, "holder");
        const lease = leaseMs("lease_duration", request.leaseDuration) ?? engine.leaseDurationMs;
        const wait = durationMs(request.waitTimeout, "wait_timeout");
        const waitTimeoutMs = wait === undefined ? undefined : checkWaitMs(wait, "wait_timeout");
        const nonFair = isNonFair(request.fairness, "fairness");
        locks.acquire(
          { leaseName: name, holder, leaseMs: lease, waitTimeoutMs, nonFair },
          holdSink<Acquired>(
            stream,
            (grant) => ({
              fencingToken: grant.token,
              holder,
              acquireTime: grant.acquireTime,
              leaseDuration: toDuration(grant.leaseMs),
              validFor: toDuration(grant.validForMs),
            }),
            log,
            { lock: request.name, holder },
            "lock lost",
          ),
          stream.signal,
        );
      } catch (err) {
        stream.end(err);
      }
    },

    tryAcquire: unary(log, async (request, signal) => {
      const name = leaseName(request.name);
      const holder = checkHolder(request.holder, "holder");
      const lease = leaseMs("lease_duration", request.leaseDuration) ?? engine.leaseDurationMs;
      const result = await locks.tryAcquire({ leaseName: name, holder, leaseMs: lease }, signal);
      if (!result.acquired) {
        return { acquired: false, fencingToken: result.token, holder: result.holder, leaseDuration: toDuration(result.leaseMs) };
      }
      return {
        acquired: true,
        fencingToken: result.grant.token,
        holder,
        validFor: toDuration(result.grant.validForMs),
        leaseDuration: toDuration(result.grant.leaseMs),
      };
    }),

    renew: unary(log, async (request, signal) => {
      const name = leaseName(request.name);
      const token = checkToken(request.fencingToken, "fencing_token");
      const lease = leaseMs("lease_duration", request.leaseDuration);
      return { validFor: toDuration(await locks.renew(name, token, lease, signal)) };
    }),

    release: unary(log, async (request) => {
      const name = leaseName(request.name);
      await locks.release(name, checkToken(request.fencingToken, "fencing_token"));
      return {};
    }),

    getLock: unary(log, async (request) => {
      const name = leaseName(request.name);
      const state = await locks.get(name, wantsFresh(request.consistency, "consistency"));
      return {
        held: state.held,
        holder: state.holder,
        fencingToken: state.token,
        acquireTime: state.acquireTime,
        leaseDuration: toDuration(state.leaseMs),
        remaining: toDuration(state.remainingMs),
        holderIdentity: state.holderIdentity,
      };
    }),
  };
}
