import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RunResultSchema } from '@llem/domain';
import { startTestServer } from '@llem/test-server';
import { describe, expect, it } from 'vitest';
import { runLlem } from './support/llem';

// Dataset files are read by `llem config validate`, `llem run --dry-run` and `llem run` before
// anything runs: bad data or a file with no usable request is a config error (exit 2) naming
// the file, the line or entry and what was expected, never a stack trace.

function study(dataset: string, extra: string[] = []): string {
  const cwd = mkdtempSync(join(tmpdir(), 'llem-datasets-cli-'));
  writeFileSync(
    join(cwd, 'study.yaml'),
    [
      'name: workloads',
      'model: served',
      'engine: openai',
      `dataset: ${dataset}`,
      'max_output_tokens: 16',
      'openai: { base_url: "http://127.0.0.1:9/v1" }',
      ...extra,
      '',
    ].join('\n'),
  );
  return cwd;
}

const llem = (argv: string[], cwd: string) => runLlem(argv, { env: {}, cwd });

const pair = (q: string) => ({
  conversations: [
    { from: 'human', value: q },
    { from: 'gpt', value: 'an answer' },
  ],
});

describe('dataset files in llem config validate and llem run --dry-run', () => {
  it('validate reads a ShareGPT file and says what it makes, skipped entries counted', async () => {
    const cwd = study('{ path: data/sg.json, format: sharegpt }', [
      'sweep:',
      '  openai.concurrency: [1, 4]',
    ]);
    mkdirSync(join(cwd, 'data'));
    writeFileSync(
      join(cwd, 'data', 'sg.json'),
      JSON.stringify([pair('a'), { conversations: [] }, pair('b'), { id: 'no list' }]),
    );
    const { code, stdout, stderr } = await llem(['config', 'validate', 'study.yaml'], cwd);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toContain(
      `Datasets:\n  sharegpt ${join(cwd, 'data', 'sg.json')}: 2 requests (4 entries, skipped 1 with no human turn, 1 with no conversations or messages list) [every config]\n`,
    );
    const json = await llem(['config', 'validate', '--json', 'study.yaml'], cwd);
    expect(JSON.parse(json.stdout).datasets).toEqual([
      expect.objectContaining({ format: 'sharegpt', requests: 2, labels: expect.any(Array) }),
    ]);
  });

  it('a file with no usable request is exit 2 in validate and dry-run, naming the file and why', async () => {
    const cwd = study('{ path: sg.json, format: sharegpt }');
    writeFileSync(join(cwd, 'sg.json'), JSON.stringify([{ conversations: [] }]));
    for (const argv of [
      ['config', 'validate', 'study.yaml'],
      ['run', 'study.yaml', '--dry-run'],
    ]) {
      const { code, stdout, stderr } = await llem(argv, cwd);
      expect(code).toBe(2);
      expect(stdout).toBe('');
      expect(stderr).toBe(
        `llem: study.yaml: dataset: ${join(cwd, 'sg.json')}: no usable request: 1 entry (skipped 1 with no human turn); expected conversations whose first human turn is followed by an answer\n`,
      );
    }
  });

  it('bad data names the line and what was expected, before a study directory exists', async () => {
    const cwd = study('{ path: trace.jsonl, format: trace }');
    writeFileSync(
      join(cwd, 'trace.jsonl'),
      '{"timestamp": 0, "input_length": 10, "output_length": 2}\n{"timestamp": "soon", "input_length": 10, "output_length": 2}\n',
    );
    const { code, stderr } = await llem(['run', 'study.yaml'], cwd);
    expect(code).toBe(2);
    expect(stderr).toContain(
      `llem: study.yaml: dataset: ${join(cwd, 'trace.jsonl')}:2: "timestamp" must be a number ≥ 0 (ms from the trace's start)`,
    );
    expect(stderr).not.toMatch(/\n\s+at /);
    expect(existsSync(join(cwd, 'results'))).toBe(false);
  });

  it('dry-run shows a trace with its span', async () => {
    const cwd = study('{ path: trace.jsonl, format: trace, time_scale: 2 }');
    writeFileSync(
      join(cwd, 'trace.jsonl'),
      [0, 500, 1500]
        .map((t) => JSON.stringify({ timestamp: t, input_length: 8, output_length: 2 }))
        .join('\n'),
    );
    const { code, stdout } = await llem(['run', 'study.yaml', '--dry-run'], cwd);
    expect(code).toBe(0);
    expect(stdout).toContain(
      `Datasets:\n  trace ${join(cwd, 'trace.jsonl')}: 3 requests over 3.0 s (time_scale 2)\n`,
    );
    // The duration estimate counts the trace's requests and its span.
    const json = JSON.parse((await llem(['run', 'study.yaml', '--dry-run', '--json'], cwd)).stdout);
    expect(json.datasets).toEqual([
      expect.objectContaining({ format: 'trace', requests: 3, durationS: 3 }),
    ]);
    // 10 s overhead + (3 requests + 2 warmup) × 16 tokens / 25 tokens/s + the 3 s span.
    expect(json.estimate.runsS).toBeCloseTo(10 + (5 * 16) / 25 + 3, 6);
  });

  it('a request_rate beside a trace is a config error naming the field', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'llem-datasets-cli-'));
    writeFileSync(
      join(cwd, 'study.yaml'),
      [
        'name: t',
        'model: served',
        'engine: openai',
        'dataset: { path: trace.jsonl, format: trace }',
        'openai: { base_url: "http://127.0.0.1:9/v1", request_rate: 4 }',
        '',
      ].join('\n'),
    );
    const { code, stderr } = await llem(['config', 'validate', 'study.yaml'], cwd);
    expect(code).toBe(2);
    expect(stderr).toMatch(/openai\.request_rate: does not apply with a trace dataset/);
  });
});

describe('llem run with a dataset file', () => {
  it('runs a ShareGPT subset from a path relative to the study file; the result describes it', async () => {
    const server = await startTestServer({ lifetimeMs: 60_000 });
    try {
      const cwd = mkdtempSync(join(tmpdir(), 'llem-datasets-run-'));
      mkdirSync(join(cwd, 'data'));
      const entries = Array.from({ length: 12 }, (_, i) => ({
        conversations: [
          { from: 'human', value: `question number ${i} ${'about energy '.repeat(i)}`.trim() },
          {
            from: 'gpt',
            value: 'one two three four five six seven eight nine ten'.slice(0, 4 + 4 * i),
          },
        ],
      }));
      writeFileSync(
        join(cwd, 'data', 'sg.json'),
        JSON.stringify([...entries, { conversations: [] }]),
      );
      writeFileSync(
        join(cwd, 'study.yaml'),
        [
          'name: sharegpt',
          'model: test-model',
          'engine: openai',
          `openai: { base_url: "${server.baseUrl}", concurrency: 2 }`,
          'dataset: { path: data/sg.json, format: sharegpt, n: 5, seed: 3 }',
          'max_output_tokens: 6',
          'warmup: { n: 1 }',
          'energy: { backend: none }',
          '',
        ].join('\n'),
      );
      // Run from elsewhere: the dataset path resolves from the study file's folder.
      const run = await runLlem(['run', join(cwd, 'study.yaml'), '--output', join(cwd, 'out')], {
        env: { ...process.env, LLEM_NVML_LIBRARY: '/nonexistent/libnvidia-ml.so.1' },
        cwd: tmpdir(),
      });
      expect(run.stderr).toMatch(/completed/);
      expect(run.code).toBe(0);
      const [dirName] = readdirSync(join(cwd, 'out'));
      const runs = join(cwd, 'out', dirName as string, 'runs');
      const resultName = readdirSync(runs).find((f) => /_c0\.json$/.test(f)) as string;
      const result = RunResultSchema.parse(
        JSON.parse(readFileSync(join(runs, resultName), 'utf8')),
      );
      expect(result.workload).toMatchObject({
        format: 'sharegpt',
        requests: 5,
        lengths: 'exact',
        entries: { total: 13, usable: 12, used: 5, skipped: 1, filtered: 0 },
      });
      // The answers' lengths (words, by the server's tokenizer) capped at max_output_tokens.
      expect(result.workload?.outputLength.requested?.max).toBeLessThanOrEqual(6);
      expect(result.workload?.inputLength.achieved).toEqual(result.workload?.inputLength.requested);
      expect(result.inputs?.dataset?.path).toBe(join(cwd, 'data', 'sg.json'));
    } finally {
      await server.close();
    }
  }, 60_000);
});
