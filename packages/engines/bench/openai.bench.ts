/**
 * Client cost of the openai engine: the streamed tokens/s it sustains on one core against a
 * local OpenAI-compatible server running in another process, the client CPU per token
 * (process.cpuUsage), and whether per-token timing stays right under that load.
 *
 *   pnpm --filter @llem/engines bench      (runs every bench/*.bench.ts)
 *
 * Figures printed:
 * - flat-out: the server writes tokens as fast as it can; tokens/s of wall time, client CPU µs per
 *   token and the client's capacity = tokens per client-CPU-second (what one core could sustain
 *   if the server were not the bottleneck), against the 50,000 tokens/s target.
 * - paced: the server emits one token per stream every `intervalMs` across many streams, about
 *   the target rate; the client's median ITL must match the server's median write gap.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createOpenAIEngine } from '../src/openai/index';
import type { Script } from '../test/support/openai-server';

const TARGET_TOKENS_PER_S = 50_000;
const here = fileURLToPath(new URL('.', import.meta.url));

interface ServerProcess {
  child: ChildProcess;
  port: number;
  stats(): Promise<{ gapsP50: number | null; writes: number }>;
  reset(): Promise<void>;
}

async function startServer(script: Script): Promise<ServerProcess> {
  // Run from source through tsx, or as a pre-bundled .mjs pair (a machine without node_modules).
  const bundled = !import.meta.url.endsWith('.ts');
  const child = fork(`${here}openai-server-process.${bundled ? 'mjs' : 'ts'}`, [], {
    execArgv: bundled ? [] : ['--import', 'tsx', '--conditions', '@llem/source'],
    env: { ...process.env, LLEM_BENCH_SCRIPT: JSON.stringify(script) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m: { port: number }) => resolve(m.port));
    child.once('exit', (code) => reject(new Error(`bench server exited with ${code}`)));
  });
  const ask = <T>(message: object): Promise<T> =>
    new Promise((resolve) => {
      child.once('message', (m: T) => resolve(m));
      child.send(message);
    });
  return {
    child,
    port,
    stats: () => ask({ stats: true }),
    reset: () => ask<unknown>({ reset: true }).then(() => undefined),
  };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? Number.NaN;
}

async function measure(
  name: string,
  script: Script,
  concurrency: number,
  requests: number,
  tokensPerRequest: number,
): Promise<void> {
  const server = await startServer(script);
  const engine = createOpenAIEngine(
    { openai: { base_url: `http://127.0.0.1:${server.port}/v1`, model: 'bench', concurrency } },
    {
      logger: { error() {}, warn() {}, info() {}, debug() {} },
      signal: new AbortController().signal,
    },
  );
  try {
    await engine.load();
    const prompts = Array.from({ length: requests }, (_, id) => ({
      id,
      prompt: 'benchmark',
      maxOutputTokens: tokensPerRequest,
    }));
    await engine.warmup(prompts.slice(0, concurrency));
    await server.reset();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const outcome = await engine.run(prompts);
    const wallS = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const cpuS = (cpu.user + cpu.system) / 1e6;
    const tokens = outcome.outputTokens;
    const expected = requests * tokensPerRequest;
    let timed = 0;
    const itls: number[] = [];
    for (const r of outcome.requests) {
      if (r.firstTokenAt === null) continue;
      timed += 1 + r.tokenTimes.length;
      let previous = r.firstTokenAt;
      for (const t of r.tokenTimes) {
        itls.push(t - previous);
        previous = t;
      }
    }
    itls.sort((a, b) => a - b);
    const { gapsP50 } = await server.stats();
    const wallRate = tokens / wallS;
    const capacity = tokens / cpuS;
    console.log(`\nopenai engine — ${name}`);
    console.log(
      `  ${requests} requests × ${tokensPerRequest} tokens, concurrency ${concurrency}: ${tokens} tokens (expected ${expected}), ${timed} timestamped`,
    );
    console.log(
      `  wall ${wallS.toFixed(2)} s → ${Math.round(wallRate).toLocaleString('en')} tokens/s`,
    );
    console.log(
      `  client CPU ${cpuS.toFixed(2)} s → ${((cpuS / tokens) * 1e6).toFixed(2)} µs/token, capacity ${Math.round(capacity).toLocaleString('en')} tokens per CPU-second`,
    );
    console.log(
      `  ITL p50 ${percentile(itls, 0.5).toFixed(3)} ms, p99 ${percentile(itls, 0.99).toFixed(3)} ms; server write gap p50 ${gapsP50?.toFixed(3) ?? 'n/a'} ms`,
    );
    if (gapsP50 !== null && gapsP50 > 0.5) {
      // Only meaningful when the server paces tokens: the client's ITLs must be the server's gaps.
      console.log(
        `  timing check: client ITL p50 ÷ server write gap p50 = ${(percentile(itls, 0.5) / gapsP50).toFixed(2)} (1.00 is exact; ≈0 means reads coalesced, the client fell behind)`,
      );
    }
    console.log(
      `  ratio wall tokens/s ÷ target ${TARGET_TOKENS_PER_S.toLocaleString('en')}: ${(wallRate / TARGET_TOKENS_PER_S).toFixed(2)}×; capacity ÷ target: ${(capacity / TARGET_TOKENS_PER_S).toFixed(2)}×`,
    );
    if (tokens !== expected || timed !== expected) {
      console.log('  WARNING: token count or timestamps do not match what the server sent');
      process.exitCode = 1;
    }
  } finally {
    await engine.dispose();
    server.child.disconnect();
  }
}

// Flat out: the server writes every token as fast as it can.
await measure('flat-out', { tokens: 2000, usage: 'final' }, 32, 64, 2000);
// Paced: a batching server's decode step every 5 ms writes one token to each of 250 streams,
// 50,000 tokens/s offered; each token is its own SSE event, as vLLM sends them.
await measure('paced at the target rate', { tokens: 400, batchTickMs: 5 }, 250, 500, 400);
// Paced above the target: 400 streams every 5 ms, 80,000 tokens/s offered. What the client
// sustains here, with the timing check still near 1.00, is its real per-token-read ceiling.
await measure(
  'paced above the target (80,000 offered)',
  { tokens: 400, batchTickMs: 5 },
  400,
  800,
  400,
);
