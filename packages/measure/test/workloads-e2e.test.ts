import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseExperimentConfig, RunResultSchema } from '@llem/domain';
import { createLlamaCppEngine, type Engine } from '@llem/engines';
import { noopLogger } from '@llem/resilience';
import { startTestServer, type TestServer } from '@llem/test-server';
import { afterEach, describe, expect, it } from 'vitest';
import { buildWorkload, loadDataset } from '../src/dataset';
import { type HarnessConfig, measureRun } from '../src/harness';

// Real workloads through the harness and real engines: a trace replayed against the test server
// (which logs when each request arrived), conversations in turn order, and shared prefixes
// checked on the token ids of llama.cpp's own tokenizer.

const dir = mkdtempSync(join(tmpdir(), 'llem-workloads-e2e-'));
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

async function serve(options: Parameters<typeof startTestServer>[0]): Promise<TestServer> {
  const server = await startTestServer({ lifetimeMs: 60_000, ...options });
  closers.push(() => server.close());
  return server;
}

const run = <C extends HarnessConfig>(config: C, createEngine?: () => Promise<Engine>) =>
  measureRun(
    { runId: 'w_c0', configHash: '0123456789abcdef', cycle: 0, config },
    { logger: noopLogger, cwd: dir, ...(createEngine ? { createEngine } : {}) },
  );

const common = {
  warmup: { n: 1 },
  baseline: { enabled: false, duration_s: 1 },
  energy: { backend: 'none' as const, sample_interval_ms: 100, devices: [0] },
};

describe('a trace replayed against the test server', () => {
  it('sends bursts together and keeps the gaps, as the arrival log shows; the result describes the workload', async () => {
    // Bursts of 5 at 0 ms and 400 ms, a lone request at 1200 ms, one more burst at 1500 ms.
    const timestamps = [0, 0, 0, 0, 0, 400, 400, 400, 400, 400, 1200, 1500, 1500, 1500];
    const trace = timestamps.map((timestamp, i) =>
      JSON.stringify({
        timestamp,
        input_length: 600 + i,
        output_length: 6,
        hash_ids: i % 2 === 0 ? [7, 100 + i] : [8, 100 + i],
      }),
    );
    writeFileSync(join(dir, 'trace.jsonl'), trace.join('\n'));
    const log = join(dir, 'arrivals.jsonl');
    const server = await serve({ paceMs: 20, logArrivals: log });
    const { result, requests } = await run({
      engine: 'openai',
      model: 'test-model',
      dataset: { path: 'trace.jsonl', format: 'trace', time_scale: 1 },
      max_output_tokens: 64,
      ...common,
      openai: { base_url: server.baseUrl },
    });
    expect(RunResultSchema.parse(result)).toEqual(result);
    expect(result.workload).toMatchObject({
      format: 'trace',
      requests: 14,
      lengths: 'exact',
      trace: { durationS: 1.5, timeScale: 1, sharedBlocks: 2 },
    });
    expect(result.workload?.lengthSource).toMatch(/server \/tokenize/);
    // The test server counts a word a token: every prompt arrived at exactly its length.
    expect(result.workload?.inputLength.achieved).toEqual(result.workload?.inputLength.requested);
    expect(result.workload?.inputLength.requested).toMatchObject({ min: 600, max: 613 });
    expect(result.workload?.outputLength.achieved).toMatchObject({ min: 6, max: 6 });
    expect(result.extra.load).toMatchObject({ mode: 'trace', requests: 14 });
    expect(requests).toHaveLength(14);

    // The arrival log: the warmup request first, then the trace relative to its first arrival.
    const arrivals = readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { tMs: number; path: string; promptTokens: number })
      .filter((a) => a.path === '/v1/completions')
      .slice(1);
    expect(arrivals.map((a) => a.promptTokens).sort((a, b) => a - b)).toEqual(
      timestamps.map((_, i) => 600 + i),
    );
    const t0 = Math.min(...arrivals.map((a) => a.tMs));
    for (const a of arrivals) {
      const planned = timestamps[a.promptTokens - 600] as number;
      // Never early; late by no more than a loaded machine's timer slack.
      expect(a.tMs - t0).toBeGreaterThanOrEqual(planned - 40);
      expect(a.tMs - t0).toBeLessThan(planned + 350);
    }
  }, 30_000);
});

describe('conversations through the harness', () => {
  it('sends each turn after the previous one with the history in front (a prompt cache hits it)', async () => {
    const server = await serve({ paceMs: 5, promptCache: true });
    const { result, requests } = await run({
      engine: 'openai',
      model: 'test-model',
      dataset: { synthetic: { n: 3, input_len: 10, output_len: 4, seed: 2, turns: 3 } },
      max_output_tokens: 4,
      ...common,
      warmup: { n: 0 },
      openai: { base_url: server.baseUrl, concurrency: 3 },
    });
    expect(result.workload).toMatchObject({
      format: 'synthetic',
      requests: 9,
      lengths: 'exact',
      conversations: { count: 3, turns: 3 },
    });
    expect(requests.map((r) => r.inputTokens)).toEqual([10, 10, 10, 24, 24, 24, 38, 38, 38]);
    // Each later turn arrived after its previous turn's record ended, and found the previous
    // turn's prompt in the cache.
    const seen = new Map(server.requests.map((r) => [r.prompt, r]));
    const sorted = [...server.requests].sort((a, b) => a.receivedAt - b.receivedAt);
    for (const r of server.requests) {
      if (r.promptTokens === 10) continue;
      const previousTokens = r.promptTokens - 14;
      const previous = sorted.find(
        (p) => p.promptTokens === previousTokens && r.prompt.startsWith(`${p.prompt} `),
      );
      expect(previous).toBeDefined();
      expect(r.receivedAt).toBeGreaterThan(previous?.receivedAt as number);
      expect(r.cachedTokens).toBeGreaterThanOrEqual(previousTokens);
    }
    expect(seen.size).toBe(9);
  }, 30_000);
});

describe('shared prefixes on llama.cpp token ids (builtin:tiny)', () => {
  it('prompts of a group share exactly prefix_len tokens; every prompt is exactly input_len tokens', async () => {
    const config = parseExperimentConfig({
      model: 'builtin:tiny',
      engine: 'llamacpp',
      dataset: {
        synthetic: {
          n: 6,
          input_len: 48,
          output_len: 2,
          seed: 11,
          prefix_len: 32,
          prefix_groups: 2,
        },
      },
      max_output_tokens: 2,
      warmup: { n: 0 },
      energy: { backend: 'none' },
      llamacpp: { threads: 1, context_size: 128 },
    });
    const engine = createLlamaCppEngine(config, {
      logger: noopLogger,
      signal: new AbortController().signal,
    });
    closers.push(() => engine.dispose());
    await engine.load();
    const probe = await engine.tokenizer?.();
    if (probe === undefined || 'unavailable' in probe) throw new Error('no tokenizer');
    const workload = await buildWorkload(loadDataset(config.dataset), {
      maxOutputTokens: 2,
      tokenizer: probe,
    });
    expect(workload.lengths).toBe('exact');
    const ids = await Promise.all(workload.requests.map((r) => probe.tokenize(r.prompt)));
    expect(ids.map((t) => t.length)).toEqual(Array(6).fill(48));
    const prefix = (i: number) => (ids[i] as number[]).slice(0, 32);
    for (const i of [2, 4]) expect(prefix(i)).toEqual(prefix(0));
    for (const i of [3, 5]) expect(prefix(i)).toEqual(prefix(1));
    expect(prefix(1)).not.toEqual(prefix(0));
    // Past the prefix, each prompt is its own from the first token on.
    const own = new Set(ids.map((t) => t[32]));
    expect(own.size).toBeGreaterThan(1);
    expect(new Set(ids.map((t) => t.slice(32).join(','))).size).toBe(6);

    // Through the harness: the result says the lengths are exact, and llama.cpp's own count of
    // each prompt is input_len plus its BOS.
    const { result } = await run(config as unknown as HarnessConfig, async () => engine);
    expect(result.workload).toMatchObject({
      lengths: 'exact',
      lengthSource: 'llama.cpp tokenizer (builtin:tiny)',
      prefix: { tokens: 32, groups: 2 },
      inputLength: {
        requested: { count: 6, min: 48, max: 48 },
        achieved: { count: 6, min: 49, max: 49 },
      },
      outputLength: { achieved: { min: 2, max: 2 } },
    });
  }, 120_000);
});
