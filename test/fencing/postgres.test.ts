// Fencing where the write lands, in PostgreSQL (docs/design.md 3.12):
// sql/fencing.sql in a real PostgreSQL started here (Unix socket only), two
// real daemons on the Kubernetes backend of test/controlplane, and holders in
// TypeScript and Go that call their client's fence helper in the transaction
// of each guarded write. The same scenario runs against a copy of the SQL
// whose check is removed, where the paused holder's stale write must land (so
// the scenario really produces one).
import anyTest, { type ExecutionContext, type TestFn } from "ava";
import pg from "pg";
import { StaleFenceError, fence } from "metaparticle-sync-client";
import { type KubeEnv, startKubeEnv } from "../support/kube-env.js";
import { type Postgres, readRepoFile, startPostgres } from "../support/postgres.js";
import { type Language, type Outcome, Holder, type Reply, pauseHolderPastLease, twoSidecars } from "./harness.js";

const test = anyTest as TestFn<{ env: KubeEnv; postgres: Postgres }>;

test.before(async (t) => {
  const [env, postgres] = await Promise.all([startKubeEnv(), startPostgres()]);
  t.context.env = env;
  t.context.postgres = postgres;
});
test.after.always(async (t) => {
  await t.context.postgres?.stop();
  await t.context.env?.stop();
});

const FENCING_SQL = readRepoFile("sql/fencing.sql");
/** The check that makes a stale token fail; without it every token is recorded. */
const CHECK = "WHERE f.token <= EXCLUDED.token";

let databases = 0;

/** A fresh database with the fencing SQL (or the given text) and two tables: `orders` (fenced) and `notes` (not). */
async function database(postgres: Postgres, sql: string): Promise<string> {
  const name = `fencing_${++databases}`;
  await postgres.psql(`CREATE DATABASE ${name};`);
  await postgres.psql(
    `\\connect ${name}\n${sql}\nCREATE TABLE orders (id int PRIMARY KEY, writer text NOT NULL);\n` +
      `CREATE TABLE notes (id int PRIMARY KEY, writer text NOT NULL);\n`,
  );
  return name;
}

/** What the database holds at the end: the fenced row's writer, the recorded token, the unfenced row's writer. */
type PostgresOutcome = Outcome<string>;

async function scenario(t: { context: { env: KubeEnv; postgres: Postgres } }, language: Language, sql: string): Promise<PostgresOutcome> {
  const { env, postgres } = t.context;
  const dbName = await database(postgres, sql);
  const { a: sidecarA, b: sidecarB } = await twoSidecars(env, `fencing-pg-${language.slice(0, 2)}`);
  const holderA = await Holder.start(language);
  const holderB = await Holder.start(language);
  try {
    for (const holder of [holderA, holderB])
      await holder.must("pgConnect", {
        host: postgres.socketDir,
        port: postgres.port,
        user: postgres.user,
        database: dbName,
        dsn: `host=${postgres.socketDir} port=${postgres.port} user=${postgres.user} dbname=${dbName} sslmode=disable`,
      });
    const write = (holder: Holder, table: string, rowId: number, writer: string, lock?: string) =>
      holder.send("pgWrite", { table, rowId, writer, ...(lock ? { lock } : {}) });

    const token = (await holderA.must("lock", { address: sidecarA.address, name: "orders" })).token as number;
    for (const reply of [await write(holderA, "orders", 1, "a", "orders"), await write(holderA, "notes", 1, "a")])
      if (!reply.ok) throw new Error(`A's first writes: ${JSON.stringify(reply)}`);

    let newerToken = 0;
    await pauseHolderPastLease(holderA, sidecarA, async () => {
      newerToken = (await holderB.must("lock", { address: sidecarB.address, name: "orders" })).token as number;
      await holderB.must("pgWrite", { table: "orders", rowId: 1, writer: "b", lock: "orders" });
    });
    const staleWrite = await write(holderA, "orders", 1, "a-late", "orders");
    const newerSecondWrite = await write(holderB, "orders", 2, "b", "orders");
    const unfencedWrite = await write(holderA, "notes", 1, "a-late");
    const stored = await postgres.psql(
      `\\connect ${dbName}\n\\pset format unaligned\n\\pset tuples_only on\n` +
        `SELECT (SELECT writer FROM orders WHERE id = 1) || ' ' || (SELECT token FROM metaparticle_sync_fences WHERE name = 'orders')` +
        ` || ' ' || (SELECT writer FROM notes WHERE id = 1);\n`,
    );
    return { token, newerToken, staleWrite, newerSecondWrite, unfencedWrite, stored: stored.trim() };
  } finally {
    sidecarA.signal("SIGCONT");
    await Promise.all([holderA.stop(), holderB.stop()]);
    await Promise.all([sidecarA.stop(), sidecarB.stop()]);
  }
}

test.serial("sql/fencing.sql loads twice (idempotent), and the removed-check copy differs from it only there", async (t) => {
  const { postgres } = t.context;
  const name = await database(postgres, FENCING_SQL);
  await postgres.psql(`\\connect ${name}\n${FENCING_SQL}`);
  t.true(FENCING_SQL.includes(CHECK), `sql/fencing.sql no longer has ${CHECK}: update this test's mutant`);
});

async function fencingFunctionWithoutItsCheck(
  t: ExecutionContext<{ env: KubeEnv; postgres: Postgres }>,
  language: Language,
): Promise<void> {
  const outcome = await scenario(t, language, FENCING_SQL.replace(CHECK, ""));
  t.log(JSON.stringify(outcome));
  t.true(outcome.newerToken > outcome.token);
  t.true(outcome.staleWrite.ok, JSON.stringify(outcome.staleWrite));
  t.is(outcome.stored, `a-late ${outcome.newerToken} a-late`);
}

test.serial("fencing function without its check [typescript]: the paused holder's stale write lands (the scenario really makes one)", (t) =>
  fencingFunctionWithoutItsCheck(t, "typescript"),
);

test.serial("fencing function without its check [go]: the paused holder's stale write lands (the scenario really makes one)", (t) =>
  fencingFunctionWithoutItsCheck(t, "go"),
);

async function fencingFunction(t: ExecutionContext<{ env: KubeEnv; postgres: Postgres }>, language: Language): Promise<void> {
  const outcome = await scenario(t, language, FENCING_SQL);
  t.log(JSON.stringify(outcome));
  t.true(outcome.newerToken > outcome.token);
  t.false(outcome.staleWrite.ok, JSON.stringify(outcome.staleWrite));
  t.is(outcome.staleWrite.code, "MSF01");
  t.true(outcome.staleWrite.stale);
  const text = `stale fencing token for lock "orders": this write carries token ${outcome.token}, the current token is ${outcome.newerToken}`;
  // node-postgres reports the server's message as it is; pgx adds the severity and the SQLSTATE.
  t.is(outcome.staleWrite.message, language === "go" ? `ERROR: ${text} (SQLSTATE MSF01)` : text);
  t.true(outcome.newerSecondWrite.ok, JSON.stringify(outcome.newerSecondWrite));
  t.true(outcome.unfencedWrite.ok, JSON.stringify(outcome.unfencedWrite));
  t.is(outcome.stored, `b ${outcome.newerToken} a-late`);
}

test.serial("fencing function [typescript]: a holder paused past its lease cannot overwrite the next holder's write", (t) =>
  fencingFunction(t, "typescript"),
);

test.serial("fencing function [go]: a holder paused past its lease cannot overwrite the next holder's write", (t) =>
  fencingFunction(t, "go"),
);

/** Whether a session of `dbName` comes to wait on a lock, polled (bounded) from outside the sessions under test. */
async function waitingOnALock(postgres: Postgres, dbName: string): Promise<boolean> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const count = await postgres.psql(
      `\\pset format unaligned\n\\pset tuples_only on\n` +
        `SELECT count(*) FROM pg_stat_activity WHERE datname = '${dbName}' AND wait_event_type = 'Lock';\n`,
    );
    if (count.trim() === "1") return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return false;
}

/** A node-postgres client of one database in the harness's server. */
async function connect(postgres: Postgres, dbName: string): Promise<pg.Client> {
  const client = new pg.Client({ host: postgres.socketDir, port: postgres.port, user: postgres.user, database: dbName });
  await client.connect();
  return client;
}

test.serial(
  "fencing function under concurrency (READ COMMITTED): a lower token waiting on a higher one's transaction fails once that commits",
  async (t) => {
    const { postgres } = t.context;
    const dbName = await database(postgres, FENCING_SQL);
    const [newer, older] = [await connect(postgres, dbName), await connect(postgres, dbName)];
    try {
      await newer.query("BEGIN");
      await fence(newer, "orders", 2);
      await older.query("BEGIN");
      // Blocks on the row lock the newer transaction holds until it ends.
      const olderFence = fence(older, "orders", 1).then(
        () => undefined,
        (error: unknown) => error,
      );
      t.true(await waitingOnALock(postgres, dbName), "the older transaction's fence did not wait on the newer one's row lock");
      await newer.query("INSERT INTO orders VALUES (1, 'newer')");
      await newer.query("COMMIT");
      const error = await olderFence;
      t.true(error instanceof StaleFenceError, String(error));
      t.is((error as StaleFenceError).currentToken, "2");
      await older.query("ROLLBACK");

      // The other order: the older token's transaction commits first, and the newer one then records its token.
      await older.query("BEGIN");
      await fence(older, "other", 1);
      await newer.query("BEGIN");
      const newerFence = fence(newer, "other", 2);
      await older.query("INSERT INTO orders VALUES (2, 'older')");
      await older.query("COMMIT");
      await newerFence;
      await newer.query("COMMIT");
      const rows = await newer.query("SELECT name, token FROM metaparticle_sync_fences ORDER BY name");
      t.deepEqual(rows.rows, [
        { name: "orders", token: "2" },
        { name: "other", token: "2" },
      ]);
    } finally {
      await Promise.all([newer.end(), older.end()]);
    }
  },
);

test.serial(
  "fencing function under SERIALIZABLE: a transaction whose snapshot predates a newer token gets 40001, and MSF01 when retried",
  async (t) => {
    const { postgres } = t.context;
    const dbName = await database(postgres, FENCING_SQL);
    const [newer, older] = [await connect(postgres, dbName), await connect(postgres, dbName)];
    try {
      await fence(newer, "orders", 1);
      await older.query("BEGIN ISOLATION LEVEL SERIALIZABLE");
      await older.query("SELECT count(*) FROM orders"); // takes the snapshot
      await fence(newer, "orders", 2); // commits on its own (autocommit)
      const error = await fence(older, "orders", 1).then(
        () => undefined,
        (e: unknown) => e as { code?: string },
      );
      t.is(error?.code, "40001", String(error));
      await older.query("ROLLBACK");
      await older.query("BEGIN ISOLATION LEVEL SERIALIZABLE");
      const retried = await fence(older, "orders", 1).then(
        () => undefined,
        (e: unknown) => e,
      );
      t.true(retried instanceof StaleFenceError, String(retried));
      await older.query("ROLLBACK");
    } finally {
      await Promise.all([newer.end(), older.end()]);
    }
  },
);
