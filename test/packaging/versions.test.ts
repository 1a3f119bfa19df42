// One version number across everything a user installs: the daemon's and the
// TypeScript client's npm packages, the Python, Java and Rust packages, the
// Helm chart and its appVersion, the image's label and the image tags in
// deploy/ and the READMEs. (The Go module's version is its tag,
// clients/go/vX.Y.Z; packed-artifacts.test.ts serves it at this version.)
import test from "ava";
import { readFileSync, readdirSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { load } from "js-yaml";

const REPO = fileURLToPath(new URL("../../../", import.meta.url));
const read = (path: string) => readFileSync(join(REPO, path), "utf8");

/** The one version: the daemon's package.json. */
function projectVersion(): string {
  return (JSON.parse(read("package.json")) as { version: string }).version;
}

/** The first capture of `pattern` in `path`, or a clear failure naming what was not found. */
function field(path: string, pattern: RegExp, what: string): string {
  const match = pattern.exec(read(path));
  if (!match?.[1]) throw new Error(`${path}: no ${what} found (looked for ${pattern})`);
  return match[1];
}

/** The lines of a TOML table, from its header to the next header. */
function tomlTable(path: string, table: string): string {
  const text = read(path);
  const start = text.indexOf(`[${table}]\n`);
  if (start < 0) throw new Error(`${path}: no [${table}] table`);
  const rest = text.slice(start + table.length + 3);
  const end = rest.search(/^\[/m);
  return end < 0 ? rest : rest.slice(0, end);
}

function tomlString(path: string, table: string, key: string): string {
  const match = new RegExp(`^${key} = "([^"]+)"$`, "m").exec(tomlTable(path, table));
  if (!match) throw new Error(`${path}: no ${key} in [${table}]`);
  return match[1]!;
}

function yamlFiles(dir: string): string[] {
  return readdirSync(join(REPO, dir), { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && /\.ya?ml$/.test(entry.name))
    .map((entry) => relative(REPO, join(entry.parentPath, entry.name)));
}

test("every package manifest, the chart and the image carry the one version", (t) => {
  const version = projectVersion();
  t.regex(version, /^\d+\.\d+\.\d+$/);
  const chart = load(read("deploy/helm/metaparticle-sync/Chart.yaml")) as { version: string; appVersion: string };
  const cargoLock = read("clients/rust/Cargo.lock");
  const lockEntry = /\[\[package\]\]\nname = "metaparticle-sync"\nversion = "([^"]+)"/.exec(cargoLock)?.[1];
  const versions: Record<string, string | undefined> = {
    "clients/typescript/package.json": (JSON.parse(read("clients/typescript/package.json")) as { version: string }).version,
    "clients/python/pyproject.toml [project] version": tomlString("clients/python/pyproject.toml", "project", "version"),
    "clients/java/pom.xml project version": field(
      "clients/java/pom.xml",
      /<artifactId>metaparticle-sync-client<\/artifactId>\s*<version>([^<]+)<\/version>/,
      "project version",
    ),
    "clients/rust/Cargo.toml [package] version": tomlString("clients/rust/Cargo.toml", "package", "version"),
    "clients/rust/Cargo.lock metaparticle-sync": lockEntry,
    "Chart.yaml version": chart.version,
    "Chart.yaml appVersion": chart.appVersion,
    "Dockerfile org.opencontainers.image.version": field("Dockerfile", /org\.opencontainers\.image\.version="([^"]+)"/, "version label"),
  };
  for (const [where, found] of Object.entries(versions)) t.is(found, version, where);
});

test("every image tag in deploy/ and every versioned install line in the READMEs is the one version", (t) => {
  const version = projectVersion();
  const files = [
    ...yamlFiles("deploy"),
    "README.md",
    ...["typescript", "python", "java", "rust", "go"].map((c) => `clients/${c}/README.md`),
  ];
  let seen = 0;
  // metaparticle-sync:X.Y.Z (images), metaparticle-sync-client-X.Y.Z.tgz, metaparticle-sync-0.1.0.tgz,
  // io.metaparticle:metaparticle-sync-client:X.Y.Z, metaparticle_sync_client-X.Y.Z (wheels), --version X.Y.Z.
  const pattern = /metaparticle[-_]sync(?:[-_]client)?(?:-daemon)?[:-](\d+\.\d+\.\d+)\b/g;
  for (const file of files) {
    for (const match of read(file).matchAll(pattern)) {
      seen += 1;
      t.is(match[1], version, `${file}: ${match[0]}`);
    }
  }
  t.true(seen >= 6, `versioned references found: ${seen}`);
});
