import { fork } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TASK_FILE_ENV, type WorkerTask } from '../src/task';
import { defineWorker, WorkerExitCode } from '../src/worker';
import { TSX_EXEC_ARGV } from './fixtures/plan';
import { tempDir } from './helpers';

const fixture = new URL('./fixtures/worker.ts', import.meta.url);

let tmp: ReturnType<typeof tempDir>;
beforeEach(() => {
  tmp = tempDir();
  mkdirSync(join(tmp.dir, 'runs'));
});
afterEach(() => tmp.cleanup());

function runFixture(
  taskFile: string | undefined,
): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const env = { ...process.env };
    delete env[TASK_FILE_ENV];
    if (taskFile) env[TASK_FILE_ENV] = taskFile;
    const child = fork(fixture, [], { execArgv: TSX_EXEC_ARGV, env, stdio: 'pipe' });
    let stderr = '';
    child.stderr?.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    child.on('exit', (code) => resolve({ code, stderr }));
  });
}

function task(config: object): WorkerTask {
  return {
    key: 'k_c0',
    configHash: '0123456789abcdef',
    cycle: 0,
    copy: 0,
    config,
    studyDir: tmp.dir,
    resultFile: join(tmp.dir, 'runs', 'k_c0.json'),
    timeseriesFile: join(tmp.dir, 'runs', 'k_c0.timeseries.csv'),
    files: {
      result: join(tmp.dir, 'runs', 'k_c0.json'),
      error: join(tmp.dir, 'runs', 'k_c0.error.json'),
      log: join(tmp.dir, 'runs', 'k_c0.log'),
      timeseries: join(tmp.dir, 'runs', 'k_c0.timeseries.csv'),
      requests: join(tmp.dir, 'runs', 'k_c0.requests.jsonl'),
      serverLog: join(tmp.dir, 'runs', 'k_c0.server.log'),
      metrics: join(tmp.dir, 'runs', 'k_c0.metrics.jsonl'),
    },
    residualCheck: {
      status: 'skipped',
      thresholdMb: 100,
      devices: [],
      reason: 'test',
      checkedAt: '2026-01-02T03:04:05.000Z',
    },
    toolVersion: '0.0.0',
    attempt: 1,
  };
}

describe('defineWorker', () => {
  it('does nothing when the module is not run by a runner (no LLEM_TASK_FILE)', () => {
    const saved = process.env[TASK_FILE_ENV];
    delete process.env[TASK_FILE_ENV];
    let called = false;
    const worker = defineWorker(() => {
      called = true;
    });
    expect(called).toBe(false);
    expect(typeof worker.start).toBe('function');
    if (saved !== undefined) process.env[TASK_FILE_ENV] = saved;
  });

  it('writes the result atomically and exits 0', async () => {
    const file = join(tmp.dir, 'task.json');
    writeFileSync(file, JSON.stringify(task({ behaviour: 'ok' })));
    const { code } = await runFixture(file);
    expect(code).toBe(WorkerExitCode.ok);
    const result = JSON.parse(readFileSync(join(tmp.dir, 'runs', 'k_c0.json'), 'utf8'));
    expect(result).toMatchObject({ key: 'k_c0', attempt: 1, residualCheck: { status: 'skipped' } });
  }, 30_000);

  it('never overwrites a result that is already there: its own is kept aside as a conflict', async () => {
    const file = join(tmp.dir, 'task.json');
    writeFileSync(file, JSON.stringify(task({ behaviour: 'ok' })));
    const resultFile = join(tmp.dir, 'runs', 'k_c0.json');
    writeFileSync(resultFile, '{"first":true}');
    const { code, stderr } = await runFixture(file);
    expect(code).toBe(WorkerExitCode.ok);
    expect(readFileSync(resultFile, 'utf8')).toBe('{"first":true}');
    const aside = readdirSync(join(tmp.dir, 'runs')).filter((f) =>
      f.startsWith('k_c0.json.conflict-'),
    );
    expect(aside).toHaveLength(1);
    expect(
      JSON.parse(readFileSync(join(tmp.dir, 'runs', aside[0] as string), 'utf8')),
    ).toMatchObject({ key: 'k_c0' });
    expect(stderr).toContain('already exists');
    // No temp file is left behind.
    expect(readdirSync(join(tmp.dir, 'runs')).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  }, 30_000);

  it("writes the handler's error (type, message, stack) to the error file and exits 1", async () => {
    const file = join(tmp.dir, 'task.json');
    writeFileSync(file, JSON.stringify(task({ behaviour: 'throw' })));
    const { code } = await runFixture(file);
    expect(code).toBe(WorkerExitCode.handlerError);
    const resultFile = join(tmp.dir, 'runs', 'k_c0.json');
    expect(existsSync(resultFile)).toBe(false);
    const report = JSON.parse(readFileSync(join(tmp.dir, 'runs', 'k_c0.error.json'), 'utf8'));
    expect(report.error.type).toBe('engine');
    expect(report.error.code).toBe('FIXTURE_REFUSED');
    expect(report.error.message).toBe('the engine refused the config');
    expect(report.error.stack).toContain('EngineError');
  }, 30_000);

  it('exits 2 with a message when the task file cannot be read', async () => {
    const { code, stderr } = await runFixture(join(tmp.dir, 'missing.json'));
    expect(code).toBe(WorkerExitCode.badTask);
    expect(stderr).toContain('cannot read the task');
  }, 30_000);
});

describe('failureTypeOf: the run-failure type of what a handler throws', () => {
  it('follows the llem error source, its own override, and calls anything else a crash', async () => {
    const { RUN_FAILURE_TYPES } = await import('@llem/domain');
    const { LlemError } = await import('@llem/resilience');
    const { failureTypeOf, RUN_FAILURE_TYPE_NAMES } = await import('../src/worker');
    expect([...RUN_FAILURE_TYPE_NAMES]).toEqual([...RUN_FAILURE_TYPES]);
    class E extends LlemError<string> {
      constructor(
        readonly code: string,
        readonly source: 'engine' | 'measurement' | 'server' | 'config',
        readonly own?: string,
      ) {
        super('x');
      }
      override get runFailure(): string | undefined {
        return this.own;
      }
    }
    expect(failureTypeOf(new E('MODEL_NOT_FOUND', 'engine'))).toBe('engine');
    expect(failureTypeOf(new E('COMMAND_SPAWN', 'engine', 'config'))).toBe('config');
    expect(failureTypeOf(new E('DATASET', 'measurement'))).toBe('measurement');
    expect(failureTypeOf(new E('CONFIG', 'measurement'))).toBe('config');
    expect(failureTypeOf(new E('DIED', 'server'))).toBe('server');
    expect(failureTypeOf(new E('X', 'engine', 'not-a-type'))).toBe('engine');
    expect(failureTypeOf(new TypeError('a bug'))).toBe('crash');
  });
});
