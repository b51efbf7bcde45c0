import type { LatencyStats } from '@llem/domain';

/** Arithmetic mean; `null` for an empty list (unknown is never 0). */
export function mean(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  let sum = 0;
  for (const v of values) sum += v;
  return sum / values.length;
}

/**
 * Percentile with linear interpolation between closest ranks (numpy's default, "type 7"), so
 * results match what a researcher gets from `numpy.percentile` on the same numbers.
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

/** Sample standard deviation (n − 1); `null` below two values. */
export function stddev(values: readonly number[]): number | null {
  const m = mean(values);
  if (m === null || values.length < 2) return null;
  let ss = 0;
  for (const v of values) ss += (v - m) ** 2;
  return Math.sqrt(ss / (values.length - 1));
}

/** Coefficient of variation (sample std / mean); `null` when undefined (n < 2 or mean 0). */
export function coefficientOfVariation(values: readonly number[]): number | null {
  const m = mean(values);
  const s = stddev(values);
  if (m === null || s === null || m === 0) return null;
  return s / Math.abs(m);
}

/**
 * mean, p50, p95, p99 of a latency list in ms; `null` when the list is empty.
 *
 * @example
 * latencyStats([10, 20, 30, 40]); // { mean: 25, p50: 25, p95: 38.5, p99: 39.7 }
 */
export function latencyStats(values: readonly number[]): LatencyStats | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return {
    mean: mean(sorted) as number,
    p50: percentile(sorted, 50) as number,
    p95: percentile(sorted, 95) as number,
    p99: percentile(sorted, 99) as number,
  };
}
