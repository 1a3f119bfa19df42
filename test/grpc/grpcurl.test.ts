// grpcurl works against the daemon with no proto files at hand: reflection
// lists and describes everything, and calls go through.
import test from "ava";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { startTestDaemon } from "../support/test-daemon.js";

const grpcurl = fileURLToPath(new URL("../../../.cache/tools/bin/grpcurl", import.meta.url));
const run = promisify(execFile);

/** Runs grpcurl and returns its stdout, or its stderr and exit code when it fails. */
async function grpcurlCall(...args: string[]): Promise<{ ok: boolean; out: string }> {
  try {
    return { ok: true, out: (await run(grpcurl, ["-plaintext", "-max-time", "10", ...args])).stdout };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return { ok: false, out: `${e.stdout ?? ""}${e.stderr ?? ""}` };
  }
}

test("grpcurl lists, describes and calls every service with no proto files", async (t) => {
  const d = await startTestDaemon();
  t.teardown(() => d.stop());
  const list = await grpcurlCall(d.address, "list");
  t.true(list.ok, list.out);
  t.deepEqual(list.out.trim().split("\n").sort(), [
    "grpc.health.v1.Health",
    "metaparticle.sync.v1.ElectionService",
    "metaparticle.sync.v1.LockService",
    "metaparticle.sync.v1.RWLockService",
    "metaparticle.sync.v1.SemaphoreService",
  ]);

  const describe = await grpcurlCall(d.address, "describe", "metaparticle.sync.v1.ElectionService");
  t.true(describe.ok, describe.out);
  t.regex(
    describe.out,
    /rpc Campaign \( \.metaparticle\.sync\.v1\.CampaignRequest \) returns \( stream \.metaparticle\.sync\.v1\.CampaignResponse \)/,
  );

  const tried = await grpcurlCall(
    "-d",
    '{"name":"nightly-report","holder":"cron","lease_duration":"60s"}',
    d.address,
    "metaparticle.sync.v1.LockService/TryAcquire",
  );
  t.true(tried.ok, tried.out);
  t.like(JSON.parse(tried.out), { acquired: true, fencingToken: "1", holder: "cron", leaseDuration: "60s" });

  const bad = await grpcurlCall("-d", '{"name":"Bad_Name","holder":"cron"}', d.address, "metaparticle.sync.v1.LockService/TryAcquire");
  t.false(bad.ok);
  t.regex(bad.out, /InvalidArgument/);
  t.regex(bad.out, /name: "Bad_Name" is not a DNS-1123 subdomain/);

  const permit = await grpcurlCall(
    "-d",
    '{"name":"export","permits":3,"holder":"cron","lease_duration":"60s"}',
    d.address,
    "metaparticle.sync.v1.SemaphoreService/TryAcquirePermit",
  );
  t.true(permit.ok, permit.out);
  t.like(JSON.parse(permit.out), { acquired: true, hold: { holdId: "1", fencingToken: "1", permits: 3 } });

  const shared = await grpcurlCall(
    "-d",
    '{"name":"catalog","mode":"LOCK_MODE_SHARED","holder":"reader","lease_duration":"60s"}',
    d.address,
    "metaparticle.sync.v1.RWLockService/TryAcquireRWLock",
  );
  t.true(shared.ok, shared.out);
  t.like(JSON.parse(shared.out), { acquired: true, hold: { holdId: "1", mode: "LOCK_MODE_SHARED", holder: "reader" } });

  const health = await grpcurlCall(d.address, "grpc.health.v1.Health/Check");
  t.like(JSON.parse(health.out), { status: "SERVING" });
});
