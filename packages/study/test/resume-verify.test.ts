import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ManifestSchema } from '@llem/domain';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type ResultVerdict, StudyRunner } from '../src/runner';
import { makePlan, TSX_EXEC_ARGV } from './fixtures/plan';
import { okResidual, readManifest, tempDir } from './helpers';

const plainWorker = new URL('./fixtures/plain-worker.mjs', import.meta.url);

let tmp: ReturnType<typeof tempDir>;
let ledger: string;
beforeEach(() => {
  tmp = tempDir();
  ledger = join(tmp.dir, 'ledger.jsonl');
});
afterEach(() => tmp.cleanup());

/** What the plain worker writes: `{ key, residualCheck, task }`; anything else is invalid. */
const verifyResult = (value: unknown): ResultVerdict =>
  typeof value === 'object' &&
  value !== null &&
  typeof (value as { key?: unknown }).key === 'string'
    ? { ok: true }
    : { ok: false, reason: 'does not match the result schema (key: expected string)' };

function started(): string[] {
  return readFileSync(ledger, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { key: string }).key);
}

describe('resume verifies every completed run', () => {
  it('of two resumes at once, the slow one never sets aside a result the other just measured', async () => {
    const plan = makePlan([{ a: 1 }, { a: 2 }, { a: 3 }]);
    const env = { ...process.env, LLEM_TEST_LEDGER: ledger };
    const first = await new StudyRunner({
      plan,
      outputDir: tmp.dir,
      workerModule: plainWorker,
      residualCheck: okResidual,
      env,
    }).run();
    const [slow, , missing] = plan.runs.map((r) => r.key) as [string, string, string];
    // The record of the last run says completed, but its result is gone: resume re-runs it.
    rmSync(join(first.studyDir, 'runs', `${missing}.json`));
    const before = started().length;
    const driver = new URL('./fixtures/verify-driver.ts', import.meta.url).pathname;
    const start = (extra: NodeJS.ProcessEnv) =>
      new Promise<string>((resolve) => {
        const child = spawn(process.execPath, [...TSX_EXEC_ARGV, driver, first.studyDir], {
          env: { ...env, ...extra },
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        let out = '';
        child.stdout.on('data', (c: Buffer) => {
          out += c.toString();
        });
        child.on('exit', () => resolve(out));
      });
    // B looks at the study first and takes 3 s over the first result; A re-runs the missing run
    // meanwhile. When B reaches that run, its look from before is out of date.
    const b = start({ LLEM_SLOW_KEY: slow, LLEM_SLOW_MS: '3000' });
    await new Promise((r) => setTimeout(r, 1200));
    const a = start({});
    const outputs = await Promise.all([a, b]);
    expect(outputs.every((o) => o.includes('DONE'))).toBe(true);
    expect(started().slice(before)).toEqual([missing]);
    const runs = join(first.studyDir, 'runs');
    expect(readdirSync(runs).filter((f) => f.includes('.damaged-'))).toEqual([]);
    expect(readManifest(first.studyDir).counts).toMatchObject({ completed: 3 });
  }, 60_000);

  it('re-runs exactly the runs whose result is deleted, truncated or schema-invalid, and says why', async () => {
    const plan = makePlan([{ a: 1 }, { a: 2 }, { a: 3 }, { a: 4 }]);
    const env = { ...process.env, LLEM_TEST_LEDGER: ledger };
    const first = await new StudyRunner({
      plan,
      outputDir: tmp.dir,
      workerModule: plainWorker,
      residualCheck: okResidual,
      env,
    }).run();
    const [deleted, truncated, invalid, intact] = plan.runs.map((r) => r.key) as [
      string,
      string,
      string,
      string,
    ];
    const runs = join(first.studyDir, 'runs');
    rmSync(join(runs, `${deleted}.json`));
    writeFileSync(join(runs, `${truncated}.json`), '{"key": "abc", "resid');
    writeFileSync(join(runs, `${invalid}.json`), '{"key": 42}');
    const lines: string[] = [];
    const logger = {
      error: () => undefined,
      warn: (m: string) => void lines.push(m),
      info: () => undefined,
      debug: () => undefined,
    };
    const before = started().length;
    const summary = await new StudyRunner({
      resume: first.studyDir,
      workerModule: plainWorker,
      residualCheck: okResidual,
      env,
      verifyResult,
      logger,
    }).run();
    expect(summary.counts).toMatchObject({ completed: 4, failed: 0, pending: 0 });
    expect(started().slice(before).sort()).toEqual([deleted, truncated, invalid].sort());
    // One line for each unusable result saying which and why.
    const rerunLines = lines.filter((l) => l.startsWith('re-running'));
    expect(rerunLines).toHaveLength(3);
    expect(rerunLines.find((l) => l.includes(deleted))).toMatch(
      /its result runs\/.*\.json is missing$/,
    );
    expect(rerunLines.find((l) => l.includes(truncated))).toMatch(/is not valid JSON/);
    expect(rerunLines.find((l) => l.includes(invalid))).toMatch(
      /does not match the result schema \(key: expected string\); the file is kept as runs\/.*\.json\.damaged-/,
    );
    // The damaged files are kept aside, never deleted.
    const aside = readdirSync(runs).filter((f) => f.includes('.damaged-'));
    expect(aside).toHaveLength(2);
    expect(readManifest(first.studyDir).entries.map((e) => e.attempts)).toEqual([2, 2, 2, 1]);
    expect(readFileSync(join(runs, `${intact}.json`), 'utf8')).toContain(intact);
  }, 60_000);

  it('a truncated or deleted manifest is rebuilt from the records with a warning, nothing re-run', async () => {
    const plan = makePlan([{ a: 1 }, { a: 2 }], { cycles: 2 });
    const env = { ...process.env, LLEM_TEST_LEDGER: ledger };
    const first = await new StudyRunner({
      plan,
      outputDir: tmp.dir,
      workerModule: plainWorker,
      residualCheck: okResidual,
      env,
    }).run();
    const manifestFile = join(first.studyDir, 'manifest.json');
    for (const damage of ['truncate', 'delete'] as const) {
      if (damage === 'truncate')
        writeFileSync(manifestFile, readFileSync(manifestFile, 'utf8').slice(0, 200));
      else rmSync(manifestFile);
      const warnings: string[] = [];
      const before = started().length;
      const summary = await new StudyRunner({
        resume: first.studyDir,
        workerModule: plainWorker,
        residualCheck: okResidual,
        env,
        verifyResult,
        logger: {
          error: () => undefined,
          warn: (m: string) => void warnings.push(m),
          info: () => undefined,
          debug: () => undefined,
        },
      }).run();
      expect(summary.status).toBe('completed');
      expect(started().length).toBe(before);
      expect(warnings.join('\n')).toMatch(
        damage === 'delete'
          ? /manifest\.json is missing: rebuilt from the run records/
          : /manifest\.json is unreadable \(.*\): rebuilt from the run records/,
      );
      const manifest = ManifestSchema.parse(JSON.parse(readFileSync(manifestFile, 'utf8')));
      expect(manifest.counts).toMatchObject({ total: 4, completed: 4 });
    }
  }, 60_000);
});
