// Apache Curator on a real ZooKeeper server, as a peer: the server is a JVM
// of its own running ZooKeeper's standalone server (bench/peers/curator,
// ZooKeeperLauncher), the recipes run in curator-peer processes. Both are
// built by bench/peers/curator/build.sh.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { nowMs } from "./clock.js";
import { PeerProcess, type PeerEvent } from "./peer.js";

const PACKAGE = "io.metaparticle.bench.curator";

/** Builds the peer if need be (a no-op when built); returns the folder of its jars. */
export function buildCurator(root: string): string {
  return execFileSync("bash", [join(root, "bench", "peers", "curator", "build.sh")], {
    cwd: root,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  }).trim();
}

/** The Curator and ZooKeeper versions pinned in bench/peers/curator/pom.xml. */
export function curatorVersions(root: string): { curator: string; zookeeper: string } {
  const pom = readFileSync(join(root, "bench", "peers", "curator", "pom.xml"), "utf8");
  const pick = (tag: string) => pom.match(new RegExp(`<${tag}>([^<]+)</${tag}>`))?.[1] ?? "unknown";
  return { curator: pick("curator.version"), zookeeper: pick("zookeeper.version") };
}

/** ZooKeeper's request counters (the server's `mntr`), cumulative since it started. */
export interface ZooKeeperCounts {
  /** Requests answered without a transaction: reads, exists, watches set, pings. */
  reads: number;
  /** Requests that went through the transaction log: create, delete, setData, sessions opened and closed. */
  writes: number;
  /** Packets the server received from clients (requests, pings) and sent to them (replies, watch notifications). */
  packetsReceived: number;
  packetsSent: number;
}

export class ZooKeeperServer {
  private constructor(
    private readonly process: PeerProcess,
    private readonly dataDir: string,
    /** host:port for clients. */
    readonly address: string,
    readonly port: number,
    /** As the server reports it. */
    readonly version: string,
  ) {}

  /** Starts the server on 127.0.0.1, on a port it picks, and waits until it takes sessions. */
  static async start(lib: string): Promise<ZooKeeperServer> {
    const dataDir = mkdtempSync(join(tmpdir(), "bench-zookeeper-"));
    const process = PeerProcess.spawn("zookeeper", "java", [
      "-Xmx512m",
      "-cp",
      join(lib, "*"),
      `${PACKAGE}.ZooKeeperLauncher`,
      `--data-dir=${dataDir}`,
    ]);
    try {
      const serving = assertSameClock(await process.waitForEvent("serving", 90_000));
      return new ZooKeeperServer(process, dataDir, String(serving.address), Number(serving.port), String(serving.version));
    } catch (err) {
      await process.stop(5_000);
      rmSync(dataDir, { recursive: true, force: true });
      throw err;
    }
  }

  get pid(): number {
    return this.process.pid;
  }

  /** The server's counters now (its `mntr` four-letter command). */
  async counts(): Promise<ZooKeeperCounts> {
    const text = await fourLetter(this.port, "mntr");
    const value = (key: string) => {
      const match = new RegExp(`^${key}\\t(\\S+)$`, "m").exec(text);
      if (!match) throw new Error(`zookeeper: no ${key} in mntr`);
      return Number(match[1]);
    };
    // Every answered request is timed once, as an update (it had a transaction) or as a read.
    return {
      reads: value("zk_cnt_readlatency"),
      writes: value("zk_cnt_updatelatency"),
      packetsReceived: value("zk_packets_received"),
      packetsSent: value("zk_packets_sent"),
    };
  }

  async stop(): Promise<void> {
    await this.process.stop(10_000);
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/** Sends a four-letter command and returns the whole answer (the server closes the connection after it). */
function fourLetter(port: number, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect({ host: "127.0.0.1", port }, () => socket.write(command));
    socket.setTimeout(10_000, () => socket.destroy(new Error(`zookeeper: no answer to ${command} within 10 s`)));
    socket.on("data", (chunk) => chunks.push(chunk));
    socket.on("error", reject);
    socket.on("close", () => resolve(Buffer.concat(chunks).toString("utf8")));
  });
}

/**
 * Throws unless `event` (just received) was stamped on this process's clock: Java documents System.nanoTime()
 * only as relative to some origin, and the harness subtracts the peers' stamps from each other and from its own.
 * On Linux HotSpot reads CLOCK_MONOTONIC, so the stamp is a little before now; anything else fails the phase.
 */
export function assertSameClock(event: PeerEvent): PeerEvent {
  const lagMs = nowMs() - event.at;
  if (!(lagMs >= 0 && lagMs < 10_000)) {
    throw new Error(
      `a Java peer's mono_ns is not this machine's CLOCK_MONOTONIC: "${event.event}" arrived ${lagMs.toFixed(0)} ms after its stamp`,
    );
  }
  return event;
}

/** A curator-peer process (see bench/peers/curator): election, mutex or semaphore mode by `flags`. */
export function curatorPeer(
  lib: string,
  zookeeper: ZooKeeperServer,
  name: string,
  identity: string,
  flags: readonly string[],
): PeerProcess {
  return PeerProcess.spawn(`curator ${identity}`, "java", [
    "-Xmx256m",
    "-cp",
    join(lib, "*"),
    `${PACKAGE}.CuratorPeer`,
    `--connect=${zookeeper.address}`,
    `--name=${name}`,
    `--identity=${identity}`,
    ...flags,
  ]);
}
