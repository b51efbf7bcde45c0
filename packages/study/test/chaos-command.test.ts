import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ManifestSchema, mulberry32, planStudy, RunResultSchema } from '@llem/domain';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { bundleMeasureWorker } from './fixtures/bundle';
import {
  awaitDeaths,
  ledgerPids,
  pollManifest,
  readJsonLines,
  startChaosDriver,
} from './fixtures/chaos';
import { tempDir } from './helpers';

// The chaos test's variant on the real stack: the llem worker (@llem/measure/worker) running
// misbehaving programs through the `command` engine, the runner SIGKILLed at random moments and
// resumed. Smaller than the fixture-worker chaos test: each run here loads the whole harness.
const SEED = Number(process.env.LLEM_CHAOS_SEED ?? 7);
const CONFIGS = 20;
const CYCLES = 2;
const KILLS = 5;
const MODES = ['ok', 'ok', 'ok', 'grandchild', 'crash', 'exit-nonzero', 'garbage', 'hang'];

const program = fileURLToPath(new URL('./fixtures/program.mjs', import.meta.url));

let tmp: ReturnType<typeof tempDir>;
let worker: string;
beforeAll(async () => {
  tmp = tempDir();
  worker = await bundleMeasureWorker(tmp.dir);
}, 120_000);
afterAll(() => tmp.cleanup());

it('command engine + llem worker: SIGKILLed runner, resumed; terminal states, no duplicates, no orphans', async () => {
  const random = mulberry32(SEED);
  const modes = Array.from(
    { length: CONFIGS },
    () => MODES[Math.floor(random() * MODES.length)] as string,
  );
  const plan = planStudy(
    {
      name: 'chaos-command',
      model: 'fixture',
      engine: 'command',
      command: { argv: [process.execPath, program, 'ok'] },
      dataset: { synthetic: { n: 1, input_len: 8, output_len: 16, seed: 1 } },
      max_output_tokens: 16,
      warmup: { n: 0 },
      baseline: { enabled: false },
      energy: { backend: 'none' },
      sweep: { 'command.argv': modes.map((m, i) => [process.execPath, program, m, String(i)]) },
      execution: { cycles: CYCLES, timeout_s: 4 },
    },
    { file: 'chaos-command.yaml' },
  );
  const planFile = join(tmp.dir, 'plan.json');
  writeFileSync(planFile, JSON.stringify(plan));
  const ledger = join(tmp.dir, 'ledger.jsonl');
  const workerPids = new Set<number>();
  const dispatches: Array<{ key: string; at: number }> = [];

  const start = (args: string[]) =>
    startChaosDriver(args, {
      ledger,
      worker,
      onRun: (key, pid) => {
        if (!workerPids.has(pid)) dispatches.push({ key, at: Date.now() });
        workerPids.add(pid);
      },
    });

  let studyDir = '';
  const poller = pollManifest(() => studyDir, 20);

  const started = Date.now();
  let kills = 0;
  let survivors = 0;
  let session = start([tmp.dir, planFile]);
  studyDir = await session.studyDir;
  try {
    for (;;) {
      const finished = await Promise.race([
        session.exited.then(() => true),
        new Promise<boolean>((r) => setTimeout(() => r(false), 2000 + random() * 3000)),
      ]);
      if (finished) break;
      if (kills >= KILLS) {
        await session.exited;
        break;
      }
      session.child.kill('SIGKILL');
      await session.exited;
      kills += 1;
      survivors += (await awaitDeaths(ledgerPids(workerPids, ledger), 4000, 20)).survivors;
      session = start([tmp.dir, '--resume', studyDir]);
      await session.studyDir;
    }
  } finally {
    poller.stop();
    session.child.kill('SIGKILL');
  }

  const manifest = ManifestSchema.parse(
    JSON.parse(readFileSync(join(studyDir, 'manifest.json'), 'utf8')),
  );
  const lines = readJsonLines(ledger);
  const modeOf = new Map(plan.runs.map((r) => [r.key, modes[r.configIndex]]));
  let wrongState = 0;
  let duplicated = 0;
  let invalidResults = 0;
  for (const entry of manifest.entries) {
    const mode = modeOf.get(entry.key);
    const shouldComplete = mode === 'ok' || mode === 'grandchild';
    if ((entry.status === 'completed') !== shouldComplete) wrongState += 1;
    if (mode === 'hang' && entry.error?.type !== 'timeout') wrongState += 1;
    if (entry.status !== 'completed') continue;
    const resultPath = join(studyDir, entry.resultFile!);
    const parsed = RunResultSchema.safeParse(JSON.parse(readFileSync(resultPath, 'utf8')));
    if (!parsed.success) invalidResults += 1;
    // Nothing dispatched this run again once its result existed.
    const written = statSync(resultPath).mtimeMs;
    const later = dispatches.filter((d) => d.key === entry.key && d.at > written);
    if (later.length > 0) duplicated += 1;
  }
  const figures = {
    seed: SEED,
    scheduledRuns: manifest.entries.length,
    kills,
    dispatches: dispatches.length,
    programsStarted: lines.filter((l) => l.event === 'program').length,
    completed: manifest.counts.completed,
    failed: manifest.counts.failed,
    wrongState,
    invalidResults,
    duplicated,
    manifestParses: poller.parses,
    manifestParseFailures: poller.parseFailures,
    orphansSurvived: survivors,
    elapsedS: (Date.now() - started) / 1000,
  };
  console.log(`chaos (command engine) figures: ${JSON.stringify(figures)}`);
  expect(kills).toBeGreaterThanOrEqual(KILLS);
  expect(manifest.status).toBe('completed');
  expect(manifest.counts.completed + manifest.counts.failed).toBe(CONFIGS * CYCLES);
  expect(wrongState).toBe(0);
  expect(invalidResults).toBe(0);
  expect(duplicated).toBe(0);
  expect(poller.parseFailures).toBe(0);
  expect(survivors).toBe(0);
}, 400_000);
