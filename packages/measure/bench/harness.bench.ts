/**
 * What the harness costs the thing it measures: decode tokens/s of the llamacpp engine (builtin:tiny)
 * when its workload runs inside `measureRun` — sampler ticking, NVML read through koffi on every
 * tick (the fake libnvidia-ml, so this runs without a GPU), RSS sampling — against the same
 * loaded engine's `run()` called directly, in the same process and the same run, alternating
 * ABBA so machine-load drift hits both alike. (`@llem/engines`' bench compares the engine with a
 * bare node-llama-cpp loop; the two ratios multiply to llem vs bare.)
 *
 *   pnpm --filter @llem/measure bench
 *
 * Env: LLEM_BENCH_ROUNDS (default 6), LLEM_BENCH_INTERVAL_MS (sampler interval, default 10 —
 * ten times the default rate, to make any cost visible), LLEM_BENCH_TOKENS (default 48),
 * LLEM_BENCH_THREADS (default min(2, CPUs)).
 */
import { availableParallelism } from 'node:os';
import { parseExperimentConfig } from '@llem/domain';
import type { Engine, EngineRequest, RequestRecord, WorkloadOutcome } from '@llem/engines';
import { createLlamaCppEngine } from '@llem/engines';
import {
  ensureFakeNvmlBuilt,
  fakeNvmlLibraryPath,
  h100Profile,
  writeScenario,
} from '@llem/fake-nvml';
import { noopLogger } from '@llem/resilience';
import { measureRun } from '../src/harness';

const ROUNDS = Number(process.env.LLEM_BENCH_ROUNDS ?? 6);
const INTERVAL_MS = Number(process.env.LLEM_BENCH_INTERVAL_MS ?? 10);
const TOKENS = Number(process.env.LLEM_BENCH_TOKENS ?? 48);
const THREADS = Number(process.env.LLEM_BENCH_THREADS ?? Math.min(2, availableParallelism()));

ensureFakeNvmlBuilt();
process.env.LLEM_NVML_LIBRARY = fakeNvmlLibraryPath('full');
process.env.LLEM_FAKE_NVML_SCENARIO = writeScenario({
  devices: [h100Profile({ instantPowerMw: 300_000 })],
});

const requests: EngineRequest[] = Array.from({ length: 4 }, (_, id) => ({
  id,
  prompt: 'the energy cost of a batch is measured in joules per token',
  maxOutputTokens: TOKENS,
}));

function decodeRate(records: RequestRecord[]): { tokens: number; ms: number } {
  let tokens = 0;
  let ms = 0;
  for (const r of records) {
    const last = r.tokenTimes.at(-1);
    if (r.firstTokenAt !== null && last !== undefined) {
      tokens += r.tokenTimes.length;
      ms += last - r.firstTokenAt;
    }
  }
  return { tokens, ms };
}

const engine = createLlamaCppEngine(
  parseExperimentConfig({
    model: 'builtin:tiny',
    engine: 'llamacpp',
    decoder: { preset: 'deterministic' },
    llamacpp: {
      threads: THREADS,
      context_size: 512,
      batch_size: 512,
      flash_attention: false,
      gpu_layers: 0,
    },
  }),
  { logger: noopLogger, signal: new AbortController().signal },
);
const info = await engine.load();

// The harness gets the already-loaded engine, so both sides decode with the same model and context.
let lastOutcome: WorkloadOutcome | null = null;
const shared: Engine = {
  name: engine.name,
  windowMarking: engine.windowMarking,
  load: async () => info,
  warmup: async () => [],
  run: async (reqs, hooks) => {
    lastOutcome = await engine.run(reqs, hooks);
    return lastOutcome;
  },
  dispose: async () => undefined,
};
const config = {
  engine: 'llamacpp' as const,
  model: 'builtin:tiny',
  dataset: { synthetic: { n: 4, input_len: 12, output_len: TOKENS, seed: 1 } },
  max_output_tokens: TOKENS,
  warmup: { n: 0 },
  baseline: { enabled: false, duration_s: 1 },
  energy: { backend: 'nvml' as const, sample_interval_ms: INTERVAL_MS, devices: [0] },
};

async function viaHarness() {
  const { result } = await measureRun(
    { runId: 'bench', configHash: '0123456789abcdef', cycle: 0, config },
    { createEngine: async () => shared },
  );
  const outcome = lastOutcome as WorkloadOutcome | null;
  if (!outcome) throw new Error('no outcome');
  return { ...decodeRate(outcome.requests), samples: result.extra.samplesInWindow as number };
}
async function direct() {
  const prompts = await (await import('../src/dataset')).buildRequests(config.dataset, TOKENS);
  return decodeRate((await engine.run(prompts)).requests);
}

console.log(
  `measure bench: builtin:tiny, ${requests.length} requests × ${TOKENS} tokens, ${THREADS} threads, sampler every ${INTERVAL_MS} ms (fake NVML via koffi), ${ROUNDS} rounds ABBA`,
);
await viaHarness();
await direct();
const h = { tokens: 0, ms: 0, samples: 0 };
const d = { tokens: 0, ms: 0 };
const ratios: number[] = [];
for (let round = 0; round < ROUNDS; round++) {
  const order = round % 2 === 0 ? ['h', 'd'] : ['d', 'h'];
  let hr = { tokens: 0, ms: 1, samples: 0 };
  let dr = { tokens: 0, ms: 1 };
  for (const side of order) {
    if (side === 'h') hr = await viaHarness();
    else dr = await direct();
  }
  h.tokens += hr.tokens;
  h.ms += hr.ms;
  h.samples += hr.samples;
  d.tokens += dr.tokens;
  d.ms += dr.ms;
  ratios.push(hr.tokens / hr.ms / (dr.tokens / dr.ms));
}
const hRate = (h.tokens / h.ms) * 1000;
const dRate = (d.tokens / d.ms) * 1000;
const sorted = [...ratios].sort((a, b) => a - b);
console.log(
  `  decode tok/s   in harness ${hRate.toFixed(1)}   engine alone ${dRate.toFixed(1)}   ratio ${(hRate / dRate).toFixed(3)}`,
);
console.log(
  `  per-round ratios: ${ratios.map((r) => r.toFixed(3)).join(' ')} (median ${(sorted[sorted.length >> 1] ?? 0).toFixed(3)})`,
);
console.log(
  `  sampler ticks in the windows: ${h.samples} (${(h.samples / ROUNDS).toFixed(0)} per run)`,
);
console.log(
  `  target ratio ≥ 0.97: ${hRate / dRate >= 0.97 ? 'met' : 'NOT met (a busy machine makes this noisy; rerun on an idle one)'}`,
);
await engine.dispose();
