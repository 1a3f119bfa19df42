#!/usr/bin/env node
// The `metaparticle-sync-daemon` command of the daemon's npm package: the lean
// build (dist/lean, scripts/bundle.mjs), which needs no node_modules. Kept in
// the repository, not built, so that npm can link it before dist/ exists.
import { fileURLToPath } from "node:url";

const main = new URL("../dist/lean/main.mjs", import.meta.url);
try {
  await import(main.href);
} catch (err) {
  if (err?.code !== "ERR_MODULE_NOT_FOUND" || !String(err.message).includes(fileURLToPath(main))) throw err;
  process.stderr.write("metaparticle-sync-daemon: not built yet: run npm run build in the repository first\n");
  process.exit(70);
}
