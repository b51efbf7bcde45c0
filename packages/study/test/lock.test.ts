import { execFile } from 'node:child_process';
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StudyError } from '../src/errors';
import { StudyRunner } from '../src/runner';
import { makePlan, TSX_EXEC_ARGV } from './fixtures/plan';
import { okResidual, readManifest, tempDir } from './helpers';

const plainWorker = new URL('./fixtures/plain-worker.mjs', import.meta.url);
const driver = new URL('./fixtures/chaos-driver.ts', import.meta.url).pathname;
const run = promisify(execFile);

let tmp: ReturnType<typeof tempDir>;
beforeEach(() => {
  tmp = tempDir();
});
afterEach(() => tmp.cleanup());

/** A finished study whose runs are made pending again, ready to resume. */
async function pendingStudy(configs: object[], worker: string | URL = plainWorker) {
  const summary = await new StudyRunner({
    plan: makePlan(configs),
    outputDir: tmp.dir,
    workerModule: worker,
    execArgv: String(worker).endsWith('.ts') ? TSX_EXEC_ARGV : [],
    residualCheck: okResidual,
  }).run();
  const manifest = readManifest(summary.studyDir);
  for (const e of manifest.entries) {
    e.status = 'pending';
    e.resultFile = null;
    rmSync(join(summary.studyDir, 'runs', `${e.key}.json`));
  }
  writeFileSync(join(summary.studyDir, 'manifest.json'), JSON.stringify(manifest));
  return summary.studyDir;
}

describe('.runner.lock', () => {
  it('of two runners resuming one study at once in one process, exactly one proceeds', async () => {
    const studyDir = await pendingStudy([{ a: 1 }]);
    const make = () =>
      new StudyRunner({ resume: studyDir, workerModule: plainWorker, residualCheck: okResidual });
    const results = await Promise.allSettled([make().run(), make().run()]);
    const ok = results.filter((r) => r.status === 'fulfilled');
    const refused = results.filter((r) => r.status === 'rejected');
    expect(ok).toHaveLength(1);
    expect(refused).toHaveLength(1);
    const error = (refused[0] as PromiseRejectedResult).reason as Error;
    expect(error).toBeInstanceOf(StudyError);
    expect(error.message).toContain(`another runner (pid ${process.pid})`);
    expect(readManifest(studyDir).entries.map((e) => e.attempts)).toEqual([2]);
    // The winner released it and no temp file is left behind.
    expect(readdirSync(studyDir).filter((f) => f.startsWith('.runner.lock'))).toEqual([]);
  });

  it('of two runner processes resuming one study at once, exactly one proceeds', async () => {
    // A 4 s run keeps the winner busy while the loser starts.
    const worker = new URL('./fixtures/worker.ts', import.meta.url);
    const studyDir = await pendingStudy([{ behaviour: 'ok', delayMs: 4000 }], worker);
    const start = () =>
      run(process.execPath, [...TSX_EXEC_ARGV, driver, tmp.dir, '--resume', studyDir], {
        env: { ...process.env, LLEM_CHAOS_WORKER: worker.href },
      }).then(
        (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
        (e: { code: number; stdout: string; stderr: string }) => e,
      );
    const [a, b] = await Promise.all([start(), start()]);
    const codes = [a.code, b.code].sort();
    expect(codes[0]).toBe(0);
    expect(codes[1]).not.toBe(0);
    const loser = a.code === 0 ? b : a;
    expect(loser.stderr).toContain('StudyError');
    expect(loser.stderr).toContain('another runner (pid');
    expect(readManifest(studyDir).entries.map((e) => [e.status, e.attempts])).toEqual([
      ['completed', 2],
    ]);
    expect(existsSync(join(studyDir, '.runner.lock'))).toBe(false);
  }, 60_000);

  it('a lock left by a dead runner is stale: it is taken over', async () => {
    const studyDir = await pendingStudy([{ a: 1 }]);
    // A pid that is not running: far above pid_max's default range.
    writeFileSync(join(studyDir, '.runner.lock'), '4194000\n');
    const summary = await new StudyRunner({
      resume: studyDir,
      workerModule: plainWorker,
      residualCheck: okResidual,
    }).run();
    expect(summary.counts.completed).toBe(1);
    expect(existsSync(join(studyDir, '.runner.lock'))).toBe(false);
  });
});
