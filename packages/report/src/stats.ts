/**
 * Small, dependency-free statistics for a handful of cycles. Everything here is pure and
 * deterministic: the bootstrap draws from a seeded PRNG, so the same data and seed always give
 * the same interval (reports can be rebuilt and diffed).
 */

// mean, sample std and CV live in @llem/domain (shared with @llem/measure's warmup and figures);
// the bootstrap's seeded source is the domain's mulberry32. Import them from there.
import { mulberry32 } from '@llem/domain';

/** A source of uniform numbers in [0, 1). */
export type RandomSource = () => number;

/**
 * Quantile of already-sorted values by linear interpolation between order statistics
 * (Hyndman & Fan type 7, the default of R and numpy).
 *
 * @example
 * quantileSorted([1, 2, 3, 4], 0.5); // 2.5
 */
export function quantileSorted(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) throw new RangeError('quantile of an empty list');
  if (q <= 0) return sorted[0] as number;
  if (q >= 1) return sorted[sorted.length - 1] as number;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = sorted[lo] as number;
  const b = sorted[hi] as number;
  return a + (b - a) * (pos - lo);
}

export interface BootstrapOptions {
  /** Number of bootstrap resamples. Default 2000. */
  resamples?: number;
  /** Confidence level of the two-sided percentile interval. Default 0.95. */
  confidence?: number;
  /** Seed of the PRNG used when `random` is not given. Default 20240601. */
  seed?: number;
  /** Inject the uniform source (tests use it to hand-compute intervals). */
  random?: RandomSource;
}

export interface ConfidenceInterval {
  low: number;
  high: number;
}

export const DEFAULT_BOOTSTRAP_SEED = 20240601;
export const DEFAULT_RESAMPLES = 2000;

function resolve(options: BootstrapOptions): {
  resamples: number;
  alpha: number;
  random: RandomSource;
} {
  const resamples = options.resamples ?? DEFAULT_RESAMPLES;
  const confidence = options.confidence ?? 0.95;
  if (!Number.isInteger(resamples) || resamples < 1) {
    throw new RangeError(`resamples must be a positive integer, got ${resamples}`);
  }
  if (!(confidence > 0 && confidence < 1)) {
    throw new RangeError(`confidence must be in (0, 1), got ${confidence}`);
  }
  return {
    resamples,
    alpha: (1 - confidence) / 2,
    random: options.random ?? mulberry32(options.seed ?? DEFAULT_BOOTSTRAP_SEED),
  };
}

function resampleMean(values: readonly number[], random: RandomSource): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) {
    sum += values[Math.floor(random() * values.length)] as number;
  }
  return sum / values.length;
}

/**
 * Percentile-bootstrap confidence interval of the mean: resample the values with replacement
 * `resamples` times, take each resample's mean, and read the α/2 and 1−α/2 quantiles. `null` for
 * fewer than two values (one cycle says nothing about spread).
 *
 * @example
 * bootstrapMeanCI([10, 12, 11, 13], { seed: 1 }); // { low: ≈10.5, high: ≈12.5 }
 */
export function bootstrapMeanCI(
  values: readonly number[],
  options: BootstrapOptions = {},
): ConfidenceInterval | null {
  if (values.length < 2) return null;
  const { resamples, alpha, random } = resolve(options);
  const stats = new Array<number>(resamples);
  for (let b = 0; b < resamples; b++) stats[b] = resampleMean(values, random);
  stats.sort((x, y) => x - y);
  return { low: quantileSorted(stats, alpha), high: quantileSorted(stats, 1 - alpha) };
}

/**
 * Percentile-bootstrap interval of the ratio of means `mean(b) / mean(a)`, resampling `a` and `b`
 * independently (they are different configs or studies, not paired runs). Resamples whose `a`
 * mean is 0 are dropped. `null` when either side has fewer than two values or no resample was
 * usable.
 *
 * @example
 * bootstrapRatioCI([10, 11, 12], [20, 22, 24]); // ≈ { low: 1.8, high: 2.2 }
 */
export function bootstrapRatioCI(
  a: readonly number[],
  b: readonly number[],
  options: BootstrapOptions = {},
): ConfidenceInterval | null {
  if (a.length < 2 || b.length < 2) return null;
  const { resamples, alpha, random } = resolve(options);
  const stats: number[] = [];
  for (let i = 0; i < resamples; i++) {
    const ma = resampleMean(a, random);
    const mb = resampleMean(b, random);
    if (ma !== 0) stats.push(mb / ma);
  }
  if (stats.length === 0) return null;
  stats.sort((x, y) => x - y);
  return { low: quantileSorted(stats, alpha), high: quantileSorted(stats, 1 - alpha) };
}
