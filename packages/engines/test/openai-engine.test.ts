import { type DispatchSummary, DispatchSummarySchema, ExperimentConfigSchema } from '@llem/domain';
import { type Script, startTestServer, type TestServer } from '@llem/test-server';
import { afterEach, describe, expect, it } from 'vitest';
import type { EngineRequest } from '../src/engine';
import {
  createOpenAIEngine,
  type OpenAIConfig,
  type OpenAIEngineOptions,
} from '../src/openai/index';

const servers: TestServer[] = [];
const disposers: Array<() => Promise<void>> = [];

afterEach(async () => {
  await Promise.all(disposers.splice(0).map((d) => d()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function server(
  scenario: (index: number, body: Record<string, unknown> | null) => Script,
  options: { models?: string[]; modelsStatus?: number[] } = {},
): Promise<TestServer> {
  const s = await startTestServer({
    scenario: (r) => scenario(r.index, r.body),
    lifetimeMs: 30_000,
    ...options,
  });
  servers.push(s);
  return s;
}

function engineFor(
  s: TestServer | string,
  section: Partial<OpenAIConfig> = {},
  options: Partial<OpenAIEngineOptions> = {},
) {
  const engine = createOpenAIEngine(
    {
      openai: {
        base_url: typeof s === 'string' ? s : s.baseUrl,
        model: 'test-model',
        ...(section.request_rate === undefined ? { concurrency: 1 } : {}),
        ...section,
      },
    },
    {
      logger: options.logger ?? { error() {}, warn() {}, info() {}, debug() {} },
      signal: options.signal ?? new AbortController().signal,
      startupRetry: { retries: 2, delayMs: 20, factor: 1, maxDelayMs: 20 },
      ...options,
    },
  );
  disposers.push(() => engine.dispose());
  return engine;
}

function prompts(n: number, maxOutputTokens = 16): EngineRequest[] {
  return Array.from({ length: n }, (_, id) => ({ id, prompt: `prompt ${id}`, maxOutputTokens }));
}

function itls(record: { firstTokenAt: number | null; tokenTimes: number[] }): number[] {
  const times = [record.firstTokenAt!, ...record.tokenTimes];
  return times.slice(1).map((t, i) => t - times[i]!);
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
};

describe('openai engine: load', () => {
  it('checks /models and reports a remote backend and the base url', async () => {
    const s = await server(() => ({}), { models: ['test-model', 'other'] });
    const info = await engineFor(s).load();
    expect(info).toMatchObject({
      engine: 'openai',
      backend: 'remote',
      model: 'test-model',
      parameterCount: null,
      details: { baseUrl: s.baseUrl, modelListed: true, servedModels: ['test-model', 'other'] },
    });
    expect(s.modelsCalls).toHaveLength(1);
  });

  it('waits while the server is still loading (503), saying so, and then succeeds', async () => {
    const progress: string[] = [];
    const console: string[] = [];
    const s = await server(() => ({}), { modelsStatus: [503, 503] });
    const engine = engineFor(
      s,
      {},
      {
        logger: { error() {}, warn() {}, info: (m: string) => progress.push(m), debug() {} },
        // The same lines reach the console through the context's progress hook.
        progress: (m: string) => console.push(m),
      },
    );
    await expect(engine.load()).resolves.toMatchObject({ backend: 'remote' });
    expect(s.modelsCalls).toHaveLength(3);
    expect(progress.filter((m) => /not ready after/.test(m))).toEqual([
      expect.stringMatching(
        /^openai engine: http:\/\/127\.0\.0\.1:\d+\/v1 not ready after \d+\.\d s of 30 s: server still loading \(GET .*\/models answered HTTP 503: .*\); trying again in/,
      ),
      expect.stringMatching(/not ready after/),
    ]);
    expect(console).toEqual(progress.filter((m) => /not ready after/.test(m)));
  });

  it('retries connection refused until a late server starts listening', async () => {
    const probe = await startTestServer();
    const port = probe.port;
    await probe.close();
    const engine = engineFor(
      `http://127.0.0.1:${port}/v1`,
      {},
      {
        startupRetry: { retries: 20, delayMs: 50, factor: 1, maxDelayMs: 50 },
      },
    );
    const loading = engine.load();
    await new Promise((resolve) => setTimeout(resolve, 200));
    const late = await startTestServer({ port, lifetimeMs: 30_000 });
    servers.push(late);
    await expect(loading).resolves.toMatchObject({ backend: 'remote' });
    expect(late.modelsCalls.length).toBeGreaterThanOrEqual(1);
  });

  it('fails with a clear EngineError when nothing ever listens', async () => {
    const probe = await startTestServer();
    await probe.close();
    const engine = engineFor(`http://127.0.0.1:${probe.port}/v1`);
    await expect(engine.load()).rejects.toMatchObject({
      name: 'EngineError',
      code: 'UNREACHABLE',
      message: expect.stringMatching(
        /was not ready after 3 attempts in .* \(openai\.ready_timeout_s 30\): connection refused \(ECONNREFUSED: .* on GET .*\/models\)\. Is the server running at openai\.base_url\?/,
      ),
    });
  });

  it('gives up after openai.ready_timeout_s with the cause, logging progress on the way', async () => {
    const probe = await startTestServer();
    await probe.close();
    const progress: string[] = [];
    const engine = engineFor(
      `http://127.0.0.1:${probe.port}/v1`,
      { ready_timeout_s: 1.5 },
      {
        // The production backoff (250 ms growing to 2 s), bounded by the ready timeout.
        startupRetry: {},
        logger: { error() {}, warn() {}, info: (m: string) => progress.push(m), debug() {} },
      },
    );
    const t0 = performance.now();
    const error = await engine.load().catch((e: unknown) => e);
    const waited = performance.now() - t0;
    expect(error).toMatchObject({ name: 'EngineError', code: 'UNREACHABLE' });
    expect((error as Error).message).toMatch(
      /\(openai\.ready_timeout_s 1\.5\): connection refused \(ECONNREFUSED/,
    );
    // Gave up within the budget (plus scheduling slack), not after minutes.
    expect(waited).toBeLessThan(1500 + 3000);
    expect(progress.length).toBeGreaterThanOrEqual(2);
    expect(progress[0]).toMatch(/not ready after \d+\.\d s of 1\.5 s: connection refused/);
  });

  it('a host that does not resolve fails at once with the DNS cause, not after the timeout', async () => {
    const engine = engineFor('http://llem-no-such-host.invalid:8000/v1', { ready_timeout_s: 30 });
    const t0 = performance.now();
    await expect(engine.load()).rejects.toMatchObject({
      name: 'EngineError',
      code: 'DNS',
      message: expect.stringMatching(/DNS lookup failed \(ENOTFOUND: .*llem-no-such-host\.invalid/),
    });
    expect(performance.now() - t0).toBeLessThan(10_000);
  });

  it('TLS spoken to a plain-HTTP server fails at once with the TLS cause', async () => {
    const s = await server(() => ({}));
    const engine = engineFor(`https://127.0.0.1:${s.port}/v1`);
    await expect(engine.load()).rejects.toMatchObject({
      name: 'EngineError',
      code: 'TLS',
      message: expect.stringMatching(/TLS handshake failed \(EPROTO: /),
    });
    expect(s.modelsCalls).toHaveLength(0);
  });

  it('401 fails at once with AUTH and says what to set', async () => {
    const s = await startTestServer({ apiKey: 'sekrit', lifetimeMs: 30_000 });
    servers.push(s);
    await expect(engineFor(s).load()).rejects.toMatchObject({
      name: 'EngineError',
      code: 'AUTH',
      message: expect.stringContaining(
        'answered HTTP 401; set openai.api_key_env to the name of the environment variable holding the key',
      ),
    });
  });

  it('a model the server does not serve (404, as vLLM answers) fails with MODEL_NOT_FOUND', async () => {
    const s = await startTestServer({ strictModel: true, models: ['served'], lifetimeMs: 30_000 });
    servers.push(s);
    await expect(engineFor(s, { model: 'typo-model' }).load()).rejects.toMatchObject({
      name: 'EngineError',
      code: 'MODEL_NOT_FOUND',
      message: expect.stringMatching(
        /answered HTTP 404 for model typo-model: .*The model `typo-model` does not exist/,
      ),
    });
  });

  it('a model not listed but accepted (llama-server serves any name) passes after a one-token probe', async () => {
    const s = await server(() => ({ tokens: 1 }), { models: ['/models/llama.gguf'] });
    const info = await engineFor(s, { model: 'whatever' }).load();
    expect(info.details).toMatchObject({
      modelListed: false,
      servedModels: ['/models/llama.gguf'],
    });
    expect(s.requests).toHaveLength(1);
    expect(s.requests[0]!.body).toMatchObject({ model: 'whatever', max_tokens: 1, stream: false });
  });

  it('names the env var when the API key is missing', async () => {
    const s = await server(() => ({}));
    const engine = engineFor(s, { api_key_env: 'LLEM_TEST_ABSENT_KEY' }, { env: {} });
    await expect(engine.load()).rejects.toMatchObject({
      name: 'EngineError',
      code: 'API_KEY_MISSING',
      message: expect.stringContaining('LLEM_TEST_ABSENT_KEY'),
    });
  });

  it('validates the section with the study schema: ConfigError naming the field', () => {
    expect(() => engineFor('http://127.0.0.1:1/v1', { concurrency: 2, request_rate: 3 })).toThrow(
      expect.objectContaining({
        name: 'ConfigError',
        message: expect.stringContaining(
          'openai.request_rate: give openai.concurrency or openai.request_rate, not both',
        ),
      }),
    );
    expect(() => engineFor('ftp://x/v1')).toThrow(/openai\.base_url: must be an http\(s\) URL/);
    expect(() => engineFor('http://127.0.0.1:1/v1', { concurrency: 0 })).toThrow(
      /openai\.concurrency/,
    );
    expect(() =>
      createOpenAIEngine(
        { openai: { base_url: 'http://127.0.0.1:1/v1' } },
        {
          logger: { error() {}, warn() {}, info() {}, debug() {} },
          signal: new AbortController().signal,
        },
      ),
    ).toThrow(/openai\.model: is required/);
  });

  it('applies the study defaults: closed loop with one request in flight', () => {
    const engine = createOpenAIEngine(
      { model: 'm', openai: { base_url: 'http://127.0.0.1:1/v1/' } },
      {
        logger: { error() {}, warn() {}, info() {}, debug() {} },
        signal: new AbortController().signal,
      },
    );
    expect(engine.config).toMatchObject({
      baseUrl: 'http://127.0.0.1:1/v1',
      model: 'm',
      mode: { kind: 'concurrency', concurrency: 1 },
      endpoint: 'completions',
      requestTimeoutMs: 120_000,
      maxFailureRate: 0,
      slo: null,
    });
  });
});

describe('openai engine: streaming and timing', () => {
  it('measures TTFT, ITL and E2E against the server timings (completions)', async () => {
    const s = await server(() => ({ firstDelayMs: 120, interChunkMs: 40, tokens: 6 }));
    const engine = engineFor(s);
    await engine.load();
    const outcome = await engine.run(prompts(2));
    expect(outcome.requests).toHaveLength(2);
    for (const [i, r] of outcome.requests.entries()) {
      const written = s.requests[i]!.chunkWrittenAt;
      expect(r.error).toBeUndefined();
      const ttft = r.firstTokenAt! - r.startedAt;
      // The server waited 120 ms before the first token; the client cannot see it sooner.
      expect(ttft).toBeGreaterThanOrEqual(119);
      expect(ttft).toBeLessThan(120 + 400);
      // The client saw the first token after the server wrote it, and not long after.
      expect(r.firstTokenAt!).toBeGreaterThanOrEqual(written[0]!);
      expect(r.firstTokenAt! - written[0]!).toBeLessThan(100);
      // 6 tokens → 5 ITLs, none of them the TTFT; they track the server's actual write gaps.
      const gaps = itls(r);
      expect(gaps).toHaveLength(5);
      const serverGaps = written.slice(1).map((t, k) => t - written[k]!);
      expect(Math.abs(median(gaps) - median(serverGaps))).toBeLessThan(15);
      expect(median(gaps)).toBeGreaterThanOrEqual(35);
      expect(r.endedAt).toBeGreaterThanOrEqual(r.tokenTimes.at(-1)!);
      expect(r.endedAt - r.startedAt).toBeGreaterThanOrEqual(120 + 5 * 40 - 5);
      expect(r.outputTokens).toBe(6);
      expect(r.inputTokens).toBe(7);
    }
    expect(outcome.outputTokens).toBe(12);
    expect(outcome.inputTokens).toBe(14);
    expect(outcome.tokenCountSource).toBe('server-usage');
  });

  it('sends the OpenAI request shape with include_usage and ignore_eos', async () => {
    const s = await server(() => ({ tokens: 2 }), { models: ['fallback-name'] });
    const engine = createOpenAIEngine(
      {
        model: 'fallback-name',
        openai: {
          base_url: s.baseUrl,
          endpoint: 'chat',
          concurrency: 1,
          ignore_eos: true,
        },
        decoder: { preset: 'deterministic', seed: 3, top_k: 1 },
      },
      {
        logger: { error() {}, warn() {}, info() {}, debug() {} },
        signal: new AbortController().signal,
      },
    );
    disposers.push(() => engine.dispose());
    await engine.load();
    await engine.run([{ id: 0, prompt: 'hello', maxOutputTokens: 9 }]);
    expect(s.requests[0]!.path).toBe('/v1/chat/completions');
    expect(s.requests[0]!.body).toEqual({
      model: 'fallback-name',
      messages: [{ role: 'user', content: 'hello' }],
      max_tokens: 9,
      stream: true,
      stream_options: { include_usage: true },
      // deterministic preset: greedy, so the top_k extension is not sent
      temperature: 0,
      top_p: 1,
      seed: 3,
      ignore_eos: true,
    });
  });

  it('takes a parsed study config as is; the standard preset sends the sampling extensions', async () => {
    const s = await server(() => ({ tokens: 1 }), { models: ['served-model'] });
    const config = ExperimentConfigSchema.parse({
      model: 'served-model',
      engine: 'openai',
      decoder: { preset: 'standard' },
      openai: { base_url: s.baseUrl, concurrency: 1 },
    });
    if (config.engine !== 'openai') throw new Error('unreachable');
    const engine = createOpenAIEngine(config, {
      logger: { error() {}, warn() {}, info() {}, debug() {} },
      signal: new AbortController().signal,
    });
    disposers.push(() => engine.dispose());
    await engine.load();
    await engine.run(prompts(1, 4));
    expect(s.requests[0]!.body).toMatchObject({
      model: 'served-model',
      prompt: 'prompt 0',
      max_tokens: 4,
      temperature: 0.8,
      top_p: 0.95,
      top_k: 40,
      min_p: 0.05,
      repetition_penalty: 1.1,
      seed: 0,
    });
  });

  it('chat: the role-only and empty chunks carry no token; a 3-token chunk adds 3 equal times', async () => {
    const s = await server(() => ({
      usage: 'continuous',
      interChunkMs: 30,
      chunks: [{ text: 'a' }, { text: '' }, { text: 'bcd', tokens: 3 }, { text: 'e' }],
    }));
    const engine = engineFor(s, { endpoint: 'chat' });
    await engine.load();
    const [r] = (await engine.run(prompts(1))).requests;
    expect(r!.outputTokens).toBe(5);
    expect(r!.tokenTimes).toHaveLength(4);
    const [b, c, d, e] = r!.tokenTimes;
    expect(c).toBe(b);
    expect(d).toBe(b);
    // Running usage gives the 3 tokens; the ITL samples are still one gap per chunk.
    expect(r!.chunkTimes).toEqual([b, e]);
    // Same clock as the server (same process): each token is stamped when its chunk arrived,
    // never before it was written, so the empty chunk [1] produced no timestamp.
    const written = s.requests[0]!.chunkWrittenAt;
    expect(r!.firstTokenAt!).toBeGreaterThanOrEqual(written[0]!);
    expect(b!).toBeGreaterThanOrEqual(written[2]!);
    expect(e!).toBeGreaterThanOrEqual(written[3]!);
  });

  it.each(['completions', 'chat'] as const)(
    '%s: without running usage, logprobs entries give the tokens per chunk',
    async (endpoint) => {
      const s = await server(() => ({
        logprobs: true,
        usage: 'none',
        chunks: [{ text: 'ab', tokens: 2 }, { text: 'c' }, { text: 'def', tokens: 3 }],
      }));
      const engine = engineFor(s, { endpoint });
      await engine.load();
      const outcome = await engine.run(prompts(1));
      const r = outcome.requests[0]!;
      expect(outcome.tokenCountSource).toBe('counted-chunks');
      expect(r.outputTokens).toBe(6);
      expect(r.tokenTimes).toHaveLength(5);
      // 'ab' gives the first token plus one more at the same instant.
      expect(r.tokenTimes[0]).toBe(r.firstTokenAt);
      expect(r.tokenTimes[3]).toBe(r.tokenTimes[2]);
      expect(r.tokenTimes[4]).toBe(r.tokenTimes[2]);
    },
  );

  it('ignores SSE comments, keep-alives and unknown fields, as the SSE spec says', async () => {
    const s = await server(() => ({
      preamble: ': ping\n\nfoo: bar\nretry: soon\n\n',
      tokens: 3,
    }));
    const engine = engineFor(s);
    await engine.load();
    const outcome = await engine.run(prompts(1));
    expect(outcome.requests[0]!.error).toBeUndefined();
    expect(outcome.outputTokens).toBe(3);
  });

  it('counts chunks when the server sends no usage, and says so', async () => {
    const s = await server(() => ({
      usage: 'none',
      chunks: [{ text: 'x' }, { text: '' }, { text: 'y' }, { text: 'z' }],
    }));
    const engine = engineFor(s);
    await engine.load();
    const outcome = await engine.run(prompts(2));
    expect(outcome.tokenCountSource).toBe('counted-chunks');
    expect(outcome.outputTokens).toBe(6);
    expect(outcome.requests[0]!.inputTokens).toBeNull();
    expect(outcome.inputTokens).toBe(0);
    expect(outcome.extra).toMatchObject({
      tokenCounts: { source: 'counted-chunks', requestsCounted: 2, inputTokensKnown: false },
    });
  });

  it('uses the final usage total over counted chunks and flags untimed tokens', async () => {
    // e.g. a server that batches two tokens into one chunk but only reports totals at the end
    const s = await server(() => ({ tokens: 4, usageCompletionTokens: 6 }));
    const engine = engineFor(s);
    await engine.load();
    const outcome = await engine.run(prompts(1));
    expect(outcome.tokenCountSource).toBe('server-usage');
    expect(outcome.outputTokens).toBe(6);
    expect(outcome.requests[0]!.tokenTimes).toHaveLength(3);
    expect(outcome.extra).toMatchObject({ tokenCounts: { requestsWithUntimedTokens: 1 } });
  });

  it('mixed usage and counted requests report counted-chunks', async () => {
    const s = await server((i) => ({ tokens: 3, usage: i === 0 ? 'final' : 'none' }));
    const engine = engineFor(s);
    await engine.load();
    const outcome = await engine.run(prompts(2));
    expect(outcome.tokenCountSource).toBe('counted-chunks');
    expect(outcome.extra).toMatchObject({
      tokenCounts: { requestsWithServerUsage: 1, requestsCounted: 1 },
    });
  });

  it('several tokens per chunk (llama-server): one ITL gap per chunk, usage and timings on the finish chunk', async () => {
    const s = await startTestServer({
      tokensPerChunk: 3,
      usage: 'finish',
      timings: true,
      paceMs: 10,
      lifetimeMs: 30_000,
    });
    servers.push(s);
    const engine = engineFor(s);
    await engine.load();
    const outcome = await engine.run(prompts(1, 7));
    const r = outcome.requests[0]!;
    // Chunks of 1, 3 and 3 tokens with no per-chunk counts: the client sees 3 chunks, so two
    // ITL gaps of 3 paces each; the total (7) comes from the final usage, and the tokens it
    // could not time are flagged. TPOT from that total is what stays exact (see @llem/measure).
    expect(r.outputTokens).toBe(7);
    expect(r.tokenSource).toBe('server-usage');
    expect(r.chunkTimes).toHaveLength(2);
    expect(r.chunkTimes).toEqual(r.tokenTimes);
    expect(r.chunkTimes![0]! - r.firstTokenAt!).toBeGreaterThanOrEqual(3 * 10 - 1);
    expect(r.serverTimings).toMatchObject({ promptN: 2, cacheN: 0, predictedN: 7 });
    expect(r.serverTimings!.predictedMs).toBeGreaterThanOrEqual(6 * 10 - 1);
    expect(outcome.extra).toMatchObject({
      tokenCounts: { requestsWithUntimedTokens: 1 },
      serverTimings: { requests: 1, predictedTokens: 7, promptTokens: 2 },
    });
  });

  it('usage inside the last content chunk: its token is timed and the total taken from it', async () => {
    const s = await startTestServer({ usage: 'in-content', lifetimeMs: 30_000 });
    servers.push(s);
    const engine = engineFor(s, { endpoint: 'chat' });
    await engine.load();
    const outcome = await engine.run(prompts(2, 5));
    expect(outcome.tokenCountSource).toBe('server-usage');
    expect(outcome.outputTokens).toBe(10);
    for (const r of outcome.requests) {
      expect(r.tokenTimes).toHaveLength(4);
      expect(r.inputTokens).toBe(2);
    }
    expect(outcome.extra).toMatchObject({
      tokenCounts: { requestsWithUntimedTokens: 0, requestsWithPerChunkUsage: 0 },
      serverTimings: null,
    });
  });

  it('warmup requests return records but are not part of the run', async () => {
    const s = await server(() => ({ tokens: 2 }));
    const engine = engineFor(s);
    await engine.load();
    const warm = await engine.warmup(prompts(3));
    expect(warm).toHaveLength(3);
    expect(warm.every((r) => r.outputTokens === 2)).toBe(true);
    const outcome = await engine.run(prompts(2));
    expect(outcome.requests).toHaveLength(2);
    expect(outcome.outputTokens).toBe(4);
    expect(outcome.extra).toMatchObject({ requestOutcomes: { total: 2 } });
    expect(s.requests).toHaveLength(5);
  });
});

describe('openai engine: load modes', () => {
  it('closed loop keeps exactly `concurrency` requests in flight', async () => {
    const s = await server(() => ({ firstDelayMs: 30, interChunkMs: 10, tokens: 3 }));
    const engine = engineFor(s, { concurrency: 3 });
    await engine.load();
    const outcome = await engine.run(prompts(12));
    expect(s.maxInFlight).toBe(3);
    expect(s.requests).toHaveLength(12);
    expect(outcome.extra).toMatchObject({ peakInFlight: 3, requestOutcomes: { succeeded: 12 } });
  });

  it('open loop with max_concurrency never exceeds the cap; the slot wait is connection wait, not client lag', async () => {
    const s = await server(() => ({ firstDelayMs: 40, tokens: 2 }));
    const engine = engineFor(s, { request_rate: 500, max_concurrency: 2, arrival_seed: 1 });
    await engine.load();
    const outcome = await engine.run(prompts(10));
    expect(s.maxInFlight).toBe(2);
    expect(outcome.requests).toHaveLength(10);
    const dispatch = (outcome.extra as { dispatch: DispatchSummary }).dispatch;
    expect(DispatchSummarySchema.parse(dispatch)).toEqual(dispatch);
    // At 500/s with 40 ms requests and 2 slots, arrivals had to queue: for slots, not the client.
    expect(dispatch.connectionWaitMs!.max).toBeGreaterThan(20);
    expect(dispatch.clientLagMs!.p50).toBeLessThan(dispatch.connectionWaitMs!.max);
    expect(dispatch).toMatchObject({ maxConcurrency: 2, targetRate: 500, sent: 10 });
    // Slots freed about every 20 ms: the requests became ready at about 50/s, not 500/s.
    expect(dispatch.slotLimitedRate!).toBeLessThan(100);
    const last = outcome.requests.at(-1)!;
    expect(last.connectionWaitMs!).toBeGreaterThan(20);
    expect(last.startedAt - last.scheduledAt!).toBeGreaterThanOrEqual(last.connectionWaitMs! - 1);
  });

  it.each([1, 0.5])(
    'open loop issues requests on the seeded schedule, never early (burstiness %f)',
    async (burstiness) => {
      const { arrivalSchedule } = await import('../src/openai/index');
      const s = await server(() => ({ tokens: 1 }));
      const engine = engineFor(s, { request_rate: 20, arrival_seed: 9, burstiness });
      await engine.load();
      const outcome = await engine.run(prompts(12));
      const schedule = arrivalSchedule(12, { rate: 20, seed: 9, burstiness });
      const t0 = outcome.requests[0]!.scheduledAt!;
      for (const [i, r] of outcome.requests.entries()) {
        expect(r.scheduledAt! - t0).toBeCloseTo(schedule[i]!, 6);
        // Never early; late only by the client's own delay, which the record carries.
        expect(r.startedAt).toBeGreaterThanOrEqual(r.scheduledAt!);
        expect(r.startedAt - r.scheduledAt!).toBeLessThan(250);
        expect(r.clientLagMs!).toBeLessThanOrEqual(r.startedAt - r.scheduledAt! + 0.01);
      }
    },
  );

  it('open loop reports how the schedule was kept', async () => {
    const s = await server(() => ({ tokens: 2 }));
    const engine = engineFor(s, { request_rate: 200, arrival_seed: 3 });
    await engine.load();
    const outcome = await engine.run(prompts(40));
    const dispatch = (outcome.extra as { dispatch: DispatchSummary }).dispatch;
    expect(dispatch).toMatchObject({
      scheduled: 40,
      sent: 40,
      targetRate: 200,
      slotLimitedRate: null,
      maxConcurrency: null,
      maxClientLagMs: 5,
    });
    expect(dispatch.connections.opened + dispatch.connections.reused).toBe(40);
    expect(dispatch.connections.opened).toBeGreaterThanOrEqual(1);
    expect(dispatch.achievedSendRate!).toBeGreaterThan(0);
    expect(dispatch.sendSpanS!).toBeGreaterThan(0);
    expect('issueLagMs' in outcome.extra!).toBe(false);
  });

  it('a freed slot hands the next request the kept-alive connection its last request used', async () => {
    // One slot: every request waits for the one before; its socket is back in the pool by the
    // time the slot frees, so one connection carries all 20, however loaded the machine.
    const s = await server(() => ({ tokens: 1 }));
    const engine = engineFor(s, { request_rate: 500, max_concurrency: 1, arrival_seed: 4 });
    await engine.load();
    const outcome = await engine.run(prompts(20));
    const dispatch = (outcome.extra as { dispatch: DispatchSummary }).dispatch;
    expect(dispatch.connections).toEqual({ opened: 1, reused: 19 });
    expect(s.metrics.connections).toBe(2); // load()'s check uses a connection of its own
    expect(outcome.requests.slice(1).every((r) => r.connectionWaitMs! >= 0)).toBe(true);
  });

  it('closed loop has no dispatch summary and no schedule on its records', async () => {
    const s = await server(() => ({ tokens: 1 }));
    const engine = engineFor(s, { concurrency: 2, max_client_lag_ms: 1 });
    await engine.load();
    const outcome = await engine.run(prompts(4));
    expect(outcome.extra).toMatchObject({ dispatch: null });
    expect(outcome.requests.every((r) => r.scheduledAt === undefined)).toBe(true);
  });
});

describe('openai engine: failures', () => {
  it('counts each failure type per run', async () => {
    const s = await server((i) => {
      switch (i) {
        case 0:
          return { status: 400, errorBody: '{"error":{"message":"prompt too long"}}' };
        case 1:
          return { status: 503 };
        case 2:
          return { tokens: 4, malformedAt: 1 };
        case 3:
          return { tokens: 6, dropAfter: 2, interChunkMs: 5 };
        case 4:
          return { hang: true };
        case 5:
          return { tokens: 3, errorEventAt: 1 };
        case 6:
          return { tokens: 3, unterminated: true };
        case 7:
          return { notStreaming: true };
        default:
          return { tokens: 2 };
      }
    });
    const engine = engineFor(s, { max_failure_rate: 0.9, request_timeout_s: 0.5 });
    await engine.load();
    const outcome = await engine.run(prompts(10));
    const types = outcome.requests.map((r) => r.error?.type ?? 'ok');
    expect(types).toEqual([
      'http_4xx',
      'http_5xx',
      'malformed_stream',
      'connection_error',
      'timeout',
      'stream_error',
      'malformed_stream',
      'malformed_stream',
      'ok',
      'ok',
    ]);
    expect(outcome.requests[0]!.error!.message).toContain('HTTP 400');
    expect(outcome.requests[0]!.error!.message).toContain('prompt too long');
    expect(outcome.extra).toMatchObject({
      errorsByType: {
        http_4xx: 1,
        http_5xx: 1,
        malformed_stream: 3,
        connection_error: 1,
        timeout: 1,
        stream_error: 1,
      },
      requestOutcomes: { total: 10, succeeded: 2, failed: 8, failureRate: 0.8 },
      requestCount: 2,
    });
    // Only successful requests' tokens count towards the run.
    expect(outcome.outputTokens).toBe(4);
  });

  it('fails the run with a clear EngineError above max_failure_rate', async () => {
    const s = await server((i) => (i % 4 === 0 ? { status: 500 } : { tokens: 2 }));
    const engine = engineFor(s, { concurrency: 2, max_failure_rate: 0.2 });
    await engine.load();
    const error = await engine.run(prompts(8)).catch((e: unknown) => e);
    expect(error).toMatchObject({
      name: 'EngineError',
      code: 'FAILURE_RATE_EXCEEDED',
    });
    expect((error as Error).message).toMatch(
      /2 of 8 requests failed \(25\.0%\), above openai\.max_failure_rate 0\.2: http_5xx 2; first error: HTTP 500/,
    );
  });

  it('accepts the same failures under a higher limit', async () => {
    const s = await server((i) => (i % 4 === 0 ? { status: 500 } : { tokens: 2 }));
    const engine = engineFor(s, { concurrency: 2, max_failure_rate: 0.25 });
    await engine.load();
    const outcome = await engine.run(prompts(8));
    expect(outcome.extra).toMatchObject({ errorsByType: { http_5xx: 2 } });
    expect(outcome.outputTokens).toBe(12);
  });

  it('counts connection refused when the server goes away after load', async () => {
    const s = await server(() => ({ tokens: 1 }));
    const engine = engineFor(s, { max_failure_rate: 1 });
    await engine.load();
    await s.close();
    // Let the client see its kept-alive socket close, as it would for a server that went away.
    await new Promise((resolve) => setTimeout(resolve, 50));
    const outcome = await engine.run(prompts(2));
    expect(outcome.extra).toMatchObject({ errorsByType: { connection_refused: 2 } });
  });

  it('a request whose connection dies before any answer is sent again; its latency counts from the first send', async () => {
    // The first attempt is held 150 ms, then its connection is reset without a byte of answer.
    const s = await server((i) => (i === 0 ? { headersDelayMs: 150, reset: true } : { tokens: 3 }));
    const engine = engineFor(s);
    await engine.load();
    const outcome = await engine.run(prompts(1));
    const r = outcome.requests[0]!;
    expect(r.error).toBeUndefined();
    expect(r.retries).toBe(1);
    expect(s.requests).toHaveLength(2);
    // The retry left at once and answered at once; the TTFT still holds the lost 150 ms.
    expect(r.firstTokenAt! - r.startedAt).toBeGreaterThanOrEqual(149);
    expect(r.startedAt).toBeLessThanOrEqual(s.requests[0]!.receivedAt);
    expect(outcome.extra).toMatchObject({ connectionRetries: { requests: 1, retries: 1 } });
  });

  it('retries at most twice: a connection that always dies fails the request, with its retries', async () => {
    const s = await server(() => ({ reset: true }));
    const engine = engineFor(s, { max_failure_rate: 1 });
    await engine.load();
    const outcome = await engine.run(prompts(1));
    const r = outcome.requests[0]!;
    expect(r.retries).toBe(2);
    expect(r.error?.type).toBe('connection_error');
    expect(s.requests).toHaveLength(3);
  });

  it('a stream cut after its first bytes is a failure, never sent again', async () => {
    const s = await server(() => ({ tokens: 6, dropAfter: 2 }));
    const engine = engineFor(s, { max_failure_rate: 1 });
    await engine.load();
    const r = (await engine.run(prompts(1))).requests[0]!;
    expect(r.error?.type).toBe('connection_error');
    expect(r.retries).toBe(0);
    expect(s.requests).toHaveLength(1);
  });

  it('retries once when a kept-alive socket was closed by the server in the meantime', async () => {
    const s = await server(() => ({ tokens: 2 }));
    const engine = engineFor(s, { concurrency: 1 });
    await engine.load();
    s.dropConnections();
    const outcome = await engine.run(prompts(2));
    expect(outcome.requests.map((r) => r.error)).toEqual([undefined, undefined]);
    expect(outcome.outputTokens).toBe(4);
  });

  it('fails warmup clearly when every warmup request fails', async () => {
    const s = await server(() => ({ status: 404, errorBody: '{"error":"model not found"}' }));
    const engine = engineFor(s);
    await engine.load();
    await expect(engine.warmup(prompts(2))).rejects.toMatchObject({
      name: 'EngineError',
      code: 'WARMUP_FAILED',
      message: expect.stringContaining('model not found'),
    });
  });

  it('aborting the signal stops the run', async () => {
    const s = await server(() => ({ hang: true }));
    const controller = new AbortController();
    const engine = engineFor(s, { concurrency: 2 }, { signal: controller.signal });
    await engine.load();
    const running = engine.run(prompts(4));
    setTimeout(() => controller.abort(new Error('experiment timeout')), 100);
    await expect(running).rejects.toThrow('experiment timeout');
    expect(s.requests).toHaveLength(2);
  });
});

describe('openai engine: steady state and goodput', () => {
  it('reports the steady-state window where all workers were busy, and goodput', async () => {
    const s = await server((i) => ({
      firstDelayMs: i === 5 ? 300 : 20,
      interChunkMs: 10,
      tokens: 4,
    }));
    const engine = engineFor(s, {
      concurrency: 3,
      steady_state: true,
      slo: { ttft_ms: 200, e2e_ms: 2000 },
    });
    await engine.load();
    const outcome = await engine.run(prompts(12));
    const extra = outcome.extra as {
      steadyState: {
        startMs: number;
        endMs: number;
        rule: string;
        targetConcurrency: number;
        requestIds: number[];
        outputTokens: number;
      };
      goodput: { met: number; total: number; share: number };
      workloadWindow: { startMs: number; endMs: number };
    };
    const reqs = outcome.requests;
    const third = [...reqs].sort((a, b) => a.startedAt - b.startedAt)[2]!;
    expect(extra.steadyState.rule).toBe('target-concurrency');
    expect(extra.steadyState.targetConcurrency).toBe(3);
    expect(extra.steadyState.startMs).toBe(third.startedAt);
    // Ramp-down starts when the first worker finds the queue empty.
    const lastIssued = Math.max(...reqs.map((r) => r.startedAt));
    const firstEndAfter = Math.min(
      ...reqs.filter((r) => r.endedAt > lastIssued).map((r) => r.endedAt),
    );
    expect(extra.steadyState.endMs).toBe(firstEndAfter);
    expect(extra.steadyState.startMs).toBeGreaterThanOrEqual(extra.workloadWindow.startMs);
    expect(extra.steadyState.endMs).toBeLessThanOrEqual(extra.workloadWindow.endMs);
    expect(extra.steadyState.outputTokens).toBeGreaterThan(0);
    expect(extra.steadyState.outputTokens).toBeLessThan(outcome.outputTokens);
    for (const id of extra.steadyState.requestIds) {
      const r = reqs.find((x) => x.id === id)!;
      expect(r.startedAt).toBeGreaterThanOrEqual(extra.steadyState.startMs);
      expect(r.endedAt).toBeLessThanOrEqual(extra.steadyState.endMs);
    }
    // Request 5 had a 300 ms TTFT against a 200 ms SLO.
    expect(extra.goodput).toMatchObject({ met: 11, total: 12 });
    expect(extra.goodput.share).toBeCloseTo(11 / 12, 10);
  });
});

describe('openai engine: servers that close kept-alive connections after each response', () => {
  it.each([
    [4, 400],
    [64, 640],
  ])(
    'concurrency %i: %i requests, none lost',
    async (concurrency, n) => {
      // Every response says keep-alive, then the server closes the connection: the pool keeps
      // handing requests sockets that are closing (the failure seen against llama-server).
      const s = await startTestServer({ closeAfterResponses: 1, lifetimeMs: 60_000 });
      servers.push(s);
      const engine = engineFor(s, { concurrency });
      await engine.load();
      const outcome = await engine.run(prompts(n, 4));
      expect(outcome.extra).toMatchObject({
        errorsByType: {},
        requestOutcomes: { total: n, succeeded: n, failed: 0 },
      });
      expect(outcome.outputTokens).toBe(4 * n);
      // The server really dropped requests on closing sockets, and every one was sent again (a
      // request can also fail on a socket already gone, before the server sees it).
      const retries = outcome.requests.reduce((a, r) => a + (r.retries ?? 0), 0);
      expect(s.metrics.droppedRequests).toBeGreaterThan(0);
      expect(retries).toBeGreaterThanOrEqual(s.metrics.droppedRequests);
      expect(outcome.extra).toMatchObject({ connectionRetries: { retries } });
      expect(s.requests).toHaveLength(n);
    },
    60_000,
  );
});
