// The one duration syntax of metaparticle-sync, shared by the daemon's
// settings and the CLI's flags: "15s", "500ms", "2m", "1h30m", or a bare
// number of seconds ("15", "0.5").

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** How the syntax is described in errors and help texts. */
export const DURATION_SYNTAX = "a duration such as 15s, 500ms, 2m or 1h30m, or a number of seconds";

/** Parses a duration into milliseconds; undefined if `text` is not one. */
export function parseDuration(text: string): number | undefined {
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text) * 1000;
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join("") !== text) return undefined;
  return parts.reduce((total, [, amount, unit]) => total + Number(amount) * UNITS[unit!]!, 0);
}

/** Formats ms for messages: "1.5s", "250ms", "2m". */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000 || ms % 60_000 !== 0) return `${Number((ms / 1000).toFixed(3))}s`;
  return `${ms / 60_000}m`;
}
