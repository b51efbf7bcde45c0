/**
 * Levenshtein edit distance (insertions, deletions, substitutions each cost 1). Two rows of
 * memory; config keys are short, so this is never a hot path.
 *
 * @example
 * levenshtein('bach_size', 'batch_size'); // 1
 */
export function levenshtein(a: string, b: string): number {
  if (a === b) return 0;
  if (a.length === 0) return b.length;
  if (b.length === 0) return a.length;
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  let current = new Array<number>(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    current[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution);
    }
    [previous, current] = [current, previous];
  }
  return previous[b.length] ?? 0;
}

/**
 * The closest candidate to a misspelt word, or `undefined` when nothing is close enough to be a
 * plausible typo (distance ≤ max(1, ⌊length/3⌋), compared case-insensitively; `-` and `_` are
 * treated alike so `batch-size` finds `batch_size`).
 *
 * @example
 * didYouMean('bach_size', ['batch_size', 'threads']); // 'batch_size'
 * didYouMean('zzz', ['batch_size', 'threads']); // undefined
 */
export function didYouMean(word: string, candidates: readonly string[]): string | undefined {
  const norm = (s: string) => s.toLowerCase().replaceAll('-', '_');
  const target = norm(word);
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    const distance = levenshtein(target, norm(candidate));
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  const limit = Math.max(1, Math.floor(word.length / 3));
  return bestDistance <= limit ? best : undefined;
}
