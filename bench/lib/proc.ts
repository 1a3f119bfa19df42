// Process measurements from /proc (Linux): resident memory and CPU time.
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync, readlinkSync } from "node:fs";
import { createServer } from "node:net";

let clockTicks: number | undefined;

/** Kernel clock ticks per second, the unit of utime/stime in /proc/<pid>/stat. */
export function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** Resident set size in bytes (VmRSS), or NaN if the process is gone. */
export function rssBytes(pid: number): number {
  try {
    const match = readFileSync(`/proc/${pid}/status`, "utf8").match(/^VmRSS:\s+(\d+)\s+kB$/m);
    return match ? Number(match[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

/**
 * Resident memory by kind, in bytes (NaN if the process is gone): `anon` is the
 * process's own (heaps, stacks), `file` is mapped files, mostly the node
 * binary's code and data, which processes running the same binary file share.
 */
export function rssKinds(pid: number): { anon: number; file: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+)\\s+kB$`, "m").exec(status)?.[1] ?? NaN) * 1024;
    return { anon: kb("RssAnon"), file: kb("RssFile") };
  } catch {
    return { anon: NaN, file: NaN };
  }
}

/** User plus system CPU time the process has used, in ms. */
export function cpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after "(comm)": state is field 3; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / ticksPerSecond();
  } catch {
    return NaN;
  }
}

/** Open sockets of a process (file descriptors that are sockets), or NaN if it is gone. */
export function socketCount(pid: number): number {
  try {
    let n = 0;
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith("socket:")) n += 1;
      } catch {
        // closed meanwhile
      }
    }
    return n;
  } catch {
    return NaN;
  }
}

/** Open file descriptors of a process (sockets, files, pipes, epoll and timer fds), or NaN if it is gone. */
export function fdCount(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return NaN;
  }
}

/** Samples CPU time of a process over a window: CPU % of one core. */
export class CpuMeter {
  private readonly startCpu: number;
  private readonly startWall: number;
  constructor(private readonly pid: number) {
    this.startCpu = cpuMs(pid);
    this.startWall = performance.now();
  }
  percent(): number {
    return (100 * (cpuMs(this.pid) - this.startCpu)) / (performance.now() - this.startWall);
  }
  /** CPU time used since the meter started, in ms. */
  ms(): number {
    return cpuMs(this.pid) - this.startCpu;
  }
}

/** A TCP port free on loopback right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

export function loadAverage(): string {
  try {
    return readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
  } catch {
    return "unknown";
  }
}
