// The one-line command that replays a seed.
import type { FaultKind, ScaleKind, WorkloadKind } from "./world.js";

export function replayCommand(
  seed: number,
  filters: { faults?: ReadonlySet<FaultKind>; workload?: ReadonlySet<WorkloadKind>; scale?: ScaleKind },
): string {
  const faults = filters.faults === undefined ? "" : ` --faults ${[...filters.faults].join(",") || "none"}`;
  const workload = filters.workload === undefined ? "" : ` --workload ${[...filters.workload].join(",")}`;
  const scale = filters.scale === undefined ? "" : ` --scale ${filters.scale}`;
  return `npm run simulate -- --seed ${seed}${faults}${workload}${scale} --verbose`;
}
