import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ManifestSchema } from '@llem/domain';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { bundleFixtureWorker } from './fixtures/bundle';
import { makePlan, TSX_EXEC_ARGV } from './fixtures/plan';
import { isRunning, tempDir } from './helpers';

// The chaos test: ≥100 scheduled runs with randomly misbehaving workers; the runner's process is
// SIGKILLed at random moments ≥5 times and resumed each time. Seeded, so a failure replays.
const SEED = Number(process.env.LLEM_CHAOS_SEED ?? 20261122);
const CONFIGS = 50;
const CYCLES = 2;
const KILLS = 6;

const driver = fileURLToPath(new URL('./fixtures/chaos-driver.ts', import.meta.url));

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

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
  throw: ['failed', 'EngineError'],
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

interface Session {
  child: ChildProcess;
  studyDir: Promise<string>;
  exited: Promise<number | null>;
}

function startDriver(args: string[], ledger: string): Session {
  const child = spawn(process.execPath, [...TSX_EXEC_ARGV, driver, ...args], {
    env: { ...process.env, LLEM_TEST_LEDGER: ledger, LLEM_CHAOS_WORKER: bundledWorker },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  const studyDir = new Promise<string>((resolve) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      // Worker pids as the runner forks them, before a worker has written anything.
      for (const m of out.matchAll(/^RUN \S+ (\d+)\n/gm)) workerPids.add(Number(m[1]));
      const match = /STUDY (.+)\n/.exec(out);
      if (match?.[1]) resolve(match[1]);
    });
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, studyDir, exited };
}

it('survives repeated SIGKILLs of the runner: every run ends once, nothing duplicated, no orphans', async () => {
  const random = mulberry32(SEED);
  const configs = Array.from({ length: CONFIGS }, (_, i) => {
    let r = random();
    let behaviour: string = 'ok';
    for (const [name, p] of BEHAVIOURS) {
      if (r < p) {
        behaviour = name;
        break;
      }
      r -= p;
    }
    return { behaviour, delayMs: Math.floor(random() * 250), id: i };
  });
  const plan = makePlan(configs, { cycles: CYCLES, timeout_s: 1.5, experiment_gap_s: 0 }, 'chaos');
  const planFile = join(tmp.dir, 'plan.json');
  writeFileSync(planFile, JSON.stringify(plan));
  const ledger = join(tmp.dir, 'ledger.jsonl');
  const readLedger = (): Array<Record<string, unknown>> =>
    existsSync(ledger)
      ? readFileSync(ledger, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as Record<string, unknown>)
      : [];

  // Parse the manifest continuously while the chaos goes on.
  let studyDir: string | null = null;
  let parses = 0;
  let parseFailures = 0;
  const poller = setInterval(() => {
    if (!studyDir) return;
    const path = join(studyDir, 'manifest.json');
    if (!existsSync(path)) return;
    try {
      if (ManifestSchema.safeParse(JSON.parse(readFileSync(path, 'utf8'))).success) parses += 1;
      else parseFailures += 1;
    } catch {
      parseFailures += 1;
    }
  }, 15);

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
      const pidsBefore = new Set<number>(workerPids);
      for (const line of readLedger()) {
        if (typeof line.pid === 'number') pidsBefore.add(line.pid);
        if (typeof line.child === 'number') pidsBefore.add(line.child);
      }
      aliveAtKill += [...pidsBefore].filter(alive).length;
      session.child.kill('SIGKILL');
      await session.exited;
      kills += 1;
      // Every worker and grandchild ever started must be gone promptly.
      const pids = new Set<number>(workerPids);
      for (const line of readLedger()) {
        if (typeof line.pid === 'number') pids.add(line.pid);
        if (typeof line.child === 'number') pids.add(line.child);
      }
      checkedPids = pids.size;
      const killedAt = Date.now();
      const deadline = killedAt + 3000;
      while (Date.now() < deadline && [...pids].some(alive)) {
        await new Promise((r) => setTimeout(r, 10));
      }
      slowestDeathMs = Math.max(slowestDeathMs, Date.now() - killedAt);
      for (const pid of pids) {
        if (alive(pid)) {
          survivors += 1;
          process.kill(pid, 'SIGKILL');
        }
      }
      session = startDriver([tmp.dir, '--resume', studyDir], ledger);
      await session.studyDir;
    }
  } finally {
    clearInterval(poller);
    session.child.kill('SIGKILL');
  }
  const elapsedS = (Date.now() - started) / 1000;

  const manifest = ManifestSchema.parse(
    JSON.parse(readFileSync(join(studyDir, 'manifest.json'), 'utf8')),
  );
  const lines = readLedger();
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
    manifestParses: parses,
    manifestParseFailures: parseFailures,
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
  expect(parses).toBeGreaterThan(0);
  expect(parseFailures).toBe(0);
  expect(survivors).toBe(0);
}, 180_000);
