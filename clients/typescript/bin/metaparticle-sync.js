#!/usr/bin/env node
// The `metaparticle-sync` command. This file is kept in the repository, not
// built: npm links a package's bins when it installs the package, and in a
// fresh clone that happens before `tsc -b` has built dist/, so a bin in dist/
// would not be linked at all.
import { fileURLToPath } from "node:url";

const cli = new URL("../dist/cli.js", import.meta.url);
try {
  await import(cli.href);
} catch (err) {
  if (err?.code !== "ERR_MODULE_NOT_FOUND" || !String(err.message).includes(fileURLToPath(cli))) throw err;
  process.stderr.write("metaparticle-sync: not built yet: run npm run build (tsc -b) in the repository first\n");
  process.exit(70);
}
