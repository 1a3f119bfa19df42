// The TypeScript fencing holder (test/fencing/README.md): takes a lock through
// the TypeScript client and writes a Kubernetes object or a PostgreSQL row
// fenced by the lock's token with the client's fencing helpers, one JSON
// command per stdin line, one JSON reply per stdout line. It never checks
// whether it still holds the lock before a write: it is the process paused
// between its check and its write that fencing is for.
import { readFileSync } from "node:fs";
import * as https from "node:https";
import { createInterface } from "node:readline";
import pg from "pg";
import { type Lock, StaleFenceError, SyncClient, fence, stampFence } from "metaparticle-sync-client";

type Command = Record<string, any>;

const held = new Map<string, Lock>();
let kube: { server: string; token: string; ca: string } | undefined;
let db: pg.Client | undefined;

function kubeRequest(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const { server, token, ca } = kube!;
  return new Promise((resolve, reject) => {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const req = https.request(
      new URL(path, server),
      {
        method,
        ca,
        headers: { Authorization: `Bearer ${token}`, Accept: "application/json", ...(text ? { "Content-Type": "application/json" } : {}) },
        timeout: 20_000,
      },
      (res) => {
        let data = "";
        res.setEncoding("utf8").on("data", (d: string) => (data += d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, json: data ? JSON.parse(data) : undefined }));
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${method} ${path}: no answer within 20 s`)));
    req.on("error", reject);
    req.end(text);
  });
}

function tokenOf(lockName: string): number {
  const lock = held.get(lockName);
  if (lock === undefined) throw new Error(`lock ${lockName} was never taken by this holder`);
  return lock.token;
}

async function perform(c: Command): Promise<Record<string, unknown>> {
  switch (c.op) {
    case "lock": {
      const client = new SyncClient({ address: c.address });
      const lock = await client.lock(c.name, { waitTimeoutMs: c.waitTimeoutMs ?? 30_000, leaseDurationMs: c.leaseDurationMs });
      held.set(c.name, lock);
      return { ok: true, token: lock.token };
    }
    case "kubeConnect":
      kube = { server: c.server, token: c.token, ca: readFileSync(c.caFile, "utf8") };
      return { ok: true };
    case "kubeWrite": {
      // Read, change, stamp, write back: the usual read-modify-write of a controller.
      const path = `/api/v1/namespaces/${c.namespace}/configmaps`;
      const got = await kubeRequest("GET", `${path}/${c.configMap}`);
      const object = got.status === 404 ? { apiVersion: "v1", kind: "ConfigMap", metadata: { name: c.configMap }, data: {} } : got.json;
      if (got.status !== 404 && got.status !== 200) return { ok: false, status: got.status, message: got.json?.message };
      object.data = { ...(object.data ?? {}), ...c.data };
      if (c.lock) stampFence(object, c.lock, tokenOf(c.lock));
      const put = got.status === 404 ? await kubeRequest("POST", path, object) : await kubeRequest("PUT", `${path}/${c.configMap}`, object);
      if (put.status === 200 || put.status === 201) return { ok: true };
      return { ok: false, status: put.status, message: put.json?.message };
    }
    case "pgConnect":
      db = new pg.Client({ host: c.host, port: c.port, user: c.user, database: c.database });
      await db.connect();
      return { ok: true };
    case "pgWrite": {
      // One transaction: the fence first, then the guarded write.
      await db!.query("BEGIN");
      try {
        if (c.lock) await fence(db!, c.lock, tokenOf(c.lock));
        await db!.query(`INSERT INTO ${c.table} (id, writer) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET writer = EXCLUDED.writer`, [
          c.rowId,
          c.writer,
        ]);
        await db!.query("COMMIT");
        return { ok: true };
      } catch (error) {
        await db!.query("ROLLBACK");
        if (error instanceof StaleFenceError)
          return { ok: false, code: error.code, message: error.message, stale: true, currentToken: error.currentToken };
        throw error;
      }
    }
    default:
      return { ok: false, message: `unknown op ${String(c.op)}` };
  }
}

process.stdout.write(`${JSON.stringify({ event: "ready", language: "typescript" })}\n`);
const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  const command = JSON.parse(line) as Command;
  let reply: Record<string, unknown>;
  try {
    reply = await perform(command);
  } catch (error) {
    reply = { ok: false, message: error instanceof Error ? error.message : String(error) };
  }
  process.stdout.write(`${JSON.stringify({ id: command.id, ...reply })}\n`);
}
await db?.end();
for (const lock of held.values()) await lock.release().catch(() => {});
process.exit(0);
