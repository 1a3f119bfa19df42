// Every language's conformance driver: how to build it once and how to start
// one driver process (PROTOCOL.md, "Adding a language"). Paths are relative
// to the repository root.

export interface DriverSpec {
  readonly language: string;
  /** Run once, in `cwd`, before the first scenario of this language. */
  readonly build?: readonly string[];
  readonly cwd?: string;
  readonly command: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
}

const PYTHON = ".cache/tools/venv/bin/python";
const PYTHONPATH = "clients/python/src:clients/python/gen";

export const DRIVERS: readonly DriverSpec[] = [
  { language: "typescript", command: [process.execPath, "dist/test/conformance/drivers/typescript/driver.js"] },
  {
    language: "go",
    build: ["go", "build", "-o", "../../../../.cache/conformance/go-driver", "."],
    cwd: "test/conformance/drivers/go",
    command: [".cache/conformance/go-driver"],
  },
  { language: "python", command: [PYTHON, "test/conformance/drivers/python/driver.py"], env: { PYTHONPATH } },
  { language: "python-asyncio", command: [PYTHON, "test/conformance/drivers/python/async_driver.py"], env: { PYTHONPATH } },
  {
    language: "java",
    build: ["bash", "test/conformance/drivers/java/build.sh"],
    // The launcher execs one JVM, so SIGSTOP reaches the driver itself.
    command: ["bash", "test/conformance/drivers/java/run.sh"],
  },
  {
    language: "rust",
    // Offline: scripts/install-toolchains.sh fetched the crates of clients/rust/Cargo.lock.
    build: ["cargo", "build", "--offline", "--locked", "--example", "conformance_driver"],
    cwd: "clients/rust",
    command: ["clients/rust/target/debug/examples/conformance_driver"],
  },
];
