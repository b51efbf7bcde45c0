import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { mulberry32, RunClaimSchema } from '@llem/domain';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { StudyDirectory } from '../src/directory';
import { bundleFixtureWorker } from './fixtures/bundle';
import { type ChaosSession, readJsonLines, startChaosDriver } from './fixtures/chaos';
import { makePlan } from './fixtures/plan';
import { tempDir } from './helpers';

// Several runner processes race for the runs of one study in one directory, as local parallel
// runners or Slurm tasks do; some are SIGKILLed mid-run and replaced. Seeded: a failure replays.
const SEED = Number(process.env.LLEM_RACE_SEED ?? 20261130);
const CONFIGS = 120;
const CYCLES = 2;
const RUNNERS = 4;
const KILLS = 3;

let tmp: ReturnType<typeof tempDir>;
let worker: string;
beforeAll(async () => {
  tmp = tempDir();
  worker = await bundleFixtureWorker(tmp.dir);
});
afterAll(() => tmp.cleanup());

it('runners racing for one study: each run completed exactly once, stale claims taken over, no result rewritten', async () => {
  const random = mulberry32(SEED);
  const configs = Array.from({ length: CONFIGS }, (_, id) => ({
    behaviour: 'ok',
    delayMs: Math.floor(random() * 40),
    id,
  }));
  const plan = makePlan(configs, { cycles: CYCLES, timeout_s: 20 }, 'race');
  const planFile = join(tmp.dir, 'plan.json');
  writeFileSync(planFile, JSON.stringify(plan));
  const ledger = join(tmp.dir, 'ledger.jsonl');
  const start = (args: string[]): ChaosSession =>
    startChaosDriver(args, { ledger, worker, onRun: () => undefined });

  const started = Date.now();
  const first = start([tmp.dir, planFile]);
  const studyDir = await first.studyDir;
  const sessions = [first];
  for (let i = 1; i < RUNNERS; i += 1) sessions.push(start([tmp.dir, '--resume', studyDir]));
  await Promise.all(sessions.map((s) => s.studyDir));

  // SIGKILL a random live runner every so often and start a replacement.
  let kills = 0;
  const killed: number[] = [];
  while (kills < KILLS) {
    await new Promise((r) => setTimeout(r, 600 + random() * 900));
    const live = sessions.filter((s) => s.child.exitCode === null && s.child.signalCode === null);
    if (live.length === 0) break;
    const victim = live[Math.floor(random() * live.length)] as ChaosSession;
    killed.push(victim.child.pid as number);
    victim.child.kill('SIGKILL');
    await victim.exited;
    kills += 1;
    const replacement = start([tmp.dir, '--resume', studyDir]);
    sessions.push(replacement);
    await replacement.studyDir;
  }
  await Promise.all(sessions.map((s) => s.exited));
  // One last resume finishes anything the last kill left (a claim whose owner is dead).
  const last = start([tmp.dir, '--resume', studyDir]);
  await last.exited;
  const elapsedS = (Date.now() - started) / 1000;

  const directory = new StudyDirectory(studyDir);
  const state = directory.state();
  const lines = readJsonLines(ledger);
  const files = readdirSync(join(studyDir, 'runs'));
  let doubleFinished = 0;
  let rewritten = 0;
  let superseded = 0;
  let unreleased = 0;
  for (const run of state.runs) {
    const finishes = lines.filter((l) => l.event === 'finish' && l.key === run.key);
    if (finishes.length !== 1) doubleFinished += 1;
    const result = JSON.parse(readFileSync(directory.runPaths(run.key).result, 'utf8')) as {
      attempt: number;
    };
    // The result on disk is the one the only finished attempt published.
    if (finishes[0]?.attempt !== result.attempt) rewritten += 1;
    const claims = files.filter((f) => f.startsWith(`${run.key}.claim-`)).length;
    if (claims > 1) superseded += claims - 1;
    const current = RunClaimSchema.parse(
      JSON.parse(readFileSync(join(studyDir, 'runs', `${run.key}.claim-${claims}`), 'utf8')),
    );
    if (current.releasedAt === null) unreleased += 1;
  }
  const conflicts = files.filter((f) => f.includes('.conflict-')).length;
  const figures = {
    seed: SEED,
    runs: state.runs.length,
    runners: sessions.length + 1,
    kills,
    dispatches: lines.filter((l) => l.event === 'start').length,
    completed: state.counts.completed,
    doubleFinished,
    rewritten,
    conflicts,
    supersededClaims: superseded,
    unreleased,
    strayTempFiles: files.filter((f) => f.endsWith('.tmp')).length,
    elapsedS,
  };
  console.log(`race figures: ${JSON.stringify(figures)}`);

  expect(state.runs).toHaveLength(CONFIGS * CYCLES);
  expect(kills).toBe(KILLS);
  expect(state.status).toBe('completed');
  expect(state.counts.completed).toBe(CONFIGS * CYCLES);
  expect(doubleFinished).toBe(0);
  expect(rewritten).toBe(0);
  expect(conflicts).toBe(0);
  // A SIGKILLed runner held a run: someone took its stale claim over.
  expect(superseded).toBeGreaterThanOrEqual(1);
  expect(unreleased).toBe(0);
  // A temp file is left only by a runner SIGKILLed between writing it and renaming it.
  const killedPids = new Set(killed.map(String));
  const strays = files.filter((f) => f.endsWith('.tmp'));
  expect(strays.filter((f) => !killedPids.has(f.split('.').at(-4) ?? ''))).toEqual([]);
}, 240_000);
