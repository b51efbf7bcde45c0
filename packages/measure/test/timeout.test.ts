import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { noopLogger } from '@llem/resilience';
import { describe, expect, it } from 'vitest';
import {
  type DatasetSize,
  runTimeoutS,
  TIMEOUT_DEFAULT_PROMPTS,
  TIMEOUT_FLOOR_S,
} from '../src/timeout';

function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'llem-timeout-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

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

describe('runTimeoutS with a .jsonl dataset and adaptive warmup', () => {
  it('counts the non-empty lines of a .jsonl dataset resolved against cwd', () => {
    const tmp = tempDir();
    try {
      const lines = Array.from({ length: 250 }, (_, i) => JSON.stringify({ prompt: `p${i}` }));
      // Blank lines (and the trailing newline) are not prompts.
      writeFileSync(join(tmp.dir, 'prompts.jsonl'), `${lines.join('\n')}\n\n  \n`);
      const config = {
        max_output_tokens: 10,
        dataset: { path: 'prompts.jsonl', column: 'prompt' },
      };
      expect(runTimeoutS({}, config, { cwd: tmp.dir })).toBe(120 + 250 * 10 * 0.1);
      // The string form too.
      expect(
        runTimeoutS({}, { max_output_tokens: 10, dataset: 'prompts.jsonl' }, { cwd: tmp.dir }),
      ).toBe(120 + 250 * 10 * 0.1);
    } finally {
      tmp.cleanup();
    }
  });

  it('warns once and assumes the default when the file cannot be read', () => {
    const warnings: string[] = [];
    const logger = { ...noopLogger, warn: (m: string) => warnings.push(m) };
    const datasetSizes = new Map<string, DatasetSize | null>();
    const config = { max_output_tokens: 10, dataset: 'missing.jsonl' };
    const context = { cwd: '/nonexistent-dir', logger, datasetSizes };
    expect(runTimeoutS({}, config, context)).toBe(120 + TIMEOUT_DEFAULT_PROMPTS * 10 * 0.1);
    expect(runTimeoutS({}, config, context)).toBe(120 + TIMEOUT_DEFAULT_PROMPTS * 10 * 0.1);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('/nonexistent-dir/missing.jsonl');
    expect(warnings[0]).toContain('execution.timeout_s');
  });

  it('uses warmup.max_n instead of warmup.n when cv_threshold is set', () => {
    const base = { max_output_tokens: 10, dataset: { synthetic: { n: 10 } } };
    expect(runTimeoutS({}, { ...base, warmup: { n: 2, max_n: 30, cv_threshold: 0.05 } })).toBe(
      120 + (10 + 30) * 10 * 0.1,
    );
    expect(runTimeoutS({}, { ...base, warmup: { n: 2, max_n: 30 } })).toBe(
      120 + (10 + 2) * 10 * 0.1,
    );
  });
});

describe('runTimeoutS for every dataset format', () => {
  it('counts conversations × turns of a synthetic dataset', () => {
    const config = { max_output_tokens: 10, dataset: { synthetic: { n: 10, turns: 3 } } };
    expect(runTimeoutS({}, config)).toBe(120 + 30 * 10 * 0.1);
  });

  it("counts a ShareGPT file's n, else its usable entries", () => {
    const tmp = tempDir();
    try {
      const pair = {
        conversations: [
          { from: 'human', value: 'hi' },
          { from: 'gpt', value: 'hello' },
        ],
      };
      const entries = [...Array.from({ length: 40 }, () => pair), { conversations: [] }];
      writeFileSync(join(tmp.dir, 'sg.json'), JSON.stringify(entries));
      const dataset = { path: 'sg.json', format: 'sharegpt' };
      expect(runTimeoutS({}, { max_output_tokens: 10, dataset }, { cwd: tmp.dir })).toBe(
        120 + 40 * 10 * 0.1,
      );
      expect(
        runTimeoutS({}, { max_output_tokens: 10, dataset: { ...dataset, n: 5 } }, { cwd: tmp.dir }),
      ).toBe(120 + 5 * 10 * 0.1);
    } finally {
      tmp.cleanup();
    }
  });

  it("adds a trace's span (after time_scale) to its requests' allowance", () => {
    const tmp = tempDir();
    try {
      const rows = [0, 30_000, 600_000].map((timestamp) =>
        JSON.stringify({ timestamp, input_length: 10, output_length: 5 }),
      );
      writeFileSync(join(tmp.dir, 'trace.jsonl'), rows.join('\n'));
      const dataset = { path: 'trace.jsonl', format: 'trace', time_scale: 0.5 };
      // 3 requests × 10 tokens × 0.1 s, plus the 300 s the trace takes to replay at half time.
      expect(runTimeoutS({}, { max_output_tokens: 10, dataset }, { cwd: tmp.dir })).toBe(
        120 + 3 + 300,
      );
    } finally {
      tmp.cleanup();
    }
  });
});
