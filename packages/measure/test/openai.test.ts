import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DispatchSummary, RequestRecordSchema } from '@llem/domain';
import {
  type SpawnedTestServer,
  spawnTestServer,
  startTestServer,
  type TestServer,
  type TestServerOptions,
} from '@llem/test-server';
import { afterEach, describe, expect, it } from 'vitest';
import { type HarnessConfig, measureRun } from '../src/harness';

/**
 * The harness with the real openai engine against the test server: what the issue measured
 * against llama-server (several tokens per chunk, usage and timings on the finish chunk, a
 * prompt cache), reproduced on loopback.
 */

const quiet = { error() {}, warn() {}, info() {}, debug() {} };
const dir = mkdtempSync(join(tmpdir(), 'llem-openai-measure-'));
const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function serve(options: TestServerOptions): Promise<TestServer> {
  const server = await startTestServer({ lifetimeMs: 60_000, ...options });
  servers.push(server);
  return server;
}

function openaiConfig(
  server: { baseUrl: string },
  over: Partial<HarnessConfig> & { openai?: Record<string, unknown> } = {},
): HarnessConfig & { openai: Record<string, unknown> } {
  const { openai, ...rest } = over;
  return {
    engine: 'openai',
    model: 'test-model',
    dataset: { synthetic: { n: 8, input_len: 24, output_len: 41, seed: 7 } },
    max_output_tokens: 41,
    warmup: { n: 2 },
    baseline: { enabled: false, duration_s: 1 },
    energy: { backend: 'none', sample_interval_ms: 100, devices: [0] },
    openai: {
      base_url: server.baseUrl,
      ...(openai?.request_rate === undefined ? { concurrency: 4 } : {}),
      ...openai,
    },
    ...rest,
  };
}

const run = (cfg: HarnessConfig) =>
  measureRun(
    { runId: 'r_c0', configHash: '0123456789abcdef', cycle: 0, config: cfg },
    { logger: quiet, cwd: dir },
  );

describe('openai engine through the harness', () => {
  it('TPOT is within 5% of the server pace with 3 tokens per chunk; ITL is the chunk gap', async () => {
    // 30 ms per token on an absolute schedule: a 40-token span of 1.2 s per request, so even
    // tens of ms of timer lateness on a loaded machine stay well inside 5%.
    const pace = 30;
    const server = await serve({ paceMs: pace, tokensPerChunk: 3, usage: 'finish', timings: true });
    const { result, requests } = await run(openaiConfig(server));
    const tpot = result.latency.tpotMs!;
    expect(Math.abs(tpot.mean - pace) / pace).toBeLessThan(0.05);
    expect(Math.abs(tpot.p50 - pace) / pace).toBeLessThan(0.05);
    // ITL as vLLM defines it: the gap between chunks, here 3 tokens apart.
    expect(result.latency.itlMs!.p50).toBeGreaterThan(2.5 * pace);
    expect(result.tokens).toMatchObject({ output: 8 * 41, source: 'server-usage' });
    expect(requests).toHaveLength(8);
    for (const r of requests) {
      expect(RequestRecordSchema.parse(r)).toEqual(r);
      expect(r).toMatchObject({ outputTokens: 41, inputTokens: 24, tokenSource: 'server-usage' });
      // First token alone, then 13 chunks of 3 and one of 1: 14 gaps.
      expect(r.chunkGapsMs).toHaveLength(14);
      expect(r.serverTimings).toMatchObject({ predictedN: 41, promptN: 24 });
      expect(Math.abs(r.tpotMs! - pace) / pace).toBeLessThan(0.1);
    }
    expect(result.extra.serverTimings).toMatchObject({ requests: 8, predictedTokens: 8 * 41 });
  }, 30_000);

  it.each([
    ['synthetic', undefined],
    ['file', 'prompts.jsonl'],
  ] as const)(
    'warmup never primes the prompt cache with a measured prompt (%s dataset)',
    async (_kind, file) => {
      const server = await serve({ promptCache: true, prefillMsPerToken: 0.5 });
      if (file !== undefined) {
        const rows = Array.from({ length: 8 }, (_, i) =>
          JSON.stringify({ prompt: `Question ${i}: explain item ${i} of the list in detail.` }),
        );
        writeFileSync(join(dir, file), rows.join('\n'));
      }
      const cfg = openaiConfig(server, {
        warmup: { n: 4 },
        max_output_tokens: 4,
        ...(file !== undefined ? { dataset: file } : {}),
      });
      const { requests } = await run(cfg);
      // The server saw the 4 warmup prompts, then the measured ones.
      const seen = server.requests.map((r) => r.prompt);
      const warm = seen.slice(0, 4);
      const measured = seen.slice(4);
      expect(measured).toHaveLength(requests.length);
      expect(warm.filter((p) => measured.includes(p))).toEqual([]);
      // No measured request found its whole prompt cached (what warming up with the first
      // measured prompts did: llama-server logged 1-token prompt evaluations).
      const fullHits = server.requests
        .slice(4)
        .filter((r) => r.promptTokens > 1 && r.cachedTokens >= r.promptTokens - 1);
      expect(fullHits).toEqual([]);
    },
  );
});

describe('open loop through the harness: whose delay is it?', () => {
  const dispatchOf = (extra: Record<string, unknown>) => extra.dispatch as DispatchSummary;
  let spawned: SpawnedTestServer | null = null;
  afterEach(async () => {
    await spawned?.stop();
    spawned = null;
  });

  it('a target beyond the client’s reach completes, says client-saturated, and sends at no less than the rate it sustains', async () => {
    // The server runs in its own process (as a real one does) and answers one token at once.
    spawned = await spawnTestServer(['--max-tokens', '1']);
    const small = (n: number, openai: Record<string, unknown>) =>
      openaiConfig(spawned!, {
        dataset: { synthetic: { n, input_len: 4, output_len: 1, seed: 3 } },
        max_output_tokens: 1,
        openai,
      });
    // What this client sustains here: completed requests/s with 32 always in flight.
    const closed = await run(small(2000, { concurrency: 32 }));
    const sustained = closed.result.throughput.requestsPerS!;
    // 200,000 req/s: 6,000 requests due within 30 ms, beyond any client (one costs tens of µs),
    // and enough of them that a client whose lateness fed back on itself (unread answers, a
    // connection per request) piled up thousands of sockets. Twice: on two loaded cores one run
    // can land on a moment when another process holds the cores.
    let best = 0;
    for (const seed of [3, 4]) {
      const { result, requests } = await run(
        small(6000, { request_rate: 200_000, arrival_seed: seed }),
      );
      expect(result.extra.requestOutcomes).toMatchObject({ total: 6000, failed: 0 });
      const dispatch = dispatchOf(result.extra);
      const saturated = result.warnings.find((w) => w.code === 'client-saturated');
      expect(saturated?.message).toMatch(/could not keep the arrival schedule/);
      // Connections were reused, not opened per request (the collapse opened one for each).
      expect(dispatch.connections.opened).toBeLessThan(0.5 * 6000);
      // The lateness is the client's: it shows in the latency from the schedule.
      expect(result.latency.ttftFromScheduledMs!.p50).toBeGreaterThan(result.latency.ttftMs!.p50);
      expect(requests.every((r) => r.sentMs >= r.scheduledMs!)).toBe(true);
      best = Math.max(best, dispatch.achievedSendRate!);
    }
    // Not below what it sustains, with the margin that runs back to back on two loaded cores
    // need (±40 %); the benchmark (pnpm bench) holds the 0.9 goal within one run.
    expect(best).toBeGreaterThan(0.6 * sustained);
  }, 120_000);

  it('a slow server with max_concurrency shows connectionWaitMs, not client-saturated', async () => {
    // 4 slots, 25 ms per request: the server answers 160 req/s; the schedule asks 2,000.
    const server = await serve({ ttftMs: 25 });
    const { result, requests } = await run(
      openaiConfig(server, {
        dataset: { synthetic: { n: 120, input_len: 4, output_len: 1, seed: 5 } },
        max_output_tokens: 1,
        openai: {
          request_rate: 2000,
          max_concurrency: 4,
          // A threshold far below the slot waits (hundreds of ms) and far above what a loaded
          // machine's scheduler adds to a timer: the test fails if the waits count as lateness.
          max_client_lag_ms: 50,
        },
      }),
    );
    expect(server.maxInFlight).toBe(4);
    const dispatch = dispatchOf(result.extra);
    expect(dispatch.connectionWaitMs!.max).toBeGreaterThan(300);
    expect(dispatch.clientLagMs!.p99).toBeLessThan(50);
    expect(dispatch.slotLimitedRate!).toBeLessThan(dispatch.scheduledRate! / 4);
    expect(result.warnings.map((w) => w.code)).not.toContain('client-saturated');
    // Users arriving on schedule waited for the slots: that is in the latency from the schedule.
    expect(result.latency.ttftFromScheduledMs!.p95).toBeGreaterThan(300);
    expect(result.latency.ttftMs!.p95).toBeLessThan(result.latency.ttftFromScheduledMs!.p95);
    expect(Math.max(...requests.map((r) => r.connectionWaitMs ?? 0))).toBeGreaterThan(300);
  }, 60_000);
});
