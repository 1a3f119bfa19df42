// gRPC handlers of RWLockService: check the request, call the engine, convert.
import {
  type AcquireRWLockRequest,
  type AcquireRWLockResponse,
  type GetRWLockResponse,
  LockMode,
  type RWLockAcquired,
  type RWLockServiceServer,
} from "metaparticle-sync-client/gen/metaparticle/sync/v1/rwlock_service";
import { type Engine, checkHolder, checkLeaseMs, checkName, checkWaitMs, invalidArgument } from "../engine/index.js";
import type { Grant } from "../engine/claim.js";
import type { RWLockMode, RWLockState } from "../engine/rwlocks.js";
import { checkHoldId } from "../engine/semaphores.js";
import type { Logger } from "../log.js";
import { durationMs, toDuration, wantsFresh } from "./convert.js";
import { type StreamRegistry, holdSink, unary } from "./calls.js";

export function rwlockService(engine: Engine, streams: StreamRegistry, log: Logger): RWLockServiceServer {
  const rwlocks = engine.rwlocks;
  const leaseName = (name: string) => checkName(name, rwlocks.prefix(), "name");
  const leaseMs = (value: Parameters<typeof durationMs>[0]) => {
    const ms = durationMs(value, "lease_duration");
    return ms === undefined ? undefined : checkLeaseMs(ms, "lease_duration");
  };
  const acquired = (grant: Grant, holder: string, mode: RWLockMode): RWLockAcquired => ({
    holdId: String(grant.token),
    mode: toLockMode(mode),
    fencingToken: grant.fencingToken ?? grant.token,
    holder,
    acquireTime: grant.acquireTime,
    leaseDuration: toDuration(grant.leaseMs),
    validFor: toDuration(grant.validForMs),
  });

  return {
    acquireRwLock(call) {
      const stream = streams.track<AcquireRWLockRequest, AcquireRWLockResponse>(call);
      try {
        const request = call.request;
        const name = leaseName(request.name);
        const mode = checkMode(request.mode);
        const holder = checkHolder(request.holder, "holder");
        const lease = leaseMs(request.leaseDuration) ?? engine.leaseDurationMs;
        const wait = durationMs(request.waitTimeout, "wait_timeout");
        const waitTimeoutMs = wait === undefined ? undefined : checkWaitMs(wait, "wait_timeout");
        rwlocks.acquire(
          { leaseName: name, holder, leaseMs: lease, mode, waitTimeoutMs },
          holdSink<RWLockAcquired>(
            stream,
            (grant) => acquired(grant, holder, mode),
            log,
            { rwlock: request.name, holder, mode },
            "read-write lock lost",
          ),
          stream.signal,
        );
      } catch (err) {
        stream.end(err);
      }
    },

    tryAcquireRwLock: unary(log, async (request, signal) => {
      const name = leaseName(request.name);
      const mode = checkMode(request.mode);
      const holder = checkHolder(request.holder, "holder");
      const lease = leaseMs(request.leaseDuration) ?? engine.leaseDurationMs;
      const result = await rwlocks.tryAcquire({ leaseName: name, holder, leaseMs: lease, mode }, signal);
      if (result.acquired) return { acquired: true, hold: acquired(result.grant, holder, mode), state: undefined };
      return { acquired: false, hold: undefined, state: toState(await rwlocks.get(name, false)) };
    }),

    renewRwLock: unary(log, async (request, signal) => {
      const name = leaseName(request.name);
      const token = checkHoldId(request.holdId, "hold_id");
      return { validFor: toDuration(await rwlocks.renew(name, token, leaseMs(request.leaseDuration), signal)) };
    }),

    releaseRwLock: unary(log, async (request) => {
      await rwlocks.release(leaseName(request.name), checkHoldId(request.holdId, "hold_id"));
      return {};
    }),

    getRwLock: unary(log, async (request) =>
      toState(await rwlocks.get(leaseName(request.name), wantsFresh(request.consistency, "consistency"))),
    ),
  };
}

/** The mode asked: unset means exclusive, the safe default. */
function checkMode(mode: LockMode): RWLockMode {
  switch (mode) {
    case LockMode.LOCK_MODE_UNSPECIFIED:
    case LockMode.LOCK_MODE_EXCLUSIVE:
      return "exclusive";
    case LockMode.LOCK_MODE_SHARED:
      return "shared";
    default:
      throw invalidArgument("mode", `must be LOCK_MODE_SHARED or LOCK_MODE_EXCLUSIVE, got ${String(mode)}`);
  }
}

function toLockMode(mode: RWLockMode | undefined): LockMode {
  if (mode === undefined) return LockMode.LOCK_MODE_UNSPECIFIED;
  return mode === "shared" ? LockMode.LOCK_MODE_SHARED : LockMode.LOCK_MODE_EXCLUSIVE;
}

function toState(state: RWLockState): GetRWLockResponse {
  const writer = state.writer;
  return {
    held: state.mode !== undefined,
    mode: toLockMode(state.mode),
    holder: writer?.holder ?? "",
    holderIdentity: writer?.holderIdentity ?? "",
    fencingToken: state.fencingToken,
    acquireTime: writer?.acquireTime,
    remaining: writer === undefined ? undefined : toDuration(writer.remainingMs),
    readers: state.readers.map((seat) => ({
      holderIdentity: seat.holderIdentity,
      holder: seat.holder,
      readers: seat.readers,
      remaining: toDuration(seat.remainingMs),
    })),
    waitingDaemons: [...state.waitingDaemons],
  };
}
