// docs/design.md 3.8 under fuzzing (see fuzz.ts): every RPC with fuzzed and boundary
// requests gets the documented status, garbage and truncated HTTP/2 on the
// gRPC port crash nothing, and what another client holds throughout stays
// held with the same token. The seed is printed; FAULTS_SEED replays it.
// FAULTS_FULL=1 runs every name length 0..300 and more of everything.
import anyTest, { type TestFn } from "ava";
import { credentials } from "@grpc/grpc-js";
import { status } from "metaparticle-sync-client";
import { LockServiceClient } from "metaparticle-sync-client/gen/metaparticle/sync/v1/lock_service";
import type { ControlPlane } from "../controlplane/controlplane.js";
import { spawnDaemon } from "../support/daemon-process.js";
import { callError } from "../support/calls.js";
import { startFaultEnv } from "./cluster.js";
import { runFuzz } from "./fuzz.js";
import { seedFrom } from "./prng.js";

const test = anyTest as TestFn<{ cp: ControlPlane }>;

test.before(async (t) => {
  t.context.cp = await startFaultEnv();
});

test.after.always(async (t) => {
  await t.context.cp?.stop();
});

test.serial(
  "fuzzed and boundary requests get the documented status; garbage on the port crashes nothing; what is held stays held",
  async (t) => {
    const seed = seedFrom("FAULTS_SEED");
    const full = process.env.FAULTS_FULL === "1";
    console.log(`fuzz seed ${seed} (replay with FAULTS_SEED=${seed})${full ? ", full" : ""}`);
    const result = await runFuzz(t.context.cp, { seed, full });
    const calls = Object.values(result.calls).reduce((a, b) => a + b, 0);
    const connections = Object.values(result.sockets).reduce((a, b) => a + b, 0);
    t.log(`seed ${seed}: ${calls} requests (${JSON.stringify(result.calls)}), statuses ${JSON.stringify(result.statuses)}`);
    t.log(
      `${connections} raw connections, ${result.socketBytes} bytes: ${JSON.stringify(result.sockets)}; ${Math.round(result.durationMs / 1000)} s`,
    );
    t.deepEqual(result.mismatches, [], `seed ${seed}`);
    t.deepEqual(result.problems, [], `seed ${seed}`);
    t.true(calls > 1000, `${calls} requests`);
  },
);

test.serial("a fencing token or a duration beyond 2^53 gets INVALID_ARGUMENT naming the field, like every other bad number", async (t) => {
  // int64 fields arrive as JavaScript numbers (ts-proto forceLong=number), whose
  // decoder throws for values beyond Number.MAX_SAFE_INTEGER. The request then
  // never reaches the handler and grpc-js answers INTERNAL "Error deserializing
  // request": no field named, and not the documented INVALID_ARGUMENT
  // (docs/design.md 3.8). Tokens from 1 to 2^53 - 1 and durations up to the same bound
  // get the documented statuses (see the fuzz test above).
  const namespace = `huge-${Math.floor(Math.random() * 1e6)}`;
  await t.context.cp.createNamespace(namespace);
  const daemon = await spawnDaemon(["--backend=kubernetes", `--kubeconfig=${t.context.cp.kubeconfigPath}`, `--namespace=${namespace}`]);
  const locks = new LockServiceClient(daemon.address, credentials.createInsecure());
  t.teardown(async () => {
    locks.close();
    await daemon.stop();
  });
  const huge = 2 ** 60;
  const cases = [
    [
      "Release with fencing_token 2^60",
      "fencing_token",
      (cb: (err: Error | null) => void) => locks.release({ name: "job", fencingToken: huge }, cb),
    ],
    [
      "Renew with fencing_token 2^60",
      "fencing_token",
      (cb: (err: Error | null) => void) => locks.renew({ name: "job", fencingToken: huge }, cb),
    ],
    [
      "TryAcquire with lease_duration of 2^60 seconds",
      "lease_duration",
      (cb: (err: Error | null) => void) => locks.tryAcquire({ name: "job", holder: "h", leaseDuration: { seconds: huge, nanos: 0 } }, cb),
    ],
  ] as const;
  const seen: string[] = [];
  for (const [what, field, call] of cases) {
    const err = await callError(call);
    seen.push(`${what}: ${status[err.code]} ${err.message}`);
    t.is(err.code, status.INVALID_ARGUMENT, `${what}: ${err.message}`);
    t.is(err.field, field, what);
  }
  t.log(seen.join("\n"));
  t.is(daemon.child.exitCode, null, "the daemon still runs");
});
