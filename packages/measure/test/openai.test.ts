import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RequestRecordSchema } from '@llem/domain';
import { startTestServer, type TestServer, type TestServerOptions } from '@llem/test-server';
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
  server: TestServer,
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
    openai: { base_url: server.baseUrl, concurrency: 4, ...openai },
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
