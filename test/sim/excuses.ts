// When the liveness oracles must look away: while a fault lasts, and for a
// while after it, a lock may legitimately stand free with waiters (a frozen
// holder's lease has to run out; a daemon backs off after errors). A fault
// excuses either one lease name or every name ("*").

export const EVERY_NAME = "*";

/**
 * What a fault touches: one lease name, every name, or the names a set holds
 * (a daemon's fault: the names it holds, waits for or serves clients of, kept
 * up to date by the world while the fault lasts).
 */
export type Scope = string | ReadonlySet<string>;

interface OpenFault {
  readonly scope: Scope;
  readonly afterMs: number;
  /** The kind of fault, for the count of what the oracles looked away for. */
  readonly why: string;
}

export interface Until {
  readonly at: number;
  readonly why: string;
}

/**
 * An excuse that depends on the state of the world at each moment (e.g. "while
 * the store names a frozen daemon as holder, until the lease it last renewed
 * runs out"): asked for each name, it says until when that name is excused.
 */
export type Standing = (name: string) => Until | undefined;

export class Excuses {
  private readonly open = new Map<number, OpenFault>();
  private readonly until = new Map<string, Until>();
  private readonly standing = new Set<Standing>();
  private nextId = 1;

  constructor(private readonly now: () => number) {}

  /** Adds an excuse judged afresh at every question; returns what removes it. */
  stand(excuse: Standing): () => void {
    this.standing.add(excuse);
    return () => this.standing.delete(excuse);
  }

  /** A fault starts now and lasts until `end(id)`; stalls are excused for `afterMs` beyond its end. */
  begin(scope: Scope, afterMs: number, why: string): number {
    const id = this.nextId++;
    this.open.set(id, { scope, afterMs, why });
    return id;
  }

  end(id: number, now: number): void {
    const fault = this.open.get(id);
    if (fault === undefined) return;
    this.open.delete(id);
    this.extend(fault.scope, now + fault.afterMs, fault.why);
  }

  /** A fault at one instant (a kill, a Lease edited by hand). */
  point(scope: Scope, now: number, afterMs: number, why: string): void {
    this.extend(scope, now + afterMs, why);
  }

  /** Until when stalls of `name` are excused: Infinity while a fault touching it lasts. */
  excusedUntil(name: string): number {
    for (const fault of this.open.values()) if (touches(fault.scope, name)) return Infinity;
    return Math.max(
      this.until.get(name)?.at ?? -Infinity,
      this.until.get(EVERY_NAME)?.at ?? -Infinity,
      this.standingFor(name)?.at ?? -Infinity,
    );
  }

  /** The kind of fault that excuses `name` at `now` (the open one, else the one that excuses longest); undefined when none does. */
  cause(name: string, now: number): string | undefined {
    for (const fault of this.open.values()) if (touches(fault.scope, name)) return fault.why;
    const longest = [this.until.get(name), this.until.get(EVERY_NAME), this.standingFor(name)].reduce<Until | undefined>(
      (a, b) => (b !== undefined && (a === undefined || b.at > a.at) ? b : a),
      undefined,
    );
    return longest !== undefined && longest.at >= now ? longest.why : undefined;
  }

  private standingFor(name: string): Until | undefined {
    let longest: Until | undefined;
    for (const excuse of this.standing) {
      const until = excuse(name);
      if (until !== undefined && (longest === undefined || until.at > longest.at)) longest = until;
    }
    // Remembered as excused up to now: once the standing excuse goes, a stall is counted from here, not from
    // before it.
    if (longest !== undefined) this.extend(name, Math.min(longest.at, this.now()), longest.why);
    return longest;
  }

  private extend(scope: Scope, at: number, why: string): void {
    for (const name of typeof scope === "string" ? [scope] : scope) {
      const current = this.until.get(name);
      if (current === undefined || current.at < at) this.until.set(name, { at, why });
    }
  }
}

function touches(scope: Scope, name: string): boolean {
  return typeof scope === "string" ? scope === name || scope === EVERY_NAME : scope.has(name);
}
