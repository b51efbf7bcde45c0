/**
 * Client cost of the openai engine against `@llem/test-server` running as its own process (so it
 * does not share the engine's event loop), measured with `process.cpuUsage` around `run()` only:
 * start-up, `load()` and warmup are outside, as the budget's reference was ("beyond start-up").
 *
 *   pnpm --filter @llem/engines bench      (runs every bench/*.bench.ts)
 *
 * Figures printed, all from this one run:
 * 1. Client CPU per 1,000 streamed output tokens at concurrency 4 and 64, against a server that
 *    paces one token per chunk (the most reads per token), once keeping connections alive and
 *    once closing them after every response (llama-server's behaviour: every request then pays
 *    a connection, and some a retry). Budget: 94 ms per 1,000 tokens (vLLM's own client against
 *    llama-server; llem used 70 there).
 * 2. Capacity: tokens/s flat out, and paced at 50,000 and 80,000 tokens/s offered, with the
 *    client's median ITL against the server's decode step (1.00 is exact).
 *
 * The bench may run pre-bundled (a machine without node_modules): set LLEM_TEST_SERVER_BIN to
 * the test server's built `bin.js`.
 */
import { type SpawnedTestServer, spawnTestServer } from '@llem/test-server';
import { createOpenAIEngine } from '../src/openai/index';

const BUDGET_MS_PER_1000 = 94;
const TARGET_TOKENS_PER_S = 50_000;
const quiet = { error() {}, warn() {}, info() {}, debug() {} };

interface Measured {
  tokens: number;
  expected: number;
  timed: number;
  cpuMs: number;
  wallS: number;
  failed: number;
  retries: number;
  itlP50: number;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? Number.NaN;
}

async function measure(
  server: SpawnedTestServer,
  concurrency: number,
  requests: number,
  tokensPerRequest: number,
): Promise<Measured> {
  const engine = createOpenAIEngine(
    {
      openai: { base_url: server.baseUrl, model: 'test-model', concurrency, max_failure_rate: 1 },
    },
    { logger: quiet, signal: new AbortController().signal },
  );
  try {
    await engine.load();
    const prompts = Array.from({ length: requests }, (_, id) => ({
      id,
      prompt: `benchmark prompt ${id}`,
      maxOutputTokens: tokensPerRequest,
    }));
    await engine.warmup(prompts.slice(0, concurrency));
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const outcome = await engine.run(prompts);
    const wallS = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    let timed = 0;
    let retries = 0;
    const itls: number[] = [];
    for (const r of outcome.requests) {
      retries += r.retries ?? 0;
      if (r.firstTokenAt === null) continue;
      timed += 1 + r.tokenTimes.length;
      let previous = r.firstTokenAt;
      for (const t of r.chunkTimes ?? r.tokenTimes) {
        itls.push(t - previous);
        previous = t;
      }
    }
    itls.sort((a, b) => a - b);
    return {
      tokens: outcome.outputTokens,
      expected: requests * tokensPerRequest,
      timed,
      cpuMs: (cpu.user + cpu.system) / 1000,
      wallS,
      failed: outcome.requests.filter((r) => r.error !== undefined).length,
      retries,
      itlP50: percentile(itls, 0.5),
    };
  } finally {
    await engine.dispose();
  }
}

function check(m: Measured): void {
  if (m.tokens !== m.expected || m.timed !== m.expected || m.failed > 0) {
    console.log(
      `  WARNING: ${m.failed} failed requests; ${m.tokens} tokens counted and ${m.timed} timed of ${m.expected} sent`,
    );
    process.exitCode = 1;
  }
}

// 1. CPU per 1,000 tokens at concurrency 4 and 64, keep-alive and closing servers.
const PACE_MS = 5;
const TOKENS = 100;
console.log(
  `\nopenai engine — client CPU per 1,000 streamed output tokens (server paces ${PACE_MS} ms/token, one token per chunk, ${TOKENS} tokens per request; budget ${BUDGET_MS_PER_1000} ms)`,
);
for (const [label, flags] of [
  ['keep-alive server', []],
  ['server closing connections after each response', ['--close-after-responses', '1']],
] as const) {
  const server = await spawnTestServer(['--pace-ms', String(PACE_MS), ...flags]);
  try {
    for (const concurrency of [4, 64]) {
      const requests = concurrency === 4 ? 40 : 256;
      const m = await measure(server, concurrency, requests, TOKENS);
      const perThousand = m.cpuMs / (m.tokens / 1000);
      console.log(
        `  ${label}, concurrency ${concurrency}: ${m.tokens} tokens in ${m.wallS.toFixed(2)} s, client CPU ${m.cpuMs.toFixed(0)} ms → ${perThousand.toFixed(1)} ms per 1,000 tokens; ÷ budget ${BUDGET_MS_PER_1000} ms = ${(perThousand / BUDGET_MS_PER_1000).toFixed(2)} (${m.retries} connection retries, ${m.failed} failed)`,
      );
      check(m);
    }
  } finally {
    await server.stop();
  }
}

// 2. Capacity: flat out, then paced by a shared decode step at and above the target rate.
async function capacity(
  name: string,
  flags: string[],
  concurrency: number,
  requests: number,
  tokens: number,
  stepMs: number | null,
): Promise<void> {
  const server = await spawnTestServer(flags);
  try {
    const m = await measure(server, concurrency, requests, tokens);
    const wallRate = m.tokens / m.wallS;
    const perCpuS = m.tokens / (m.cpuMs / 1000);
    console.log(`\nopenai engine — ${name}`);
    console.log(
      `  ${requests} requests × ${tokens} tokens, concurrency ${concurrency}: wall ${m.wallS.toFixed(2)} s → ${Math.round(wallRate).toLocaleString('en')} tokens/s; client CPU ${((m.cpuMs / m.tokens) * 1000).toFixed(2)} µs/token → ${Math.round(perCpuS).toLocaleString('en')} tokens per CPU-second`,
    );
    if (stepMs !== null) {
      console.log(
        `  timing check: client ITL p50 ${m.itlP50.toFixed(3)} ms ÷ server step ${stepMs} ms = ${(m.itlP50 / stepMs).toFixed(2)} (1.00 is exact; ≈0 means reads coalesced, the client fell behind)`,
      );
    }
    console.log(
      `  ratio wall tokens/s ÷ target ${TARGET_TOKENS_PER_S.toLocaleString('en')}: ${(wallRate / TARGET_TOKENS_PER_S).toFixed(2)}×; per-CPU-second capacity ÷ target: ${(perCpuS / TARGET_TOKENS_PER_S).toFixed(2)}×`,
    );
    check(m);
  } finally {
    await server.stop();
  }
}

await capacity('flat-out', [], 32, 64, 2000, null);
// A batching server's decode step every 5 ms writes one token to each of 250 streams: 50,000
// tokens/s offered, each token its own SSE event, as vLLM sends them.
await capacity('paced at the target rate', ['--batch-tick-ms', '5'], 250, 500, 400, 5);
// 400 streams every 5 ms, 80,000 tokens/s offered: the client's per-read ceiling.
await capacity(
  'paced above the target (80,000 offered)',
  ['--batch-tick-ms', '5'],
  400,
  800,
  400,
  5,
);
