import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  canonicalJson,
  ExperimentConfigSchema,
  HASH_EXCLUDED_FIELDS,
  measurementConfigHash,
  studyDesignHash,
} from '../src/index';

const base = {
  model: 'builtin:tiny',
  engine: 'llamacpp',
  llamacpp: { batch_size: 128, threads: 2 },
  decoder: { preset: 'deterministic' },
};

describe('canonicalJson', () => {
  it('sorts keys at every depth and drops undefined members', () => {
    expect(canonicalJson({ b: 1, a: [{ d: 2, c: 3 }], u: undefined })).toBe(
      '{"a":[{"c":3,"d":2}],"b":1}',
    );
  });
});

describe('measurementConfigHash', () => {
  const hash = measurementConfigHash(base);

  it('is 16 lowercase hex characters and stable across releases (golden)', () => {
    expect(hash).toMatch(/^[0-9a-f]{16}$/);
    // Changing this value invalidates every stored study's hashes: only on purpose.
    expect(hash).toBe(GOLDEN);
  });

  it('does not depend on key order', () => {
    const reordered = {
      decoder: { preset: 'deterministic' },
      llamacpp: { threads: 2, batch_size: 128 },
      engine: 'llamacpp',
      model: 'builtin:tiny',
    };
    expect(measurementConfigHash(reordered)).toBe(hash);
  });

  it('does not change when defaults are written out explicitly', () => {
    expect(measurementConfigHash(ExperimentConfigSchema.parse(base))).toBe(hash);
    const explicit = {
      ...base,
      max_output_tokens: 128,
      llamacpp: { ...base.llamacpp, gpu_layers: 'auto', parallel: 1, use_mmap: true },
      energy: { backend: 'auto', sample_interval_ms: 100, devices: [0] },
      decoder: { preset: 'deterministic', temperature: 0, top_k: 1 },
    };
    expect(measurementConfigHash(explicit)).toBe(hash);
  });

  it.each([
    ['llamacpp.batch_size', { ...base, llamacpp: { ...base.llamacpp, batch_size: 256 } }],
    ['model', { ...base, model: 'builtin:tiny-micro' }],
    ['decoder.temperature', { ...base, decoder: { temperature: 0.1 } }],
    ['dataset.synthetic.seed', { ...base, dataset: { synthetic: { seed: 1 } } }],
    ['energy.sample_interval_ms', { ...base, energy: { sample_interval_ms: 50 } }],
    ['max_output_tokens', { ...base, max_output_tokens: 64 }],
  ])('changes when a measured field changes (%s)', (_field, changed) => {
    expect(measurementConfigHash(changed)).not.toBe(hash);
  });

  it('ignores presentation fields', () => {
    expect(HASH_EXCLUDED_FIELDS).toEqual([
      'name',
      'decoder.preset',
      'openai.api_key_env',
      'openai.ready_timeout_s',
      'openai.max_client_lag_ms',
      'server.cwd',
      'server.stop_grace_s',
      'server.ready',
      'server.metrics',
    ]);
    expect(measurementConfigHash({ ...base, name: 'fast one' })).toBe(hash);
    // `standard` overridden back to the deterministic values is the same sampling.
    const sameValues = {
      ...base,
      decoder: {
        preset: 'standard',
        temperature: 0,
        top_k: 1,
        top_p: 1,
        min_p: 0,
        repeat_penalty: 1,
      },
    };
    expect(measurementConfigHash(sameValues)).toBe(hash);
    const served = {
      model: 'm',
      engine: 'openai',
      openai: { base_url: 'http://127.0.0.1:8000/v1' },
    };
    expect(
      measurementConfigHash({ ...served, openai: { ...served.openai, api_key_env: 'KEY_A' } }),
    ).toBe(
      measurementConfigHash({ ...served, openai: { ...served.openai, api_key_env: 'KEY_B' } }),
    );
  });

  it('openai.ready_timeout_s (added later) changes no hash: an openai config keeps the hash it had', () => {
    const served = {
      model: 'm',
      engine: 'openai',
      openai: { base_url: 'http://127.0.0.1:8000/v1', concurrency: 8 },
    };
    // The hash this config had before ready_timeout_s existed.
    expect(measurementConfigHash(served)).toBe('44b675e6e0a74b66');
    for (const ready_timeout_s of [30, 5, 600]) {
      expect(
        measurementConfigHash({ ...served, openai: { ...served.openai, ready_timeout_s } }),
      ).toBe('44b675e6e0a74b66');
    }
  });

  it('openai.max_client_lag_ms (added later, default 5) changes no hash', () => {
    const served = {
      model: 'm',
      engine: 'openai',
      openai: { base_url: 'http://127.0.0.1:8000/v1', concurrency: 8 },
    };
    for (const max_client_lag_ms of [5, 1, 250]) {
      expect(
        measurementConfigHash({ ...served, openai: { ...served.openai, max_client_lag_ms } }),
      ).toBe('44b675e6e0a74b66');
    }
  });

  it('throws ConfigError for an invalid config', () => {
    expect(() => measurementConfigHash({ model: 'x' })).toThrow(ConfigError);
  });
});

describe('studyDesignHash', () => {
  const a = base;
  const b = { ...base, llamacpp: { batch_size: 512 } };

  it('depends on the set of distinct configs, not their order or copies', () => {
    expect(studyDesignHash([a, b])).toBe(studyDesignHash([b, a]));
    expect(studyDesignHash([a, b, a])).toBe(studyDesignHash([a, b]));
    expect(studyDesignHash([a])).not.toBe(studyDesignHash([a, b]));
    expect(studyDesignHash([a, b])).toMatch(/^[0-9a-f]{16}$/);
  });
});

// Cross-checked with Python: sha256(json.dumps(parsed config minus excluded fields, sort_keys=True,
// separators=(',', ':')))[:16].
const GOLDEN = '09eeccce9a910411';
