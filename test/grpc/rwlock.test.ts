// RWLockService through a real gRPC server, called with the generated client.
import test from "ava";
import { credentials, type ClientReadableStream } from "@grpc/grpc-js";
import { setTimeout as sleep } from "node:timers/promises";
import { status } from "metaparticle-sync-client";
import {
  type AcquireRWLockResponse,
  type GetRWLockResponse,
  LockMode,
  RWLockServiceClient,
  type TryAcquireRWLockResponse,
} from "metaparticle-sync-client/gen/metaparticle/sync/v1/rwlock_service";
import { startTestDaemon } from "../support/test-daemon.js";
import { callError, callOk } from "../support/calls.js";

/** One AcquireRWLock stream, its events and how it ended. */
function acquire(client: RWLockServiceClient, name: string, mode: LockMode, holder: string) {
  const events: AcquireRWLockResponse[] = [];
  const call: ClientReadableStream<AcquireRWLockResponse> = client.acquireRwLock({ name, mode, holder });
  call.on("data", (event: AcquireRWLockResponse) => events.push(event));
  const ended = new Promise<{ code: number }>((resolve) => {
    call.on("error", (err: { code: number }) => resolve({ code: err.code }));
    call.on("end", () => resolve({ code: status.OK }));
  });
  const acquired = () => {
    const event = events.find((e) => e.event?.$case === "acquired")?.event;
    return event?.$case === "acquired" ? event.value : undefined;
  };
  return { call, events, ended, acquired };
}

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await sleep(10);
  if (!check()) throw new Error(`timed out waiting until ${what}`);
}

function client(address: string): RWLockServiceClient {
  return new RWLockServiceClient(address, credentials.createInsecure());
}

test("RWLockService: two readers at once, a writer waits for both and then holds alone with a higher token, which later readers report", async (t) => {
  const d = await startTestDaemon();
  t.teardown(() => d.stop());
  const c = client(d.address);
  t.teardown(() => c.close());
  const r1 = acquire(c, "catalog", LockMode.LOCK_MODE_SHARED, "r1");
  const r2 = acquire(c, "catalog", LockMode.LOCK_MODE_SHARED, "r2");
  await until(() => r1.acquired() !== undefined && r2.acquired() !== undefined, "two readers hold");
  t.is(r1.acquired()!.mode, LockMode.LOCK_MODE_SHARED);
  t.is(r1.acquired()!.fencingToken, 0, "no writer yet");
  t.not(r1.acquired()!.holdId, r2.acquired()!.holdId);
  const w = acquire(c, "catalog", LockMode.LOCK_MODE_UNSPECIFIED, "w");
  await sleep(200);
  t.is(w.acquired(), undefined, "the writer waits for the readers");
  const shared = await callOk<GetRWLockResponse>((cb) => c.getRwLock({ name: "catalog", consistency: 0 }, cb));
  t.true(shared.held);
  t.is(shared.mode, LockMode.LOCK_MODE_SHARED);
  t.is(shared.readers.length, 1, "one seat for this daemon");
  t.is(shared.readers[0]!.readers, 2);
  t.is(shared.waitingDaemons.length, 1);
  const late = acquire(c, "catalog", LockMode.LOCK_MODE_SHARED, "late");
  await sleep(100);
  t.is(late.acquired(), undefined, "a reader that comes after the writer waits behind it");
  r1.call.cancel();
  r2.call.cancel();
  await until(() => w.acquired() !== undefined, "the writer holds");
  t.is(w.acquired()!.mode, LockMode.LOCK_MODE_EXCLUSIVE, "unset mode means exclusive");
  t.true(w.acquired()!.fencingToken > 0);
  const exclusive = await callOk<GetRWLockResponse>((cb) => c.getRwLock({ name: "catalog", consistency: 1 }, cb));
  t.is(exclusive.mode, LockMode.LOCK_MODE_EXCLUSIVE);
  t.is(exclusive.holder, "w");
  t.is(exclusive.fencingToken, w.acquired()!.fencingToken);
  w.call.cancel();
  await until(() => late.acquired() !== undefined, "the late reader holds");
  t.is(late.acquired()!.fencingToken, w.acquired()!.fencingToken, "a reader reports the last writer's token");
  late.call.cancel();
});

test("RWLockService: TryAcquireRWLock, RenewRWLock and ReleaseRWLock by hold; a hold not held gets FAILED_PRECONDITION naming hold_id", async (t) => {
  const d = await startTestDaemon();
  t.teardown(() => d.stop());
  const c = client(d.address);
  t.teardown(() => c.close());
  const reader = await callOk<TryAcquireRWLockResponse>((cb) =>
    c.tryAcquireRwLock({ name: "t", mode: LockMode.LOCK_MODE_SHARED, holder: "r", leaseDuration: { seconds: 5, nanos: 0 } }, cb),
  );
  t.true(reader.acquired);
  const writer = await callOk<TryAcquireRWLockResponse>((cb) =>
    c.tryAcquireRwLock({ name: "t", mode: LockMode.LOCK_MODE_EXCLUSIVE, holder: "w" }, cb),
  );
  t.false(writer.acquired);
  t.is(writer.state?.mode, LockMode.LOCK_MODE_SHARED, "the state says who holds");
  const renewed = await callOk<{ validFor?: { seconds: number } }>((cb) => c.renewRwLock({ name: "t", holdId: reader.hold!.holdId }, cb));
  t.true((renewed.validFor?.seconds ?? 0) > 0);
  await callOk((cb) => c.releaseRwLock({ name: "t", holdId: reader.hold!.holdId }, cb));
  const again = await callError((cb) => c.releaseRwLock({ name: "t", holdId: reader.hold!.holdId }, cb));
  t.is(again.code, status.FAILED_PRECONDITION);
  t.is(again.field, "hold_id");
  const now = await callOk<TryAcquireRWLockResponse>((cb) =>
    c.tryAcquireRwLock({ name: "t", mode: LockMode.LOCK_MODE_EXCLUSIVE, holder: "w" }, cb),
  );
  t.true(now.acquired, "the writer takes the lock once the reader released");
  await callOk((cb) => c.releaseRwLock({ name: "t", holdId: now.hold!.holdId }, cb));
});

test("RWLockService: bad input gets INVALID_ARGUMENT naming the field, and the holder keeps its hold", async (t) => {
  const d = await startTestDaemon();
  t.teardown(() => d.stop());
  const c = client(d.address);
  t.teardown(() => c.close());
  const holder = acquire(c, "bad", LockMode.LOCK_MODE_EXCLUSIVE, "holder");
  await until(() => holder.acquired() !== undefined, "the holder holds");
  const cases: Array<[string, Parameters<RWLockServiceClient["tryAcquireRwLock"]>[0]]> = [
    ["mode", { name: "bad", mode: 7 as LockMode, holder: "h" }],
    ["name", { name: "", mode: LockMode.LOCK_MODE_SHARED, holder: "h" }],
    ["lease_duration", { name: "bad", mode: LockMode.LOCK_MODE_SHARED, holder: "h", leaseDuration: { seconds: 0, nanos: 5 } }],
  ];
  for (const [field, request] of cases) {
    const err = await callError((cb) => c.tryAcquireRwLock(request, cb));
    t.is(err.code, status.INVALID_ARGUMENT, field);
    t.is(err.field, field);
  }
  const stream = acquire(c, "bad", 7 as LockMode, "h");
  t.is((await stream.ended).code, status.INVALID_ARGUMENT);
  const err = await callError((cb) => c.renewRwLock({ name: "bad", holdId: "x1" }, cb));
  t.is(err.field, "hold_id");
  const state = await callOk<GetRWLockResponse>((cb) => c.getRwLock({ name: "bad", consistency: 0 }, cb));
  t.is(state.holder, "holder", "the holder keeps its hold");
  holder.call.cancel();
});
