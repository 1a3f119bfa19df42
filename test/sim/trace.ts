// One history event as a line of a readable trace.
import type { HistoryEvent } from "../faults/history.js";

export function formatEvent(e: HistoryEvent): string {
  const t = (Number(e.ts) / 1e9).toFixed(3).padStart(8);
  const parts = [`t=${t}`, e.client.padEnd(8), e.ev];
  if (e.daemon !== undefined) parts.push(`d${e.daemon}`);
  if (e.kind !== undefined) parts.push(`${e.kind}/${e.name}`);
  else if (e.name !== undefined) parts.push(e.name);
  if (e.token !== undefined) parts.push(`token=${e.token}`);
  if (e.validForMs !== undefined) parts.push(`valid_for=${Math.round(e.validForMs)}`);
  if (e.reason !== undefined) parts.push(`reason=${e.reason}`);
  if (e.fault !== undefined) parts.push(`fault="${e.fault}"`);
  if (e.target !== undefined) parts.push(`target=${e.target}`);
  if (e.holderIdentity !== undefined) parts.push(`holder=${e.holderIdentity || "-"} transitions=${e.transitions} rv=${e.resourceVersion}`);
  if (e.detail !== undefined) parts.push(e.detail);
  return parts.join(" ");
}
