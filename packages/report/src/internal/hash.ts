/**
 * A 32-bit FNV-1a hash: each (config, metric) gets its own bootstrap stream derived from the
 * seed, so adding a config to a study never changes another config's intervals.
 */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
