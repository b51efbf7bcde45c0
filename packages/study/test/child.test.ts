import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runChild } from '../src/internal/child';
import { StudyRunner } from '../src/runner';
import { makePlan } from './fixtures/plan';
import { okResidual, readManifest, tempDir } from './helpers';

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

describe('the derived timeout of a run', () => {
  it('counts the prompts of a .jsonl dataset resolved against the runner cwd', async () => {
    const lines = Array.from({ length: 300 }, (_, i) => JSON.stringify({ prompt: `p${i}` }));
    writeFileSync(join(tmp.dir, 'prompts.jsonl'), `${lines.join('\n')}\n`);
    const runner = new StudyRunner({
      plan: makePlan([{ max_output_tokens: 10, dataset: 'prompts.jsonl' }]),
      outputDir: tmp.dir,
      cwd: tmp.dir,
      workerModule: plainWorker,
      residualCheck: okResidual,
    });
    const timeouts: number[] = [];
    runner.on('run-started', (e) => timeouts.push(e.timeoutS));
    await runner.run();
    expect(timeouts).toEqual([120 + 300 * 10 * 0.1]);
  });
});
