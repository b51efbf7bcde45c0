/**
 * Descriptive statistics `@llem/engines` (dispatch lateness), `@llem/measure` (warmup
 * convergence, per-run figures) and `@llem/report` (across cycles) compute, kept here so they can
 * never disagree.
 */

/**
 * Arithmetic mean; `null` for an empty list (unknown is never 0).
 *
 * @example
 * mean([1, 2, 3]); // 2
 */
export function mean(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  let sum = 0;
  for (const v of values) sum += v;
  return sum / values.length;
}

/**
 * Sample standard deviation (n − 1 denominator: runs and cycles are samples of possible
 * repetitions); `null` with fewer than two values, where it is undefined rather than 0.
 *
 * @example
 * sampleStd([2, 4, 4, 4, 5, 5, 7, 9]); // 2.138…
 */
export function sampleStd(values: readonly number[]): number | null {
  if (values.length < 2) return null;
  const m = mean(values) as number;
  let ss = 0;
  for (const v of values) ss += (v - m) ** 2;
  return Math.sqrt(ss / (values.length - 1));
}

/**
 * Coefficient of variation = sample std / |mean|; `null` when the std is undefined (n < 2) or
 * the mean is 0.
 *
 * @example
 * coefficientOfVariation([9, 10, 11]); // 0.1
 */
export function coefficientOfVariation(values: readonly number[]): number | null {
  const s = sampleStd(values);
  const m = mean(values);
  if (s === null || m === null || m === 0) return null;
  return s / Math.abs(m);
}

/**
 * Percentile of an ascending list with linear interpolation between closest ranks (numpy's
 * default, "type 7"), so results match `numpy.percentile` on the same numbers; `null` for an
 * empty list.
 *
 * @example
 * percentile([10, 20, 30, 40], 95); // 38.5
 */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  const a = sorted[lo] as number;
  const b = sorted[hi] as number;
  return a + (b - a) * (rank - lo);
}
