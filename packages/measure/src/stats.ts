// mean, percentile, sample std and CV live in @llem/domain (shared with @llem/engines and
// @llem/report): import them from there.
import { type LatencyStats, mean, percentile } from '@llem/domain';

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
