import { coefficientOfVariation, mean, mulberry32, sampleStd } from '@llem/domain';
import { describe, expect, it } from 'vitest';
import { bootstrapMeanCI, bootstrapRatioCI, quantileSorted } from '../src/index';

/** A RandomSource that replays fixed numbers, so resamples can be computed by hand. */
function replay(values: number[]): () => number {
  let i = 0;
  return () => {
    const v = values[i % values.length]!;
    i++;
    return v;
  };
}

describe('descriptive statistics (hand-computed)', () => {
  it('mean, sample std and CV of a textbook set', () => {
    const xs = [2, 4, 4, 4, 5, 5, 7, 9];
    expect(mean(xs)).toBe(5);
    // Σ(x−5)² = 9+1+1+1+0+0+4+16 = 32; s = sqrt(32/7)
    expect(sampleStd(xs)).toBeCloseTo(Math.sqrt(32 / 7), 12);
    expect(coefficientOfVariation(xs)).toBeCloseTo(Math.sqrt(32 / 7) / 5, 12);
  });

  it('CV of 9, 10, 11 is exactly 0.1', () => {
    expect(sampleStd([9, 10, 11])).toBeCloseTo(1, 12);
    expect(coefficientOfVariation([9, 10, 11])).toBeCloseTo(0.1, 12);
  });

  it('is undefined (null), not 0, where it cannot be computed', () => {
    expect(mean([])).toBeNull();
    expect(sampleStd([3])).toBeNull();
    expect(coefficientOfVariation([3])).toBeNull();
    expect(coefficientOfVariation([-1, 1])).toBeNull(); // mean 0
  });

  it('quantiles interpolate linearly between order statistics (type 7)', () => {
    expect(quantileSorted([1, 2, 3, 4], 0.5)).toBe(2.5);
    expect(quantileSorted([10, 20, 30], 0.25)).toBe(15);
    expect(quantileSorted([10, 20, 30], 0)).toBe(10);
    expect(quantileSorted([10, 20, 30], 1)).toBe(30);
    expect(() => quantileSorted([], 0.5)).toThrow(/empty/);
  });
});

describe('bootstrap CI of the mean', () => {
  it('matches a hand computation with a replayed random source', () => {
    // values [1, 2, 3]; index = floor(u × 3). Four resamples of three draws each:
    //   u = 0.0,0.0,0.0 → [1,1,1] mean 1
    //   u = 0.5,0.5,0.5 → [2,2,2] mean 2
    //   u = 0.9,0.9,0.0 → [3,3,1] mean 7/3
    //   u = 0.9,0.9,0.9 → [3,3,3] mean 3
    // sorted [1, 2, 7/3, 3]; 50% CI → quantiles 0.25 and 0.75 (type 7):
    //   pos 0.75 → 1 + 0.75×(2−1) = 1.75;  pos 2.25 → 7/3 + 0.25×(3 − 7/3) = 2.5
    const random = replay([0, 0, 0, 0.5, 0.5, 0.5, 0.9, 0.9, 0, 0.9, 0.9, 0.9]);
    const ci = bootstrapMeanCI([1, 2, 3], { resamples: 4, confidence: 0.5, random });
    expect(ci!.low).toBeCloseTo(1.75, 12);
    expect(ci!.high).toBeCloseTo(2.5, 12);
  });

  it('two values: the 95% interval is exactly [min, max] (means a, (a+b)/2, b)', () => {
    const ci = bootstrapMeanCI([10, 20], { seed: 3, resamples: 4000 });
    expect(ci).toEqual({ low: 10, high: 20 });
  });

  it('is deterministic for a seed and changes with the seed', () => {
    const xs = [0.91, 0.85, 0.88, 0.95, 0.83];
    const a = bootstrapMeanCI(xs, { seed: 42 });
    expect(bootstrapMeanCI(xs, { seed: 42 })).toEqual(a);
    expect(bootstrapMeanCI(xs, { seed: 43 })).not.toEqual(a);
    expect(a!.low).toBeLessThan(mean(xs)!);
    expect(a!.high).toBeGreaterThan(mean(xs)!);
    expect(a!.low).toBeGreaterThanOrEqual(0.83);
    expect(a!.high).toBeLessThanOrEqual(0.95);
  });

  it('constant data gives a zero-width interval; one value gives none', () => {
    expect(bootstrapMeanCI([5, 5, 5])).toEqual({ low: 5, high: 5 });
    expect(bootstrapMeanCI([5])).toBeNull();
  });

  it('validates its options with exact messages', () => {
    expect(() => bootstrapMeanCI([1, 2], { resamples: 0 })).toThrow(
      'resamples must be a positive integer, got 0',
    );
    expect(() => bootstrapMeanCI([1, 2], { confidence: 1 })).toThrow(
      'confidence must be in (0, 1), got 1',
    );
  });
});

describe('bootstrap CI of a ratio of means', () => {
  it('matches a hand computation with a replayed random source', () => {
    // a=[1,3], b=[2,6]: draws alternate a-resample (2 draws) then b-resample (2 draws).
    // resample 1: a idx 0,0 → 1; b idx 1,1 → 6  → ratio 6
    // resample 2: a idx 1,1 → 3; b idx 0,0 → 2  → ratio 2/3
    // sorted [2/3, 6]; 50% CI → quantiles 0.25, 0.75 → 2/3 + 0.25×(16/3) = 2, 2/3 + 0.75×16/3 = 4.666…
    const random = replay([0, 0, 0.6, 0.6, 0.6, 0.6, 0, 0]);
    const ci = bootstrapRatioCI([1, 3], [2, 6], { resamples: 2, confidence: 0.5, random });
    expect(ci!.low).toBeCloseTo(2, 12);
    expect(ci!.high).toBeCloseTo(14 / 3, 12);
  });

  it('brackets the point ratio for tight data', () => {
    const ci = bootstrapRatioCI([10, 11, 12, 10.5], [20, 22, 24, 21], { seed: 1 })!;
    expect(ci.low).toBeGreaterThan(1.8);
    expect(ci.high).toBeLessThan(2.2);
    expect(ci.low).toBeLessThanOrEqual(2);
    expect(ci.high).toBeGreaterThanOrEqual(2);
  });

  it('needs two values on each side', () => {
    expect(bootstrapRatioCI([1], [1, 2])).toBeNull();
  });
});

describe("the bootstrap source (the domain's mulberry32)", () => {
  it('is reproducible and uniform enough for resampling', () => {
    const a = mulberry32(7);
    const b = mulberry32(7);
    const xs = Array.from({ length: 10000 }, () => a());
    expect(Array.from({ length: 10000 }, () => b())).toEqual(xs);
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(1);
    expect(mean(xs)).toBeGreaterThan(0.48);
    expect(mean(xs)).toBeLessThan(0.52);
  });
});
