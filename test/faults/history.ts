// The history of a fault run: every client process, the storm processes and
// the harness each append one JSON line per event to their own file. Every
// timestamp is CLOCK_MONOTONIC in nanoseconds (process.hrtime.bigint()),
// which on Linux is one clock for the whole machine, so events of different
// processes can be ordered. A line is written with one synchronous append,
// so a process killed with SIGKILL leaves every event it had recorded.
import { closeSync, openSync, readdirSync, readFileSync, writeSync } from "node:fs";
import { join } from "node:path";

export type ResourceKind = "lock" | "election" | "semaphore" | "rwlock";

export type EventType =
  // A lock: the client asked (Acquire stream opened), was granted, or gave up.
  | "acquire-start"
  | "acquired"
  | "acquire-failed"
  | "acquire-cancelled"
  /** A `renewed` heartbeat as it arrived on the stream, with its valid_for. */
  | "renewed"
  /** The client wrapper's signal aborted: the daemon said Lost, the stream ended, or the wrapper's own heartbeat deadline passed. */
  | "lost"
  /** Only the deliberately buggy client: it saw the signal and kept acting. Not the end of anything. */
  | "lost-ignored"
  /** The holder stops acting and releases: the end of its hold. */
  | "release"
  | "released"
  // An election: joined, elected with a term, deposed (any reason, including resign and heartbeat timeout), left.
  | "campaign-start"
  | "elected"
  | "deposed"
  /** The leader stops acting and resigns: the end of its term. */
  | "resign"
  | "resigned"
  | "resign-failed"
  /** The client leaves a campaign it has not won yet (or stops leading and closes it). */
  | "campaign-close"
  | "campaign-end"
  // Whole processes.
  | "client-start"
  | "client-done"
  // The harness.
  | "run-start"
  | "workload-end"
  | "fault-start"
  | "fault-end"
  | "client-killed"
  | "daemon-killed"
  | "daemon-started"
  | "daemon-stopped"
  | "daemon-resumed"
  /** A version of a managed Lease, as the harness's own watch saw it. */
  | "lease";

export interface HistoryEvent {
  /** CLOCK_MONOTONIC, ns. */
  readonly ts: bigint;
  /** The client (or "harness") that recorded the event. */
  readonly client: string;
  readonly ev: EventType;
  /** Index of the daemon the client talks to. */
  readonly daemon?: number;
  readonly kind?: ResourceKind;
  readonly name?: string;
  /** Fencing token (lock) or term (election). */
  readonly token?: number;
  /** A read-write lock's client that holds it shared (its token: the latest exclusive one). */
  readonly shared?: boolean;
  readonly reason?: string;
  readonly validForMs?: number;
  /** gRPC status code of a failure. */
  readonly code?: number;
  readonly detail?: string;
  /**
   * A client without the wrapper's watchdog (the storm): its hold ends at the
   * latest when its last valid_for runs out, whatever it records after.
   */
  readonly raw?: boolean;
  /** Harness events: the client or daemon acted on, the fault and whom it affects. */
  readonly target?: string;
  readonly fault?: string;
  readonly affects?: readonly number[] | "all";
  // "lease" events.
  readonly resourceVersion?: string;
  readonly holderIdentity?: string;
  readonly transitions?: number;
  readonly renewTime?: string;
  /** A semaphore's Lease: the identities of the daemons whose seats hold permits in this version. */
  readonly seated?: readonly string[];
  /** A read-write lock's Lease: the token of its latest exclusive grant, whose holder may never have heard of it. */
  readonly exclusiveToken?: number;
  /** A "lease" event that is the Lease's deletion (`resourceVersion`: the deletion's); what follows is a new epoch of its history. */
  readonly deleted?: boolean;
}

export type EventFields = Omit<HistoryEvent, "ts" | "client">;

export const now = (): bigint => process.hrtime.bigint();

/** Appends events to one file, one synchronous write per line. */
export class HistoryWriter {
  private fd: number | undefined;

  constructor(
    readonly path: string,
    readonly client: string,
    private readonly base: Partial<EventFields> = {},
  ) {
    this.fd = openSync(path, "a");
  }

  /** Records an event stamped now (or at `ts`); returns the stamp. */
  record(fields: EventFields, ts: bigint = now()): bigint {
    return this.recordFor(this.client, fields, ts);
  }

  /** Records an event of another client that shares this file (the storm's many clients). */
  recordFor(client: string, fields: EventFields, ts: bigint = now()): bigint {
    if (this.fd === undefined) return ts;
    const line = JSON.stringify({ ts: String(ts), client, ...this.base, ...fields }) + "\n";
    writeSync(this.fd, line);
    return ts;
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

/** Parses JSONL history; an unfinished last line (a process killed mid-write) is skipped. */
export function parseHistory(text: string): HistoryEvent[] {
  const events: HistoryEvent[] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue;
    }
    events.push({ ...(parsed as object), ts: BigInt(parsed.ts as string) } as HistoryEvent);
  }
  return events;
}

/** Every event of every *.jsonl file in `dir`, in time order (stable for equal stamps). */
export function readHistory(dir: string): HistoryEvent[] {
  const events: HistoryEvent[] = [];
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith(".jsonl"))
    .sort()) {
    events.push(...parseHistory(readFileSync(join(dir, file), "utf8")));
  }
  return sortByTime(events);
}

export function sortByTime(events: readonly HistoryEvent[]): HistoryEvent[] {
  return events
    .map((event, index) => ({ event, index }))
    .sort((a, b) => (a.event.ts < b.event.ts ? -1 : a.event.ts > b.event.ts ? 1 : a.index - b.index))
    .map(({ event }) => event);
}

export function serializeHistory(events: readonly HistoryEvent[]): string {
  return events.map((e) => JSON.stringify({ ...e, ts: String(e.ts) })).join("\n") + "\n";
}

export const ms = (ns: bigint): number => Number(ns) / 1e6;
