import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ManifestSchema, mulberry32 } from '@llem/domain';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { bundleFixtureWorker } from './fixtures/bundle';
import {
  awaitDeaths,
  type ChaosSession,
  ledgerPids,
  pickBehaviour,
  pollManifest,
  readJsonLines,
  startChaosDriver,
} from './fixtures/chaos';
import { makePlan } from './fixtures/plan';
import { isRunning, tempDir } from './helpers';

// The chaos test: ≥100 scheduled runs with randomly misbehaving workers; the runner's process is
// SIGKILLed at random moments ≥5 times and resumed each time. Seeded, so a failure replays.
const SEED = Number(process.env.LLEM_CHAOS_SEED ?? 20261122);
const CONFIGS = 50;
const CYCLES = 2;
const KILLS = 6;

const BEHAVIOURS = [
  ['ok', 0.6],
  ['grandchild-then-ok', 0.1],
  ['throw', 0.08],
  ['crash', 0.08],
  ['exit-nonzero', 0.06],
  ['no-result', 0.06],
  ['hang', 0.02],
  ['grandchild-hang', 0.02],
] as const;

const EXPECTED: Record<string, [string, string | null]> = {
  ok: ['completed', null],
  'grandchild-then-ok': ['completed', null],
  throw: ['failed', 'engine'],
  crash: ['failed', 'crash'],
  'exit-nonzero': ['failed', 'crash'],
  'no-result': ['failed', 'no-result'],
  hang: ['failed', 'timeout'],
  'grandchild-hang': ['failed', 'timeout'],
};

let tmp: ReturnType<typeof tempDir>;
let bundledWorker: string;
beforeAll(async () => {
  tmp = tempDir();
  bundledWorker = await bundleFixtureWorker(tmp.dir);
});
afterAll(() => tmp.cleanup());

const alive = isRunning;

/** Every worker pid any driver reported. */
const workerPids = new Set<number>();

function startDriver(args: string[], ledger: string): ChaosSession {
  return startChaosDriver(args, {
    ledger,
    worker: bundledWorker,
    // Worker pids as the runner forks them, before a worker has written anything.
    onRun: (_key, pid) => workerPids.add(pid),
  });
}

it('survives repeated SIGKILLs of the runner: every run ends once, nothing duplicated, no orphans', async () => {
  const random = mulberry32(SEED);
  const configs = Array.from({ length: CONFIGS }, (_, i) => {
    const behaviour = pickBehaviour(BEHAVIOURS, random);
    return { behaviour, delayMs: Math.floor(random() * 250), id: i };
  });
  // 4 s: room for a healthy worker to start on a loaded 2-core machine; only 'hang' runs wait it out.
  const plan = makePlan(configs, { cycles: CYCLES, timeout_s: 4, experiment_gap_s: 0 }, 'chaos');
  const planFile = join(tmp.dir, 'plan.json');
  writeFileSync(planFile, JSON.stringify(plan));
  const ledger = join(tmp.dir, 'ledger.jsonl');

  // Parse the manifest continuously while the chaos goes on.
  let studyDir: string | null = null;
  const poller = pollManifest(() => studyDir, 15);

  const started = Date.now();
  let kills = 0;
  let survivors = 0;
  let slowestDeathMs = 0;
  let checkedPids = 0;
  let aliveAtKill = 0;
  let session = startDriver([tmp.dir, planFile], ledger);
  studyDir = await session.studyDir;
  try {
    for (;;) {
      const killAfter = 1200 + random() * 2500;
      const finishedFirst = await Promise.race([
        session.exited.then(() => true),
        new Promise<boolean>((r) => setTimeout(() => r(false), killAfter)),
      ]);
      if (finishedFirst) break;
      if (kills >= KILLS) {
        await session.exited;
        break;
      }
      const pidsBefore = ledgerPids(workerPids, ledger);
      aliveAtKill += [...pidsBefore].filter(alive).length;
      session.child.kill('SIGKILL');
      await session.exited;
      kills += 1;
      // Every worker and grandchild ever started must be gone promptly.
      const pids = ledgerPids(workerPids, ledger);
      checkedPids = pids.size;
      const deaths = await awaitDeaths(pids, 3000, 10);
      slowestDeathMs = Math.max(slowestDeathMs, deaths.waitedMs);
      survivors += deaths.survivors;
      session = startDriver([tmp.dir, '--resume', studyDir], ledger);
      await session.studyDir;
    }
  } finally {
    poller.stop();
    session.child.kill('SIGKILL');
  }
  const elapsedS = (Date.now() - started) / 1000;

  const manifest = ManifestSchema.parse(
    JSON.parse(readFileSync(join(studyDir, 'manifest.json'), 'utf8')),
  );
  const lines = readJsonLines(ledger);
  const byKey = new Map(plan.runs.map((r) => [r.key, configs[r.configIndex]!]));
  let wrongState = 0;
  let unparseable = 0;
  let duplicated = 0;
  for (const entry of manifest.entries) {
    const config = byKey.get(entry.key)!;
    const [status, type] = EXPECTED[config.behaviour]!;
    if (entry.status !== status || (entry.error?.type ?? null) !== type) wrongState += 1;
    const finishes = lines.filter((l) => l.event === 'finish' && l.key === entry.key);
    if (entry.status === 'completed') {
      try {
        const result = JSON.parse(readFileSync(join(studyDir, entry.resultFile!), 'utf8')) as {
          attempt: number;
        };
        // The attempt that wrote the result is the only one that ever finished, and nothing
        // started this run again after it.
        if (finishes.length !== 1 || finishes[0]?.attempt !== result.attempt) duplicated += 1;
        const startsAfter = lines.filter(
          (l) => l.event === 'start' && l.key === entry.key && Number(l.attempt) > result.attempt,
        );
        if (startsAfter.length > 0) duplicated += 1;
      } catch {
        unparseable += 1;
      }
    } else if (finishes.length > 0) {
      duplicated += 1;
    }
  }
  const dispatches = lines.filter((l) => l.event === 'start').length;
  const figures = {
    seed: SEED,
    scheduledRuns: manifest.entries.length,
    kills,
    dispatches,
    completed: manifest.counts.completed,
    failed: manifest.counts.failed,
    wrongState,
    unparseableResults: unparseable,
    duplicated,
    manifestParses: poller.parses,
    manifestParseFailures: poller.parseFailures,
    pidsChecked: checkedPids,
    childrenAliveAtKills: aliveAtKill,
    orphansSurvived: survivors,
    slowestOrphanDeathMs: slowestDeathMs,
    elapsedS,
  };
  console.log(`chaos figures: ${JSON.stringify(figures)}`);

  expect(manifest.entries.length).toBeGreaterThanOrEqual(100);
  expect(kills).toBeGreaterThanOrEqual(5);
  expect(manifest.status).toBe('completed');
  expect(manifest.counts.pending + manifest.counts.running).toBe(0);
  expect(manifest.counts.completed + manifest.counts.failed).toBe(manifest.entries.length);
  expect(new Set(manifest.entries.map((e) => e.key)).size).toBe(manifest.entries.length);
  expect(wrongState).toBe(0);
  expect(unparseable).toBe(0);
  expect(duplicated).toBe(0);
  expect(poller.parses).toBeGreaterThan(0);
  expect(poller.parseFailures).toBe(0);
  expect(survivors).toBe(0);
}, 180_000);
