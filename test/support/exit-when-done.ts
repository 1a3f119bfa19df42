// Loaded by AVA into every test worker (package.json, "ava.require"). Since
// AVA 6 a worker must exit on its own after its last test; a handle a library
// or a test left open then holds the whole run until its timeout and fails
// it (seen: a faults worker busy for minutes after its after.always hooks,
// with every test passed). AVA calls completion handlers only after a run
// with no uncaught exception or unhandled rejection, once every result has
// been reported: ending the worker then loses nothing.
import { registerCompletionHandler } from "ava";

registerCompletionHandler(() => process.exit());
