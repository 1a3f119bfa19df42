// A real daemon (gRPC server, engine, store) started in this test process on
// 127.0.0.1:0, with a TypeScript client pointed at it.
import { SyncClient } from "metaparticle-sync-client";
import { loadConfig } from "../../daemon/config.js";
import { type RunningDaemon, startDaemon } from "../../daemon/daemon.js";
import { createLogger } from "../../daemon/log.js";
import type { LeaseStore } from "../../daemon/store/lease-store.js";
import { MemoryStore } from "../../daemon/store/memory/memory-store.js";

export interface TestDaemon {
  readonly daemon: RunningDaemon;
  readonly address: string;
  readonly client: SyncClient;
  readonly store: LeaseStore;
  /** A second client, for tests that need two independent connections. */
  newClient(): SyncClient;
  stop(): Promise<void>;
}

/** Starts a daemon on the memory store unless another store is given. Flags as on the command line. */
export async function startTestDaemon(flags: string[] = [], store: LeaseStore = new MemoryStore()): Promise<TestDaemon> {
  const config = loadConfig({
    argv: ["--listen=127.0.0.1:0", "--backend=memory", "--log-level=silent", "--shutdown-timeout=2s", ...flags],
    env: {},
    readFile: () => undefined,
  });
  const daemon = await startDaemon(config, createLogger(config.logLevel), store);
  await daemon.ready;
  const address = `127.0.0.1:${daemon.port}`;
  const clients: SyncClient[] = [];
  const newClient = () => {
    const client = new SyncClient({ address });
    clients.push(client);
    return client;
  };
  return {
    daemon,
    address,
    client: newClient(),
    store,
    newClient,
    async stop() {
      for (const client of clients) client.close();
      await daemon.stop();
    },
  };
}
