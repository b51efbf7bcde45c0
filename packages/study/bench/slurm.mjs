// Run with tsx (the test cluster helper is TypeScript); llem's side is the built package.
// llem's overhead per run under Slurm, beyond Slurm's own, on a one-node cluster of the bench's
// own (tooling/slurm-cluster). Array jobs of RUNS tasks, each task
//   slurm:  `true` (what sbatch and slurmd cost: scheduling, the batch step, the log file)
//   node:   `node -e 0` (Node's own start, which any llem task pays)
//   llem:   a llem task doing one run with the no-op worker: `runSlurmTask` reads its
//           submission, resolves its GPU (NVML), claims the run, writes its records, does the
//           residual check, forks the worker, waits for its result, releases the claim.
// Two figures: the time inside a task (the task's command under /usr/bin/time, read from its
// Slurm log), and the wall time per task with one task at a time (--array=…%1), which adds
// Slurm's scheduling. Interleaved rounds, so the machine's load hits all three alike.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ensureFakeNvmlBuilt,
  fakeNvmlLibraryPath,
  h100Profile,
  writeScenario,
} from '../../../tooling/fake-nvml/src/index.ts';
import { startSlurmCluster } from '../../../tooling/slurm-cluster/src/index.ts';
import { slurmLiveness, submitSlurmStudy, waitForStudy } from '../dist/index.js';

const RUNS = Number(process.env.BENCH_SLURM_RUNS ?? 10);
const ROUNDS = Number(process.env.BENCH_SLURM_ROUNDS ?? 3);
const TIME = '/usr/bin/time';
const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const hex16 = (s) => createHash('sha256').update(s).digest('hex').slice(0, 16);

const cluster = await startSlurmCluster({ gpus: 4 });
if (!cluster.ok) {
  console.log(`slurm bench: SKIPPED (${cluster.reason})`);
  process.exit(0);
}
const timed = existsSync(TIME);
const prefix = timed ? `${TIME} -f llem-bench-task-s=%e` : '';
ensureFakeNvmlBuilt();
const dir = mkdtempSync(join(tmpdir(), 'llem-bench-slurm-'));
const env = {
  ...cluster.env,
  LLEM_NVML_LIBRARY: fakeNvmlLibraryPath(),
  LLEM_FAKE_NVML_SCENARIO: writeScenario(
    { devices: [0, 1, 2, 3].map((i) => h100Profile({ uuid: `GPU-${i}bench` })) },
    dir,
  ),
};
const liveness = slurmLiveness({ env, cacheMs: 0 });

function plan(n, round) {
  const configs = Array.from({ length: n }, (_, index) => ({
    index,
    label: `noop${index}`,
    configHash: hex16(`${round}:${index}`),
    config: { index },
  }));
  return {
    name: `bench-${round}`,
    designHash: hex16(`bench-${round}`),
    // The batch script runs the task under /usr/bin/time (its LLEM_SLURM_PREFIX).
    execution: {
      slurm: {
        max_parallel: 1,
        ...(timed ? { setup: [`export LLEM_SLURM_PREFIX='${prefix}'`] } : {}),
      },
    },
    configs,
    runs: configs.map((c, ordinal) => ({
      key: `${c.configHash}_c0`,
      configIndex: c.index,
      configHash: c.configHash,
      copy: 0,
      cycle: 0,
      ordinal,
    })),
  };
}

/** The seconds /usr/bin/time printed into every log under `logDir`. */
function inTask(logDir) {
  return readdirSync(logDir).flatMap((name) => {
    const m = /llem-bench-task-s=([0-9.]+)/.exec(readFileSync(join(logDir, name), 'utf8'));
    return m ? [Number(m[1]) * 1000] : [];
  });
}

async function untilDone(jobId) {
  for (;;) {
    const out = spawnSync('squeue', ['-h', `--jobs=${jobId}`, '-t', 'PD,R,CG', '-o', '%i'], {
      env,
      encoding: 'utf8',
    });
    if (out.stdout.trim() === '') return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** An array of `RUNS` tasks (one at a time) running `command`: wall ms per task. */
async function bareArray(name, command, round) {
  const logDir = join(dir, `${name}-${round}`);
  mkdirSync(logDir);
  const t0 = performance.now();
  const out = spawnSync(
    'sbatch',
    [
      '--parsable',
      `--array=0-${RUNS - 1}%1`,
      '--gres=gpu:1',
      `--output=${logDir}/%a.log`,
      '--wrap',
      `${prefix} ${command}`,
    ],
    { env, encoding: 'utf8' },
  );
  await untilDone(out.stdout.trim());
  samples[name].wall.push((performance.now() - t0) / RUNS);
  samples[name].inTask.push(...inTask(logDir));
}

async function llemArray(round) {
  const t0 = performance.now();
  const { studyDir } = await submitSlurmStudy({
    plan: plan(RUNS, round),
    outputDir: dir,
    env,
    liveness,
    taskCommand: ({ studyDir, submission }) => [
      process.execPath,
      here('./slurm-task.mjs'),
      studyDir,
      String(submission),
    ],
  });
  const state = await waitForStudy(studyDir, { liveness, intervalMs: 50 });
  if (state.counts.completed !== RUNS) {
    throw new Error(`bench study ended ${JSON.stringify(state.counts)}`);
  }
  samples.llem.wall.push((performance.now() - t0) / RUNS);
  samples.llem.inTask.push(...inTask(join(studyDir, 'slurm')));
}

const samples = {
  slurm: { wall: [], inTask: [] },
  node: { wall: [], inTask: [] },
  llem: { wall: [], inTask: [] },
};
try {
  await bareArray('slurm', 'true', 'warm-up'); // the scheduler and the page cache
  samples.slurm = { wall: [], inTask: [] };
  for (let round = 0; round < ROUNDS; round += 1) {
    await bareArray('slurm', 'true', round);
    await bareArray('node', `${process.execPath} -e 0`, round);
    await llemArray(round);
  }
} finally {
  await cluster.stop();
  rmSync(dir, { recursive: true, force: true });
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const ms = (v) => `${Math.round(v)} ms`;
const m = (name, what) => median(samples[name][what]);
console.log(
  `slurm bench (${RUNS} array tasks × ${ROUNDS} rounds, one task at a time; medians per task):`,
);
if (timed) {
  console.log(
    `  inside a task:  true ${ms(m('slurm', 'inTask'))}, node -e 0 ${ms(m('node', 'inTask'))}, llem task with a no-op run ${ms(m('llem', 'inTask'))}`,
  );
}
console.log(
  `  wall per task (with Slurm's scheduling):  true ${ms(m('slurm', 'wall'))}, node -e 0 ${ms(m('node', 'wall'))}, llem ${ms(m('llem', 'wall'))}`,
);
console.log(
  `llem's overhead per run under Slurm, beyond Slurm's own: ${ms(m('llem', 'wall') - m('slurm', 'wall'))} of wall time per task` +
    (timed
      ? `; ${ms(m('llem', 'inTask') - m('slurm', 'inTask'))} inside the task (${ms(m('llem', 'inTask') - m('node', 'inTask'))} beyond Node's own start)`
      : ''),
);
