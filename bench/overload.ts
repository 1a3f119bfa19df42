// Overload: one daemon asked to hold more locks than the API server can
// renew, at short leases (issue 19 defect 8). N Acquire streams are opened at
// once; the run counts how many were granted within the acquisition window and
// how many of those still hold the lock at the end of the observation window.
// It prints one line per (lease, locks) and writes a JSON report. It asserts
// nothing: the figures are compared between builds with --main.
//
//   npm run bench:overload                                     # leases 5,10 s x locks 250,500,1000
//   npm run bench:overload -- --leases 5 --locks 1000 --main /other/build/dist/daemon/main.js
//   npm run bench:overload -- --out .cache/bench/overload.json
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { parseArgs } from "node:util";
import { SyncClient } from "metaparticle-sync-client";
import { LockStream } from "./lib/lock-stream.js";
import { nowMs, sleep } from "./lib/clock.js";
import { startControlPlane } from "../test/controlplane/controlplane.js";
import { DAEMON_MAIN, spawnDaemon } from "../test/support/daemon-process.js";

/** gRPC channels the streams are spread over, as several app processes would. */
const CHANNELS = 10;

interface Row {
  readonly leaseS: number;
  readonly renewDeadlineS: number;
  readonly locks: number;
  /** Granted within the acquisition window. */
  readonly granted: number;
  /** Of those, still holding at the end of the observation window (no Lost, stream open). */
  readonly survivors: number;
  readonly lost: number;
  readonly acquireWindowS: number;
  readonly observeS: number;
}

const { values } = parseArgs({
  options: {
    leases: { type: "string", default: "5,10" },
    locks: { type: "string", default: "250,500,1000" },
    "acquire-window": { type: "string", default: "60" },
    observe: { type: "string", default: "30" },
    main: { type: "string", default: DAEMON_MAIN },
    out: { type: "string", default: ".cache/bench/overload.json" },
  },
});
const numbers = (text: string) => text.split(",").map(Number);
const acquireWindowS = Number(values["acquire-window"]);
const observeS = Number(values.observe);

const controlPlane = await startControlPlane();
const rows: Row[] = [];
try {
  for (const leaseS of numbers(values.leases)) {
    for (const locks of numbers(values.locks)) {
      const renewDeadlineS = Math.round(leaseS * 0.6 * 10) / 10;
      const namespace = `overload-${leaseS}-${locks}`;
      await controlPlane.createNamespace(namespace);
      const daemon = await spawnDaemon(
        [
          "--backend=kubernetes",
          `--kubeconfig=${controlPlane.kubeconfigPath}`,
          `--namespace=${namespace}`,
          `--lease-duration=${leaseS}s`,
          `--renew-deadline=${renewDeadlineS}s`,
        ],
        {},
        { main: values.main },
      );
      const clients = Array.from({ length: CHANNELS }, () => new SyncClient({ address: daemon.address }));
      const streams = Array.from({ length: locks }, (_, i) => new LockStream(clients[i % CHANNELS]!, `overload-${i}`, `holder-${i}`));
      const deadline = nowMs() + acquireWindowS * 1000;
      while (nowMs() < deadline && streams.some((s) => s.acquiredAt === undefined && s.error === undefined)) await sleep(250);
      const granted = streams.filter((s) => s.acquiredAt !== undefined);
      await sleep(observeS * 1000);
      const survivors = granted.filter((s) => s.losses.length === 0 && s.error === undefined).length;
      const row: Row = {
        leaseS,
        renewDeadlineS,
        locks,
        granted: granted.length,
        survivors,
        lost: granted.length - survivors,
        acquireWindowS,
        observeS,
      };
      rows.push(row);
      console.log(
        `lease ${leaseS} s (renew deadline ${renewDeadlineS} s), ${locks} locks asked at once: ` +
          `${row.granted} granted within ${acquireWindowS} s, ${row.survivors} still held ${observeS} s later, ${row.lost} lost`,
      );
      for (const stream of streams) stream.cancel();
      for (const client of clients) client.close();
      await daemon.stop(10_000);
    }
  }
} finally {
  await controlPlane.stop();
}
mkdirSync(dirname(values.out), { recursive: true });
writeFileSync(values.out, JSON.stringify({ main: values.main, rows }, null, 2));
console.log(`wrote ${values.out}`);
