import { mkdtempSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  parseProgramArgs,
  runProgram,
  spawnTestServer,
  startTestServer,
  type TestServer,
  type TestServerOptions,
  tokenIds,
} from '../src/index';

const servers: Array<{ close(): Promise<unknown> }> = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function start(options: TestServerOptions = {}): Promise<TestServer> {
  const server = await startTestServer({ lifetimeMs: 30_000, ...options });
  servers.push(server);
  return server;
}

/** The SSE events of a streamed completion, parsed, with the time each arrived. */
async function complete(
  server: TestServer,
  body: Record<string, unknown>,
  path = '/v1/completions',
): Promise<{ status: number; events: Array<Record<string, unknown>>; text: string }> {
  const response = await fetch(`${server.baseUrl.replace(/\/v1$/, '')}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'test-model', stream: true, ...body }),
  });
  const text = await response.text();
  const events = text
    .split('\n\n')
    .map((e) => e.replace(/^data: /, '').trim())
    .filter((e) => e !== '' && e !== '[DONE]' && e.startsWith('{'))
    .map((e) => JSON.parse(e) as Record<string, unknown>);
  return { status: response.status, events, text };
}

type Choice = { text?: string; finish_reason?: string | null; delta?: { content?: string } };
const choiceOf = (e: Record<string, unknown>): Choice | undefined =>
  (e.choices as Choice[] | undefined)?.[0];

describe('test server: streams', () => {
  it('answers max_tokens tokens, the first alone, then tokens_per_chunk per chunk', async () => {
    const server = await start({ tokensPerChunk: 3 });
    const { events } = await complete(server, { prompt: 'a b c d', max_tokens: 8 });
    const content = events.filter((e) => choiceOf(e)?.finish_reason === null);
    expect(content.map((e) => choiceOf(e)!.text!.trim().split(' ').length)).toEqual([1, 3, 3, 1]);
    const usage = events.at(-1)!.usage as Record<string, number>;
    expect(usage).toMatchObject({ prompt_tokens: 4, completion_tokens: 8, total_tokens: 12 });
    expect(events.at(-1)!.choices).toEqual([]);
  });

  it('--output-tokens stops early (an EOS) unless the request sets ignore_eos', async () => {
    const server = await start({ outputTokens: 3 });
    const short = await complete(server, { prompt: 'x', max_tokens: 10 });
    expect((short.events.at(-1)!.usage as { completion_tokens: number }).completion_tokens).toBe(3);
    const long = await complete(server, { prompt: 'x', max_tokens: 10, ignore_eos: true });
    expect((long.events.at(-1)!.usage as { completion_tokens: number }).completion_tokens).toBe(10);
  });

  it.each([
    ['finish', 'on the finish chunk with an empty delta'],
    ['in-content', 'on the last content chunk, with the finish reason'],
  ] as const)('usage %s: %s', async (usage, _what) => {
    const server = await start({ usage, timings: true });
    const { events } = await complete(
      server,
      { max_tokens: 4, messages: [{ role: 'user', content: 'hi there' }] },
      '/v1/chat/completions',
    );
    const withUsage = events.filter((e) => e.usage !== undefined);
    expect(withUsage).toHaveLength(1);
    const carrier = withUsage[0]!;
    expect(choiceOf(carrier)!.finish_reason).toBe('length');
    expect(choiceOf(carrier)!.delta?.content ?? '').toBe(usage === 'finish' ? '' : 't3 ');
    expect(carrier.usage).toMatchObject({ prompt_tokens: 2, completion_tokens: 4 });
    expect(carrier.timings).toMatchObject({ predicted_n: 4, prompt_n: 2, cache_n: 0 });
  });

  it('paces tokens on an absolute schedule: the last chunk is (n-1) × pace after the first', async () => {
    const server = await start({ paceMs: 15, tokensPerChunk: 2, timings: true, usage: 'finish' });
    const { events } = await complete(server, { prompt: 'p', max_tokens: 11 });
    const written = server.requests[0]!.chunkWrittenAt;
    expect(written).toHaveLength(6);
    const span = written.at(-1)! - written[0]!;
    expect(span).toBeGreaterThanOrEqual(10 * 15 - 1);
    // Late only by the last timer's lateness (generous: a loaded machine).
    expect(span).toBeLessThan(10 * 15 + 300);
    const timings = events.find((e) => e.timings)!.timings as Record<string, number>;
    expect(timings.predicted_ms).toBeGreaterThanOrEqual(span);
  });

  it('prompt cache: a repeated prompt reports its cached prefix and skips its prefill', async () => {
    const server = await start({
      promptCache: true,
      prefillMsPerToken: 5,
      timings: true,
      usage: 'finish',
    });
    const prompt = Array.from({ length: 60 }, (_, i) => `w${i}`).join(' ');
    const t0 = performance.now();
    await complete(server, { prompt, max_tokens: 1 });
    const cold = performance.now() - t0;
    const t1 = performance.now();
    const warm = await complete(server, { prompt, max_tokens: 1 });
    const hot = performance.now() - t1;
    expect(server.requests.map((r) => r.cachedTokens)).toEqual([0, 59]);
    expect(warm.events.find((e) => e.timings)!.timings).toMatchObject({
      cache_n: 59,
      prompt_n: 1,
      prompt_ms: 5,
    });
    expect(warm.events.find((e) => e.usage)!.usage).toMatchObject({
      prompt_tokens_details: { cached_tokens: 59 },
    });
    // 60 × 5 ms of prefill cold, 5 ms hot.
    expect(cold).toBeGreaterThanOrEqual(300);
    expect(hot).toBeLessThan(cold);
  });

  it('max streams: later requests wait for a slot and show as waiting in /metrics', async () => {
    // Streams of 2 × 300 ms: all 5 requests arrive long before the first 2 end.
    const server = await start({ maxStreams: 2, paceMs: 300 });
    const running = Array.from({ length: 5 }, () =>
      complete(server, { prompt: 'q', max_tokens: 3 }),
    );
    const root = server.baseUrl.replace(/\/v1$/, '');
    let metrics = '';
    for (let i = 0; i < 100 && !/num_requests_waiting\{[^}]*\} 3$/m.test(metrics); i++) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      metrics = await (await fetch(`${root}/metrics`)).text();
    }
    expect(metrics).toMatch(/^vllm:num_requests_running\{model_name="test-model"\} 2$/m);
    expect(metrics).toMatch(/^vllm:num_requests_waiting\{model_name="test-model"\} 3$/m);
    await Promise.all(running);
    expect(server.maxInFlight).toBe(2);
  });

  it('/metrics is Prometheus text with HELP and TYPE lines and labelled series', async () => {
    const server = await start();
    await complete(server, { prompt: 'one two three', max_tokens: 4 });
    const text = await (await fetch(`${server.baseUrl.replace(/\/v1$/, '')}/metrics`)).text();
    expect(text).toContain('# TYPE vllm:generation_tokens_total counter');
    expect(text).toMatch(/^vllm:prompt_tokens_total\{model_name="test-model"\} 3$/m);
    expect(text).toMatch(/^vllm:generation_tokens_total\{model_name="test-model"\} 4$/m);
    expect(text).toMatch(
      /^vllm:request_success_total\{finished_reason="length",model_name="test-model"\} 1$/m,
    );
  });

  it('/tokenize answers llama-server (content) and vLLM (prompt) shapes alike', async () => {
    const server = await start();
    const root = server.baseUrl.replace(/\/v1$/, '');
    for (const body of [{ content: 'hello big world' }, { prompt: 'hello big world' }]) {
      const res = await fetch(`${root}/tokenize`, { method: 'POST', body: JSON.stringify(body) });
      expect(await res.json()).toMatchObject({ tokens: tokenIds('hello big world'), count: 3 });
    }
  });
});

describe('test server: misbehaviour', () => {
  it('closes each kept-alive connection after a response though it said keep-alive', async () => {
    const server = await start({ closeAfterResponses: 1 });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const get = () =>
      new Promise<{ connection: string | undefined; socketClosed: Promise<void> }>(
        (resolve, reject) => {
          const req = http.request(`${server.baseUrl}/completions`, {
            method: 'POST',
            agent,
          });
          req.on('error', reject);
          req.on('response', (res) => {
            const socketClosed = new Promise<void>((r) => res.socket.once('close', () => r()));
            res.resume();
            res.on('end', () => resolve({ connection: res.headers.connection, socketClosed }));
          });
          req.end(JSON.stringify({ prompt: 'x', max_tokens: 1 }));
        },
      );
    const first = await get();
    expect(first.connection).toBe('keep-alive');
    await first.socketClosed;
    expect(server.metrics.closedConnections).toBe(1);
    agent.destroy();
  });

  it('answers 503 "Loading model" during start-up, then serves', async () => {
    const server = await start({ startupMs: 150 });
    const early = await fetch(`${server.baseUrl}/models`);
    expect(early.status).toBe(503);
    expect(await early.json()).toMatchObject({ error: { message: 'Loading model' } });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect((await fetch(`${server.baseUrl}/models`)).status).toBe(200);
  });

  it('crashes when request N+1 arrives: connections reset, the listener gone', async () => {
    let crashed = 0;
    const server = await start({ crashAfter: 2, onCrash: () => crashed++ });
    await complete(server, { prompt: 'a', max_tokens: 1 });
    await complete(server, { prompt: 'b', max_tokens: 1 });
    await expect(complete(server, { prompt: 'c', max_tokens: 1 })).rejects.toThrow();
    expect(crashed).toBe(1);
    await expect(fetch(`${server.baseUrl}/models`)).rejects.toThrow();
  });

  it('401 without the API key, 404 for an unknown model when strict', async () => {
    const server = await start({ apiKey: 'k', strictModel: true, models: ['m'] });
    expect((await fetch(`${server.baseUrl}/models`)).status).toBe(401);
    const headers = { authorization: 'Bearer k' };
    expect((await fetch(`${server.baseUrl}/models`, { headers })).status).toBe(200);
    const res = await fetch(`${server.baseUrl}/completions`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ model: 'other', prompt: 'x' }),
    });
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({
      error: { message: 'The model `other` does not exist.' },
    });
  });

  it('logs every arrival, in memory and as JSON lines in a file', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'llem-test-server-')), 'arrivals.jsonl');
    const server = await start({ logArrivals: file });
    await complete(server, { prompt: 'one two', max_tokens: 3 });
    await fetch(`${server.baseUrl}/models`);
    const lines = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toEqual(server.arrivals);
    expect(lines[0]).toMatchObject({
      method: 'POST',
      path: '/v1/completions',
      promptTokens: 2,
      maxTokens: 3,
    });
    expect(lines[1]).toMatchObject({ method: 'GET', path: '/v1/models' });
    expect(lines[1].tMs).toBeGreaterThanOrEqual(lines[0].tMs);
  });
});

describe('test server: the program', () => {
  it('parses its flags and names a bad one', () => {
    expect(
      parseProgramArgs(['--pace-ms', '20', '--usage', 'finish', '--model', 'a', '--model', 'b'])
        .server,
    ).toMatchObject({
      paceMs: 20,
      usage: 'finish',
      models: ['a', 'b'],
    });
    expect(() => parseProgramArgs(['--pace-ms', 'fast'])).toThrow(/--pace-ms: expected a number/);
    expect(() => parseProgramArgs(['--usage', 'sometimes'])).toThrow(/--usage: expected one of/);
    expect(() => parseProgramArgs(['--pase-ms', '1'])).toThrow(/pase-ms/);
    expect(() => parseProgramArgs(['--api-key-env', 'NOPE'], {})).toThrow(/NOPE is not set/);
  });

  it('exits 2 with the usage on a bad flag', async () => {
    let code = -1;
    let err = '';
    await runProgram(['--crash-after=-1'], {
      stdout: { write: () => true },
      stderr: { write: (t: string) => (err += t) },
      exit: (c) => {
        code = c;
      },
    });
    expect(code).toBe(2);
    expect(err).toMatch(/--crash-after: expected an integer ≥ 0/);
    expect(err).toContain('Usage: llem-test-server');
  });

  it('runs as its own process, prints its URL, and a crash exits with the code asked for', async () => {
    const server = await spawnTestServer(['--crash-after', '0', '--crash-exit-code', '3']);
    servers.push({ close: () => server.stop() });
    expect(server.baseUrl).toBe(`http://127.0.0.1:${server.port}/v1`);
    expect((await fetch(`${server.baseUrl}/models`)).status).toBe(200);
    await fetch(`${server.baseUrl}/completions`, { method: 'POST', body: '{}' }).catch(() => null);
    expect(await server.exited).toEqual({ code: 3, signal: null });
    expect(server.stderr).toContain('crashing as asked (--crash-after 0)');
  });

  it('as a managed server: a pid file, fake GPU memory written then cleared on exit (or leaked), one line on a port clash', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'llem-test-server-'));
    const pidFile = join(dir, 'pid');
    const memory = join(dir, 'memory');
    const server = await spawnTestServer([
      '--pid-file',
      pidFile,
      '--fake-gpu-memory-file',
      memory,
      '--fake-gpu-memory-mib',
      '2',
    ]);
    expect(Number(readFileSync(pidFile, 'utf8'))).toBe(server.child.pid);
    expect(readFileSync(memory, 'utf8').trim()).toBe(String(2 * 1024 * 1024));
    // Its port is taken: a second one says so in one line and exits 1.
    const clash = await spawnTestServer(['--port', String(server.port)]).catch((e: Error) => e);
    expect(String(clash)).toMatch(
      new RegExp(
        `exited \\(1\\) before listening: llem-test-server: cannot listen on 127\\.0\\.0\\.1:${server.port}: address already in use \\(EADDRINUSE\\)\\n$`,
      ),
    );
    expect(await server.stop()).toEqual({ code: 0, signal: null });
    expect(readFileSync(memory, 'utf8').trim()).toBe('0');

    const leaky = await spawnTestServer([
      '--fake-gpu-memory-file',
      memory,
      '--leak-fake-gpu-memory',
    ]);
    await leaky.stop();
    expect(readFileSync(memory, 'utf8').trim()).toBe(String(1024 * 1024 * 1024));
  });

  it('--ignore-sigterm: only SIGKILL stops it', async () => {
    const server = await spawnTestServer(['--ignore-sigterm']);
    expect(await server.stop(500)).toEqual({ code: null, signal: 'SIGKILL' });
  });
});
