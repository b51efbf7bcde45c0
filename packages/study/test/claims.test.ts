import { execFile, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StudyRunner } from '../src/runner';
import { makePlan, TSX_EXEC_ARGV } from './fixtures/plan';
import { editRecord, okResidual, readManifest, tempDir } from './helpers';

const plainWorker = new URL('./fixtures/plain-worker.mjs', import.meta.url);
const driver = new URL('./fixtures/chaos-driver.ts', import.meta.url).pathname;
const run = promisify(execFile);

let tmp: ReturnType<typeof tempDir>;
let ledger: string;
beforeEach(() => {
  tmp = tempDir();
  ledger = join(tmp.dir, 'ledger.jsonl');
});
afterEach(() => tmp.cleanup());

const env = () => ({ ...process.env, LLEM_TEST_LEDGER: ledger });

function starts(): string[] {
  if (!existsSync(ledger)) return [];
  return readFileSync(ledger, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { event: string; key: string })
    .filter((l) => l.event === 'start')
    .map((l) => l.key);
}

/** A study whose runs are all pending (created, then every record and result removed). */
async function pendingStudy(configs: object[]): Promise<{ studyDir: string; keys: string[] }> {
  const plan = makePlan(configs);
  const summary = await new StudyRunner({
    plan,
    outputDir: tmp.dir,
    workerModule: plainWorker,
    residualCheck: okResidual,
  }).run();
  const runs = join(summary.studyDir, 'runs');
  for (const f of readdirSync(runs)) spawnSync('rm', ['-f', join(runs, f)]);
  // Without it a resume would restore records from the manifest (a study older than records).
  spawnSync('rm', ['-f', join(summary.studyDir, 'manifest.json')]);
  return { studyDir: summary.studyDir, keys: plan.runs.map((r) => r.key) };
}

/** A pid that ran and has exited (so nothing runs under it now). */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(child.stdout.toString());
}

function claim(studyDir: string, key: string, generation: number, owner: object): string {
  const file = join(studyDir, 'runs', `${key}.claim-${generation}`);
  writeFileSync(
    file,
    JSON.stringify({
      schemaVersion: 1,
      key,
      generation,
      owner,
      claimedAt: new Date().toISOString(),
      releasedAt: null,
    }),
  );
  return file;
}

describe('claims: several runners share one study', () => {
  it('two runners in one process resuming one study at once split the runs, each done once', async () => {
    const { studyDir, keys } = await pendingStudy(Array.from({ length: 12 }, (_, i) => ({ i })));
    const make = () =>
      new StudyRunner({
        resume: studyDir,
        workerModule: plainWorker,
        residualCheck: okResidual,
        env: env(),
      });
    const [a, b] = await Promise.all([make().run(), make().run()]);
    expect([a.status, b.status]).toContain('completed');
    expect(starts().sort()).toEqual([...keys].sort());
    const manifest = readManifest(studyDir);
    expect(manifest.status).toBe('completed');
    expect(manifest.entries.every((e) => e.status === 'completed' && e.attempts === 1)).toBe(true);
    // Every claim was released; no temp file is left behind.
    const files = readdirSync(join(studyDir, 'runs'));
    expect(files.filter((f) => f.endsWith('.tmp'))).toEqual([]);
    for (const f of files.filter((n) => /\.claim-\d+$/.test(n))) {
      expect(JSON.parse(readFileSync(join(studyDir, 'runs', f), 'utf8')).releasedAt).not.toBeNull();
    }
  }, 60_000);

  it('two runner processes resuming one study at once: each run is measured exactly once', async () => {
    const { studyDir, keys } = await pendingStudy(Array.from({ length: 10 }, (_, i) => ({ i })));
    const start = () =>
      run(process.execPath, [...TSX_EXEC_ARGV, driver, tmp.dir, '--resume', studyDir], {
        env: { ...env(), LLEM_CHAOS_WORKER: plainWorker.href },
      });
    const [a, b] = await Promise.all([start(), start()]);
    expect(a.stdout + b.stdout).toContain('DONE');
    expect(starts().sort()).toEqual([...keys].sort());
    expect(readManifest(studyDir).counts).toMatchObject({ completed: 10, pending: 0 });
  }, 60_000);

  it('a claim whose runner died (same host, pid gone) is stale: the run is taken over', async () => {
    const { studyDir, keys } = await pendingStudy([{ a: 1 }]);
    const key = keys[0] as string;
    const dead = deadPid();
    claim(studyDir, key, 1, { host: hostname(), pid: dead, runnerId: 'dead' });
    writeRecordFile(studyDir, key, {
      status: 'running',
      attempts: 1,
      owner: { host: hostname(), pid: dead, runnerId: 'dead' },
      startedAt: new Date().toISOString(),
    });
    const summary = await new StudyRunner({
      resume: studyDir,
      workerModule: plainWorker,
      residualCheck: okResidual,
      env: env(),
    }).run();
    expect(summary.counts.completed).toBe(1);
    expect(starts()).toEqual([key]);
    // Superseded by generation 2, never deleted.
    expect(existsSync(join(studyDir, 'runs', `${key}.claim-1`))).toBe(true);
    const second = JSON.parse(readFileSync(join(studyDir, 'runs', `${key}.claim-2`), 'utf8'));
    expect(second.owner.pid).toBe(process.pid);
    expect(readManifest(studyDir).entries[0]).toMatchObject({ status: 'completed', attempts: 2 });
  }, 30_000);

  it("another host's claim is respected while its heartbeat is fresh and taken over once it is stale", async () => {
    const { studyDir, keys } = await pendingStudy([{ a: 1 }]);
    const key = keys[0] as string;
    const file = claim(studyDir, key, 1, { host: 'elsewhere', pid: 12345, runnerId: 'far' });
    editRecordOrCreate(studyDir, key);
    const fresh = await new StudyRunner({
      resume: studyDir,
      workerModule: plainWorker,
      residualCheck: okResidual,
      env: env(),
      staleClaimMs: 60_000,
    }).run();
    expect(fresh.status).toBe('running');
    expect(starts()).toEqual([]);

    // No heartbeat for two minutes.
    const old = new Date(Date.now() - 120_000);
    utimesSync(file, old, old);
    const stale = await new StudyRunner({
      resume: studyDir,
      workerModule: plainWorker,
      residualCheck: okResidual,
      env: env(),
      staleClaimMs: 60_000,
    }).run();
    expect(stale.status).toBe('completed');
    expect(starts()).toEqual([key]);
  }, 30_000);

  it('a released claim and a failed record: a runner that is not resuming leaves the run failed', async () => {
    const plan = makePlan([{ a: 1 }, { a: 2 }]);
    const summary = await new StudyRunner({
      plan,
      outputDir: tmp.dir,
      workerModule: join(tmp.dir, 'missing-worker.mjs'),
      residualCheck: okResidual,
    }).run();
    expect(summary.counts.failed).toBe(2);
    // Resuming retries each failed run once, even with two runners at it.
    const make = () =>
      new StudyRunner({
        resume: summary.studyDir,
        workerModule: plainWorker,
        residualCheck: okResidual,
        env: env(),
      });
    await Promise.all([make().run(), make().run()]);
    expect(starts().sort()).toEqual(plan.runs.map((r) => r.key).sort());
    expect(readManifest(summary.studyDir).entries.map((e) => e.attempts)).toEqual([2, 2]);
  }, 30_000);
});

/** A run's record file as a runner writes it: pending unless `change` says otherwise. */
function writeRecordFile(studyDir: string, key: string, change: object): void {
  writeFileSync(
    join(studyDir, 'runs', `${key}.record.json`),
    JSON.stringify({
      schemaVersion: 1,
      key,
      configHash: key.slice(0, 16),
      cycle: 0,
      copy: 0,
      label: 'cfg0',
      status: 'pending',
      attempts: 0,
      owner: null,
      startedAt: null,
      endedAt: null,
      error: null,
      resultFile: null,
      updatedAt: new Date().toISOString(),
      ...change,
    }),
  );
}

function editRecordOrCreate(studyDir: string, key: string): void {
  const file = join(studyDir, 'runs', `${key}.record.json`);
  if (!existsSync(file)) writeRecordFile(studyDir, key, {});
  editRecord(studyDir, key, { status: 'running' });
}
