// Every random choice of a simulation comes from one seed. Each part of a run
// (the workload, the faults, each daemon's jitter) draws from its own stream
// derived from that seed, so a change in how often one part draws does not
// shift the choices of the others: the same seed keeps the same workload even
// after the engine starts drawing jitter differently.
import { type Random, seededRandom } from "../faults/prng.js";

export type { Random };

/** The stream named `stream` of a run with seed `seed`. */
export function stream(seed: number, stream: string): Random {
  return seededRandom(mix(seed, stream));
}

/** A 32-bit hash of the seed and the stream name (FNV-1a over "seed/name", then a murmur finaliser). */
function mix(seed: number, name: string): number {
  let h = 0x811c9dc5;
  for (const char of `${seed >>> 0}/${name}`) h = Math.imul(h ^ char.charCodeAt(0), 0x01000193);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Uniform in [min, max). */
export function between(random: Random, min: number, max: number): number {
  return min + random.next() * (max - min);
}
