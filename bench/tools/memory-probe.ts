// A probe of a daemon's memory, loaded into it with --import: 4 s after start
// it appends one JSON line to $TMPDIR/msync-memory-probe.jsonl with its
// resident memory split as /proc tells it (anonymous, mapped from files, and
// of those the node binary's own pages) and its JS heap. For the report's
// "what stands in the way" (bench/limit-in-the-way.json):
//
//   npm run build
//   MSYNC_BENCH_DAEMON_NODE_OPTIONS="--import=$PWD/dist/bench/tools/memory-probe.js" \
//     npm run bench -- --only idle --out DIR
//   node dist/bench/tools/memory-probe.js --bare   # the same of a bare node with the image's flags
import { appendFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const PROBE_FILE = join(tmpdir(), "msync-memory-probe.jsonl");
const AFTER_MS = 4000;

function kib(status: string, key: string): number {
  return Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
}

/** KiB resident in the mappings of the node binary (its code, read-only data and data). */
function binaryKib(): number {
  let total = 0;
  let inBinary = false;
  for (const line of readFileSync("/proc/self/smaps", "utf8").split("\n")) {
    const mapping = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (mapping) inBinary = mapping[1] === process.execPath;
    else if (inBinary) total += Number(/^Rss:\s+(\d+) kB/.exec(line)?.[1] ?? 0);
  }
  return total;
}

function sample(): Record<string, number> {
  const status = readFileSync("/proc/self/status", "utf8");
  const mib = (value: number) => Math.round((value / 1024) * 10) / 10;
  return {
    pid: process.pid,
    rssMiB: mib(kib(status, "VmRSS")),
    anonMiB: mib(kib(status, "RssAnon")),
    fileMiB: mib(kib(status, "RssFile")),
    nodeBinaryMiB: mib(binaryKib()),
    heapUsedMiB: mib(process.memoryUsage().heapUsed / 1024),
  };
}

if (process.argv.includes("--bare")) {
  // Run as a script: a bare node process, sampled the same way.
  const { spawnSync } = await import("node:child_process");
  if (process.env.MSYNC_MEMORY_PROBE_CHILD === undefined) {
    const flags = ["--optimize-for-size", "--max-semi-space-size=1"];
    const child = spawnSync(process.execPath, [...flags, process.argv[1]!, "--bare"], {
      env: { ...process.env, MSYNC_MEMORY_PROBE_CHILD: "1" },
      encoding: "utf8",
    });
    process.stdout.write(child.stdout);
  } else {
    await new Promise((resolve) => setTimeout(resolve, AFTER_MS));
    console.log(JSON.stringify({ bare: true, ...sample() }));
  }
} else {
  setTimeout(() => appendFileSync(PROBE_FILE, JSON.stringify(sample()) + "\n"), AFTER_MS).unref();
}
