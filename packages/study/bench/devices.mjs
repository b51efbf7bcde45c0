// Run with tsx (the runner from source); the worker is the built, plain-JS one, as in production.
// Many GPUs: wall time of 16 runs of 2 s each on 4 (fake) GPUs against the same study on 1 GPU,
// measured in one process, one after the other. Aim: >= 3.5x.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { StudyRunner } from '../src/index.ts';
import { benchPlan } from './plan.mjs';

const RUNS = Number(process.env.BENCH_RUNS ?? 16);
const RUN_MS = Number(process.env.BENCH_RUN_MS ?? 2000);
const here = (p) => fileURLToPath(new URL(p, import.meta.url));

const residualCheck = ({ thresholdMb }) => ({
  status: 'skipped',
  thresholdMb,
  devices: [],
  reason: 'benchmark',
  checkedAt: new Date().toISOString(),
});

async function wall(devices, out) {
  const runner = new StudyRunner({
    plan: benchPlan(RUNS, `bench-${devices.length}gpu`, { devices }),
    outputDir: out,
    workerModule: here('./sleep-worker.mjs'),
    env: { ...process.env, BENCH_RUN_MS: String(RUN_MS) },
    residualCheck,
    resolveDevices: (specs) => specs.map((index) => ({ index, uuid: `GPU-bench-${index}` })),
  });
  const t = performance.now();
  const summary = await runner.run();
  if (summary.counts.completed !== RUNS)
    throw new Error(`only ${summary.counts.completed} runs completed`);
  return (performance.now() - t) / 1000;
}

const out = mkdtempSync(join(tmpdir(), 'llem-bench-devices-'));
try {
  const one = await wall([0], out);
  const four = await wall([0, 1, 2, 3], out);
  const ideal = (RUNS * RUN_MS) / 1000;
  console.log(`@llem/study many GPUs: ${RUNS} runs of ${RUN_MS / 1000} s each`);
  console.log(
    `  1 GPU    ${one.toFixed(2).padStart(6)} s  (${ideal.toFixed(0)} s of runs + orchestration)`,
  );
  console.log(`  4 GPUs   ${four.toFixed(2).padStart(6)} s`);
  console.log(
    `  speed-up ${(one / four).toFixed(2)}x (aim >= 3.5x; about 4x when the runs dominate: orchestration overlaps too)`,
  );
} finally {
  rmSync(out, { recursive: true, force: true });
}
