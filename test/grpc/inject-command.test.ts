// `npm run -s inject`: the inject command as a user runs it from a clone,
// on the Node the repository pins (node_modules/.bin/node, which npm puts
// first on a script's PATH), whatever Node comes first on the user's PATH;
// files and stdin, stdout only YAML, and an error that names the file.
import test from "ava";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";

const root = fileURLToPath(new URL("../../..", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "msync-inject-cmd-"));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

/** The machine's own Node first on PATH (Node 20 here), as a user's shell would have it. */
const PATH = [...(existsSync("/usr/bin/node") ? ["/usr/bin"] : []), process.env.PATH].join(":");

function npmInject(args: string[], stdin?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("npm", ["run", "-s", "inject", "--", ...args], { cwd: root, env: { ...process.env, PATH }, timeout: 120_000 });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (c: Buffer) => out.push(c));
    child.stderr.on("data", (c: Buffer) => err.push(c));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }));
    child.stdin.end(stdin ?? "");
  });
}

const app = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    metadata:
      annotations:
        sync.metaparticle.io/inject: "true"
    spec:
      containers:
        - name: app
          image: app:1
---
apiVersion: v1
kind: Service
metadata: {name: web}
`;

test("npm run -s inject -- FILE and < FILE write the injected YAML, and nothing else, to stdout", async (t) => {
  const file = join(dir, "app.yaml");
  writeFileSync(file, app);
  for (const [args, stdin] of [
    [[file], undefined],
    [[], app],
  ] as const) {
    const { code, stdout, stderr } = await npmInject([...args], stdin);
    t.is(code, 0, stderr);
    t.is(stderr, "");
    const docs = parseAllDocuments(stdout).map((d) => d.toJS());
    t.is(docs[0].spec.template.spec.initContainers[0].name, "metaparticle-sync");
    t.true(stdout.endsWith("---\napiVersion: v1\nkind: Service\nmetadata: {name: web}\n"), stdout);
  }
});

test("npm run -s inject: a bad annotation exits 1 naming the file, the document and the line", async (t) => {
  const file = join(dir, "bad.yaml");
  writeFileSync(file, app.replace('inject: "true"', 'inject: "true"\n        sync.metaparticle.io/lease-duration: 30'));
  const { code, stdout, stderr } = await npmInject([file]);
  t.is(code, 1);
  t.is(stdout, "");
  t.regex(
    stderr,
    new RegExp(`^metaparticle-sync: ${file}, document 1, line 10: annotation sync\\.metaparticle\\.io/lease-duration: must be a string`),
  );
  t.false(readFileSync(file, "utf8").includes("metaparticle-sync:"), "the input is not changed");
});
