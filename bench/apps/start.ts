// How every bench app starts: its clients, its JSON event lines on stdout
// (stamped with CLOCK_MONOTONIC in ms), and the "go" line on stdin that starts
// its loop once the harness has every app ready.
import { type Interface, createInterface } from "node:readline";
import { SyncClient } from "metaparticle-sync-client";

export interface StartedApp {
  readonly clients: SyncClient[];
  /** Prints one event line. */
  emit(event: string, fields?: Record<string, unknown>): void;
  /** Closes the clients and stdin, and exits 0. */
  exit(): never;
}

/** Opens `count` clients of the sidecar at `address`, prints "ready" and resolves once "go" arrives. */
export async function readyAndGo(address: string, count: number): Promise<StartedApp> {
  const emit = (event: string, fields: Record<string, unknown> = {}) =>
    process.stdout.write(JSON.stringify({ event, at: Number(process.hrtime.bigint()) / 1e6, ...fields }) + "\n");
  const clients = Array.from({ length: count }, () => new SyncClient({ address }));
  emit("ready");
  const lines: Interface = createInterface({ input: process.stdin });
  await new Promise<void>((resolve) => lines.on("line", (line) => line === "go" && resolve()));
  return {
    clients,
    emit,
    exit() {
      for (const client of clients) client.close();
      lines.close();
      process.exit(0);
    },
  };
}
