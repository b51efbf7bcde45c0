import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  type ConfigIssue,
  ExperimentConfigSchema,
  parseExperimentConfig,
} from '../src/index';
import { validate } from '../src/internal/issues';

function issuesOf(input: unknown): ConfigIssue[] {
  const result = validate(ExperimentConfigSchema, input);
  if (result.ok) throw new Error('expected the config to be invalid');
  return result.issues;
}

const tiny = { model: 'builtin:tiny', engine: 'llamacpp' } as const;
const served = {
  model: 'served-model',
  engine: 'openai',
  openai: { base_url: 'http://127.0.0.1:8000/v1' },
} as const;

describe('ExperimentConfigSchema defaults', () => {
  it('fills every default of a minimal llamacpp config', () => {
    expect(ExperimentConfigSchema.parse(tiny)).toEqual({
      model: 'builtin:tiny',
      engine: 'llamacpp',
      dataset: { synthetic: { n: 32, input_len: 64, output_len: 32, seed: 42 } },
      max_output_tokens: 128,
      decoder: {
        preset: 'deterministic',
        temperature: 0,
        top_k: 1,
        top_p: 1,
        min_p: 0,
        repeat_penalty: 1,
        seed: 0,
      },
      warmup: { n: 2, window: 3, max_n: 20 },
      baseline: { enabled: false, duration_s: 10 },
      energy: { backend: 'auto', sample_interval_ms: 100, devices: [0] },
      llamacpp: {
        gpu_layers: 'auto',
        context_size: 2048,
        batch_size: 512,
        threads: 'auto',
        parallel: 1,
        flash_attention: false,
        kv_cache_type_k: 'f16',
        kv_cache_type_v: 'f16',
        use_mmap: true,
        use_mlock: false,
      },
    });
  });

  it('fills nested defaults inside a partly given section', () => {
    const config = ExperimentConfigSchema.parse({ ...tiny, dataset: { synthetic: { n: 4 } } });
    expect(config.dataset).toEqual({
      synthetic: { n: 4, input_len: 64, output_len: 32, seed: 42 },
    });
  });

  it('resolves a decoder preset into values, with explicit fields winning', () => {
    const config = ExperimentConfigSchema.parse({
      ...tiny,
      decoder: { preset: 'standard', temperature: 0.2 },
    });
    expect(config.decoder).toEqual({
      preset: 'standard',
      temperature: 0.2,
      top_k: 40,
      top_p: 0.95,
      min_p: 0.05,
      repeat_penalty: 1.1,
      seed: 0,
    });
  });

  it('defaults openai to one request in flight and to the top-level model name', () => {
    const config = ExperimentConfigSchema.parse(served);
    if (config.engine !== 'openai') throw new Error('engine');
    expect(config.openai).toMatchObject({
      concurrency: 1,
      model: 'served-model',
      endpoint: 'completions',
      burstiness: 1,
      max_failure_rate: 0,
      max_client_lag_ms: 5,
      slo: {},
    });
    const rate = ExperimentConfigSchema.parse({
      ...served,
      openai: { ...served.openai, request_rate: 5, model: 'other' },
    });
    if (rate.engine !== 'openai') throw new Error('engine');
    expect(rate.openai.concurrency).toBeUndefined();
    expect(rate.openai.model).toBe('other');
  });

  it('normalises a .jsonl dataset given as a string', () => {
    expect(ExperimentConfigSchema.parse({ ...tiny, dataset: 'prompts.jsonl' }).dataset).toEqual({
      path: 'prompts.jsonl',
      column: 'prompt',
    });
    expect(
      ExperimentConfigSchema.parse({ ...tiny, dataset: { path: 'p.jsonl', column: 'text' } })
        .dataset,
    ).toEqual({ path: 'p.jsonl', column: 'text' });
  });

  it.each([
    ['llamacpp', tiny],
    ['openai', served],
    ['command', { model: 'm', engine: 'command', command: { argv: ['python', 'bench.py'] } }],
  ])('parsing a parsed %s config gives it back unchanged', (_engine, input) => {
    const once = ExperimentConfigSchema.parse(input);
    expect(ExperimentConfigSchema.parse(once)).toEqual(once);
  });
});

describe('ExperimentConfigSchema rules', () => {
  it('requires the section of the chosen engine', () => {
    expect(issuesOf({ model: 'm', engine: 'openai' })).toEqual([
      { path: 'openai', message: 'is required' },
    ]);
    expect(issuesOf({ model: 'm', engine: 'command' })).toEqual([
      { path: 'command', message: 'is required' },
    ]);
  });

  it('rejects the section of another engine, saying why', () => {
    const [issue] = issuesOf({ ...tiny, command: { argv: ['x'] } });
    expect(issue?.path).toBe('command');
    expect(issue?.message).toContain("this config's engine is llamacpp");
  });

  it('accepts only .gguf paths and built-in models for llamacpp', () => {
    expect(issuesOf({ ...tiny, model: 'llama.safetensors' })[0]).toMatchObject({
      path: 'model',
      allowed: ['<path>.gguf', 'builtin:tiny', 'builtin:tiny-micro'],
    });
    expect(validate(ExperimentConfigSchema, { ...tiny, model: 'models/Q4.GGUF' }).ok).toBe(true);
    expect(validate(ExperimentConfigSchema, { ...tiny, model: 'builtin:tiny-micro' }).ok).toBe(
      true,
    );
  });

  it('takes openai concurrency or request_rate, not both', () => {
    expect(
      issuesOf({ ...served, openai: { ...served.openai, concurrency: 2, request_rate: 3 } }),
    ).toEqual([
      {
        path: 'openai.request_rate',
        message: 'give openai.concurrency or openai.request_rate, not both',
      },
    ]);
    expect(issuesOf({ ...served, openai: { ...served.openai, max_concurrency: 4 } })[0]?.path).toBe(
      'openai.max_concurrency',
    );
    const [lag] = issuesOf({
      ...served,
      openai: { ...served.openai, request_rate: 5, max_client_lag_ms: 0 },
    });
    expect(lag?.path).toBe('openai.max_client_lag_ms');
  });

  it('wants an env var NAME for the API key and never repeats the value', () => {
    const secret = 'sk-proj-abcdef0123456789';
    const [issue] = issuesOf({ ...served, openai: { ...served.openai, api_key_env: secret } });
    expect(issue?.path).toBe('openai.api_key_env');
    expect(JSON.stringify(issue)).not.toContain('abcdef');
    expect(
      validate(ExperimentConfigSchema, {
        ...served,
        openai: { ...served.openai, api_key_env: 'MY_KEY' },
      }).ok,
    ).toBe(true);
  });

  it('ties llamacpp ubatch_size to batch_size and a quantised V cache to flash attention', () => {
    expect(issuesOf({ ...tiny, llamacpp: { batch_size: 256, ubatch_size: 64 } })[0]?.path).toBe(
      'llamacpp.ubatch_size',
    );
    expect(
      validate(ExperimentConfigSchema, { ...tiny, llamacpp: { batch_size: 256, ubatch_size: 256 } })
        .ok,
    ).toBe(true);
    expect(issuesOf({ ...tiny, llamacpp: { kv_cache_type_v: 'q4_0' } })[0]?.path).toBe(
      'llamacpp.kv_cache_type_v',
    );
    expect(
      validate(ExperimentConfigSchema, {
        ...tiny,
        llamacpp: { kv_cache_type_v: 'q4_0', flash_attention: true },
      }).ok,
    ).toBe(true);
  });

  // The llamacpp engine takes this schema's output as it is (it no longer re-checks the section),
  // so every value the engine used to refuse must be refused here, at its path, saying why.
  it.each([
    [{ batch_size: 0 }, 'llamacpp.batch_size', 'must be > 0 (got 0)', undefined],
    [
      { gpu_layers: 'some' },
      'llamacpp.gpu_layers',
      'expected "auto" or "max" or a number, got "some"',
      ['auto', 'max'],
    ],
    [{ threads: -1 }, 'llamacpp.threads', 'must be > 0 (got -1)', undefined],
    [{ parallel: 1.5 }, 'llamacpp.parallel', 'expected an integer, got a number (1.5)', undefined],
    [
      { flash_attention: 'yes' },
      'llamacpp.flash_attention',
      'expected "auto" or a boolean (true or false), got "yes"',
      ['auto'],
    ],
    [
      { kv_cache_type_k: 'q3' },
      'llamacpp.kv_cache_type_k',
      'invalid value "q3"',
      ['f32', 'f16', 'bf16', 'q8_0', 'q4_0', 'q4_1', 'iq4_nl', 'q5_0', 'q5_1'],
    ],
    [
      { use_mmap: 1 },
      'llamacpp.use_mmap',
      'expected a boolean (true or false), got an integer (1)',
      undefined,
    ],
    [
      { context_size: 'big' },
      'llamacpp.context_size',
      'expected "auto" or a number, got "big"',
      ['auto'],
    ],
    [
      { batch_size: 256, ubatch_size: 128 },
      'llamacpp.ubatch_size',
      'must equal llamacpp.batch_size (256): node-llama-cpp always uses ubatch = batch',
      undefined,
    ],
    [
      { kv_cache_type_v: 'q8_0', flash_attention: false },
      'llamacpp.kv_cache_type_v',
      'a quantised V cache (q8_0) requires llamacpp.flash_attention: true (or auto)',
      undefined,
    ],
  ])(
    'rejects llamacpp %j naming the field, why and the allowed values',
    (section, path, message, allowed) => {
      expect(issuesOf({ ...tiny, llamacpp: section })).toEqual([
        allowed === undefined ? { path, message } : { path, message, allowed },
      ]);
    },
  );

  it.each([
    [{ temperature: -1 }, 'decoder.temperature', 'must be ≥ 0 (got -1)'],
    [{ top_p: 2 }, 'decoder.top_p', 'must be ≤ 1 (got 2)'],
    [{ preset: 'creative' }, 'decoder.preset', 'invalid value "creative"'],
  ])('rejects decoder %j naming the field', (decoder, path, message) => {
    expect(issuesOf({ ...tiny, decoder })[0]).toMatchObject({ path, message });
  });

  it('reports unknown keys at their path with a suggestion and the allowed keys', () => {
    const [issue] = issuesOf({ ...tiny, decoder: { temprature: 0.5 } });
    expect(issue).toMatchObject({
      path: 'decoder.temprature',
      message: 'unknown key; did you mean "temperature"?',
    });
    expect(issue?.allowed).toContain('top_p');
  });

  it('lists enum values as allowed', () => {
    expect(issuesOf({ ...tiny, energy: { backend: 'dcgm' } })).toEqual([
      {
        path: 'energy.backend',
        message: 'invalid value "dcgm"',
        allowed: ['auto', 'nvml', 'rapl', 'none'],
      },
    ]);
  });

  it('checks command argv, env names and the dataset form', () => {
    const command = {
      model: 'm',
      engine: 'command',
      command: { argv: [], env: { 'BAD-NAME': '1' } },
    };
    expect(issuesOf(command).map((i) => i.path)).toEqual([
      'command.argv',
      'command.env["BAD-NAME"]',
    ]);
    expect(issuesOf({ ...tiny, dataset: {} })[0]?.path).toBe('dataset');
    expect(issuesOf({ ...tiny, dataset: { synthetic: {}, column: 'x' } })[0]?.path).toBe(
      'dataset.column',
    );
  });
});

describe('dotted keys outside sweep', () => {
  it('explain how to write the field nested', () => {
    const [issue] = issuesOf({ ...tiny, 'llamacpp.batch_size': 64 });
    expect(issue).toEqual({
      path: '["llamacpp.batch_size"]',
      message:
        'dotted field paths only work as sweep keys; write it nested: llamacpp: { batch_size: … }',
    });
  });
});

describe('parseExperimentConfig', () => {
  it('returns the parsed config or throws ConfigError naming the file and path', () => {
    expect(parseExperimentConfig(tiny).engine).toBe('llamacpp');
    expect(() =>
      parseExperimentConfig({ ...tiny, max_output_tokens: 0 }, { file: 'task.json' }),
    ).toThrow(/^task\.json: max_output_tokens: must be > 0/);
    expect(() => parseExperimentConfig({})).toThrow(ConfigError);
  });
});

describe('misplaced keys', () => {
  it('say which section a known key belongs in', () => {
    const [issue] = issuesOf({ ...tiny, batch_size: 64 });
    expect(issue?.path).toBe('batch_size');
    expect(issue?.message).toBe(
      'unknown key here; batch_size belongs in llamacpp: write llamacpp: { batch_size: … }',
    );
  });
});
