import { describe, expect, it } from 'vitest';
import { coefficientOfVariation, mean, sampleStd } from '../src/index';

describe('mean', () => {
  it('averages, and is null (not 0) for no values', () => {
    expect(mean([1, 2, 3, 6])).toBe(3);
    expect(mean([-2])).toBe(-2);
    expect(mean([])).toBeNull();
  });
});

describe('sampleStd', () => {
  it('uses the n − 1 denominator', () => {
    // Σ(x − 5)² = 32 over 8 values: √(32/7), not the population √(32/8) = 2.
    expect(sampleStd([2, 4, 4, 4, 5, 5, 7, 9])).toBeCloseTo(Math.sqrt(32 / 7), 12);
    expect(sampleStd([3, 3, 3])).toBe(0);
  });

  it('is null below two values', () => {
    expect(sampleStd([5])).toBeNull();
    expect(sampleStd([])).toBeNull();
  });
});

describe('coefficientOfVariation', () => {
  it('is std / |mean|, also for a negative mean', () => {
    expect(coefficientOfVariation([9, 10, 11])).toBeCloseTo(0.1, 12);
    expect(coefficientOfVariation([-9, -10, -11])).toBeCloseTo(0.1, 12);
  });

  it('is null when undefined: under two values or a zero mean', () => {
    expect(coefficientOfVariation([4])).toBeNull();
    expect(coefficientOfVariation([-1, 1])).toBeNull();
  });
});
