import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StudyDesignChangedError } from '../src/errors';
import type { RunnerPlan, StoredStudy } from '../src/plan';
import { StudyRunner } from '../src/runner';
import { makePlan } from './fixtures/plan';
import { editRecord, okResidual, readJson, readManifest, tempDir } from './helpers';

const plainWorker = new URL('./fixtures/plain-worker.mjs', import.meta.url);

let tmp: ReturnType<typeof tempDir>;
let ledger: string;
beforeEach(() => {
  tmp = tempDir();
  ledger = join(tmp.dir, 'ledger.jsonl');
});
afterEach(() => tmp.cleanup());

const common = () => ({
  workerModule: plainWorker,
  env: { ...process.env, LLEM_TEST_LEDGER: ledger },
  residualCheck: okResidual,
  graceMs: 500,
});

/** The keys the workers started, in order, from the ledger. */
function measured(): string[] {
  if (!existsSync(ledger)) return [];
  return readFileSync(ledger, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { key: string }).key);
}

async function startStudy(plan: RunnerPlan<object>): Promise<string> {
  const summary = await new StudyRunner({ plan, outputDir: tmp.dir, ...common() }).run();
  expect(summary.status).toBe('completed');
  return summary.studyDir;
}

async function resume(studyDir: string, plan: RunnerPlan<object>, force: boolean) {
  return new StudyRunner({ resume: studyDir, plan, force, ...common() }).run();
}

const configs = [{ a: 1 }, { a: 2 }];

describe('resume with a changed set of runs', () => {
  it('more cycles: refused without --force; with it only the new runs run', async () => {
    const before = makePlan(configs, { cycles: 2 });
    const studyDir = await startStudy(before);
    const after = makePlan(configs, { cycles: 4 });
    // Same configurations, so the same design hash: the run keys must catch it.
    expect(after.designHash).toBe(before.designHash);

    const error = await resume(studyDir, after, false).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StudyDesignChangedError);
    expect((error as Error).message).toContain('4 runs added, 0 removed (cycles 2 → 4)');
    expect((error as Error).message).toContain('--force');
    expect(readManifest(studyDir).entries).toHaveLength(4);
    expect(measured()).toHaveLength(4);

    const summary = await resume(studyDir, after, true);
    expect(summary.status).toBe('completed');
    expect(summary.counts).toMatchObject({ total: 8, completed: 8, pending: 0, failed: 0 });
    const newKeys = after.runs.slice(4).map((r) => r.key);
    // The first four were measured once, in the first run; only the new four ran now.
    expect(measured().slice(4)).toEqual(newKeys);
    const manifest = readManifest(studyDir);
    expect(manifest.entries.map((e) => e.key)).toEqual(after.runs.map((r) => r.key));
    expect(manifest.entries.slice(0, 4).every((e) => e.attempts === 1)).toBe(true);
    // study.json holds the new plan: a plain resume afterwards finds nothing changed.
    const stored = readJson<StoredStudy>(join(studyDir, 'study.json'));
    expect(stored.plan.execution.cycles).toBe(4);
    const again = await new StudyRunner({ resume: studyDir, ...common() }).run();
    expect(again.counts.completed).toBe(8);
    expect(measured()).toHaveLength(8);
  }, 60_000);

  it('fewer cycles: refused without --force; with it no crash, completed results kept', async () => {
    const before = makePlan(configs, { cycles: 3 });
    const studyDir = await startStudy(before);
    // Make the last cycle look unfinished (one pending, one failed), as after a crash.
    const manifest = readManifest(studyDir);
    for (const e of manifest.entries.slice(4)) {
      const status = e.key === manifest.entries[4]?.key ? 'pending' : 'failed';
      editRecord(studyDir, e.key, { status, resultFile: null });
      rmSync(join(studyDir, 'runs', `${e.key}.json`));
    }
    const after = makePlan([...configs], { cycles: 1 });

    const error = await resume(studyDir, after, false).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StudyDesignChangedError);
    expect((error as Error).message).toContain('0 runs added, 4 removed (cycles 3 → 1)');

    const summary = await resume(studyDir, after, true);
    expect(summary.status).toBe('completed');
    // Cycle 1's completed runs stay (measured results are never dropped); cycle 2's unfinished
    // runs are gone; nothing was measured again.
    const entries = readManifest(studyDir).entries;
    expect(readManifest(studyDir).status).toBe('completed');
    expect(entries.map((e) => e.key)).toEqual(before.runs.slice(0, 4).map((r) => r.key));
    expect(entries.every((e) => e.status === 'completed')).toBe(true);
    expect(measured()).toHaveLength(6);
  }, 60_000);

  it('a changed config set with --force: new configs run, completed results kept', async () => {
    const before = makePlan(configs, { cycles: 1 });
    const studyDir = await startStudy(before);
    const after = makePlan([{ a: 1 }, { a: 3 }], { cycles: 1 });
    expect(after.designHash).not.toBe(before.designHash);

    const error = await resume(studyDir, after, false).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StudyDesignChangedError);
    expect((error as Error).message).toContain('configs: 1 added, 1 removed');

    const summary = await resume(studyDir, after, true);
    expect(summary.status).toBe('completed');
    const added = after.runs[1]?.key;
    expect(measured()).toEqual([...before.runs.map((r) => r.key), added]);
    const manifest = readManifest(studyDir);
    expect(manifest.designHash).toBe(after.designHash);
    // The new plan's runs first, then the completed run of the config no longer in the study.
    expect(manifest.entries.map((e) => e.key)).toEqual([
      after.runs[0]?.key,
      added,
      before.runs[1]?.key,
    ]);
    expect(manifest.entries.every((e) => e.status === 'completed')).toBe(true);
    expect(readJson<StoredStudy>(join(studyDir, 'study.json')).plan.designHash).toBe(
      after.designHash,
    );
  }, 60_000);
});
