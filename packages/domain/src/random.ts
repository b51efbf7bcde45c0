/**
 * Seeded randomness that gives the same sequence on every machine and Node version: 32-bit
 * integer arithmetic only (`Math.imul`, shifts), so no platform float differences can creep in.
 */

/**
 * mulberry32: a small, fast 32-bit PRNG. Returns a function yielding floats in [0, 1), each an
 * exact multiple of 2⁻³².
 *
 * @example
 * const next = mulberry32(7);
 * next(); // always the same first value for seed 7
 */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * 32-bit FNV-1a of a string's UTF-16 code units: derives a stream's seed from a key (`seed ^
 * fnv1a(key)`), so each keyed stream is independent of which other keys exist.
 *
 * @example
 * const next = mulberry32((seed ^ fnv1a('config:metric')) >>> 0);
 */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * Fisher–Yates shuffle of a copy of `items` driven by `random` (from `mulberry32`). Unbiased,
 * and deterministic for a given generator state.
 *
 * @example
 * seededShuffle(['a', 'b', 'c'], mulberry32(1));
 */
export function seededShuffle<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const tmp = out[i] as T;
    out[i] = out[j] as T;
    out[j] = tmp;
  }
  return out;
}
