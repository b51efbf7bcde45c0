import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  parseExperimentConfig,
  parseRequestRecords,
  RequestRecordSchema,
  type ResidualCheck,
  runFiles,
} from '@llem/domain';
import type { Engine, EngineRequest, RequestRecord } from '@llem/engines';
import { describe, expect, it } from 'vitest';
import { type HarnessConfig, measureRun } from '../src/harness';
import { measuredRequests } from '../src/requests';
import { measureTask } from '../src/worker';
import { fakeEngine } from './support/fakes';

const dir = mkdtempSync(join(tmpdir(), 'llem-requests-'));
const quiet = { error() {}, warn() {}, info() {}, debug() {} };

const config = (over: Partial<HarnessConfig> = {}): HarnessConfig => ({
  engine: 'llamacpp',
  model: 'builtin:tiny',
  dataset: { synthetic: { n: 6, input_len: 8, output_len: 4, seed: 1 } },
  max_output_tokens: 4,
  warmup: { n: 3 },
  baseline: { enabled: false, duration_s: 1 },
  energy: { backend: 'none', sample_interval_ms: 20, devices: [0] },
  ...over,
});

/** The fake engine, remembering which prompts it was given for warmup and for the run. */
function recordingEngine(): Engine & { warmed: string[]; measured: string[] } {
  const base = fakeEngine({ runMs: 20 });
  const engine = Object.assign(base, {
    warmed: [] as string[],
    measured: [] as string[],
    warmup: async (requests: EngineRequest[]): Promise<RequestRecord[]> => {
      engine.warmed.push(...requests.map((r) => r.prompt));
      return fakeEngine().warmup(requests);
    },
    run: async (requests: EngineRequest[]) => {
      engine.measured.push(...requests.map((r) => r.prompt));
      return fakeEngine({ runMs: 20 }).run(requests);
    },
  });
  return engine;
}

const run = (cfg: HarnessConfig, engine: Engine) =>
  measureRun(
    { runId: 'r_c0', configHash: '0123456789abcdef', cycle: 0, config: cfg },
    { createEngine: async () => engine, cwd: dir, logger: quiet },
  );

describe('warmup never runs a measured prompt (any engine)', () => {
  it('synthetic dataset', async () => {
    const engine = recordingEngine();
    await run(config(), engine);
    expect(engine.warmed).toHaveLength(3);
    expect(engine.measured).toHaveLength(6);
    expect(engine.warmed.filter((p) => engine.measured.includes(p))).toEqual([]);
    // Same shape: as many words as the measured prompts.
    expect(engine.warmed.every((p) => p.split(' ').length === 8)).toBe(true);
  });

  it('file dataset, converging warmup (up to max_n requests)', async () => {
    const rows = Array.from({ length: 5 }, (_, i) => `file prompt number ${i} ${'w '.repeat(i)}`);
    writeFileSync(
      join(dir, 'rows.jsonl'),
      rows.map((p) => JSON.stringify({ prompt: p })).join('\n'),
    );
    const engine = recordingEngine();
    await run(
      config({
        dataset: 'rows.jsonl',
        warmup: { n: 2, cv_threshold: 0.01, window: 3, max_n: 8 },
      }),
      engine,
    );
    expect(engine.measured).toEqual(rows);
    expect(engine.warmed.length).toBeGreaterThanOrEqual(2);
    expect(engine.warmed.filter((p) => rows.includes(p))).toEqual([]);
  });
});

describe('per-request records', () => {
  it('one valid record per measured request: send time in the window, latencies, tokens, source', async () => {
    const engine = recordingEngine();
    const { result, requests } = await run(config(), engine);
    expect(requests).toHaveLength(6);
    expect(requests.map((r) => r.id)).toEqual([0, 1, 2, 3, 4, 5]);
    for (const r of requests) {
      expect(RequestRecordSchema.parse(r)).toEqual(r);
      // The fake engine: 10 ms TTFT, then a token every 2 ms, 4 tokens in all.
      expect(r.ttftMs).toBeCloseTo(10, 3);
      expect(r.chunkGapsMs).toEqual([2, 2, 2]);
      expect(r.e2eMs).toBeCloseTo(16, 3);
      expect(r.tpotMs).toBeCloseTo(2, 3);
      expect(r).toMatchObject({ outputTokens: 4, tokenSource: 'engine', retries: 0, error: null });
      expect(r.sentMs).toBeGreaterThanOrEqual(0);
      expect(r.sentMs).toBeLessThan(result.window.durationS * 1000);
    }
    expect(result.latency.tpotMs).toMatchObject({ p50: expect.closeTo(2, 3) });
  });

  it('open-loop records carry the scheduled send time, the client’s lateness and the connection wait', () => {
    const base = {
      firstTokenAt: 1012.5,
      tokenTimes: [],
      endedAt: 1020,
      inputTokens: 3,
      outputTokens: 1,
    };
    const [open, closed] = measuredRequests(
      [
        {
          ...base,
          id: 0,
          startedAt: 1004,
          scheduledAt: 1001,
          clientLagMs: 0.25,
          connectionWaitMs: 2.75,
        },
        { ...base, id: 1, startedAt: 1004 },
      ],
      1000,
      'server-usage',
    );
    expect(open).toMatchObject({
      sentMs: 4,
      scheduledMs: 1,
      clientLagMs: 0.25,
      connectionWaitMs: 2.75,
      ttftMs: 8.5,
    });
    expect(RequestRecordSchema.parse(open)).toEqual(open);
    expect(closed).not.toHaveProperty('scheduledMs');
    expect(closed).not.toHaveProperty('clientLagMs');
  });

  it('the worker writes them to runs/<key>.requests.jsonl beside the result and names the file', async () => {
    const runs = join(dir, 'study', 'runs');
    mkdirSync(runs, { recursive: true });
    const residualCheck: ResidualCheck = {
      status: 'skipped',
      thresholdMb: 100,
      devices: [],
      reason: 'test',
      checkedAt: new Date().toISOString(),
    };
    const key = 'abcdef0123456789_c0';
    const rel = runFiles(key);
    const at = (file: string) => join(dir, 'study', file);
    const files = {
      result: at(rel.result),
      error: at(rel.error),
      log: at(rel.log),
      timeseries: at(rel.timeseries),
      requests: at(rel.requests),
      serverLog: at(rel.serverLog),
      metrics: at(rel.metrics),
    };
    const task = {
      key,
      configHash: 'abcdef0123456789',
      cycle: 0,
      copy: 0,
      config: parseExperimentConfig(config()),
      studyDir: join(dir, 'study'),
      resultFile: files.result,
      timeseriesFile: files.timeseries,
      files,
      residualCheck,
      toolVersion: '0.0.0-test',
      attempt: 1,
    };
    const engine = recordingEngine();
    const result = await measureTask(
      task,
      { signal: new AbortController().signal, registerChild: () => undefined },
      { createEngine: async () => engine, logger: quiet, cwd: dir },
    );
    expect(result.extra.requestsFile).toBe('abcdef0123456789_c0.requests.jsonl');
    expect(files.requests).toBe(join(runs, 'abcdef0123456789_c0.requests.jsonl'));
    const { records, invalid } = parseRequestRecords(readFileSync(files.requests, 'utf8'));
    expect(invalid).toEqual([]);
    expect(records).toHaveLength(6);
    expect(records.every((r) => r.outputTokens === 4)).toBe(true);
  });
});
