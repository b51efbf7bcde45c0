import { describe, expect, it } from 'vitest';
import {
  estimateGgufMemory,
  estimatePlanDuration,
  formatDuration,
  type PlanView,
  planToJson,
  renderPlan,
} from '../src/index';

const config = {
  model: 'builtin:tiny',
  engine: 'llamacpp',
  dataset: { synthetic: { n: 8, input_len: 64, output_len: 32, seed: 1 } },
  max_output_tokens: 32,
  warmup: { n: 2 },
};

const plan: PlanView = {
  name: 'demo',
  designHash: '0123456789abcdef',
  execution: {
    cycles: 2,
    order: 'interleaved',
    experiment_gap_s: 5,
    cycle_gap_s: 30,
    timeout_s: 600,
  },
  configs: [
    { index: 0, label: 'batch_size=64', configHash: 'aaaaaaaaaaaaaaaa', config },
    { index: 1, label: 'batch_size=256', configHash: 'bbbbbbbbbbbbbbbb', config },
  ],
  skipped: [
    {
      label: 'batch_size=4096',
      reasons: [{ path: 'llamacpp.batch_size', message: 'must be at most context_size (1024)' }],
    },
  ],
  runs: [
    {
      key: 'aaaaaaaaaaaaaaaa_c0',
      configIndex: 0,
      configHash: 'aaaaaaaaaaaaaaaa',
      cycle: 0,
      ordinal: 0,
    },
    {
      key: 'bbbbbbbbbbbbbbbb_c0',
      configIndex: 1,
      configHash: 'bbbbbbbbbbbbbbbb',
      cycle: 0,
      ordinal: 1,
    },
    {
      key: 'aaaaaaaaaaaaaaaa_c1',
      configIndex: 0,
      configHash: 'aaaaaaaaaaaaaaaa',
      cycle: 1,
      ordinal: 2,
    },
    {
      key: 'bbbbbbbbbbbbbbbb_c1',
      configIndex: 1,
      configHash: 'bbbbbbbbbbbbbbbb',
      cycle: 1,
      ordinal: 3,
    },
  ],
};

describe('dry-run plan', () => {
  it('estimates duration: exact gaps plus workload at the assumed speed', () => {
    const est = estimatePlanDuration(plan, { assumedTokensPerS: 32, runOverheadS: 10 });
    // gaps: none before the first run, then 3 × 5 s + one cycle change × 30 s = 45
    expect(est.gapsS).toBe(45);
    // each run: 10 s + (8 + 2) prompts × 32 tokens / 32 tok/s = 20 s → 4 runs = 80
    expect(est.runsS).toBe(80);
    expect(est.totalS).toBe(125);
    expect(est.upperBoundS).toBe(4 * 600 + 45);
    expect(estimatePlanDuration(plan, { estimateRunS: () => 7 }).runsS).toBe(28);
  });

  it('counts a load sweep’s workload once per point', () => {
    const sweep = (openai: Record<string, unknown>): PlanView => ({
      ...plan,
      configs: plan.configs.map((c) => ({
        ...c,
        config: { ...(c.config as Record<string, unknown>), engine: 'openai', openai },
      })),
    });
    // each run: 10 s + (8 × 4 + 2) prompts × 32 tokens / 32 tok/s = 44 s → 4 runs = 176
    const four = estimatePlanDuration(sweep({ load: 'sweep', sweep_points: 4 }), {
      assumedTokensPerS: 32,
      runOverheadS: 10,
    });
    expect(four.runsS).toBe(176);
    // Default 8 points: 10 + (64 + 2) = 76 s a run.
    expect(
      estimatePlanDuration(sweep({ load: 'sweep' }), { assumedTokensPerS: 32, runOverheadS: 10 })
        .runsS,
    ).toBe(4 * 76);
  });

  it("counts a dataset file's requests and adds a trace's span", () => {
    // (40 requests + 2 warmup) × 32 tokens / 32 tok/s + 10 s + a 100 s trace = 152 s a run.
    const est = estimatePlanDuration(plan, {
      assumedTokensPerS: 32,
      runOverheadS: 10,
      datasetSize: () => ({ requests: 40, durationS: 100 }),
    });
    expect(est.runsS).toBe(4 * 152);
    // No file for a config: its synthetic n, as before.
    expect(
      estimatePlanDuration(plan, { assumedTokensPerS: 32, datasetSize: () => null }).runsS,
    ).toBe(80);
  });

  it('prints every run with label and hash, cycles, order, skipped reasons and the estimate', () => {
    const text = renderPlan(plan, {
      assumedTokensPerS: 32,
      memory: [
        {
          model: 'm.gguf',
          estimatedMiB: 5000,
          freeMiB: 4000,
          device: 'GPU 0',
          detail: 'weights + KV',
        },
        { model: 'n.gguf', estimatedMiB: 100, freeMiB: null },
      ],
    });
    expect(text).toContain(
      'study demo (design 0123456789abcdef): 2 configs × 2 cycles = 4 runs, order interleaved',
    );
    expect(text).toMatch(/\n\s+3\s+2\s+aaaaaaaaaaaaaaaa_c1\s+batch_size=64\n/);
    expect(text).toMatch(/1\s+aaaaaaaaaaaaaaaa\s+batch_size=64/);
    expect(text).toContain(
      '  - batch_size=4096: llamacpp.batch_size: must be at most context_size (1024)',
    );
    expect(text).toContain('Estimated duration: ≈ 2 min 5 s');
    expect(text).toContain(
      'm.gguf: ≈ 5,000 MiB (weights + KV); DOES NOT FIT: only 4,000 MiB free on GPU 0',
    );
    expect(text).toContain('n.gguf: ≈ 100 MiB; free device memory unknown');
    expect(planToJson(plan).runs).toHaveLength(4);
  });

  it('estimates GGUF memory from metadata (weights + KV cache, GQA-aware)', () => {
    const m = estimateGgufMemory({
      fileSizeBytes: 4096 * 1024 * 1024,
      blockCount: 32,
      embeddingLength: 4096,
      headCount: 32,
      headCountKv: 8,
      contextSize: 4096,
    });
    // KV = 2 × 32 × 4096 × 4096 × (8/32) × 2 bytes = 512 MiB
    expect(m.weightsMiB).toBe(4096);
    expect(m.kvCacheMiB).toBe(512);
    expect(m.totalMiB).toBe(4608);
    expect(
      estimateGgufMemory({
        fileSizeBytes: 1024 * 1024,
        blockCount: null,
        embeddingLength: null,
        headCount: null,
        contextSize: 1,
      }).kvCacheMiB,
    ).toBeNull();
  });

  it('formats durations', () => {
    expect(formatDuration(0)).toBe('0 s');
    expect(formatDuration(3723)).toBe('1 h 2 min 3 s');
    expect(formatDuration(120)).toBe('2 min');
  });
});

describe('dry run of a many-GPU study', () => {
  it('says how many runs go at once and divides the estimate by it', () => {
    const alone = estimatePlanDuration(plan);
    const four = { ...plan, execution: { ...plan.execution, devices: [0, 1, 2, 3] } };
    const est = estimatePlanDuration(four);
    expect(alone.parallel).toBe(1);
    expect(est.parallel).toBe(4);
    expect(est.totalS).toBeCloseTo(alone.totalS / 4, 9);
    expect(est.upperBoundS).toBeCloseTo(
      (alone.upperBoundS as number) / 4 + est.gapsS - alone.gapsS / 4,
      9,
    );
    const text = renderPlan(four);
    expect(text).toContain(
      'Devices: 0, 1, 2, 3; 1 GPU per run, up to 4 runs at a time, each on its own GPUs (gaps per device set)',
    );
    // A config that takes two GPUs halves the parallelism.
    const two = {
      ...four,
      configs: four.configs.map((c) => ({
        ...c,
        config: { ...(c.config as object), devices_per_run: 2 },
      })),
    };
    expect(estimatePlanDuration(two).parallel).toBe(2);
    expect(renderPlan(two)).toContain('2 GPUs per run, up to 2 runs at a time');
  });
});
