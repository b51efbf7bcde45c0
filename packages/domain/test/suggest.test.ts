import { describe, expect, it } from 'vitest';
import { didYouMean, levenshtein } from '../src/index';

describe('levenshtein', () => {
  it.each([
    ['', '', 0],
    ['abc', '', 3],
    ['', 'abc', 3],
    ['kitten', 'sitting', 3],
    ['bach_size', 'batch_size', 1],
    ['flaw', 'lawn', 2],
    ['cycles', 'cylces', 2],
  ])('%j → %j is %i', (a, b, distance) => {
    expect(levenshtein(a, b)).toBe(distance);
    expect(levenshtein(b, a)).toBe(distance);
  });
});

describe('didYouMean', () => {
  const keys = ['batch_size', 'ubatch_size', 'threads', 'context_size', 'cycles'];

  it('suggests the closest key for a typo', () => {
    expect(didYouMean('bach_size', keys)).toBe('batch_size');
    expect(didYouMean('thread', keys)).toBe('threads');
    expect(didYouMean('cylces', keys)).toBe('cycles');
  });

  it('treats case and dash/underscore alike', () => {
    expect(didYouMean('Batch-Size', keys)).toBe('batch_size');
  });

  it('suggests nothing when no key is plausibly meant', () => {
    expect(didYouMean('temperature', keys)).toBeUndefined();
    expect(didYouMean('zz', keys)).toBeUndefined();
    expect(didYouMean('x', [])).toBeUndefined();
  });
});
