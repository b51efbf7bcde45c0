import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureTinyModel, microModelSpec } from '@llem/engines';
import { describe, expect, it } from 'vitest';
import { runLlem } from './support/llem';

function llem(argv: string[], cwd: string) {
  // No NVML here: the fake library path does not exist, so free memory is system RAM.
  const env = { LLEM_NVML_LIBRARY: '/nonexistent/libnvidia-ml.so.1' };
  return runLlem(argv, { env, cwd });
}

describe('llem run --dry-run (enriched plan)', () => {
  it('lists every run with label and hash, skipped configs with reasons, duration and GGUF memory', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'llem-dry-'));
    const model = await ensureTinyModel({ cacheDir: join(cwd, 'models'), spec: microModelSpec });
    writeFileSync(
      join(cwd, 'study.yaml'),
      [
        'name: kv-sweep',
        `model: ${model}`,
        'engine: llamacpp',
        'dataset: { synthetic: { n: 4, input_len: 16, output_len: 8, seed: 1 } }',
        'max_output_tokens: 8',
        'llamacpp: { gpu_layers: 0, context_size: 512, flash_attention: false, threads: 1 }',
        'sweep:',
        '  llamacpp.kv_cache_type_v: [f16, q8_0]',
        '  llamacpp.batch_size: [64, 128]',
        'execution: { cycles: 3, order: sequential, experiment_gap_s: 2, cycle_gap_s: 10 }',
        '',
      ].join('\n'),
    );
    const { code, stdout, stderr } = await llem(['run', 'study.yaml', '--dry-run'], cwd);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toMatch(
      /^study\.yaml: study kv-sweep \(design [0-9a-f]{16}\): 2 configs × 3 cycles = 6 runs, order sequential/,
    );
    // sequential: AAA BBB, each run with its key (hash_cycle) and label
    const runLines = stdout.split('\n').filter((l) => /^\s+\d+\s+\d+\s+[0-9a-f]{16}_c\d/.test(l));
    expect(runLines).toHaveLength(6);
    expect(runLines[0]).toMatch(/^\s+1\s+1\s+([0-9a-f]{16})_c0\s+.*batch_size=64/);
    expect(runLines[2]).toMatch(/^\s+3\s+3\s+[0-9a-f]{16}_c2\s+.*batch_size=64/);
    expect(stdout).toMatch(/Skipped configs \(2\): generated but invalid, will not run/);
    expect(stdout).toMatch(
      / {2}- .*q8_0.*: .*kv_cache_type_v: a quantised V cache \(q8_0\) requires llamacpp\.flash_attention/,
    );
    // sequential c0 c1 c2 c0 c1 c2: 5 gaps × 2 s + 5 cycle changes × 10 s = 1 min
    expect(stdout).toMatch(/Estimated duration: ≈ .* gaps 1 min\)/);
    expect(stdout).toContain('Memory (estimated from model metadata)');
    expect(stdout).toMatch(
      new RegExp(
        `${model.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\[.*\\]: ≈ [\\d.,]+ MiB \\(weights [\\d.,]+ MiB \\+ KV cache [\\d.,]+ MiB at context 512.*; fits: [\\d.,]+ MiB free on system RAM`,
      ),
    );
    expect(existsSync(join(cwd, 'results'))).toBe(false);
  });

  it('--json gives the same plan as data', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'llem-dry-'));
    const { code, stdout } = await llem(['run', '--dry-run', '--json'], cwd);
    expect(code).toBe(0);
    const plan = JSON.parse(stdout);
    expect(plan.file).toBe('builtin:quickstart');
    expect(plan.runs).toHaveLength(8);
    expect(plan.runs[0]).toMatchObject({ ordinal: 0, cycle: 0 });
    expect(plan.runs[0].key).toMatch(/^[0-9a-f]{16}_c0$/);
    expect(plan.estimate.totalS).toBeGreaterThan(0);
  });
});
