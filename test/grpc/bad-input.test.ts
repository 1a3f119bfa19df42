// docs/design.md 3.8: bad input gets INVALID_ARGUMENT naming the field, and nothing
// already held is lost because of it.
import test from "ava";
import type { SyncClientError } from "metaparticle-sync-client";
import { status } from "metaparticle-sync-client";
import type { Fairness } from "metaparticle-sync-client/gen/metaparticle/sync/v1/lock_service";
import type { ReadConsistency } from "metaparticle-sync-client/gen/metaparticle/sync/v1/types";
import { callError } from "../support/calls.js";
import { startTestDaemon } from "../support/test-daemon.js";

const seconds = (s: number) => ({ seconds: Math.trunc(s), nanos: Math.round((s - Math.trunc(s)) * 1e9) });
const longName = "a".repeat(250);
const megabyte = "x".repeat(1024 * 1024);

test("bad input gets INVALID_ARGUMENT naming the field and changes nothing held", async (t) => {
  const d = await startTestDaemon();
  t.teardown(() => d.stop());
  const { locks, elections } = d.client;
  const held = await d.client.lock("held", { holder: "keeper" });
  const leader = d.client.campaign("led", { candidate: "keeper" });
  t.teardown(() => leader.close());
  while (!leader.leading) await new Promise((r) => setTimeout(r, 5));
  const term = leader.leadership!.term;

  // Server streams report the status when the stream ends.
  const streamError = (start: () => NodeJS.EventEmitter) =>
    new Promise<SyncClientError>((resolve, reject) => {
      const call = start();
      call.on("data", () => reject(new Error("the stream sent data for a bad request")));
      call.on("error", (err) => import("metaparticle-sync-client").then(({ SyncClientError }) => resolve(SyncClientError.from(err))));
    });

  const cases: Array<[string, string, () => Promise<SyncClientError>]> = [
    ["Acquire with an empty name", "name", () => streamError(() => locks.acquire({ fairness: 0, name: "", holder: "h" }))],
    ["Acquire with an upper-case name", "name", () => streamError(() => locks.acquire({ fairness: 0, name: "Job", holder: "h" }))],
    ["Acquire with an underscore", "name", () => streamError(() => locks.acquire({ fairness: 0, name: "my_job", holder: "h" }))],
    [
      "Acquire with a name that does not fit with the prefix",
      "name",
      () => streamError(() => locks.acquire({ fairness: 0, name: longName, holder: "h" })),
    ],
    ["Acquire with an empty holder", "holder", () => streamError(() => locks.acquire({ fairness: 0, name: "job", holder: "" }))],
    [
      "Acquire with a control character in the holder",
      "holder",
      () => streamError(() => locks.acquire({ fairness: 0, name: "job", holder: "a\nb" })),
    ],
    [
      "Acquire with a 254-character holder",
      "holder",
      () => streamError(() => locks.acquire({ fairness: 0, name: "job", holder: "h".repeat(254) })),
    ],
    [
      "Acquire with a zero lease",
      "lease_duration",
      () => streamError(() => locks.acquire({ fairness: 0, name: "job", holder: "h", leaseDuration: seconds(0) })),
    ],
    [
      "Acquire with a negative lease",
      "lease_duration",
      () => streamError(() => locks.acquire({ fairness: 0, name: "job", holder: "h", leaseDuration: seconds(-5) })),
    ],
    [
      "Acquire with a fractional lease",
      "lease_duration",
      () => streamError(() => locks.acquire({ fairness: 0, name: "job", holder: "h", leaseDuration: seconds(1.5) })),
    ],
    [
      "Acquire with a lease over an hour",
      "lease_duration",
      () => streamError(() => locks.acquire({ fairness: 0, name: "job", holder: "h", leaseDuration: seconds(3601) })),
    ],
    [
      "Acquire with malformed nanos",
      "lease_duration",
      () =>
        streamError(() => locks.acquire({ fairness: 0, name: "job", holder: "h", leaseDuration: { seconds: 5, nanos: 2_000_000_000 } })),
    ],
    [
      "Acquire with a negative wait",
      "wait_timeout",
      () => streamError(() => locks.acquire({ fairness: 0, name: "job", holder: "h", waitTimeout: seconds(-1) })),
    ],
    [
      "Acquire with a wait over a day",
      "wait_timeout",
      () => streamError(() => locks.acquire({ fairness: 0, name: "job", holder: "h", waitTimeout: seconds(86_401) })),
    ],
    [
      "Acquire with an unknown fairness",
      "fairness",
      () => streamError(() => locks.acquire({ fairness: 7 as Fairness, name: "job", holder: "h" })),
    ],
    ["TryAcquire with a bad name", "name", () => callError((cb) => locks.tryAcquire({ name: "-job", holder: "h" }, cb))],
    ["TryAcquire with an empty holder", "holder", () => callError((cb) => locks.tryAcquire({ name: "job", holder: "" }, cb))],
    [
      "TryAcquire with a huge lease",
      "lease_duration",
      () => callError((cb) => locks.tryAcquire({ name: "job", holder: "h", leaseDuration: seconds(1e9) }, cb)),
    ],
    ["Renew with token 0", "fencing_token", () => callError((cb) => locks.renew({ name: "held", fencingToken: 0 }, cb))],
    ["Renew with a negative token", "fencing_token", () => callError((cb) => locks.renew({ name: "held", fencingToken: -3 }, cb))],
    [
      "Renew with a bad lease",
      "lease_duration",
      () => callError((cb) => locks.renew({ name: "held", fencingToken: held.token, leaseDuration: seconds(0.2) }, cb)),
    ],
    ["Release with token 0", "fencing_token", () => callError((cb) => locks.release({ name: "held", fencingToken: 0 }, cb))],
    ["Release with a bad name", "name", () => callError((cb) => locks.release({ name: "HELD", fencingToken: held.token }, cb))],
    [
      "GetLock with an unknown consistency",
      "consistency",
      () => callError((cb) => locks.getLock({ name: "held", consistency: 7 as ReadConsistency }, cb)),
    ],
    ["GetLock with an empty name", "name", () => callError((cb) => locks.getLock({ name: "", consistency: 0 }, cb))],
    [
      "Campaign with an empty candidate",
      "candidate",
      () => streamError(() => elections.campaign({ name: "led", candidate: "", value: "" })),
    ],
    ["Campaign with a 1 MiB value", "value", () => streamError(() => elections.campaign({ name: "led", candidate: "c", value: megabyte }))],
    [
      "Campaign with a bad lease",
      "lease_duration",
      () => streamError(() => elections.campaign({ name: "led", candidate: "c", value: "", leaseDuration: seconds(0) })),
    ],
    ["Campaign with a bad name", "name", () => streamError(() => elections.campaign({ name: "led.", candidate: "c", value: "" }))],
    ["Resign with term 0", "term", () => callError((cb) => elections.resign({ name: "led", term: 0 }, cb))],
    ["Proclaim with a 1 MiB value", "value", () => callError((cb) => elections.proclaim({ name: "led", term, value: megabyte }, cb))],
    [
      "Proclaim with a 4097-byte value",
      "value",
      () => callError((cb) => elections.proclaim({ name: "led", term, value: "é".repeat(2049) }, cb)),
    ],
    [
      "GetLeader with an unknown consistency",
      "consistency",
      () => callError((cb) => elections.getLeader({ name: "led", consistency: 99 as ReadConsistency }, cb)),
    ],
    ["Observe with a bad name", "name", () => streamError(() => elections.observe({ name: "a..b" }))],
  ];

  for (const [what, field, call] of cases) {
    const err = await call();
    t.is(err.code, status.INVALID_ARGUMENT, `${what}: ${err.message}`);
    t.is(err.field, field, `${what} names the field`);
    t.true(err.message.includes(field), `${what}: the message names ${field}: ${err.message}`);
  }

  t.false(held.lost, "the held lock was not lost");
  t.like(await d.client.getLock("held", { fresh: true }), { held: true, holder: "keeper", token: held.token });
  t.true(leader.leading, "the leader still leads");
  t.like(await d.client.getLeader("led"), { leader: "keeper", term });
  await held.release();
});
