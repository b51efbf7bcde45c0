// Real-GPU energy check (run on a machine with an NVIDIA GPU, python3 and torch):
//   node --import tsx --conditions @llem/source packages/measure/bench/real-gpu-energy.ts
// Measures an idle window and a 10 s fp16 matmul load (through the `command` engine) with the
// harness, and prints the NVML counter energy beside the power integral of the same samples and
// nvidia-smi's power readings, so the three can be compared. Rows without a power reading (a
// counter-only tick) are skipped by the integral here, as they are by the harness.
import { spawn } from 'node:child_process';
import type { Engine } from '@llem/engines';
import { createCommandEngine } from '@llem/engines';
import { measureRun } from '../src/index';

const log = {
  error: console.error,
  warn: console.error,
  info: console.error,
  debug: () => undefined,
};
function smi(): { stop: () => number[] } {
  const p = spawn('nvidia-smi', [
    '--query-gpu=power.draw',
    '--format=csv,noheader,nounits',
    '-lms',
    '200',
  ]);
  const w: number[] = [];
  p.on('error', () => undefined);
  p.stdout.on('data', (d) =>
    String(d)
      .trim()
      .split('\n')
      .forEach((l) => {
        const v = Number(l);
        if (Number.isFinite(v)) w.push(v);
      }),
  );
  return {
    stop: () => {
      p.kill();
      return w;
    },
  };
}
function integralFromCsv(csv: string): { j: number; n: number } {
  const rows = csv
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => l.split(','))
    .filter((r) => r[0] === 'measure' && r[2] === 'gpu0' && r[3] !== '');
  let j = 0;
  for (let i = 1; i < rows.length; i++) {
    const t0 = Number(rows[i - 1]![1]),
      t1 = Number(rows[i]![1]);
    j += ((Number(rows[i - 1]![3]) + Number(rows[i]![3])) / 2) * ((t1 - t0) / 1000);
  }
  return { j, n: rows.length };
}
const base = {
  model: 'matmul',
  dataset: { synthetic: { n: 1, input_len: 4, output_len: 4, seed: 1 } },
  max_output_tokens: 4,
  warmup: { n: 0 },
  energy: { backend: 'nvml' as const, sample_interval_ms: 50, devices: [0] },
};
for (const [name, cfg, engineFor] of [
  [
    'idle (sleep 6 s)',
    { ...base, engine: 'llamacpp' as const, baseline: { enabled: false, duration_s: 1 } },
    (): Engine => ({
      name: 'llamacpp',
      windowMarking: 'harness',
      load: async () => ({
        engine: 'llamacpp',
        engineVersion: null,
        parameterCount: null,
        model: 'idle',
        backend: 'none',
        details: {},
      }),
      warmup: async () => [],
      run: async () => {
        await new Promise((r) => setTimeout(r, 6000));
        return { requests: [], inputTokens: 0, outputTokens: 1, tokenCountSource: 'engine' };
      },
      dispose: async () => {},
    }),
  ],
  [
    'torch fp16 matmul 10 s (command engine, python3)',
    {
      ...base,
      engine: 'command' as const,
      baseline: { enabled: true, duration_s: 3 },
      command: { argv: ['python3', new URL('./gpu-load.py', import.meta.url).pathname, '10'] },
    },
    (c: never, ctx: never): Engine => createCommandEngine(c, ctx),
  ],
] as const) {
  const s = smi();
  const { result, timeseriesCsv } = await measureRun(
    { runId: 'gpu', configHash: '0123456789abcdef', cycle: 0, config: cfg as never },
    {
      logger: log,
      createEngine: async (c, ctx) =>
        (engineFor as (a: never, b: never) => Engine)(c as never, ctx as never),
    },
  );
  const smiW = s.stop();
  const integ = integralFromCsv(timeseriesCsv);
  const d = result.window.durationS;
  console.log(
    JSON.stringify(
      {
        run: name,
        method: result.energy.method,
        durationS: +d.toFixed(3),
        counterJ: result.energy.totalJ,
        counterW: result.energy.totalJ === null ? null : +(result.energy.totalJ / d).toFixed(2),
        integralJ: +integ.j.toFixed(2),
        integralW: +(integ.j / d).toFixed(2),
        samples: integ.n,
        ratioIntegralToCounter: result.energy.totalJ
          ? +(integ.j / result.energy.totalJ).toFixed(4)
          : null,
        baselineW: result.energy.baselineW,
        adjustedJ: result.energy.adjustedJ,
        nvidiaSmiMeanW: smiW.length
          ? +(smiW.reduce((a, b) => a + b, 0) / smiW.length).toFixed(2)
          : null,
        nvidiaSmiMaxW: Math.max(...smiW),
        gpuPeakUsedMiB: result.memory.gpuPeakUsedMiB,
        outputTokens: result.tokens.output,
        warnings: result.warnings.map((w) => w.code),
        env: result.environment.gpus[0],
        driver: result.environment.driverVersion,
        cuda: result.environment.cudaVersion,
      },
      null,
      1,
    ),
  );
}
