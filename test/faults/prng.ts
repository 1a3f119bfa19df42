// A small seeded PRNG (mulberry32), so every fuzzed request and every random
// choice of a workload can be replayed from the seed a run prints.

export interface Random {
  readonly seed: number;
  /** Uniform in [0, 1). */
  next(): number;
  /** Integer in [min, max], both included. */
  int(min: number, max: number): number;
  pick<T>(items: readonly T[]): T;
  bool(probability?: number): boolean;
}

export function seededRandom(seed: number): Random {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return ((z ^ (z >>> 14)) >>> 0) / 4294967296;
  };
  return {
    seed,
    next,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    pick: (items) => items[Math.floor(next() * items.length)]!,
    bool: (probability = 0.5) => next() < probability,
  };
}

/** The seed from the environment variable `name`, else a fresh one; either way the caller prints it. */
export function seedFrom(name: string): number {
  const text = process.env[name];
  if (text !== undefined && text !== "") {
    const seed = Number(text);
    if (!Number.isInteger(seed)) throw new Error(`${name} must be an integer, got ${text}`);
    return seed >>> 0;
  }
  return Math.floor(Math.random() * 2 ** 32) >>> 0;
}
