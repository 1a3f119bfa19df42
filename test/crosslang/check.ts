// The cross-language test's checker: given every client's holds, were they
// mutually exclusive, and did the fencing tokens grow in acquisition order?
// Hold times are CLOCK_MONOTONIC nanoseconds, comparable across processes.

export interface Hold {
  readonly client: string;
  readonly token: number;
  readonly start: bigint;
  readonly end: bigint;
}

export interface Verdict {
  readonly rounds: number;
  readonly perClient: Record<string, number>;
  readonly firstToken: number;
  readonly lastToken: number;
  /** Holds that began before an earlier-starting hold had ended. */
  readonly overlaps: string[];
  /** Holds whose token is not greater than the previous hold's. */
  readonly tokenRegressions: string[];
  /** How often the lock passed from one language to another. */
  readonly handoversBetweenClients: number;
}

/** Parses one contender's output: a JSON line per hold; other lines are ignored. */
export function parseHolds(output: string): Hold[] {
  const holds: Hold[] = [];
  for (const line of output.split("\n")) {
    if (!line.startsWith("{")) continue;
    const record = JSON.parse(line) as { client: string; token: number; start: string; end: string };
    holds.push({ client: record.client, token: record.token, start: BigInt(record.start), end: BigInt(record.end) });
  }
  return holds;
}

export function check(holds: readonly Hold[]): Verdict {
  const ordered = [...holds].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const describe = (h: Hold) => `${h.client} token ${h.token} [${h.start}, ${h.end}]`;
  const overlaps: string[] = [];
  const tokenRegressions: string[] = [];
  const perClient: Record<string, number> = {};
  let handoversBetweenClients = 0;
  let latestEnd: Hold | undefined;
  ordered.forEach((hold, i) => {
    perClient[hold.client] = (perClient[hold.client] ?? 0) + 1;
    if (latestEnd !== undefined && hold.start < latestEnd.end) overlaps.push(`${describe(hold)} began before ${describe(latestEnd)} ended`);
    if (latestEnd === undefined || hold.end > latestEnd.end) latestEnd = hold;
    const previous = ordered[i - 1];
    if (previous === undefined) return;
    if (hold.token <= previous.token) tokenRegressions.push(`${describe(hold)} after ${describe(previous)}`);
    if (hold.client !== previous.client) handoversBetweenClients++;
  });
  return {
    rounds: ordered.length,
    perClient,
    firstToken: ordered[0]?.token ?? 0,
    lastToken: ordered.at(-1)?.token ?? 0,
    overlaps,
    tokenRegressions,
    handoversBetweenClients,
  };
}
