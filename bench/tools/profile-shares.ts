// Where daemons spend their CPU, from V8 CPU profiles (--cpu-prof): every
// sample's stack, mapped to the original sources through the lean build's
// source maps, is put in one category by what it was doing, and each
// category's share of the busy time is printed. For the report's "what
// stands in the way" (bench/limit-in-the-way.json):
//
//   npm run build
//   MSYNC_BENCH_DAEMON_NODE_OPTIONS="--cpu-prof --cpu-prof-interval=200 --cpu-prof-dir=DIR" \
//     npm run bench -- --only handoff --out OUT
//   node dist/bench/tools/profile-shares.js DIR/FIRST.cpuprofile DIR/SECOND.cpuprofile
//
// (The lock-handoff phase starts two daemons first: the two oldest profiles.)
import { existsSync, readFileSync } from "node:fs";
import { SourceMap } from "node:module";
import { fileURLToPath } from "node:url";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface Profile {
  nodes: Array<{ id: number; callFrame: CallFrame; children?: number[] }>;
  samples: number[];
  timeDeltas: number[];
}

const maps = new Map<string, SourceMap | undefined>();

/** The original source file of a frame (through the bundle's source map), else its URL. */
function sourceOf(frame: CallFrame): string {
  if (!frame.url.startsWith("file://")) return frame.url;
  if (!maps.has(frame.url)) {
    const path = `${fileURLToPath(frame.url)}.map`;
    maps.set(frame.url, existsSync(path) ? new SourceMap(JSON.parse(readFileSync(path, "utf8"))) : undefined);
  }
  const entry = maps.get(frame.url)?.findEntry(frame.lineNumber, frame.columnNumber);
  return entry !== undefined && "originalSource" in entry ? entry.originalSource : frame.url;
}

const STARTUP = "start-up (loading and compiling modules)";
/** Categories, the first that matches a stack (innermost frame first) wins. */
const CATEGORIES: Array<[string, (files: string[], names: string[]) => boolean]> = [
  ["garbage collection", (_, names) => names[0] === "(garbage collector)"],
  ["V8 and native code outside JS", (_, names) => names[0] === "(program)"],
  [STARTUP, (files, names) => names.includes("evaluate") || files.some((f) => /modules\/esm|bootstrap\/realm/.test(f))],
  [
    "gRPC to the clients (grpc-js, HTTP/2, protobuf, the handlers)",
    (files, names) => files.some((f) => /@grpc\/grpc-js|@bufbuild|http2|daemon\/server\//.test(f)) || names.some((n) => /http2/i.test(n)),
  ],
  [
    "HTTP/1.1 to the API server (node:https: requests, replies, the watch stream, socket writes)",
    (files, names) => files.some((f) => /https-lease-api|_http_|node:https|node:net|stream_base|node:tls/.test(f)) || names[0] === "writev",
  ],
  ["Kubernetes store (Lease ⇄ record, the watch's bookkeeping)", (files) => files.some((f) => /daemon\/store\//.test(f))],
  ["engine (decide, claims, the lease cache)", (files) => files.some((f) => /daemon\/engine\//.test(f))],
  ["logging", (files) => files.some((f) => /pino|daemon\/log\.ts/.test(f))],
];

function shares(paths: string[]): { busyMs: number; startupMs: number; byCategory: Map<string, number> } {
  const byCategory = new Map<string, number>();
  let busyMs = 0;
  for (const path of paths) {
    const profile = JSON.parse(readFileSync(path, "utf8")) as Profile;
    const byId = new Map(profile.nodes.map((node) => [node.id, node]));
    const parent = new Map<number, number>();
    for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
    const category = new Map<number, string>();
    const categoryOf = (id: number): string => {
      let found = category.get(id);
      if (found !== undefined) return found;
      const frames: CallFrame[] = [];
      for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) frames.push(byId.get(at)!.callFrame);
      const files = frames.map(sourceOf);
      const names = frames.map((frame) => frame.functionName);
      found = CATEGORIES.find(([, matches]) => matches(files, names))?.[0] ?? "other";
      category.set(id, found);
      return found;
    };
    profile.samples.forEach((id, i) => {
      if (byId.get(id)!.callFrame.functionName === "(idle)") return;
      const ms = (profile.timeDeltas[i + 1] ?? 0) / 1000;
      busyMs += ms;
      const what = categoryOf(id);
      byCategory.set(what, (byCategory.get(what) ?? 0) + ms);
    });
  }
  return { busyMs, startupMs: byCategory.get(STARTUP) ?? 0, byCategory };
}

const paths = process.argv.slice(2);
if (paths.length === 0) {
  console.error("usage: node dist/bench/tools/profile-shares.js PROFILE.cpuprofile...");
  process.exit(2);
}
const { busyMs, startupMs, byCategory } = shares(paths);
const working = busyMs - startupMs;
console.log(
  `busy ${busyMs.toFixed(0)} ms, of which start-up ${startupMs.toFixed(0)} ms; shares of the ${working.toFixed(0)} ms after start-up:`,
);
for (const [what, ms] of [...byCategory].filter(([what]) => what !== STARTUP).sort((a, b) => b[1] - a[1])) {
  console.log(`${((100 * ms) / working).toFixed(1).padStart(5)} %  ${ms.toFixed(0).padStart(6)} ms  ${what}`);
}
