import { describe, expect, it } from 'vitest';
import { arrivalSchedule, interArrivalGenerator, seededRandom } from '../src/openai/index';

function stats(values: number[]): { mean: number; cv: number } {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const variance = values.reduce((a, b) => a + (b - mean) ** 2, 0) / (values.length - 1);
  return { mean, cv: Math.sqrt(variance) / mean };
}

function sample(n: number, next: () => number): number[] {
  return Array.from({ length: n }, next);
}

describe('seededRandom', () => {
  it('is reproducible per seed and uniform on [0, 1)', () => {
    const a = sample(5, seededRandom(42));
    expect(sample(5, seededRandom(42))).toEqual(a);
    expect(sample(5, seededRandom(43))).not.toEqual(a);
    const values = sample(50_000, seededRandom(1));
    expect(Math.min(...values)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...values)).toBeLessThan(1);
    // Uniform: mean 1/2, variance 1/12; each decile holds ~10%.
    const { mean } = stats(values);
    expect(mean).toBeCloseTo(0.5, 2);
    const deciles = new Array(10).fill(0);
    for (const v of values) deciles[Math.floor(v * 10)]++;
    for (const count of deciles) expect(count / values.length).toBeGreaterThan(0.09);
  });
});

describe('interArrivalGenerator', () => {
  it('gives Poisson arrivals: mean gap 1/rate and coefficient of variation 1', () => {
    const gaps = sample(50_000, interArrivalGenerator({ rate: 8, seed: 7 }));
    const { mean, cv } = stats(gaps);
    expect(mean).toBeGreaterThan(125 * 0.98);
    expect(mean).toBeLessThan(125 * 1.02);
    expect(cv).toBeGreaterThan(0.97);
    expect(cv).toBeLessThan(1.03);
    // Exponential: P(gap > mean) = e^-1.
    const above = gaps.filter((g) => g > 125).length / gaps.length;
    expect(above).toBeGreaterThan(Math.exp(-1) - 0.01);
    expect(above).toBeLessThan(Math.exp(-1) + 0.01);
    // Counts per 1 s window are Poisson(8): variance ≈ mean.
    const counts = new Map<number, number>();
    let t = 0;
    for (const g of gaps) {
      t += g;
      const bucket = Math.floor(t / 1000);
      counts.set(bucket, (counts.get(bucket) ?? 0) + 1);
    }
    const perSecond = [...counts.values()].slice(0, -1);
    const m = perSecond.reduce((a, b) => a + b, 0) / perSecond.length;
    const v = perSecond.reduce((a, b) => a + (b - m) ** 2, 0) / (perSecond.length - 1);
    expect(v / m).toBeGreaterThan(0.9);
    expect(v / m).toBeLessThan(1.1);
  });

  it.each([
    [0.25, 2],
    [0.5, Math.SQRT2],
    [4, 0.5],
  ])(
    'burstiness %f keeps the mean and gives CV 1/sqrt(burstiness) = %f',
    (burstiness, cvExpected) => {
      const gaps = sample(60_000, interArrivalGenerator({ rate: 20, burstiness, seed: 3 }));
      const { mean, cv } = stats(gaps);
      expect(Math.abs(mean - 50) / 50).toBeLessThan(0.03);
      expect(Math.abs(cv - cvExpected) / cvExpected).toBeLessThan(0.05);
    },
  );

  it('is deterministic for a seed and changes with it', () => {
    const a = sample(10, interArrivalGenerator({ rate: 5, burstiness: 0.5, seed: 11 }));
    expect(sample(10, interArrivalGenerator({ rate: 5, burstiness: 0.5, seed: 11 }))).toEqual(a);
    expect(sample(10, interArrivalGenerator({ rate: 5, burstiness: 0.5, seed: 12 }))).not.toEqual(
      a,
    );
  });

  it('rejects a rate or burstiness that is not positive', () => {
    expect(() => interArrivalGenerator({ rate: 0 })).toThrow(/rate must be a positive/);
    expect(() => interArrivalGenerator({ rate: 1, burstiness: -1 })).toThrow(/burstiness/);
  });
});

describe('arrivalSchedule', () => {
  it('starts at 0 and accumulates the generator gaps', () => {
    const schedule = arrivalSchedule(4, { rate: 10, seed: 5 });
    const next = interArrivalGenerator({ rate: 10, seed: 5 });
    const g1 = next();
    const g2 = next();
    const g3 = next();
    expect(schedule).toEqual([0, g1, g1 + g2, g1 + g2 + g3]);
  });
});
