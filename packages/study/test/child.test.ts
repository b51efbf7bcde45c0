import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runChild } from '../src/internal/child';
import { StudyRunner } from '../src/runner';
import { makePlan } from './fixtures/plan';
import { okResidual, readJson, readManifest, tempDir } from './helpers';

const plainWorker = new URL('./fixtures/plain-worker.mjs', import.meta.url);

let tmp: ReturnType<typeof tempDir>;
beforeEach(() => {
  tmp = tempDir();
});
afterEach(() => tmp.cleanup());

describe('a child that cannot be started', () => {
  it('runChild settles as a spawn failure when fork emits error without exit', async () => {
    const outcome = await runChild({
      workerModule: plainWorker.pathname,
      execPath: '/nonexistent/node',
      execArgv: [],
      env: process.env,
      cwd: tmp.dir,
      logFile: join(tmp.dir, 'log'),
      resultFile: join(tmp.dir, 'result.json'),
      errorFile: join(tmp.dir, 'result.error.json'),
      timeoutMs: 60_000,
      graceMs: 100,
      stopRequests: { subscribe: () => () => undefined },
    });
    expect(outcome.kind).toBe('failed');
    if (outcome.kind !== 'failed') return;
    expect(outcome.error.type).toBe('spawn');
    expect(outcome.error.message).toContain('ENOENT');
  });

  it('fails each run with type spawn and the study still completes', async () => {
    const runner = new StudyRunner({
      plan: makePlan([{ a: 1 }, { a: 2 }]),
      outputDir: tmp.dir,
      workerModule: plainWorker,
      execPath: '/nonexistent/node',
      residualCheck: okResidual,
    });
    const summary = await runner.run();
    expect(summary.status).toBe('completed');
    expect(summary.counts).toMatchObject({ total: 2, failed: 2, completed: 0 });
    const entries = readManifest(summary.studyDir).entries;
    expect(entries.map((e) => e.error?.type)).toEqual(['spawn', 'spawn']);
  });
});

describe('a timeout longer than setTimeout can hold', () => {
  it('is clamped to 2^31-1 ms, so a run with timeout_s 3,000,000 completes instead of timing out at once', async () => {
    const runner = new StudyRunner({
      plan: makePlan([{ a: 1 }], { timeout_s: 3_000_000 }),
      outputDir: tmp.dir,
      workerModule: plainWorker,
      residualCheck: okResidual,
    });
    const summary = await runner.run();
    expect(readManifest(summary.studyDir).entries[0]?.error).toBeNull();
    expect(summary.counts).toMatchObject({ completed: 1, failed: 0 });
  });
});

describe('the timeout of a run', () => {
  it('is execution.timeout_s when set, else what timeoutS(config) says, else an hour', async () => {
    const timeouts = async (execution: object, timeoutS?: (config: { n: number }) => number) => {
      const runner = new StudyRunner({
        plan: makePlan([{ n: 7 }], execution),
        outputDir: tmp.dir,
        workerModule: plainWorker,
        residualCheck: okResidual,
        ...(timeoutS ? { timeoutS } : {}),
      });
      const seen: number[] = [];
      runner.on('run-started', (e) => seen.push(e.timeoutS));
      await runner.run();
      return seen;
    };
    expect(await timeouts({}, (c) => 100 + c.n)).toEqual([107]);
    expect(await timeouts({ timeout_s: 30 }, (c) => 100 + c.n)).toEqual([30]);
    expect(await timeouts({})).toEqual([3600]);
  });

  it('a runner told no GPU devices never calls the residual check: the run says skipped', async () => {
    let called = 0;
    const summary = await new StudyRunner({
      plan: makePlan([{ a: 1 }]),
      outputDir: tmp.dir,
      workerModule: plainWorker,
      residualCheck: (req) => {
        called += 1;
        return okResidual(req);
      },
    }).run();
    expect(called).toBe(0);
    const result = readJson<{ residualCheck: { status: string; reason: string } }>(
      join(summary.studyDir, readManifest(summary.studyDir).entries[0]!.resultFile!),
    );
    expect(result.residualCheck).toMatchObject({
      status: 'skipped',
      reason: 'no GPU devices for this run',
    });
  });
});
