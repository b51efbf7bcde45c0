import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startTestServer, type TestServer, type TestServerOptions } from '@llem/test-server';
import { afterEach, describe, expect, it } from 'vitest';
import type { EngineRequest, EngineTokenizer } from '../src/engine';
import { createOpenAIEngine, type OpenAIConfig } from '../src/openai/index';

// The workload features the openai engine honours: a trace's send times, the turn order of a
// conversation, and the server's tokenizer for exact prompt lengths.

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

async function server(options: TestServerOptions = {}): Promise<TestServer> {
  const s = await startTestServer({ lifetimeMs: 30_000, ...options });
  closers.push(() => s.close());
  return s;
}

function engineFor(baseUrl: string, section: Partial<OpenAIConfig> = {}) {
  const engine = createOpenAIEngine(
    { openai: { base_url: baseUrl, model: 'test-model', ...section } },
    {
      logger: { error() {}, warn() {}, info() {}, debug() {} },
      signal: new AbortController().signal,
      startupRetry: { retries: 2, delayMs: 20, factor: 1, maxDelayMs: 20 },
    },
  );
  closers.push(() => engine.dispose());
  return engine;
}

describe('openai engine: trace replay (EngineRequest.sendAtMs)', () => {
  it('sends each request at its time, bursts at once and gaps kept, whatever the concurrency says', async () => {
    // Each response takes ~300 ms, so a burst of four is four requests in flight at once: a pool
    // held at the closed loop's one connection would send them one after another.
    const s = await server({ paceMs: 30 });
    const offsets = [0, 0, 0, 0, 300, 300, 700, 700, 700, 720];
    const requests: EngineRequest[] = offsets.map((sendAtMs, id) => ({
      id,
      prompt: `request ${id} of the trace`,
      maxOutputTokens: 10,
      sendAtMs,
    }));
    const engine = engineFor(s.baseUrl, { concurrency: 1 });
    await engine.load();
    const outcome = await engine.run(requests);

    expect(outcome.requests.every((r) => r.error === undefined)).toBe(true);
    expect(outcome.extra?.load).toMatchObject({ mode: 'trace', requests: 10, spanS: 0.72 });
    expect(outcome.extra?.peakInFlight).toBeGreaterThanOrEqual(4);
    // The server's arrival log, relative to the first arrival, follows the schedule: nothing is
    // sent early into a gap, and nothing is held back by more than a loaded 2-core machine's
    // timer slack (the precision itself is the benchmark's business, not a test's).
    expect(s.arrivals.filter((a) => a.path === '/v1/completions')).toHaveLength(10);
    const start = s.requests[0]?.receivedAt as number; // completions, in arrival order
    const received = new Map(s.requests.map((r) => [r.prompt, r.receivedAt - start]));
    for (const r of requests) {
      const t = received.get(r.prompt) as number;
      expect(t).toBeGreaterThanOrEqual((r.sendAtMs as number) - 40);
      expect(t).toBeLessThan((r.sendAtMs as number) + 400);
    }
  });
});

/**
 * `conversations` conversations of three turns, turn-major as a workload lists them; each later
 * turn names the previous turn of its conversation in `after`.
 */
function conversationRequests(
  conversations: number,
  maxOutputTokens: (turn: number, conversation: number) => number,
): EngineRequest[] {
  const requests: EngineRequest[] = [];
  for (let turn = 0; turn < 3; turn++)
    for (let c = 0; c < conversations; c++) {
      const id = requests.length;
      requests.push({
        id,
        prompt: `conversation ${c} turn ${turn}`,
        maxOutputTokens: maxOutputTokens(turn, c),
        ...(turn > 0 ? { after: id - conversations } : {}),
      });
    }
  return requests;
}

describe('openai engine: conversations (EngineRequest.after)', () => {
  it('sends a turn only after the previous turn of its conversation ended, at any concurrency', async () => {
    const s = await server({ paceMs: 10 });
    // Three conversations of three turns, turn-major as the workload lists them.
    const requests = conversationRequests(3, (turn, c) => (turn === 0 && c === 0 ? 20 : 4));
    const engine = engineFor(s.baseUrl, { concurrency: 4 });
    await engine.load();
    const outcome = await engine.run(requests);
    const byId = new Map(outcome.requests.map((r) => [r.id, r]));
    const received = new Map(s.requests.map((r) => [r.prompt, r.receivedAt]));
    for (const r of requests) {
      if (r.after === undefined) continue;
      const previous = byId.get(r.after);
      expect(received.get(r.prompt)).toBeGreaterThanOrEqual(previous?.endedAt as number);
    }
    // Four workers really ran at once (the other conversations did not wait for the slow one).
    expect(outcome.extra?.peakInFlight).toBeGreaterThanOrEqual(2);
  });
});

describe('openai engine: conversations in open loop (request_rate)', () => {
  it('counts a later turn from when it could be sent: its arrival or the end of the previous turn, whichever is later', async () => {
    // Turns arrive 5 ms apart but each answer takes ~300 ms: a later turn waits for the
    // previous one, and that wait is the conversation's, not the server's or the client's.
    const s = await server({ paceMs: 30 });
    const requests = conversationRequests(2, () => 10);
    const engine = engineFor(s.baseUrl, { request_rate: 200 });
    await engine.load();
    const outcome = await engine.run(requests);
    expect(outcome.requests.every((r) => r.error === undefined)).toBe(true);
    const byId = new Map(outcome.requests.map((r) => [r.id, r]));
    for (const r of requests) {
      if (r.after === undefined) continue;
      const record = byId.get(r.id);
      const previous = byId.get(r.after);
      expect(record?.scheduledAt).toBeGreaterThanOrEqual(previous?.endedAt as number);
      // Time to first token from that moment: the server's few ms plus timer slack, never the
      // ~300 ms the previous turn took.
      expect((record?.firstTokenAt as number) - (record?.scheduledAt as number)).toBeLessThan(150);
    }
  });
});

describe('openai engine: tokenizer()', () => {
  it("finds the server's /tokenize and counts a text's tokens without special tokens", async () => {
    const s = await server();
    const engine = engineFor(s.baseUrl);
    await engine.load();
    const probe = await engine.tokenizer?.();
    expect(probe).toBeDefined();
    if (probe === undefined || 'unavailable' in probe) throw new Error('no tokenizer');
    const tokenizer: EngineTokenizer = probe;
    expect(tokenizer.source).toMatch(/server \/tokenize .*\/tokenize\)$/);
    const ids = await tokenizer.tokenize('one two three two');
    expect(ids).toHaveLength(4);
    expect(ids[1]).toBe(ids[3]);
  });

  it('has none for the chat endpoint, whose template adds tokens', async () => {
    const s = await server();
    const engine = engineFor(s.baseUrl, { endpoint: 'chat' });
    await engine.load();
    expect(await engine.tokenizer?.()).toEqual({
      unavailable: expect.stringMatching(/chat template/),
    });
  });

  it('says what it tried when the server has no /tokenize', async () => {
    // A minimal OpenAI-compatible server without /tokenize (api.openai.com, TGI, Ollama).
    const bare = http.createServer((req, res) => {
      if (req.url === '/v1/models') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ data: [{ id: 'test-model' }] }));
        return;
      }
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"error":"not found"}');
    });
    await new Promise<void>((resolve) => bare.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise((resolve) => bare.close(() => resolve())));
    const port = (bare.address() as AddressInfo).port;
    const engine = engineFor(`http://127.0.0.1:${port}/v1`);
    await engine.load();
    const probe = await engine.tokenizer?.();
    expect(probe).toEqual({ unavailable: expect.stringContaining('no usable /tokenize endpoint') });
    const reason = (probe as { unavailable: string }).unavailable;
    expect(reason).toContain(`http://127.0.0.1:${port}/tokenize (vLLM shape: HTTP 404)`);
    expect(reason).toContain(`http://127.0.0.1:${port}/v1/tokenize (llama-server shape: HTTP 404)`);
  });
});
