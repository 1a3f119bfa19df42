// A TCP fault proxy on loopback, between one daemon and the API server. The
// daemon's kubeconfig names the proxy's port as its server; TLS passes
// through untouched (the proxy only moves bytes), so the API server's
// certificate is still checked by the daemon. Faults:
//   latency        every chunk is delayed by this many ms, each direction, in order;
//   resetAll()     every open connection is reset (TCP RST both ways);
//   drop "up"      bytes from the daemon to the API server are discarded,
//   drop "down"    bytes from the API server to the daemon are discarded
//                  (a one-way partition: connections stay open, bytes vanish;
//                  after healing, the TLS streams that lost bytes fail and
//                  are replaced).
import * as net from "node:net";

export type Direction = "up" | "down";

interface Pipe {
  readonly client: net.Socket;
  readonly upstream: net.Socket;
  readonly stats: ConnectionStats;
}

/** One connection through the proxy, for a look after a run. Times are performance.now() ms. */
export interface ConnectionStats {
  readonly id: number;
  readonly openedAt: number;
  closedAt: number | undefined;
  up: number;
  down: number;
  droppedUp: number;
  droppedDown: number;
  lastUpAt: number | undefined;
  lastDownAt: number | undefined;
  reset: boolean;
}

export class FaultProxy {
  latencyMs = 0;
  private readonly dropping = new Set<Direction>();
  private readonly pipes = new Set<Pipe>();
  private server: net.Server | undefined;
  /** Bytes moved and discarded, for the report. */
  readonly bytes = { up: 0, down: 0, droppedUp: 0, droppedDown: 0 };
  connections = 0;
  resets = 0;
  /** Every connection so far (the most recent 1000). */
  readonly history: ConnectionStats[] = [];

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  /** Listens on 127.0.0.1 (a free port unless given); resolves with the port. */
  listen(port = 0): Promise<number> {
    const server = net.createServer((client) => this.accept(client));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => resolve((server.address() as net.AddressInfo).port));
    });
  }

  drop(direction: Direction, on: boolean): void {
    if (on) this.dropping.add(direction);
    else this.dropping.delete(direction);
  }

  heal(): void {
    this.dropping.clear();
    this.latencyMs = 0;
  }

  /** Resets every open connection (RST to both sides). */
  resetAll(): number {
    const count = this.pipes.size;
    for (const pipe of [...this.pipes]) this.reset(pipe);
    this.resets += count;
    return count;
  }

  async close(): Promise<void> {
    for (const pipe of [...this.pipes]) this.reset(pipe);
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private accept(client: net.Socket): void {
    this.connections += 1;
    const upstream = net.connect(this.targetPort, this.targetHost);
    const stats: ConnectionStats = {
      id: this.connections,
      openedAt: performance.now(),
      closedAt: undefined,
      up: 0,
      down: 0,
      droppedUp: 0,
      droppedDown: 0,
      lastUpAt: undefined,
      lastDownAt: undefined,
      reset: false,
    };
    this.history.push(stats);
    if (this.history.length > 1000) this.history.shift();
    const pipe: Pipe = { client, upstream, stats };
    this.pipes.add(pipe);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    this.forward(client, upstream, "up", stats);
    this.forward(upstream, client, "down", stats);
    const done = () => {
      this.pipes.delete(pipe);
      stats.closedAt ??= performance.now();
    };
    const closeBoth = () => {
      done();
      if (!client.destroyed) client.destroy();
      if (!upstream.destroyed) upstream.destroy();
    };
    client.on("error", closeBoth);
    upstream.on("error", closeBoth);
    client.on("close", closeBoth);
    upstream.on("close", closeBoth);
  }

  /** Moves bytes from `from` to `to`, delayed by the latency (keeping their order) or dropped. */
  private forward(from: net.Socket, to: net.Socket, direction: Direction, stats: ConnectionStats): void {
    let lastDue = 0;
    let ended = false;
    let pending = 0;
    const endIfDone = () => {
      if (ended && pending === 0 && !to.destroyed) to.end();
    };
    from.on("data", (chunk: Buffer) => {
      if (this.dropping.has(direction)) {
        if (direction === "up") {
          this.bytes.droppedUp += chunk.length;
          stats.droppedUp += chunk.length;
        } else {
          this.bytes.droppedDown += chunk.length;
          stats.droppedDown += chunk.length;
        }
        return;
      }
      if (direction === "up") {
        this.bytes.up += chunk.length;
        stats.up += chunk.length;
        stats.lastUpAt = performance.now();
      } else {
        this.bytes.down += chunk.length;
        stats.down += chunk.length;
        stats.lastDownAt = performance.now();
      }
      const write = () => {
        if (!to.destroyed) to.write(chunk);
      };
      if (this.latencyMs <= 0 && pending === 0) return write();
      const due = Math.max(performance.now() + this.latencyMs, lastDue);
      lastDue = due;
      pending += 1;
      setTimeout(
        () => {
          pending -= 1;
          write();
          endIfDone();
        },
        Math.max(0, due - performance.now()),
      );
    });
    from.on("end", () => {
      ended = true;
      endIfDone();
    });
  }

  private reset(pipe: Pipe): void {
    this.pipes.delete(pipe);
    pipe.stats.reset = true;
    pipe.stats.closedAt ??= performance.now();
    for (const socket of [pipe.client, pipe.upstream]) {
      if (socket.destroyed) continue;
      try {
        socket.resetAndDestroy();
      } catch {
        socket.destroy();
      }
    }
  }
}
