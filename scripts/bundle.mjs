// The lean build of the daemon: dist/lean/, what `npm start` and the image
// run. esbuild bundles the compiled daemon (dist/daemon, from `tsc -b`) with
// its dependencies into a few ES modules, keeping only the code that is
// reachable: one file for start-up, one chunk for the Kubernetes store (loaded
// only on that backend), and chunks for what the daemon loads only when asked
// (metrics, the reflection codec).
//
// A process parses and keeps every function it loads, so what is never
// loaded costs nothing: bundled this way the daemon starts with a fraction of
// the memory of the plain dist/ build (bench/README.md, "Start-up and idle
// footprint", has the numbers and the command that measures them).
//
//   node scripts/bundle.mjs          after `tsc -b`; `npm run build` runs both
import * as esbuild from "esbuild";
import { cpSync, readFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
export const leanDir = join(root, "dist", "lean");
export const leanMain = join(leanDir, "main.mjs");

/**
 * client-node's generated code (APIs, models, the HTTP layer) declares its
 * classes and then assigns their static fields, which a bundler must assume
 * has effects, so every API group and every model would be kept. Those
 * modules have no effect beyond their exports; marking them so lets esbuild
 * drop the ones the daemon never reaches.
 */
const clientNodeGeneratedCodeIsPure = {
  name: "client-node-generated-code-is-pure",
  setup(build) {
    build.onResolve({ filter: /.*/ }, async (args) => {
      if (args.pluginData === "resolving") return undefined;
      const resolved = await build.resolve(args.path, {
        kind: args.kind,
        importer: args.importer,
        resolveDir: args.resolveDir,
        pluginData: "resolving",
      });
      if (resolved.errors.length > 0) return undefined; // esbuild's own resolution reports it, or tolerates it inside try/catch
      if (!resolved.path.includes("/@kubernetes/client-node/dist/gen/")) return resolved;
      return { ...resolved, sideEffects: false };
    });
  },
};

/** The generated API groups the daemon calls; the build fails if the bundle holds any other. */
const API_GROUPS = ["CoordinationV1Api"];
const generated = join(root, "node_modules", "@kubernetes", "client-node", "dist", "gen");

/**
 * The model classes `ObjectSerializer` needs for API_GROUPS: the types those
 * groups name, and every type their fields name, transitively.
 */
async function modelsUsed() {
  const models = await import(pathToFileURL(join(generated, "models", "all.js")).href);
  const needed = new Set();
  const visit = (type) => {
    for (const name of type.match(/[A-Za-z0-9]+/g) ?? []) {
      if (needed.has(name) || typeof models[name]?.getAttributeTypeMap !== "function") continue;
      needed.add(name);
      for (const attribute of models[name].getAttributeTypeMap()) visit(attribute.type);
    }
  };
  for (const group of API_GROUPS) {
    const source = readFileSync(join(generated, "apis", `${group}.js`), "utf8");
    for (const [, type] of source.matchAll(/ObjectSerializer\.(?:de)?serialize\([^;]*?"([^"]+)"/g)) visit(type);
  }
  return needed;
}

/**
 * client-node's ObjectSerializer imports all of its hundreds of models, to
 * convert any of them by name. The bundle gets a copy that knows only the
 * models the daemon's API groups use; the rest of its code is unchanged.
 */
const objectSerializerForUsedModels = {
  name: "object-serializer-for-used-models",
  setup(build) {
    let needed;
    build.onLoad({ filter: /\/@kubernetes\/client-node\/dist\/gen\/models\/ObjectSerializer\.js$/ }, async (args) => {
      needed ??= await modelsUsed();
      const kept = readFileSync(args.path, "utf8")
        .split("\n")
        .filter((line) => {
          const model =
            /^export \* from '\.\.\/models\/(\w+)\.js';$/.exec(line) ??
            /^import \{ (\w+) \} from '\.\.\/models\/\w+\.js';$/.exec(line) ??
            /^ {4}"(\w+)": (\w+),$/.exec(line);
          return model === null || needed.has(model[1]);
        });
      return { contents: kept.join("\n"), loader: "js" };
    });
  },
};

/**
 * An ES module import of a Node built-in module makes Node build an ES module
 * facade of it, which reads every export, lazy ones included: for node:http
 * that loads Node's own copy of undici (for http.WebSocket), 10 MiB more
 * resident memory in a bare process, and node:util and node:fs load their
 * lazy parts too (2.8 and 2.2 MiB). In the daemon on the Kubernetes backend,
 * idle, the three cost 3.2 MiB (82.6 against 79.4 MiB, the benchmark's idle
 * phase, no node flags). The bundle takes these modules with
 * process.getBuiltinModule instead, which returns the module as it is, and
 * re-exports its plain values by name; an import of a lazy export (a getter)
 * fails the build ("No matching export").
 */
const FACADE_FREE = ["http", "util", "fs"];
const builtinsWithoutFacade = {
  name: "builtins-without-facade",
  setup(build) {
    const filter = new RegExp(`^(node:)?(${FACADE_FREE.join("|")})$`);
    build.onResolve({ filter }, (args) =>
      args.kind === "import-statement" ? { path: args.path.replace(/^node:/, ""), namespace: "builtin-without-facade" } : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: "builtin-without-facade" }, async (args) => {
      const module = process.getBuiltinModule(`node:${args.path}`);
      const plain = Object.entries(Object.getOwnPropertyDescriptors(module))
        .filter(([name, descriptor]) => "value" in descriptor && /^[A-Za-z_$][\w$]*$/.test(name) && name !== "default")
        .map(([name]) => name);
      return {
        loader: "js",
        contents: [
          `const m = process.getBuiltinModule("node:${args.path}");`,
          "export default m;",
          ...plain.map((name) => `export const ${name} = m.${name};`),
        ].join("\n"),
      };
    });
  },
};

/**
 * undici's index loads all of undici: mock agents, WebSocket, EventSource,
 * the cache stores, every interceptor. client-node uses three of its exports
 * (Agent, ProxyAgent, fetch), so the bundle takes those from their own
 * modules, with the one thing the index adds to them: the request API
 * methods on every Dispatcher. And it loads them only when one is first used:
 * the daemon's calls and watches go through node:https (the Kubernetes
 * store's https-lease-api.ts), so undici runs only through a proxy, and a
 * daemon that never needs it does not keep its code (idle, 1.4 MiB: 77.4
 * against 76.0 MiB with the image's node flags).
 * An import of any other name fails the build ("No matching export").
 */
const undiciAsUsed = {
  name: "undici-as-used",
  setup(build) {
    build.onResolve({ filter: /^undici$/ }, () => ({ path: "undici", namespace: "undici-as-used" }));
    build.onLoad({ filter: /.*/, namespace: "undici-as-used" }, () => ({
      resolveDir: root,
      loader: "js",
      contents: `
        let undici;
        function load() {
          if (undici === undefined) {
            const Dispatcher = require("undici/lib/dispatcher/dispatcher.js");
            Object.assign(Dispatcher.prototype, require("undici/lib/api/index.js"));
            undici = {
              Agent: require("undici/lib/dispatcher/agent.js"),
              ProxyAgent: require("undici/lib/dispatcher/proxy-agent.js"),
              fetch: require("undici/lib/web/fetch/index.js").fetch,
            };
          }
          return undici;
        }
        const lazyClass = (name) => new Proxy(function () {}, { construct: (_target, args) => Reflect.construct(load()[name], args) });
        export const Agent = lazyClass("Agent");
        export const ProxyAgent = lazyClass("ProxyAgent");
        export function fetch(input, init) {
          return load().fetch(input, init);
        }
      `,
    }));
  },
};

export async function bundle() {
  rmSync(leanDir, { recursive: true, force: true });
  const result = await esbuild.build({
    entryPoints: { main: join(root, "dist", "daemon", "main.js") },
    outdir: leanDir,
    outExtension: { ".js": ".mjs" },
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: `node${JSON.parse(readFileSync(join(root, "package.json"), "utf8")).engines.node.replace(/^>=/, "")}`,
    // CommonJS dependencies call require() for Node's own modules.
    banner: {
      js: 'import { createRequire as __msyncCreateRequire } from "node:module"; const require = __msyncCreateRequire(import.meta.url);',
    },
    plugins: [builtinsWithoutFacade, clientNodeGeneratedCodeIsPure, objectSerializerForUsedModels, undiciAsUsed],
    legalComments: "linked",
    // Shorter source text is less to keep in memory; names are kept, so stack traces still read.
    minifyWhitespace: true,
    minifySyntax: true,
    sourcemap: "linked",
    metafile: true,
    logLevel: "warning",
  });
  // The reflection service's messages, parsed at the first reflection call (daemon/server/reflection.ts).
  for (const version of ["v1", "v1alpha"]) {
    const file = `grpc/reflection/${version}/reflection.proto`;
    cpSync(join(root, "node_modules", "@grpc", "reflection", "build", "proto", file), join(leanDir, "proto", file));
  }
  const groups = Object.values(result.metafile.outputs)
    .flatMap((output) => Object.entries(output.inputs))
    .filter(([file, input]) => input.bytesInOutput > 0 && /client-node\/dist\/gen\/apis\/\w+Api\.js$/.test(file))
    .map(([file]) => /(\w+)\.js$/.exec(file)[1]);
  const unexpected = groups.filter((group) => !API_GROUPS.includes(group));
  if (unexpected.length > 0) {
    throw new Error(`the daemon now calls ${unexpected.join(", ")}: add it to API_GROUPS in scripts/bundle.mjs, so its models are kept`);
  }
  return result.metafile;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const metafile = await bundle();
  const outputs = Object.entries(metafile.outputs).filter(([file]) => file.endsWith(".mjs"));
  for (const [file, output] of outputs) console.log(`${file}  ${(output.bytes / 1024).toFixed(0)} KiB`);
}
