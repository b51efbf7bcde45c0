// Run with tsx (the runner from source); the worker is the built, plain-JS one, as in production.
// Orchestration overhead per run: the StudyRunner with a no-op worker (fork, IPC, manifest
// writes, residual check, task and result files) against a bare Node fork + IPC of an empty
// child, measured in the same process, interleaved, so machine load hits both alike.
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { StudyRunner } from '../src/index.ts';
import { benchPlan } from './plan.mjs';

const RUNS = Number(process.env.BENCH_RUNS ?? 15);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 6);
const here = (p) => fileURLToPath(new URL(p, import.meta.url));

/** The no-op worker forked by hand with a task file: the child's share of a runner run. */
function workerFork(dir, i) {
  const taskFile = join(dir, `task-${i}.json`);
  const task = {
    key: `k${i}`,
    resultFile: join(dir, `result-${i}.json`),
    residualCheck: null,
  };
  writeFileSync(taskFile, JSON.stringify(task));
  return new Promise((resolve, reject) => {
    const child = fork(here('./noop-worker.mjs'), [], {
      execArgv: [],
      env: { ...process.env, LLEM_TASK_FILE: taskFile },
      stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
      detached: true,
    });
    child.on('error', reject);
    child.on('exit', resolve);
  });
}

function bareFork() {
  return new Promise((resolve, reject) => {
    const child = fork(here('./empty-child.mjs'), [], {
      execArgv: [],
      stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
    });
    child.on('message', () => undefined);
    child.on('error', reject);
    child.on('exit', resolve);
  });
}

const residualCheck = ({ thresholdMb }) => ({
  status: 'skipped',
  thresholdMb,
  devices: [],
  reason: 'benchmark',
  checkedAt: new Date().toISOString(),
});

const out = mkdtempSync(join(tmpdir(), 'llem-bench-'));
// Per run: A = residual check called (after the mark-running write), B = child forked,
// C = run-finished (after exit, classification and the completion write).
const phases = { toResidual: [], residualToFork: [], forkToFinished: [] };
const bare = [];
const workerOnly = [];
const runner = [];
try {
  await bareFork(); // warm the file cache
  for (let round = 0; round < ROUNDS; round += 1) {
    let t = performance.now();
    for (let i = 0; i < RUNS; i += 1) await bareFork();
    bare.push((performance.now() - t) / RUNS);

    t = performance.now();
    for (let i = 0; i < RUNS; i += 1) await workerFork(out, i);
    workerOnly.push((performance.now() - t) / RUNS);

    let a = 0;
    let b = 0;
    let previous = 0;
    const r = new StudyRunner({
      plan: benchPlan(RUNS, 'bench'),
      // As llem does: each run is checked on a GPU (the check itself is the fake below).
      runDevices: () => [0],
      outputDir: out,
      workerModule: here('./noop-worker.mjs'),
      residualCheck: (req) => {
        a = performance.now();
        return residualCheck(req);
      },
    });
    r.on('study-started', () => {
      previous = performance.now();
    });
    r.on('run-started', () => {
      b = performance.now();
    });
    r.on('run-finished', () => {
      const c = performance.now();
      phases.toResidual.push(a - previous);
      phases.residualToFork.push(b - a);
      phases.forkToFinished.push(c - b);
      previous = c;
    });
    t = performance.now();
    const summary = await r.run();
    runner.push((performance.now() - t) / RUNS);
    if (summary.counts.completed !== RUNS) {
      throw new Error(`only ${summary.counts.completed} runs completed`);
    }
  }
} finally {
  rmSync(out, { recursive: true, force: true });
}

const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
const mean = (xs) => xs.reduce((x, y) => x + y, 0) / xs.length;
const bareMs = median(bare);
const runnerMs = median(runner);
const f = (ms) => `${ms.toFixed(1).padStart(7)} ms`;
console.log(`@llem/study orchestration overhead (${RUNS} runs x ${ROUNDS} rounds, median round)`);
console.log(`  bare fork + IPC, empty child        ${f(bareMs)}/run`);
console.log(
  `  defineWorker child alone            ${f(median(workerOnly))}/run  (fork by hand, task file, result file)`,
);
console.log(`  StudyRunner, no-op defineWorker     ${f(runnerMs)}/run`);
console.log(
  `  ratio                               ${(runnerMs / bareMs).toFixed(2)}x (target <= 1.20x)`,
);
console.log('  where a runner run goes (mean over all rounds):');
console.log(
  `    previous run end -> residual check ${f(mean(phases.toResidual))}  cleanups, claim, running record (fsync), manifest`,
);
console.log(
  `    residual check -> child forked     ${f(mean(phases.residualToFork))}  residual check, task file, fork()`,
);
console.log(
  `    child forked -> run finished       ${f(mean(phases.forkToFinished))}  child start, defineWorker, result publish (fsync), exit, completed record (fsync), claim release`,
);
