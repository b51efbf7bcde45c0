import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { mulberry32 } from '@llem/domain';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { StudyDirectory } from '../src/directory';
import { bundleFixtureWorker } from './fixtures/bundle';
import {
  awaitDeaths,
  type ChaosSession,
  ledgerPids,
  pickBehaviour,
  readJsonLines,
  startChaosDriver,
} from './fixtures/chaos';
import { makePlan } from './fixtures/plan';
import { tempDir } from './helpers';

// The chaos test on 4 GPUs: ≥200 runs in parallel, one per GPU, randomly misbehaving workers,
// the runner SIGKILLed at random moments and resumed. Each run must end in exactly one terminal
// state, no result may be rewritten, and no two runs may ever hold one GPU at once.
const SEED = Number(process.env.LLEM_CHAOS_SEED ?? 20261201);
const CONFIGS = 100;
const CYCLES = 2;
const KILLS = 5;
const TIMEOUT_S = 4;
const GRACE_MS = 300;

const BEHAVIOURS = [
  ['ok', 0.7],
  ['throw', 0.1],
  ['crash', 0.08],
  ['exit-nonzero', 0.05],
  ['no-result', 0.05],
  ['hang', 0.02],
] as const;
const EXPECTED: Record<string, [string, string | null]> = {
  ok: ['completed', null],
  throw: ['failed', 'engine'],
  crash: ['failed', 'crash'],
  'exit-nonzero': ['failed', 'crash'],
  'no-result': ['failed', 'no-result'],
  hang: ['failed', 'timeout'],
};

let tmp: ReturnType<typeof tempDir>;
let worker: string;
beforeAll(async () => {
  tmp = tempDir();
  worker = await bundleFixtureWorker(tmp.dir);
});
afterAll(() => tmp.cleanup());

it('4 GPUs, SIGKILLed runner, resumes: one terminal state per run, no result rewritten, no GPU shared', async () => {
  const random = mulberry32(SEED);
  const configs = Array.from({ length: CONFIGS }, (_, id) => {
    const behaviour = pickBehaviour(BEHAVIOURS, random);
    return { behaviour, delayMs: 50 + Math.floor(random() * 350), id };
  });
  const plan = makePlan(
    configs,
    { cycles: CYCLES, timeout_s: TIMEOUT_S, devices: [0, 1, 2, 3] } as never,
    'chaos-gpus',
  );
  const planFile = join(tmp.dir, 'plan.json');
  writeFileSync(planFile, JSON.stringify(plan));
  const ledger = join(tmp.dir, 'ledger.jsonl');
  const workerPids = new Set<number>();
  const start = (args: string[]): ChaosSession =>
    startChaosDriver(args, { ledger, worker, onRun: (_k, pid) => workerPids.add(pid) });

  const started = Date.now();
  const killTimes: number[] = [];
  let survivors = 0;
  let session = start([tmp.dir, planFile]);
  const studyDir = await session.studyDir;
  for (;;) {
    const killAfter = 1500 + random() * 2500;
    const finished = await Promise.race([
      session.exited.then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), killAfter)),
    ]);
    if (finished) break;
    if (killTimes.length >= KILLS) {
      await session.exited;
      break;
    }
    session.child.kill('SIGKILL');
    killTimes.push(Date.now());
    await session.exited;
    survivors += (await awaitDeaths(ledgerPids(workerPids, ledger), 3000, 10)).survivors;
    session = start([tmp.dir, '--resume', studyDir]);
    await session.studyDir;
  }
  const elapsedS = (Date.now() - started) / 1000;

  const directory = new StudyDirectory(studyDir);
  const state = directory.state();
  const lines = readJsonLines(ledger);
  const byKey = new Map(plan.runs.map((r) => [r.key, configs[r.configIndex]!]));
  let wrongState = 0;
  let duplicated = 0;
  for (const run of state.runs) {
    const config = byKey.get(run.key)!;
    const [status, type] = EXPECTED[config.behaviour]!;
    if (run.status !== status || (run.error?.type ?? null) !== type) wrongState += 1;
    const finishes = lines.filter((l) => l.event === 'finish' && l.key === run.key);
    if (run.status === 'completed') {
      const result = JSON.parse(readFileSync(directory.runPaths(run.key).result, 'utf8')) as {
        attempt: number;
      };
      if (finishes.length !== 1 || finishes[0]?.attempt !== result.attempt) duplicated += 1;
    } else if (finishes.length > 0) duplicated += 1;
  }

  // Each attempt's time on its GPU, from the worker's own clock: to its finish, else until it
  // failed (right after its delay), timed out (timeout + grace) or its runner was killed.
  const spans = lines
    .filter((l) => l.event === 'start')
    .map((s) => {
      const t = s.t as number;
      const config = byKey.get(s.key as string)!;
      const finish = lines.find(
        (l) => l.event === 'finish' && l.key === s.key && l.attempt === s.attempt,
      );
      const own =
        (finish?.t as number | undefined) ??
        (config.behaviour === 'hang' ? t + TIMEOUT_S * 1000 + GRACE_MS : t + config.delayMs);
      const killed = killTimes.find((k) => k > t);
      return {
        key: s.key as string,
        device: (s.devices as number[])[0] as number,
        cuda: s.cuda as string,
        start: t,
        end: killed === undefined ? own : Math.min(own, killed),
      };
    });
  let gpuShared = 0;
  for (const [i, a] of spans.entries()) {
    for (const b of spans.slice(i + 1)) {
      if (a.device === b.device && a.start < b.end && b.start < a.end) gpuShared += 1;
    }
  }
  const wrongCuda = spans.filter((s) => s.cuda !== `GPU-chaos-${s.device}`).length;
  let concurrent = 0;
  for (const s of spans)
    concurrent = Math.max(
      concurrent,
      spans.filter((o) => o.start <= s.start && s.start < o.end).length,
    );
  const figures = {
    seed: SEED,
    runs: state.runs.length,
    gpus: 4,
    kills: killTimes.length,
    dispatches: spans.length,
    completed: state.counts.completed,
    failed: state.counts.failed,
    wrongState,
    duplicated,
    gpuShared,
    wrongCuda,
    mostConcurrent: concurrent,
    orphansSurvived: survivors,
    elapsedS,
  };
  console.log(`chaos (4 GPUs) figures: ${JSON.stringify(figures)}`);

  expect(state.runs).toHaveLength(CONFIGS * CYCLES);
  expect(killTimes.length).toBeGreaterThanOrEqual(KILLS);
  expect(state.status).toBe('completed');
  expect(state.counts.completed + state.counts.failed).toBe(CONFIGS * CYCLES);
  expect(wrongState).toBe(0);
  expect(duplicated).toBe(0);
  expect(gpuShared).toBe(0);
  expect(wrongCuda).toBe(0);
  expect(concurrent).toBeGreaterThanOrEqual(3);
  expect(survivors).toBe(0);
}, 240_000);
