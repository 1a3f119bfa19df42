// SemaphoreService through a real gRPC server, called with the generated client.
import test from "ava";
import { credentials, type ClientReadableStream } from "@grpc/grpc-js";
import { setTimeout as sleep } from "node:timers/promises";
import { status } from "metaparticle-sync-client";
import { type AcquirePermitResponse, SemaphoreServiceClient } from "metaparticle-sync-client/gen/metaparticle/sync/v1/semaphore_service";
import { startTestDaemon } from "../support/test-daemon.js";
import { callError, callOk } from "../support/calls.js";

/** One AcquirePermit stream, its events and how it ended. */
function acquire(client: SemaphoreServiceClient, name: string, permits: number, holder: string) {
  const events: AcquirePermitResponse[] = [];
  const call: ClientReadableStream<AcquirePermitResponse> = client.acquirePermit({ name, permits, holder });
  call.on("data", (event: AcquirePermitResponse) => events.push(event));
  const ended = new Promise<{ code: number }>((resolve) => {
    call.on("error", (err: { code: number }) => resolve({ code: err.code }));
    call.on("end", () => resolve({ code: status.OK }));
  });
  const acquired = () => events.find((e) => e.event?.$case === "acquired")?.event;
  return { call, events, ended, acquired };
}

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await sleep(10);
  if (!check()) throw new Error(`timed out waiting until ${what}`);
}

test("SemaphoreService: two holders of N=2 at once, a third waits and takes the permit a closed stream gives back", async (t) => {
  const d = await startTestDaemon();
  t.teardown(() => d.stop());
  const client = new SemaphoreServiceClient(d.address, credentials.createInsecure());
  t.teardown(() => client.close());
  const first = acquire(client, "export", 2, "first");
  const second = acquire(client, "export", 2, "second");
  await until(() => first.acquired() !== undefined && second.acquired() !== undefined, "two permits are held");
  const third = acquire(client, "export", 2, "third");
  await sleep(200);
  t.is(third.acquired(), undefined, "no third permit");
  const state = await callOk<{ permits: number; holders: { holder: string; fencingToken: number }[] }>((cb) =>
    client.getSemaphore({ name: "export", consistency: 0 }, cb),
  );
  t.is(state.permits, 2);
  t.deepEqual(state.holders.map((h) => h.holder).sort(), ["first", "second"]);
  first.call.cancel();
  await until(() => third.acquired() !== undefined, "the third holds a permit");
  const tokens = [first, second, third].map((s) => {
    const event = s.acquired();
    return event?.$case === "acquired" ? event.value.fencingToken : 0;
  });
  t.true(tokens[2]! > Math.max(tokens[0]!, tokens[1]!), "the later hold has the higher token");
  second.call.cancel();
  third.call.cancel();
});

test("SemaphoreService: bad permits get INVALID_ARGUMENT naming permits; another N gets FAILED_PRECONDITION with PERMITS_MISMATCH, and the holder keeps its permit", async (t) => {
  const d = await startTestDaemon();
  t.teardown(() => d.stop());
  const client = new SemaphoreServiceClient(d.address, credentials.createInsecure());
  t.teardown(() => client.close());
  for (const permits of [0, 33, -1]) {
    const err = await callError((cb) => client.tryAcquirePermit({ name: "n", permits, holder: "h" }, cb));
    t.is(err.code, status.INVALID_ARGUMENT);
    t.is(err.field, "permits");
  }
  const holder = acquire(client, "n", 3, "holder");
  await until(() => holder.acquired() !== undefined, "the holder holds a permit");
  const err = await callError((cb) => client.tryAcquirePermit({ name: "n", permits: 5, holder: "h" }, cb));
  t.is(err.code, status.FAILED_PRECONDITION);
  t.is(err.reason, "PERMITS_MISMATCH");
  t.is(err.field, "permits");
  t.regex(err.message, /has 3 permits; this request asks for 5/);
  const wrong = acquire(client, "n", 2, "wrong");
  t.is((await wrong.ended).code, status.FAILED_PRECONDITION);
  const state = await callOk<{ holders: unknown[] }>((cb) => client.getSemaphore({ name: "n", consistency: 0 }, cb));
  t.is(state.holders.length, 1, "the holder keeps its permit");
  holder.call.cancel();
});

test("SemaphoreService: ReleasePermit of a stream's hold ends the stream OK without lost; a hold not held gets FAILED_PRECONDITION naming hold_id", async (t) => {
  const d = await startTestDaemon();
  t.teardown(() => d.stop());
  const client = new SemaphoreServiceClient(d.address, credentials.createInsecure());
  t.teardown(() => client.close());
  const holder = acquire(client, "r", 1, "holder");
  await until(() => holder.acquired() !== undefined, "held");
  const event = holder.acquired()!;
  const holdId = event.$case === "acquired" ? event.value.holdId : "";
  await callOk((cb) => client.releasePermit({ name: "r", holdId }, cb));
  t.is((await holder.ended).code, status.OK);
  t.false(
    holder.events.some((e) => e.event?.$case === "lost"),
    "no lost",
  );
  const again = await callError((cb) => client.releasePermit({ name: "r", holdId }, cb));
  t.is(again.code, status.FAILED_PRECONDITION);
  t.is(again.reason, "NOT_HELD");
  t.is(again.field, "hold_id");
  const bad = await callError((cb) => client.renewPermit({ name: "r", holdId: "x1" }, cb));
  t.is(bad.code, status.INVALID_ARGUMENT);
  t.is(bad.field, "hold_id");
  const taken = await callOk<{ acquired: boolean; hold?: { holdId: string } }>((cb) =>
    client.tryAcquirePermit({ name: "r", permits: 1, holder: "next" }, cb),
  );
  t.true(taken.acquired, "free once released");
  const full = await callOk<{ acquired: boolean; holders: { holder: string }[] }>((cb) =>
    client.tryAcquirePermit({ name: "r", permits: 1, holder: "late" }, cb),
  );
  t.false(full.acquired);
  t.deepEqual(
    full.holders.map((h) => h.holder),
    ["next"],
  );
  const renewed = await callOk<{ validFor?: { seconds: number } }>((cb) =>
    client.renewPermit({ name: "r", holdId: taken.hold!.holdId }, cb),
  );
  t.true((renewed.validFor?.seconds ?? 0) > 0);
});

test("SemaphoreService: GetSemaphore of a name never used answers permits 0, no holders, token 0", async (t) => {
  const d = await startTestDaemon();
  t.teardown(() => d.stop());
  const client = new SemaphoreServiceClient(d.address, credentials.createInsecure());
  t.teardown(() => client.close());
  const state = await callOk<{ permits: number; holders: unknown[]; fencingToken: number }>((cb) =>
    client.getSemaphore({ name: "never", consistency: 0 }, cb),
  );
  t.deepEqual([state.permits, state.holders.length, state.fencingToken], [0, 0, 0]);
});
