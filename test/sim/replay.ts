// The one-line command that replays a seed.
import type { Backend, FaultKind, ScaleKind, WorkloadKind } from "./world.js";

export function replayCommand(
  seed: number,
  filters: {
    faults?: ReadonlySet<FaultKind>;
    workload?: ReadonlySet<WorkloadKind>;
    scale?: ScaleKind;
    backend?: Backend;
    overload?: boolean;
  },
): string {
  const faults = filters.faults === undefined ? "" : ` --faults ${[...filters.faults].join(",") || "none"}`;
  const workload = filters.workload === undefined ? "" : ` --workload ${[...filters.workload].join(",")}`;
  const scale = filters.scale === undefined ? "" : ` --scale ${filters.scale}`;
  const backend = filters.backend === undefined ? "" : ` --backend ${filters.backend}`;
  const overload = filters.overload === true ? " --overload" : "";
  return `npm run simulate -- --seed ${seed}${faults}${workload}${scale}${backend}${overload} --verbose`;
}
