import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { ManifestSchema } from '@llem/domain';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StudyDesignChangedError, StudyError } from '../src/errors';
import type { StudyEvents } from '../src/events';
import { StudyRunner } from '../src/runner';
import { makePlan, TSX_EXEC_ARGV } from './fixtures/plan';
import {
  editRecord,
  energyDevices,
  isRunning,
  okResidual,
  readJson,
  readManifest,
  tempDir,
} from './helpers';

const worker = new URL('./fixtures/worker.ts', import.meta.url);

let tmp: ReturnType<typeof tempDir>;
let ledger: string;
beforeEach(() => {
  tmp = tempDir();
  ledger = join(tmp.dir, 'ledger.jsonl');
});
afterEach(() => tmp.cleanup());

function runner(
  configs: object[],
  execution: Parameters<typeof makePlan>[1] = {},
  extra: Partial<ConstructorParameters<typeof StudyRunner>[0]> = {},
) {
  return new StudyRunner({
    plan: makePlan(configs, execution),
    outputDir: tmp.dir,
    workerModule: worker,
    execArgv: TSX_EXEC_ARGV,
    env: { ...process.env, LLEM_TEST_LEDGER: ledger },
    residualCheck: okResidual,
    runDevices: energyDevices,
    graceMs: 500,
    ...extra,
  } as ConstructorParameters<typeof StudyRunner>[0]);
}

function ledgerLines(): Array<Record<string, unknown>> {
  if (!existsSync(ledger)) return [];
  return readFileSync(ledger, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Every worker and grandchild pid the ledger mentions, once each. */
function ledgerPids(): number[] {
  const pids = new Set<number>();
  for (const l of ledgerLines()) {
    if (typeof l.pid === 'number') pids.add(l.pid);
    if (typeof l.child === 'number') pids.add(l.child);
  }
  return [...pids];
}

const alive = isRunning;

async function waitUntil(check: () => boolean, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return check();
}

describe('StudyRunner with real child processes', () => {
  it("passes a worker's progress lines on as run-progress events, between its start and finish", async () => {
    const r = runner([{ behaviour: 'progress' }]);
    const events: string[] = [];
    r.on('run-started', (e) => events.push(`started ${e.key}`));
    r.on('run-progress', (e) => events.push(`${e.key} ${e.label}: ${e.message}`));
    r.on('run-finished', (e) => events.push(`finished ${e.key} ${e.status}`));
    const summary = await r.run();
    expect(summary.counts).toMatchObject({ completed: 1 });
    const key = events[0]!.slice('started '.length);
    expect(events).toEqual([
      `started ${key}`,
      expect.stringMatching(new RegExp(`^${key} .*: waiting for the server \\(1 s of 30 s\\)$`)),
      expect.stringMatching(/: waiting for the server \(2 s of 30 s\)$/),
      `finished ${key} completed`,
    ]);
  });

  it('classifies every kind of failure and never lets one stop the study', async () => {
    const r = runner(
      [
        { behaviour: 'ok' },
        { behaviour: 'crash' },
        { behaviour: 'throw' },
        { behaviour: 'exit-nonzero' },
        { behaviour: 'no-result' },
        { behaviour: 'hang' },
        { behaviour: 'ok', delayMs: 1 },
      ],
      { timeout_s: 3 },
    );
    const finished: Array<StudyEvents['run-finished']> = [];
    r.on('run-finished', (e) => finished.push(e));
    const summary = await r.run();
    expect(summary.status).toBe('completed');
    expect(summary.counts).toMatchObject({ total: 7, completed: 2, failed: 5 });
    const manifest = ManifestSchema.parse(readManifest(summary.studyDir));
    const errors = manifest.entries.map((e) => [e.status, e.error?.type ?? null]);
    expect(errors).toEqual([
      ['completed', null],
      ['failed', 'crash'],
      ['failed', 'engine'],
      ['failed', 'crash'],
      ['failed', 'no-result'],
      ['failed', 'timeout'],
      ['completed', null],
    ]);
    expect(manifest.entries[1]?.error?.message).toContain('SIGKILL');
    expect(manifest.entries[2]?.error?.message).toBe('the engine refused the config');
    expect(manifest.entries[3]?.error?.message).toContain('code 3');
    expect(manifest.entries[5]?.error?.message).toContain('timeout of 3 s');
    // The child's stack is kept in its error file, not in the manifest.
    const errorFile = join(summary.studyDir, 'runs', `${manifest.entries[2]?.key}.error.json`);
    expect(readJson<{ error: { stack: string } }>(errorFile).error.stack).toContain('EngineError');
    expect(finished.map((f) => f.status)).toEqual([
      'completed',
      'failed',
      'failed',
      'failed',
      'failed',
      'failed',
      'completed',
    ]);
    const ok = readJson<{ key: string; pid: number; residualCheck: { status: string } }>(
      join(summary.studyDir, manifest.entries[0]!.resultFile!),
    );
    // Every run in its own child, never in the runner's process.
    expect(ok.pid).not.toBe(process.pid);
    expect(ok.residualCheck.status).toBe('ok');
  }, 60_000);

  it('carries a 50 MB result through the file', async () => {
    const summary = await runner([{ behaviour: 'big', bigMb: 50 }]).run();
    expect(summary.counts.completed).toBe(1);
    const entry = readManifest(summary.studyDir).entries[0]!;
    const path = join(summary.studyDir, entry.resultFile!);
    expect(statSync(path).size).toBeGreaterThan(50 * 1024 * 1024);
    const result = readJson<{ blob: string[] }>(path);
    expect(result.blob).toHaveLength(50);
    expect(result.blob[49]).toHaveLength(1024 * 1024);
  }, 60_000);

  it('on timeout kills the worker, its plain children and the process groups it registered', async () => {
    const r = runner(
      [
        { behaviour: 'grandchild-hang' },
        { behaviour: 'plain-child-hang' },
        { behaviour: 'ignore-sigterm' },
      ],
      { timeout_s: 3 },
    );
    const summary = await r.run();
    expect(summary.counts.failed).toBe(3);
    const pids = ledgerPids();
    // Three workers, two grandchildren.
    expect(pids.length).toBe(5);
    expect(await waitUntil(() => pids.every((p) => !alive(p)), 3000)).toBe(true);
    const types = readManifest(summary.studyDir).entries.map((e) => e.error?.type);
    expect(types).toEqual(['timeout', 'timeout', 'timeout']);
  }, 60_000);

  it('first interrupt ends the current child cleanly and marks the study interrupted', async () => {
    const r = runner(
      [{ behaviour: 'grandchild-hang' }, { behaviour: 'ok' }],
      {},
      { graceMs: 2000 },
    );
    // Interrupt once the worker is up and has started its grandchild.
    r.on('run-started', () => {
      void waitUntil(() => ledgerLines().some((l) => l.event === 'grandchild'), 20_000).then(() =>
        r.interrupt(),
      );
    });
    const started = Date.now();
    const summary = await r.run();
    const elapsed = Date.now() - started;
    expect(summary.status).toBe('interrupted');
    expect(summary.counts).toMatchObject({ pending: 2, running: 0, completed: 0, failed: 0 });
    const manifest = readManifest(summary.studyDir);
    expect(manifest.status).toBe('interrupted');
    expect(manifest.entries[0]?.error?.type).toBe('interrupted');
    // The worker honoured SIGTERM: no need to wait for the 2 s grace before SIGKILL.
    expect(elapsed).toBeLessThan(20_000);
    const pids = ledgerPids();
    expect(pids).toHaveLength(2);
    expect(await waitUntil(() => pids.every((p) => !alive(p)), 3000)).toBe(true);
    expect(ledgerLines().filter((l) => l.event === 'start')).toHaveLength(1);
  }, 60_000);

  it('a second interrupt kills a child that ignores SIGTERM at once', async () => {
    const r = runner([{ behaviour: 'ignore-sigterm' }], {}, { graceMs: 60_000 });
    r.on('run-started', () => {
      void waitUntil(() => ledgerLines().some((l) => l.event === 'start'), 20_000).then(() => {
        r.interrupt();
        setTimeout(() => r.interrupt(), 300);
      });
    });
    const started = Date.now();
    const summary = await r.run();
    expect(summary.status).toBe('interrupted');
    // Far below the 60 s grace: the second interrupt did not wait for it.
    expect(Date.now() - started).toBeLessThan(15_000);
  }, 60_000);

  it('resume reruns pending, running and failed runs, skips completed ones and recovers orphaned results', async () => {
    const plan = makePlan([
      { behaviour: 'ok' },
      { behaviour: 'ok' },
      { behaviour: 'ok' },
      { behaviour: 'ok' },
    ]);
    const first = await new StudyRunner({
      plan,
      outputDir: tmp.dir,
      workerModule: worker,
      execArgv: TSX_EXEC_ARGV,
      env: { ...process.env, LLEM_TEST_LEDGER: ledger },
      residualCheck: okResidual,
    }).run();
    // Doctor the records into a crash state: run 1 failed, run 2 running with its result on
    // disk (the runner died between the child's publish and the record write), run 3 running
    // without a result (died mid-run). The manifest goes too: resume rebuilds it.
    const manifest = readManifest(first.studyDir);
    const [e0, e1, e2, e3] = manifest.entries;
    editRecord(first.studyDir, e1!.key, {
      status: 'failed',
      error: { type: 'crash', message: 'x' },
    });
    editRecord(first.studyDir, e2!.key, { status: 'running', resultFile: null });
    editRecord(first.studyDir, e3!.key, { status: 'running', resultFile: null });
    execFileSync('rm', [
      join(first.studyDir, 'runs', `${e1!.key}.json`),
      join(first.studyDir, 'runs', `${e3!.key}.json`),
      join(first.studyDir, 'manifest.json'),
    ]);
    const before = ledgerLines().length;

    const resumed = new StudyRunner({
      resume: first.studyDir,
      workerModule: worker,
      execArgv: TSX_EXEC_ARGV,
      env: { ...process.env, LLEM_TEST_LEDGER: ledger },
      residualCheck: okResidual,
    });
    let startedEvent: StudyEvents['study-started'] | undefined;
    resumed.on('study-started', (e) => {
      startedEvent = e;
    });
    const summary = await resumed.run();
    expect(startedEvent).toMatchObject({ resumed: true, recovered: 1, toRun: 2, total: 4 });
    expect(summary.counts).toMatchObject({ completed: 4, failed: 0, pending: 0, running: 0 });
    const rerun = ledgerLines()
      .slice(before)
      .filter((l) => l.event === 'start')
      .map((l) => l.key);
    expect(rerun).toEqual([e1!.key, e3!.key]);
    const after = readManifest(first.studyDir).entries;
    expect(after.map((e) => e.attempts)).toEqual([1, 2, 1, 2]);
    expect(after[0]?.key).toBe(e0?.key);
  }, 60_000);

  it('refuses to resume a study whose design changed unless forced', async () => {
    const plan = makePlan([{ behaviour: 'ok' }]);
    const first = await new StudyRunner({
      plan,
      outputDir: tmp.dir,
      workerModule: worker,
      execArgv: TSX_EXEC_ARGV,
      residualCheck: okResidual,
    }).run();
    const changed = makePlan([{ behaviour: 'ok', delayMs: 5 }]);
    const attempt = new StudyRunner({
      resume: first.studyDir,
      plan: changed,
      workerModule: worker,
      residualCheck: okResidual,
    });
    const error = await attempt.run().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StudyDesignChangedError);
    expect((error as Error).name).toBe('StudyDesignChangedError');
    expect((error as Error).message).toContain(plan.designHash);
    expect((error as Error).message).toContain(changed.designHash);
    expect((error as Error).message).toContain('--force');
    // A refused resume claims nothing.
    expect(
      readdirSync(join(first.studyDir, 'runs')).filter((f) => /\.claim-[2-9]$/.test(f)),
    ).toEqual([]);

    const forced = await new StudyRunner({
      resume: first.studyDir,
      plan: changed,
      force: true,
      workerModule: worker,
      residualCheck: okResidual,
    }).run();
    expect(forced.status).toBe('completed');
    expect(forced.counts.completed).toBe(1);
  }, 60_000);

  it('leaves a run alone while another live runner holds its claim, and says the study is running', async () => {
    const first = await runner([
      { behaviour: 'no-result' },
      { behaviour: 'no-result', id: 2 },
    ]).run();
    const [held, free] = readManifest(first.studyDir).entries;
    // Our parent (the vitest main process) stands in for a live runner that holds run 0.
    const claim = {
      schemaVersion: 1,
      key: held!.key,
      generation: 2,
      owner: { host: hostname(), pid: process.ppid, runnerId: 'someone-else' },
      claimedAt: new Date().toISOString(),
      releasedAt: null,
    };
    const claimFile = join(first.studyDir, 'runs', `${held!.key}.claim-2`);
    writeFileSync(claimFile, JSON.stringify(claim));
    editRecord(first.studyDir, held!.key, { status: 'running' });
    const before = ledgerLines().length;
    const summary = await new StudyRunner({
      resume: first.studyDir,
      workerModule: worker,
      execArgv: TSX_EXEC_ARGV,
      env: { ...process.env, LLEM_TEST_LEDGER: ledger },
      residualCheck: okResidual,
    }).run();
    const started = ledgerLines()
      .slice(before)
      .filter((l) => l.event === 'start')
      .map((l) => l.key);
    expect(started).toEqual([free!.key]);
    expect(summary.status).toBe('running');
    expect(JSON.parse(readFileSync(claimFile, 'utf8'))).toEqual(claim);
    const manifest = readManifest(first.studyDir);
    expect(manifest.status).toBe('running');
    expect(manifest.entries[0]?.status).toBe('running');
  }, 60_000);

  it('resume of something that is not a study directory is a StudyError naming the file', async () => {
    const error = await new StudyRunner({ resume: tmp.dir, workerModule: worker })
      .run()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StudyError);
    expect((error as Error).message).toContain(`${tmp.dir} is not a study directory`);
    expect((error as Error).message).toContain('study.json');
  });

  it('a worker module that does not exist fails each run, not the study', async () => {
    const r = new StudyRunner({
      plan: makePlan([{ a: 1 }, { a: 2 }]),
      outputDir: tmp.dir,
      workerModule: join(tmp.dir, 'missing-worker.mjs'),
      residualCheck: okResidual,
    });
    const summary = await r.run();
    expect(summary.counts.failed).toBe(2);
    expect(readManifest(summary.studyDir).entries[0]?.error?.type).toBe('crash');
  });
});
