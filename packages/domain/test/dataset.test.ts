import { describe, expect, it } from 'vitest';
import {
  type ConfigIssue,
  datasetFormat,
  ExperimentConfigSchema,
  measurementConfigHash,
  PartialExperimentSchema,
} from '../src/index';
import { validate } from '../src/internal/issues';

const tiny = { model: 'builtin:tiny', engine: 'llamacpp' } as const;

function datasetOf(dataset: unknown) {
  return ExperimentConfigSchema.parse({ ...tiny, dataset }).dataset;
}

function issuesOf(dataset: unknown, extra: Record<string, unknown> = {}): ConfigIssue[] {
  const result = validate(ExperimentConfigSchema, { ...tiny, ...extra, dataset });
  if (result.ok) throw new Error('expected the config to be invalid');
  return result.issues;
}

describe('dataset formats', () => {
  it('keeps the shape (and hash) a .jsonl dataset always had; format: jsonl written out changes nothing', () => {
    const plain = { ...tiny, dataset: 'prompts.jsonl' };
    const explicit = {
      ...tiny,
      dataset: { path: 'prompts.jsonl', format: 'jsonl', column: 'prompt' },
    };
    expect(datasetOf('prompts.jsonl')).toEqual({ path: 'prompts.jsonl', column: 'prompt' });
    expect(measurementConfigHash(explicit)).toBe(measurementConfigHash(plain));
    expect(datasetOf({ path: 'p.jsonl', column: 'text', output_len_column: 'out' })).toEqual({
      path: 'p.jsonl',
      column: 'text',
      output_len_column: 'out',
    });
  });

  it('reads sharegpt from .json or .jsonl with only the keys given', () => {
    expect(datasetOf({ path: 'sg.json', format: 'sharegpt' })).toEqual({
      path: 'sg.json',
      format: 'sharegpt',
    });
    expect(
      datasetOf({
        path: 'sg.jsonl',
        format: 'sharegpt',
        n: 100,
        seed: 0,
        min_input_len: 4,
        max_input_len: 1024,
        max_output_len: 512,
      }),
    ).toEqual({
      path: 'sg.jsonl',
      format: 'sharegpt',
      n: 100,
      seed: 0,
      min_input_len: 4,
      max_input_len: 1024,
      max_output_len: 512,
    });
  });

  it('gives a trace its time_scale (1 unless set), so writing 1 out keeps the hash', () => {
    expect(datasetOf({ path: 't.jsonl', format: 'trace' })).toEqual({
      path: 't.jsonl',
      format: 'trace',
      time_scale: 1,
    });
    expect(measurementConfigHash({ ...tiny, dataset: { path: 't.jsonl', format: 'trace' } })).toBe(
      measurementConfigHash({
        ...tiny,
        dataset: { path: 't.jsonl', format: 'trace', time_scale: 1 },
      }),
    );
    expect(datasetFormat(datasetOf({ path: 't.jsonl', format: 'trace', time_scale: 0.5 }))).toBe(
      'trace',
    );
  });

  it.each([
    [{ path: 'sg.json' }, 'dataset.format', /needs its format: give format: sharegpt/],
    ['sg.json', 'dataset.format', /needs its format/],
    [{ path: 'p.json', format: 'trace' }, 'dataset.path', /must end in \.jsonl/],
    [{ path: 'p.txt' }, 'dataset.path', /\.jsonl or \.json/],
    [{ path: 'p.jsonl', n: 5 }, 'dataset.n', /only applies to format: sharegpt.*format is jsonl/],
    [
      { path: 'p.jsonl', format: 'sharegpt', column: 'x' },
      'dataset.column',
      /only applies to format: jsonl/,
    ],
    [{ path: 'p.jsonl', format: 'sharegpt', time_scale: 2 }, 'dataset.time_scale', /trace/],
    [{ path: 't.jsonl', format: 'trace', time_scale: 0 }, 'dataset.time_scale', /> 0/],
    [
      { path: 'p.jsonl', format: 'sharegpt', min_input_len: 10, max_input_len: 5 },
      'dataset.min_input_len',
      /at most max_input_len \(5\)/,
    ],
    [{ synthetic: {}, format: 'trace' }, 'dataset.format', /not to synthetic/],
    [{ synthetic: {}, n: 3 }, 'dataset.n', /not to synthetic/],
  ])('rejects %j at %s', (dataset, path, message) => {
    const issue = issuesOf(dataset).find((i) => i.path === path);
    expect(issue?.message).toMatch(message);
  });

  it('refuses openai.request_rate beside a trace: the trace is the arrival process', () => {
    const config = {
      model: 'm',
      engine: 'openai',
      openai: { base_url: 'http://127.0.0.1:8000/v1', request_rate: 5 },
      dataset: { path: 't.jsonl', format: 'trace' },
    };
    const result = validate(ExperimentConfigSchema, config);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.issues.map((i) => i.path)).toEqual(['openai.request_rate']);
    expect(
      validate(ExperimentConfigSchema, {
        ...config,
        openai: { base_url: 'http://127.0.0.1:8000/v1' },
      }).ok,
    ).toBe(true);
  });
});

describe('synthetic prefixes and turns', () => {
  const base = { n: 8, input_len: 64, output_len: 16, seed: 1 };

  it('leaves new keys out of a config that does not use them (every existing hash holds)', () => {
    expect(datasetOf({ synthetic: base })).toEqual({ synthetic: base });
    // turns: 1 is one turn, as before: the same measurement, the same hash.
    expect(datasetOf({ synthetic: { ...base, turns: 1 } })).toEqual({ synthetic: base });
    expect(measurementConfigHash({ ...tiny, dataset: { synthetic: { ...base, turns: 1 } } })).toBe(
      measurementConfigHash({ ...tiny, dataset: { synthetic: base } }),
    );
  });

  it('states the group count of a prefix (1 unless given) and keeps turns > 1', () => {
    expect(datasetOf({ synthetic: { ...base, prefix_len: 32 } })).toEqual({
      synthetic: { ...base, prefix_len: 32, prefix_groups: 1 },
    });
    expect(
      measurementConfigHash({ ...tiny, dataset: { synthetic: { ...base, prefix_len: 32 } } }),
    ).toBe(
      measurementConfigHash({
        ...tiny,
        dataset: { synthetic: { ...base, prefix_len: 32, prefix_groups: 1 } },
      }),
    );
    expect(
      datasetOf({ synthetic: { ...base, prefix_len: 32, prefix_groups: 4, turns: 3 } }),
    ).toEqual({
      synthetic: { ...base, prefix_len: 32, prefix_groups: 4, turns: 3 },
    });
  });

  it.each([
    [{ prefix_len: 64 }, 'dataset.synthetic.prefix_len', /less than input_len \(64\)/],
    [{ prefix_groups: 2 }, 'dataset.synthetic.prefix_groups', /only applies with prefix_len/],
    [{ prefix_len: 8, prefix_groups: 9 }, 'dataset.synthetic.prefix_groups', /at most n \(8\)/],
    [{ turns: 0 }, 'dataset.synthetic.turns', /≥ 1|> 0/],
  ])('rejects %j at %s', (extra, path, message) => {
    const issue = issuesOf({ synthetic: { ...base, ...extra } }).find((i) => i.path === path);
    expect(issue?.message).toMatch(message);
  });

  it('type-checks the new keys at their place in a study file', () => {
    expect(
      PartialExperimentSchema.safeParse({
        dataset: { path: 'sg.json', format: 'sharegpt', n: 10 },
      }).success,
    ).toBe(true);
    expect(
      PartialExperimentSchema.safeParse({ dataset: { path: 'sg.json', format: 'csv' } }).success,
    ).toBe(false);
  });
});
