// bench/fleet-before.json: the fleet phase's figures from runs on an earlier
// daemon, one per size class (full, quick). The report shows them beside the
// figures of the current run, so a change to the daemon's watch can be judged
// by the same measurement before and after it.
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { FleetBaseline } from "./results.js";

/** The committed file in the source tree (dist/bench/lib/ -> bench/). */
export const FLEET_BEFORE_PATH = fileURLToPath(new URL("../../../bench/fleet-before.json", import.meta.url));

export interface FleetBeforeFile {
  about?: string;
  full?: FleetBaseline;
  quick?: FleetBaseline;
}

/** The file's contents; empty when there is no file. */
export function readFleetBefore(path = FLEET_BEFORE_PATH): FleetBeforeFile {
  return existsSync(path) ? (JSON.parse(readFileSync(path, "utf8")) as FleetBeforeFile) : {};
}
