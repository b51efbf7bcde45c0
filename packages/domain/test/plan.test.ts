import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  deepMerge,
  measurementConfigHash,
  orderRuns,
  planStudy,
  QUICKSTART_FILE,
  quickstartStudy,
  type StudyPlan,
} from '../src/index';

const file = 'study.yaml';
const shared = { model: 'builtin:tiny', engine: 'llamacpp' };

function plan(raw: Record<string, unknown>): StudyPlan {
  return planStudy({ ...shared, ...raw }, { file });
}

function planError(raw: unknown): ConfigError {
  try {
    planStudy(raw, { file });
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected planStudy to throw');
}

/** Runs as "<label>@<cycle>" for compact order assertions. */
function order(p: StudyPlan): string[] {
  return p.runs.map((r) => `${p.configs[r.configIndex]?.label}@${r.cycle}`);
}

describe('sweep expansion', () => {
  it('takes the Cartesian product, last key varying fastest', () => {
    const p = plan({ sweep: { 'llamacpp.batch_size': [64, 256], 'llamacpp.threads': [1, 2, 4] } });
    expect(p.configs.map((c) => c.label)).toEqual([
      'batch_size=64 threads=1',
      'batch_size=64 threads=2',
      'batch_size=64 threads=4',
      'batch_size=256 threads=1',
      'batch_size=256 threads=2',
      'batch_size=256 threads=4',
    ]);
    expect(
      p.configs.map((c) => c.config.engine === 'llamacpp' && c.config.llamacpp.threads),
    ).toEqual([1, 2, 4, 1, 2, 4]);
    expect(p.configs.map((c) => c.index)).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('reaches nested fields at any depth with no special cases', () => {
    const p = plan({
      dataset: { synthetic: { n: 4 } },
      sweep: {
        'dataset.synthetic.input_len': [16, 128],
        'decoder.temperature': [0.5],
        model: ['builtin:tiny', 'builtin:tiny-micro'],
      },
    });
    expect(p.configs).toHaveLength(4);
    const first = p.configs[0]?.config;
    expect(first?.dataset).toEqual({
      synthetic: { n: 4, input_len: 16, output_len: 32, seed: 42 },
    });
    expect(first?.decoder.temperature).toBe(0.5);
    expect(p.configs.map((c) => c.config.model)).toEqual([
      'builtin:tiny',
      'builtin:tiny-micro',
      'builtin:tiny',
      'builtin:tiny-micro',
    ]);
    expect(p.configs[3]?.label).toBe('input_len=128 temperature=0.5 model=builtin:tiny-micro');
  });

  it('creates a section that only the sweep mentions', () => {
    const p = plan({ sweep: { 'warmup.cv_threshold': [0.05] } });
    expect(p.configs[0]?.config.warmup).toEqual({ n: 2, cv_threshold: 0.05, window: 3, max_n: 20 });
  });

  it('merges a mapping value over the section, so paired values can be swept', () => {
    const p = plan({
      llamacpp: { threads: 2 },
      sweep: { llamacpp: [{ batch_size: 64, ubatch_size: 64 }, { batch_size: 512 }] },
    });
    const sections = p.configs.map((c) =>
      c.config.engine === 'llamacpp' ? c.config.llamacpp : null,
    );
    expect(sections[0]).toMatchObject({ threads: 2, batch_size: 64, ubatch_size: 64 });
    expect(sections[1]).toMatchObject({ threads: 2, batch_size: 512 });
    expect(p.configs.map((c) => c.label)).toEqual([
      'batch_size=64 ubatch_size=64',
      'batch_size=512',
    ]);
  });

  it('spells out keys whose last segment would be ambiguous in labels', () => {
    const p = plan({ sweep: { 'decoder.seed': [1], 'llamacpp.seed': [2] } });
    expect(p.configs[0]?.label).toBe('decoder.seed=1 llamacpp.seed=2');
  });

  it('keeps duplicate configs, each with its own copy number and runs', () => {
    const p = plan({ sweep: { 'llamacpp.threads': [1, 1, 2] }, execution: { cycles: 2 } });
    expect(p.configs.map((c) => [c.label, c.copy])).toEqual([
      ['threads=1', 0],
      ['threads=1 (copy 2)', 1],
      ['threads=2', 0],
    ]);
    const [one, copy] = p.configs;
    expect(one?.configHash).toBe(copy?.configHash);
    expect(p.runs).toHaveLength(6);
    const keys = p.runs.map((r) => r.key);
    expect(new Set(keys).size).toBe(6);
    expect(keys).toContain(`${one?.configHash}_c0`);
    expect(keys).toContain(`${one?.configHash}_1_c1`);
  });
});

describe('experiments', () => {
  it('merges each experiment over the shared fields, deeply', () => {
    const p = planStudy(
      {
        model: 'builtin:tiny',
        engine: 'llamacpp',
        llamacpp: { threads: 2, batch_size: 64 },
        experiments: [
          { name: 'small', llamacpp: { batch_size: 32 } },
          { name: 'served', engine: 'openai', model: 'm', openai: { base_url: 'http://h:1/v1' } },
        ],
      },
      { file },
    );
    // The second experiment inherits the llamacpp section, which its engine rejects.
    expect(p.configs.map((c) => c.label)).toEqual(['experiment=small']);
    expect(p.configs[0]?.config).toMatchObject({ llamacpp: { threads: 2, batch_size: 32 } });
    expect(p.skipped).toHaveLength(1);
    expect(p.skipped[0]?.label).toBe('experiment=served');
    expect(p.skipped[0]?.reasons[0]?.path).toBe('llamacpp');
  });

  it('crosses experiments with the sweep, the sweep applied last', () => {
    const p = plan({
      experiments: [{ llamacpp: { threads: 1 } }, { llamacpp: { threads: 3, batch_size: 32 } }],
      sweep: { 'llamacpp.batch_size': [8, 16] },
    });
    expect(p.configs.map((c) => c.label)).toEqual([
      'threads=1 batch_size=8',
      'threads=1 batch_size=16',
      'threads=3 batch_size=8',
      'threads=3 batch_size=16',
    ]);
  });
});

describe('skipped configs and empty studies', () => {
  it('lists invalid generated configs as skipped with field paths', () => {
    const p = plan({ sweep: { 'llamacpp.batch_size': [64, 0] } });
    expect(p.configs).toHaveLength(1);
    expect(p.skipped).toEqual([
      {
        label: 'batch_size=0',
        reasons: [{ path: 'llamacpp.batch_size', message: 'must be > 0 (got 0)' }],
        input: { ...shared, llamacpp: { batch_size: 0 } },
      },
    ]);
  });

  it('rejects a study with no valid config (STUDY_EMPTY), naming every reason', () => {
    const error = planError({ ...shared, sweep: { 'llamacpp.threads': [0, -1] } });
    expect(error.code).toBe('STUDY_EMPTY');
    expect(error.issues.map((i) => i.path)).toEqual([
      'llamacpp.threads',
      'llamacpp.threads',
      '(root)',
    ]);
    expect(error.message).toContain('study.yaml: llamacpp.threads:');
  });

  it('reports a single invalid config as an invalid file', () => {
    const error = planError({ model: 'builtin:tiny' });
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.issues[0]?.path).toBe('engine');
  });

  it('rejects a sweep key that names no field, with a suggestion', () => {
    const error = planError({ ...shared, sweep: { 'llamacpp.threds': [1] } });
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.issues[0]).toMatchObject({
      path: 'sweep["llamacpp.threds"]',
      message: 'unknown field llamacpp.threds; did you mean "llamacpp.threads"?',
    });
  });

  it('rejects overlapping sweep keys and non-mapping documents', () => {
    const overlap = planError({ ...shared, sweep: { llamacpp: [{}], 'llamacpp.threads': [1] } });
    expect(overlap.issues[0]?.path).toBe('sweep["llamacpp.threads"]');
    expect(planError(['a']).issues[0]?.path).toBe('(root)');
  });
});

describe('run order', () => {
  const twoByTwo = { sweep: { 'llamacpp.threads': [1, 2] } };

  it('sequential runs every cycle of a config before the next (AAA BBB)', () => {
    const p = plan({ ...twoByTwo, execution: { cycles: 3, order: 'sequential' } });
    expect(order(p)).toEqual([
      'threads=1@0',
      'threads=1@1',
      'threads=1@2',
      'threads=2@0',
      'threads=2@1',
      'threads=2@2',
    ]);
    expect(p.runs.map((r) => r.ordinal)).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('interleaved runs every config once per cycle (AB AB), and is the default', () => {
    const expected = ['threads=1@0', 'threads=2@0', 'threads=1@1', 'threads=2@1'];
    expect(order(plan({ ...twoByTwo, execution: { cycles: 2, order: 'interleaved' } }))).toEqual(
      expected,
    );
    expect(order(plan({ ...twoByTwo, execution: { cycles: 2 } }))).toEqual(expected);
  });

  it('shuffled gives this exact order for seed 7 on every machine', () => {
    // Golden: mulberry32(7) driving Fisher–Yates, one permutation per cycle.
    expect(orderRuns(5, 3, 'shuffled', 7)).toEqual(GOLDEN_SHUFFLE_SEED_7);
  });

  it('shuffled is reproducible per seed, differs between seeds, and keeps whole cycles', () => {
    const runs = orderRuns(6, 4, 'shuffled', 42);
    expect(orderRuns(6, 4, 'shuffled', 42)).toEqual(runs);
    expect(orderRuns(6, 4, 'shuffled', 43)).not.toEqual(runs);
    for (let cycle = 0; cycle < 4; cycle++) {
      const inCycle = runs.filter(([, c]) => c === cycle).map(([i]) => i);
      expect([...inCycle].sort()).toEqual([0, 1, 2, 3, 4, 5]);
    }
    // Cycles are not all the same permutation.
    const perms = new Set(
      [0, 1, 2, 3].map((c) => JSON.stringify(runs.filter(([, cy]) => cy === c).map(([i]) => i))),
    );
    expect(perms.size).toBeGreaterThan(1);
  });

  it('planStudy uses execution.shuffle_seed', () => {
    const p = plan({
      sweep: { 'llamacpp.threads': [1, 2, 3, 4, 5] },
      execution: { cycles: 3, order: 'shuffled', shuffle_seed: 7 },
    });
    expect(p.runs.map((r) => [r.configIndex, r.cycle])).toEqual(GOLDEN_SHUFFLE_SEED_7);
  });
});

describe('planStudy results', () => {
  it('applies execution defaults and names the study after the file', () => {
    const p = planStudy(shared, { file: 'studies/my-study.yml' });
    expect(p.name).toBe('my-study');
    expect(p.execution).toEqual({
      cycles: 1,
      order: 'interleaved',
      shuffle_seed: 0,
      experiment_gap_s: 0,
      cycle_gap_s: 0,
      residual_memory_threshold_mb: 100,
    });
  });

  it('hashes each config and the design', () => {
    const p = plan({ sweep: { 'llamacpp.threads': [1, 2] } });
    for (const c of p.configs) expect(c.configHash).toBe(measurementConfigHash(c.config));
    const reordered = plan({ sweep: { 'llamacpp.threads': [2, 1] } });
    expect(reordered.designHash).toBe(p.designHash);
    const changed = plan({ sweep: { 'llamacpp.threads': [1, 3] } });
    expect(changed.designHash).not.toBe(p.designHash);
  });

  it('plans the built-in quickstart: 4 configs × 2 cycles, interleaved, on builtin:tiny', () => {
    const p = planStudy(quickstartStudy, { file: QUICKSTART_FILE });
    expect(p.name).toBe('quickstart');
    expect(p.skipped).toEqual([]);
    expect(p.configs).toHaveLength(4);
    expect(p.runs).toHaveLength(8);
    expect(p.execution).toMatchObject({ cycles: 2, order: 'interleaved' });
    for (const c of p.configs) {
      expect(c.config).toMatchObject({
        model: 'builtin:tiny',
        engine: 'llamacpp',
        baseline: { enabled: false },
        energy: { backend: 'auto' },
      });
    }
  });
});

describe('deepMerge', () => {
  it('merges mappings at every depth and replaces lists and scalars', () => {
    expect(deepMerge({ a: { b: 1, c: [1, 2] }, d: 1 }, { a: { c: [3] }, d: { e: 1 } })).toEqual({
      a: { b: 1, c: [3] },
      d: { e: 1 },
    });
  });
});

// [configIndex, cycle]; cross-checked against an independent Python mulberry32 + Fisher–Yates.
const GOLDEN_SHUFFLE_SEED_7: [number, number][] = [
  [3, 0],
  [1, 0],
  [2, 0],
  [4, 0],
  [0, 0],
  [4, 1],
  [0, 1],
  [3, 1],
  [1, 1],
  [2, 1],
  [1, 2],
  [3, 2],
  [0, 2],
  [4, 2],
  [2, 2],
];

describe('many GPUs: execution.devices and devices_per_run', () => {
  it('leaves configs and their hashes alone without execution.devices', () => {
    const without = plan({});
    expect(without.execution.devices).toBeUndefined();
    expect(without.configs[0]?.config.devices_per_run).toBeUndefined();
    // devices_per_run is in the hash only when set.
    const set = plan({ devices_per_run: 2, execution: { devices: [0, 1] } });
    expect(set.configs[0]?.configHash).not.toBe(without.configs[0]?.configHash);
    expect(
      plan({ execution: { devices: [0, 1, 2, 3], devices_per_run: 2 } }).configs[0]?.configHash,
    ).toBe(without.configs[0]?.configHash);
  });

  it('accepts NVML indices and UUIDs, and rejects duplicates', () => {
    const p = plan({ execution: { devices: [0, 'GPU-1f2e'] } });
    expect(p.execution.devices).toEqual([0, 'GPU-1f2e']);
    const error = planError({ ...shared, execution: { devices: [1, 1] } });
    expect(error.message).toContain('study.yaml: execution.devices: devices must be unique');
  });

  it('a config that asks for more GPUs than the study has, or measures more than it is given, is skipped naming both fields', () => {
    const p = plan({
      execution: { devices: [0, 1] },
      experiments: [
        {},
        { devices_per_run: 4 },
        { energy: { devices: [0, 1] } },
        { devices_per_run: 2, energy: { devices: [0, 1] } },
      ],
    });
    expect(p.configs.map((c) => c.config.devices_per_run ?? 1)).toEqual([1, 2]);
    expect(p.skipped.map((s) => s.reasons)).toEqual([
      [
        {
          path: 'devices_per_run',
          message: 'devices_per_run is 4, but execution.devices lists only 2 GPUs',
        },
      ],
      [
        {
          path: 'energy.devices',
          message: expect.stringMatching(
            /^lists 2 devices, but each run is given 1 GPU from execution\.devices \(execution\.devices_per_run\)/,
          ),
        },
      ],
    ]);
    const single = planError({
      ...shared,
      energy: { devices: [0, 1, 2] },
      execution: { devices: [0, 1, 2, 3], devices_per_run: 2 },
    });
    expect(single.code).toBe('CONFIG_INVALID');
    expect(single.message).toContain(
      'study.yaml: energy.devices: lists 3 devices, but each run is given 2 GPUs',
    );
  });
});

describe('Slurm: execution.slurm', () => {
  it('is read with its fields and changes no config hash', () => {
    const without = plan({});
    const slurm = {
      partition: 'gpu',
      account: 'proj1',
      qos: 'normal',
      time_limit_s: 900,
      max_parallel: 8,
      runs_per_task: 2,
      sbatch_args: ['--constraint=a100', '--mem=64G'],
      setup: ['module load cuda/12.4'],
    };
    const p = plan({ execution: { slurm } });
    expect(p.execution.slurm).toEqual(slurm);
    // A --gres of the study's own replaces llem's (a GPU type; none on a CPU partition).
    expect(
      plan({ execution: { slurm: { sbatch_args: ['--gres=gpu:a100:1'] } } }).execution.slurm,
    ).toEqual({ sbatch_args: ['--gres=gpu:a100:1'] });
    expect(p.configs[0]?.configHash).toBe(without.configs[0]?.configHash);
    expect(p.designHash).toBe(without.designHash);
  });

  it('names the file, the field and what is allowed for a bad value', () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ max_parallel: 0 }, 'study.yaml: execution.slurm.max_parallel: must be ≥ 1 (got 0)'],
      [{ time_limit_s: 1.5 }, 'study.yaml: execution.slurm.time_limit_s: '],
      [
        { partiton: 'gpu' },
        'study.yaml: execution.slurm.partiton: unknown key; did you mean "partition"? (allowed: partition, account, qos, time_limit_s, max_parallel, runs_per_task, sbatch_args, setup)',
      ],
      [{ sbatch_args: '--mem=4G' }, 'study.yaml: execution.slurm.sbatch_args: '],
      [
        { sbatch_args: ['--mem=4G', '--array=0-3'] },
        'study.yaml: execution.slurm.sbatch_args[1]: --array is set by llem for every submission',
      ],
      [
        { sbatch_args: ['--gpus=2'] },
        'study.yaml: execution.slurm.sbatch_args[0]: --gpus is set by llem',
      ],
      [{ setup: [1] }, 'study.yaml: execution.slurm.setup[0]: '],
    ];
    for (const [slurm, message] of cases) {
      const error = planError({ ...shared, execution: { slurm } });
      expect(error.code).toBe('CONFIG_INVALID');
      expect(error.message).toContain(message);
    }
  });
});
