/**
 * Decode tokens/s through the llamacpp engine against a bare node-llama-cpp generation loop on
 * the same model (builtin:tiny) and settings, in the same process and the same run. The two
 * alternate in ABBA order request by request (A B, B A, …) so drift in machine load hits both alike.
 *
 *   pnpm --filter @llem/engines bench      (runs every bench/*.bench.ts)
 *
 * Env: LLEM_BENCH_ROUNDS (passes over the 4 prompts, default 6), LLEM_BENCH_THREADS (default: min(2, CPUs)),
 * LLEM_BENCH_TOKENS (output tokens per request, default 48), LLEM_CACHE_DIR (model cache).
 *
 * Figures printed, per side:
 * - decode tok/s: tokens after the first / time from first to last token, summed over requests
 *   (prefill excluded; this is what "decode throughput" means in llama.cpp's own reports);
 * - e2e tok/s: all output tokens / wall time of the whole workload (includes tokenizing, clearing
 *   the sequence and prefill, so any per-request overhead of the engine shows up here).
 * The ratio is llem / bare; the target is ≥ 0.97.
 */
import { availableParallelism } from 'node:os';
import { parseExperimentConfig } from '@llem/domain';
import { noopLogger } from '@llem/resilience';
import { getLlama, type Token } from 'node-llama-cpp';
import type { EngineRequest, RequestRecord } from '../src/engine';
import { createLlamaCppEngine } from '../src/llamacpp/index';
import { ensureTinyModel, tinyModelSpec } from '../src/tiny/index';

const TARGET_RATIO = 0.97;
const ROUNDS = Number(process.env.LLEM_BENCH_ROUNDS ?? 6);
const THREADS = Number(process.env.LLEM_BENCH_THREADS ?? Math.min(2, availableParallelism()));
const TOKENS = Number(process.env.LLEM_BENCH_TOKENS ?? 48);
const CONTEXT_SIZE = 512;
const BATCH_SIZE = 512;

const requests: EngineRequest[] = [
  'What does one token cost in energy on this machine?',
  'the energy cost of a batch is measured in joules per token',
  'Measure twice, cut once: a study of latency and throughput.',
  'between power and memory, which one limits the model?',
].map((prompt, id) => ({ id, prompt, maxOutputTokens: TOKENS }));

interface Sample {
  decodeTokens: number;
  decodeMs: number;
  outputTokens: number;
  wallMs: number;
}

function fromRecords(records: RequestRecord[], wallMs: number): Sample {
  let decodeTokens = 0;
  let decodeMs = 0;
  let outputTokens = 0;
  for (const r of records) {
    if (r.error) throw new Error(`request ${r.id} failed: ${r.error.message}`);
    outputTokens += r.outputTokens ?? 0;
    const last = r.tokenTimes.at(-1);
    if (r.firstTokenAt !== null && last !== undefined) {
      decodeTokens += r.tokenTimes.length;
      decodeMs += last - r.firstTokenAt;
    }
  }
  return { decodeTokens, decodeMs, outputTokens, wallMs };
}

const modelPath = await ensureTinyModel();
console.log(
  `llamacpp bench: builtin:tiny (${(tinyModelSpec.parameterCount / 1e6).toFixed(1)} M parameters, ` +
    `${tinyModelSpec.weightType}), ${requests.length} requests × ${TOKENS} tokens, greedy, ` +
    `${THREADS} threads, context ${CONTEXT_SIZE}, ${ROUNDS} rounds, alternating per request`,
);

// --- llem side: the engine exactly as a study runs it ---------------------------------------
const engine = createLlamaCppEngine(
  parseExperimentConfig({
    model: 'builtin:tiny',
    engine: 'llamacpp',
    decoder: { preset: 'deterministic' },
    llamacpp: {
      threads: THREADS,
      context_size: CONTEXT_SIZE,
      batch_size: BATCH_SIZE,
      flash_attention: false,
      gpu_layers: 0,
    },
  }),
  { logger: noopLogger, signal: new AbortController().signal },
);
await engine.load();

async function runLlem(batch: EngineRequest[]): Promise<Sample> {
  const t0 = performance.now();
  const outcome = await engine.run(batch);
  return fromRecords(outcome.requests, performance.now() - t0);
}

// --- bare side: node-llama-cpp's own generation loop, nothing else -----------------------------
const llama = await getLlama({
  gpu: false,
  build: 'never',
  skipDownload: true,
  maxThreads: 0,
  progressLogs: false,
});
const model = await llama.loadModel({ modelPath, gpuLayers: 0 });
const context = await model.createContext({
  contextSize: CONTEXT_SIZE,
  batchSize: BATCH_SIZE,
  threads: THREADS,
  flashAttention: false,
  sequences: 1,
});
const sequence = context.getSequence();

async function runBare(batch: EngineRequest[]): Promise<Sample> {
  const t0 = performance.now();
  const records: RequestRecord[] = [];
  for (const request of batch) {
    const startedAt = performance.now();
    await sequence.clearHistory();
    const bos = model.tokens.bos;
    const input: Token[] =
      bos === null ? model.tokenize(request.prompt) : [bos, ...model.tokenize(request.prompt)];
    let firstTokenAt: number | null = null;
    const tokenTimes: number[] = [];
    let n = 0;
    for await (const _token of sequence.evaluate(input, { temperature: 0 })) {
      const now = performance.now();
      if (firstTokenAt === null) firstTokenAt = now;
      else tokenTimes.push(now);
      if (++n >= request.maxOutputTokens) break;
    }
    records.push({
      id: request.id,
      startedAt,
      firstTokenAt,
      tokenTimes,
      endedAt: performance.now(),
      inputTokens: input.length,
      outputTokens: n,
    });
  }
  return fromRecords(records, performance.now() - t0);
}

// One unmeasured round each: page in the weights, warm caches and the thread pool.
await runLlem(requests);
await runBare(requests);

// Alternate at the finest grain, one request at a time (A B, then B A for the next), so the two
// sides of each pair run seconds apart and share whatever the machine is doing at the time.
const llem: Sample[] = [];
const bare: Sample[] = [];
for (let round = 0; round < ROUNDS; round++) {
  for (const [i, request] of requests.entries()) {
    if ((round + i) % 2 === 0) {
      llem.push(await runLlem([request]));
      bare.push(await runBare([request]));
    } else {
      bare.push(await runBare([request]));
      llem.push(await runLlem([request]));
    }
  }
}

const decodeRate = (s: Sample[]) =>
  (s.reduce((a, x) => a + x.decodeTokens, 0) / s.reduce((a, x) => a + x.decodeMs, 0)) * 1000;
const e2eRate = (s: Sample[]) =>
  (s.reduce((a, x) => a + x.outputTokens, 0) / s.reduce((a, x) => a + x.wallMs, 0)) * 1000;
const median = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
};
// Per-pair ratios are noisy (a pair lasts under a second); the summed rates are the headline.
const pairedDecodeRatios = llem.map((l, i) => {
  const b = bare[i] as Sample;
  return l.decodeTokens / l.decodeMs / (b.decodeTokens / b.decodeMs);
});

const llemDecode = decodeRate(llem);
const bareDecode = decodeRate(bare);
const llemE2e = e2eRate(llem);
const bareE2e = e2eRate(bare);
const decodeRatio = llemDecode / bareDecode;
const e2eRatio = llemE2e / bareE2e;
console.log(
  `  decode tok/s   llem ${llemDecode.toFixed(1)}   bare ${bareDecode.toFixed(1)}   ratio ${decodeRatio.toFixed(3)}`,
);
console.log(
  `  e2e tok/s      llem ${llemE2e.toFixed(1)}   bare ${bareE2e.toFixed(1)}   ratio ${e2eRatio.toFixed(3)}`,
);
console.log(
  `  paired decode ratios over ${pairedDecodeRatios.length} pairs: median ${median(pairedDecodeRatios).toFixed(3)}, ` +
    `min ${Math.min(...pairedDecodeRatios).toFixed(3)}, max ${Math.max(...pairedDecodeRatios).toFixed(3)}`,
);
console.log(
  `  target decode ratio ≥ ${TARGET_RATIO}: ${decodeRatio >= TARGET_RATIO ? 'met' : 'NOT met (a busy machine makes this noisy; rerun on an idle one)'}`,
);

await context.dispose();
await model.dispose();
await llama.dispose();
await engine.dispose();
