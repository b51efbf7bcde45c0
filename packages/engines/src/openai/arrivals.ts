/**
 * Seeded arrival process for open-loop load. Inter-arrival times are gamma distributed with
 * shape `burstiness` and mean `1 / rate`, as vLLM's `benchmark_serving` does: burstiness 1 is a
 * Poisson process (exponential gaps, coefficient of variation 1); below 1 arrivals bunch up
 * (CV = 1/√burstiness > 1); above 1 they become more regular.
 */

import { mulberry32 } from '@llem/domain';

/** A uniform generator on [0, 1). */
export type Random = () => number;

/**
 * mulberry32 (the one in `@llem/domain`): its sequence depends only on the seed, so the same
 * `arrival_seed` reproduces the same schedule on every machine.
 *
 * @example
 * const rand = seededRandom(42);
 * rand(); // 0.6011037519201636, always
 */
export function seededRandom(seed: number): Random {
  return mulberry32(seed);
}

function standardNormal(random: Random): number {
  // Box–Muller; 1 - u keeps the logarithm's argument in (0, 1].
  const u = 1 - random();
  const v = random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** Gamma(shape, scale=1) by Marsaglia and Tsang (2000), boosted for shape < 1. */
function gammaUnitScale(shape: number, random: Random): number {
  if (shape < 1) {
    const u = 1 - random();
    return gammaUnitScale(shape + 1, random) * u ** (1 / shape);
  }
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = standardNormal(random);
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = 1 - random();
    if (Math.log(u) < 0.5 * x * x + d - d * v + d * Math.log(v)) return d * v;
  }
}

export interface ArrivalOptions {
  /** Mean arrivals per second. */
  rate: number;
  /** Gamma shape; 1 (default) is Poisson. */
  burstiness?: number;
  seed?: number;
}

/**
 * Returns a generator of inter-arrival gaps in milliseconds with mean `1000 / rate` and
 * coefficient of variation `1 / √burstiness`.
 *
 * @example
 * const next = interArrivalGenerator({ rate: 10, seed: 7 });
 * next(); // a gap in ms, mean 100 over many calls
 */
export function interArrivalGenerator(options: ArrivalOptions): () => number {
  const { rate, burstiness = 1, seed = 0 } = options;
  if (!(rate > 0) || !Number.isFinite(rate)) {
    throw new RangeError(`rate must be a positive finite number, got ${rate}`);
  }
  if (!(burstiness > 0) || !Number.isFinite(burstiness)) {
    throw new RangeError(`burstiness must be a positive finite number, got ${burstiness}`);
  }
  const random = seededRandom(seed);
  const meanMs = 1000 / rate;
  if (burstiness === 1) return () => -Math.log(1 - random()) * meanMs;
  // Gamma(k, θ) has mean kθ; θ = mean / k keeps the mean at 1/rate whatever the shape.
  const scale = meanMs / burstiness;
  return () => gammaUnitScale(burstiness, random) * scale;
}

/**
 * Arrival offsets (ms from the start of the run) for `n` requests. The first request goes out
 * at 0 and each later one one gap after the previous, like vLLM's benchmark.
 *
 * @example
 * arrivalSchedule(3, { rate: 2, seed: 1 }); // [0, ~500, ~1000] on average
 */
export function arrivalSchedule(n: number, options: ArrivalOptions): number[] {
  const next = interArrivalGenerator(options);
  const offsets: number[] = [];
  let t = 0;
  for (let i = 0; i < n; i++) {
    offsets.push(t);
    t += next();
  }
  return offsets;
}
