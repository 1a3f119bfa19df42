// Each language's runner is counted from its own output; a miscount would
// hide failures from the one summary line.
import test from "ava";
import { countCargoTest } from "../suites.js";

test("cargo test is counted over every test binary", (t) => {
  const output = [
    "     Running unittests src/lib.rs (target/debug/deps/metaparticle_sync-1)",
    "test result: ok. 2 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s",
    "     Running tests/locks.rs (target/debug/deps/locks-2)",
    "test stale_tokens_are_refused ... FAILED",
    "test result: FAILED. 10 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 11.18s",
    "   Doc-tests metaparticle_sync",
    "test result: ok. 0 passed; 0 failed; 3 ignored; 0 measured; 0 filtered out; finished in 0.01s",
  ].join("\n");
  t.deepEqual(countCargoTest(output), { passed: 12, failed: 1, skipped: 3 });
});
