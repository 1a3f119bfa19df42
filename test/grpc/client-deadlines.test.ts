// The TypeScript client never waits forever (issue 18, the client contract's
// section 1): every call has a deadline, a lock's or a permit's wait timeout is
// kept on the client's own clock, release and resign are bounded, and streams
// notice a sidecar that stopped answering by keepalive. Against a real daemon
// process frozen with SIGSTOP, and a fake sidecar that records what it is sent.
import test, { type ExecutionContext } from "ava";
import { Server, ServerCredentials, type ServerWritableStream } from "@grpc/grpc-js";
import { setTimeout as sleep } from "node:timers/promises";
import {
  type AcquireOptions,
  type CampaignEvent,
  DEFAULT_CALL_TIMEOUT_MS,
  DEFAULT_WAIT_TIMEOUT_MS,
  type LostError,
  type StreamHold,
  SyncClient,
  SyncClientError,
  WAIT_TIMEOUT_GRACE_MS,
  status,
} from "metaparticle-sync-client";
import {
  type AcquireRequest,
  type AcquireResponse,
  LockServiceService,
} from "metaparticle-sync-client/gen/metaparticle/sync/v1/lock_service";
import { type DaemonProcess, spawnDaemon } from "../support/daemon-process.js";

/** A daemon process and a client of it; thawed and stopped after the test. */
async function sidecar(t: ExecutionContext, flags: string[] = []): Promise<{ daemon: DaemonProcess; client: SyncClient }> {
  const daemon = await spawnDaemon(["--backend=memory", ...flags]);
  t.teardown(() => daemon.stop());
  const client = new SyncClient({ address: daemon.address });
  t.teardown(() => client.close());
  return { daemon, client };
}

function freeze(t: ExecutionContext, daemon: DaemonProcess): void {
  daemon.signal("SIGSTOP");
  t.teardown(() => daemon.signal("SIGCONT"));
}

/** How a promise settles, and after how many ms; "pending" if not within `limitMs`. */
async function settles<T>(
  promise: Promise<T>,
  limitMs: number,
): Promise<{ outcome: "resolved" | "rejected" | "pending"; value?: T; error?: unknown; ms: number }> {
  const start = performance.now();
  const result = await Promise.race([
    promise.then(
      (value) => ({ outcome: "resolved" as const, value }),
      (error: unknown) => ({ outcome: "rejected" as const, error }),
    ),
    sleep(limitMs).then(() => ({ outcome: "pending" as const })),
  ]);
  return { ...result, ms: performance.now() - start };
}

function codeOf(error: unknown): string {
  return error instanceof SyncClientError ? status[error.code]! : String(error);
}

/** The holds kept by a stream, each taken its own way and bounded the same way: a lock, a permit of a semaphore, an exclusive hold of a read-write lock. */
const STREAM_HOLDS: ReadonlyArray<{
  /** The hold's class, and how it is taken, as the tests' titles name them. */
  readonly type: string;
  readonly call: string;
  take(client: SyncClient, name: string, options?: AcquireOptions): Promise<StreamHold>;
}> = [
  { type: "Lock", call: "lock()", take: (client, name, options) => client.lock(name, options) },
  { type: "Permit", call: "Semaphore.acquire()", take: (client, name, options) => client.semaphore(name, 1).acquire(options) },
  { type: "RWLockHold", call: "RWLock.acquire()", take: (client, name, options) => client.rwlock(name).acquire("exclusive", options) },
];

for (const { type, take } of STREAM_HOLDS)
  test(`${type}.release() on a frozen sidecar settles by its deadline or the promise's end, so \`await using\` does not hang`, async (t) => {
    // The default 15 s lease promises 10 s at a time: the release waits for the sidecar until then, and the hold is over then.
    const { daemon, client } = await sidecar(t);
    const hold = await take(client, "frozen-release");
    freeze(t, daemon);
    const released = await settles(hold.release(), DEFAULT_CALL_TIMEOUT_MS + 4000);
    t.is(released.outcome, "resolved", `release() is ${released.outcome} after ${Math.round(released.ms)} ms: ${codeOf(released.error)}`);
    t.true(released.ms < DEFAULT_CALL_TIMEOUT_MS + 1000, `after ${Math.round(released.ms)} ms`);
    t.true(hold.lost, "the signal aborted at once");

    // A 60 s lease with a 40 s renew deadline promises 40 s: the call's deadline, 10 s by default, comes first, and the release fails with it.
    const long = await sidecar(t, ["--lease-duration=60s", "--renew-deadline=40s"]);
    const scoped = async () => {
      await using held = await take(long.client, "frozen-dispose");
      freeze(t, long.daemon);
      t.false(held.lost);
    };
    const disposed = await settles(scoped(), DEFAULT_CALL_TIMEOUT_MS + 4000);
    t.is(disposed.outcome, "rejected", `the await using block is ${disposed.outcome} after ${Math.round(disposed.ms)} ms`);
    t.is(codeOf(disposed.error), "DEADLINE_EXCEEDED");
    t.true(
      disposed.ms >= DEFAULT_CALL_TIMEOUT_MS - 500 && disposed.ms < DEFAULT_CALL_TIMEOUT_MS + 2000,
      `after ${Math.round(disposed.ms)} ms`,
    );
  });

for (const { type, take } of STREAM_HOLDS)
  test(`${type}.release() with a timeoutMs returns within it; once the promise has run out it resolves instead`, async (t) => {
    const { daemon, client } = await sidecar(t, ["--lease-duration=15s"]);
    const hold = await take(client, "short-deadline");
    freeze(t, daemon);
    const released = await settles(hold.release({ timeoutMs: 1000 }), 5000);
    t.is(released.outcome, "rejected");
    t.is(codeOf(released.error), "DEADLINE_EXCEEDED");
    t.true(released.ms < 2500, `after ${Math.round(released.ms)} ms`);

    // A 3 s lease promises 2 s at a time: the default 10 s deadline is cut to the promise, and the hold is over then.
    const short = await sidecar(t, ["--lease-duration=3s", "--renew-deadline=2s"]);
    const brief = await take(short.client, "short-promise");
    freeze(t, short.daemon);
    const over = await settles(brief.release(), 6000);
    t.is(over.outcome, "resolved", `release() ${over.outcome} after ${Math.round(over.ms)} ms: ${codeOf(over.error)}`);
    t.true(over.ms < 3000, `after ${Math.round(over.ms)} ms`);
  });

test("every unary call on a frozen sidecar fails with DEADLINE_EXCEEDED at its timeoutMs, and an aborted signal cancels it", async (t) => {
  const { daemon, client } = await sidecar(t, ["--lease-duration=15s"]);
  const leased = (await client.tryLock("leased"))!;
  const leasedPermit = (await client.semaphore("pool", 2).tryAcquire()).permit!;
  const leasedRW = (await client.rwlock("rw").tryAcquire("shared")).hold!;
  const campaign = client.campaign("bounded", { candidate: "a" });
  t.teardown(() => campaign.close());
  while (!campaign.leading) await sleep(5);
  freeze(t, daemon);
  const calls: Record<string, (options: { timeoutMs?: number; signal?: AbortSignal }) => Promise<unknown>> = {
    tryLock: (o) => client.tryLock("other", o),
    getLock: (o) => client.getLock("leased", o),
    getLeader: (o) => client.getLeader("bounded", { fresh: true, ...o }),
    renew: (o) => leased.renew(o),
    "LeasedLock.release": (o) => leased.release(o),
    proclaim: (o) => campaign.proclaim("v2", o),
    "Semaphore.tryAcquire": (o) => client.semaphore("pool", 2).tryAcquire(o),
    getSemaphore: (o) => client.getSemaphore("pool", { fresh: true, ...o }),
    "LeasedPermit.renew": (o) => leasedPermit.renew(o),
    "LeasedPermit.release": (o) => leasedPermit.release(o),
    "RWLock.tryAcquire": (o) => client.rwlock("rw").tryAcquire("shared", o),
    "RWLock.get": (o) => client.rwlock("rw").get({ fresh: true, ...o }),
    "LeasedRWLockHold.renew": (o) => leasedRW.renew(o),
    "LeasedRWLockHold.release": (o) => leasedRW.release(o),
  };
  const results = await Promise.all(
    Object.entries(calls).map(async ([name, call]) => [name, await settles(call({ timeoutMs: 800 }), 4000)] as const),
  );
  for (const [name, result] of results) {
    t.is(result.outcome, "rejected", `${name} ${result.outcome}`);
    t.is(codeOf(result.error), "DEADLINE_EXCEEDED", name);
    t.true(result.ms < 2500, `${name} after ${Math.round(result.ms)} ms`);
  }
  const controller = new AbortController();
  const reason = new Error("the caller gave up");
  const aborted = Promise.all(Object.values(calls).map((call) => settles(call({ signal: controller.signal }), 4000)));
  await sleep(200);
  controller.abort(reason);
  for (const result of await aborted) {
    t.is(result.outcome, "rejected");
    t.is(result.error, reason, "rejects with the signal's reason");
    t.true(result.ms < 1500);
  }
  await t.throwsAsync(client.getLock("x", { timeoutMs: -1 }), { instanceOf: RangeError });
  await t.throwsAsync(client.getLock("x", { timeoutMs: Infinity }), { instanceOf: RangeError });
});

for (const { call, take } of STREAM_HOLDS)
  test(`${call}: the wait timeout is kept on the client's own clock when the sidecar does not answer, and timeoutMs bounds it too`, async (t) => {
    const { daemon, client } = await sidecar(t);
    const held = await take(client, "busy", { holder: "holder" });
    t.teardown(() => held.release({ timeoutMs: 100 }).catch(() => {}));
    // Answered by the sidecar: DEADLINE_EXCEEDED with reason WAIT_TIMEOUT.
    const answered = await settles(take(client, "busy", { waitTimeoutMs: 300 }), 5000);
    t.is(codeOf(answered.error), "DEADLINE_EXCEEDED");
    t.true(answered.ms < 1000, `after ${Math.round(answered.ms)} ms`);
    freeze(t, daemon);
    const waited = await settles(take(client, "busy", { waitTimeoutMs: 1000 }), 8000);
    t.is(waited.outcome, "rejected", `${call} ${waited.outcome} after ${Math.round(waited.ms)} ms`);
    t.is(codeOf(waited.error), "DEADLINE_EXCEEDED");
    t.is((waited.error as SyncClientError).reason, "WAIT_TIMEOUT");
    t.true(
      waited.ms >= 1000 + WAIT_TIMEOUT_GRACE_MS - 100 && waited.ms < 1000 + WAIT_TIMEOUT_GRACE_MS + 1500,
      `after ${Math.round(waited.ms)} ms`,
    );
    const bounded = await settles(take(client, "busy", { timeoutMs: 700 }), 8000);
    t.is(codeOf(bounded.error), "DEADLINE_EXCEEDED");
    t.true(bounded.ms < 2000, `after ${Math.round(bounded.ms)} ms`);
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error("stop waiting")), 300);
    const aborted = await settles(take(client, "busy", { signal: controller.signal }), 5000);
    t.is((aborted.error as Error).message, "stop waiting");
  });

test("Permit: when the daemon freezes, its signal aborts on the client's own deadline before the permit's lease could expire", async (t) => {
  // A 3 s lease promises 2 s at a time: the signal must abort within 2 s of the last heartbeat, well inside the 3 s lease.
  const { daemon, client } = await sidecar(t, ["--lease-duration=3s", "--renew-deadline=2s"]);
  const permit = await client.semaphore("frozen", 2).acquire();
  const lost = new Promise<number>((resolve) => permit.signal.addEventListener("abort", () => resolve(performance.now())));
  await sleep(1_500); // at least one heartbeat
  t.false(permit.lost);
  freeze(t, daemon);
  const frozenAt = performance.now();
  const lostAt = await lost;
  t.is((permit.signal.reason as LostError).reason, "heartbeat-timeout");
  t.true(lostAt - frozenAt < 3_000, `lost ${Math.round(lostAt - frozenAt)} ms after the freeze`);
  t.is(permit.validForMs, 0);
});

test("lock() sends its wait timeout to the sidecar: 5 min unless told, bounded by timeoutMs", async (t) => {
  // A fake sidecar that records each Acquire and never answers.
  const requests: AcquireRequest[] = [];
  const server = new Server();
  server.addService(LockServiceService, {
    acquire: (call: ServerWritableStream<AcquireRequest, AcquireResponse>) => void requests.push(call.request),
  } as never);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  t.teardown(() => server.forceShutdown());
  const client = new SyncClient({ address: `127.0.0.1:${port}` });
  t.teardown(() => client.close());
  const controller = new AbortController();
  const pending = [
    client.lock("a", { signal: controller.signal }),
    client.lock("b", { waitTimeoutMs: 60_000, signal: controller.signal }),
    client.lock("c", { waitTimeoutMs: 60_000, timeoutMs: 20_000, signal: controller.signal }),
    client.lock("d", { waitTimeoutMs: 0, signal: controller.signal }),
  ];
  for (const p of pending) p.catch(() => {});
  for (let i = 0; requests.length < 4 && i < 200; i++) await sleep(10);
  controller.abort();
  const sent = Object.fromEntries(requests.map((r) => [r.name, r.waitTimeout]));
  t.deepEqual(sent, {
    a: { seconds: DEFAULT_WAIT_TIMEOUT_MS / 1000, nanos: 0 },
    b: { seconds: 60, nanos: 0 },
    c: { seconds: 20, nanos: 0 },
    d: { seconds: 0, nanos: 0 },
  });
});

test("resign() on a frozen sidecar returns within its deadline, ends the term at once, and no election is reported after it", async (t) => {
  const { daemon, client } = await sidecar(t, ["--lease-duration=15s"]);
  const campaign = client.campaign("frozen-resign", { candidate: "a" });
  t.teardown(() => campaign.close());
  const events: CampaignEvent[] = [];
  const ended = (async () => {
    for await (const event of campaign) events.push(event);
  })();
  while (!campaign.leading) await sleep(5);
  const leadership = campaign.leadership!;
  freeze(t, daemon);
  const resigned = settles(campaign.resign({ timeoutMs: 1000 }), 5000);
  t.true(leadership.signal.aborted, "the leader's signal aborts the moment resign() is called");
  const result = await resigned;
  t.not(result.outcome, "pending");
  t.true(result.ms < 2500, `after ${Math.round(result.ms)} ms`);
  daemon.signal("SIGCONT");
  await settles(ended, 5000);
  await sleep(1500); // a thawed sidecar may still hold the term, or elect the candidate again: nobody may be told
  t.deepEqual(
    events.filter((e) => e.type !== "leader-changed").map((e) => `${e.type} ${e.term}${e.type === "deposed" ? ` ${e.reason}` : ""}`),
    [`elected ${leadership.term}`, `deposed ${leadership.term} resigned`],
  );
  t.false(campaign.leading);
});

test("streams notice a frozen sidecar by keepalive: observe and campaign end with UNAVAILABLE", async (t) => {
  const { daemon, client } = await sidecar(t);
  const leader = new SyncClient({ address: daemon.address });
  t.teardown(() => leader.close());
  const leading = leader.campaign("kept-alive", { candidate: "leader" });
  t.teardown(() => leading.close());
  while (!leading.leading) await sleep(5);
  const candidate = client.campaign("kept-alive", { candidate: "follower" });
  t.teardown(() => candidate.close());
  const observation = (async () => {
    for await (const seen of client.observe("kept-alive")) void seen;
  })();
  await sleep(300);
  freeze(t, daemon);
  // Keepalive: a ping within 10 s, 5 s for its answer.
  const observed = await settles(observation, 25_000);
  t.is(observed.outcome, "rejected", `observe ${observed.outcome} after ${Math.round(observed.ms)} ms`);
  t.is(codeOf(observed.error), "UNAVAILABLE");
  const campaigned = await settles(candidate.done, 5000);
  t.is(campaigned.outcome, "rejected", `the campaign ${campaigned.outcome}`);
  t.is(codeOf(campaigned.error), "UNAVAILABLE");
});
