import { describe, expect, it } from 'vitest';
import { runTimeoutS, TIMEOUT_FLOOR_S } from '../src/timeout';

describe('runTimeoutS', () => {
  it('uses execution.timeout_s when set', () => {
    expect(runTimeoutS({ timeout_s: 600 }, { max_output_tokens: 4096 })).toBe(600);
  });

  it('derives 120 s + (prompts + warmup) × tokens × 0.1 s + baseline otherwise', () => {
    const config = {
      max_output_tokens: 32,
      dataset: { synthetic: { n: 10 } },
      warmup: { n: 2 },
      baseline: { enabled: true, duration_s: 30 },
    };
    expect(runTimeoutS({}, config)).toBe(Math.ceil(120 + 12 * 32 * 0.1 + 30));
    expect(runTimeoutS({ timeout_s: null }, { ...config, baseline: { enabled: false } })).toBe(
      Math.ceil(120 + 12 * 32 * 0.1),
    );
  });

  it('never goes below the floor and assumes 100 prompts for a dataset file', () => {
    expect(runTimeoutS({}, { max_output_tokens: 0 })).toBe(TIMEOUT_FLOOR_S);
    expect(runTimeoutS({}, { max_output_tokens: 10, dataset: 'prompts.jsonl' })).toBe(
      120 + 100 * 10 * 0.1,
    );
    expect(runTimeoutS({}, null)).toBe(120 + 100 * 256 * 0.1);
  });
});
