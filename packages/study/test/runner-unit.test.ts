import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ManifestSchema, planStudy, quickstartStudy, type StudyPlan } from '@llem/domain';
import { CleanupRegistry } from '@llem/resilience';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { STUDY_EVENT_NAMES, type StudyEvents } from '../src/events';
import { type NewStudyOptions, StudyRunner } from '../src/runner';
import { makePlan } from './fixtures/plan';
import { energyDevices, fakeClock, okResidual, readJson, readManifest, tempDir } from './helpers';

const plainWorker = new URL('./fixtures/plain-worker.mjs', import.meta.url);

let tmp: ReturnType<typeof tempDir>;
beforeEach(() => {
  tmp = tempDir();
});
afterEach(() => tmp.cleanup());

/**
 * A new study on the plain worker and the fake clock, writing under the test's temp dir, with a
 * passing residual check unless `options` brings its own.
 */
function fakeRunner(
  fake: ReturnType<typeof fakeClock>,
  options: Omit<NewStudyOptions<unknown>, 'workerModule'>,
): StudyRunner<unknown> {
  return new StudyRunner({
    outputDir: tmp.dir,
    workerModule: plainWorker,
    clock: fake.clock,
    sleep: fake.sleep,
    residualCheck: okResidual,
    // As llem does: a run is checked on its config's energy.devices.
    runDevices: energyDevices,
    ...options,
  });
}

function collect(runner: StudyRunner<unknown>) {
  const events: Array<{ name: keyof StudyEvents; payload: unknown }> = [];
  for (const name of STUDY_EVENT_NAMES) {
    runner.on(name, (payload) => events.push({ name, payload }));
  }
  return events;
}

describe('StudyRunner with a fake clock', () => {
  it('sleeps the experiment gap between runs and adds the cycle gap when a cycle starts', async () => {
    const fake = fakeClock();
    const plan = makePlan([{ a: 1 }, { a: 2 }], {
      cycles: 2,
      experiment_gap_s: 2,
      cycle_gap_s: 3,
    });
    const runner = fakeRunner(fake, {
      plan,
    });
    const events = collect(runner);
    const summary = await runner.run();
    expect(summary.status).toBe('completed');
    expect(summary.counts).toMatchObject({ total: 4, completed: 4, failed: 0 });
    // Runs: A0 | 2 s | B0 | 2+3 s (cycle 1 starts) | A1 | 2 s | B1 — in 1-second steps.
    expect(fake.sleeps.reduce((a, b) => a + b, 0)).toBe(2000 + 5000 + 2000);
    const countdowns = events
      .filter((e) => e.name === 'gap-countdown')
      .map((e) => e.payload as StudyEvents['gap-countdown']);
    expect(countdowns.filter((c) => c.kind === 'cycle').map((c) => c.secondsLeft)).toEqual([
      5, 4, 3, 2, 1,
    ]);
    expect(countdowns.filter((c) => c.kind === 'experiment').map((c) => c.secondsLeft)).toEqual([
      2, 1, 2, 1,
    ]);
    // No gap before the first run.
    expect(events[0]?.name).toBe('study-started');
    expect(events[1]?.name).toBe('run-started');
  });

  it('emits run events with index/total and an ETA of mean duration × remaining + gaps', async () => {
    const fake = fakeClock();
    const plan = makePlan([{ a: 1 }, { a: 2 }, { a: 3 }], { experiment_gap_s: 10 });
    // The residual check is the only thing that "takes" fake time: 4 s per run.
    const runner = fakeRunner(fake, {
      plan,
      residualCheck: async (req) => {
        await fake.sleep(4000);
        return okResidual(req);
      },
    });
    const events = collect(runner);
    await runner.run();
    const finished = events
      .filter((e) => e.name === 'run-finished')
      .map((e) => e.payload as StudyEvents['run-finished']);
    expect(finished.map((f) => [f.index, f.total, f.status])).toEqual([
      [1, 3, 'completed'],
      [2, 3, 'completed'],
      [3, 3, 'completed'],
    ]);
    expect(finished.map((f) => f.durationMs)).toEqual([4000, 4000, 4000]);
    expect(finished.map((f) => f.eta)).toEqual([
      { remainingRuns: 2, remainingMs: 2 * 4000 + 2 * 10_000 },
      { remainingRuns: 1, remainingMs: 4000 + 10_000 },
      { remainingRuns: 0, remainingMs: 0 },
    ]);
    const started = events
      .filter((e) => e.name === 'run-started')
      .map((e) => e.payload as StudyEvents['run-started']);
    expect(started.map((s) => s.label)).toEqual(['cfg0', 'cfg1', 'cfg2']);
    expect(started.every((s) => s.pid > 0 && s.pid !== process.pid)).toBe(true);
  });

  it('skipGap() ends a gap early and the next run starts', async () => {
    const fake = fakeClock();
    const plan = makePlan([{ a: 1 }, { a: 2 }], { experiment_gap_s: 30 });
    const runner = fakeRunner(fake, {
      plan,
    });
    runner.on('gap-countdown', (e) => {
      if (e.secondsLeft === 28) runner.skipGap();
    });
    const events = collect(runner);
    const summary = await runner.run();
    expect(summary.counts.completed).toBe(2);
    expect(fake.sleeps).toEqual([1000, 1000, 1000]);
    expect(events.find((e) => e.name === 'gap-finished')?.payload).toEqual({
      skipped: true,
      interrupted: false,
    });
  });

  it('an interrupt during a gap ends the study as interrupted without starting the next run', async () => {
    const fake = fakeClock();
    const plan = makePlan([{ a: 1 }, { a: 2 }, { a: 3 }], { experiment_gap_s: 60 });
    const runner = fakeRunner(fake, {
      plan,
    });
    runner.on('gap-countdown', (e) => {
      if (e.secondsLeft === 57) runner.interrupt();
    });
    const summary = await runner.run();
    expect(summary.status).toBe('interrupted');
    expect(summary.counts).toMatchObject({ completed: 1, pending: 2, running: 0 });
    const manifest = readManifest(summary.studyDir);
    expect(manifest.status).toBe('interrupted');
    expect(ManifestSchema.safeParse(manifest).success).toBe(true);
  });

  it('aborting the signal option is a first interrupt', async () => {
    const fake = fakeClock();
    const controller = new AbortController();
    const runner = fakeRunner(fake, {
      plan: makePlan([{ a: 1 }, { a: 2 }], { experiment_gap_s: 5 }),
      signal: controller.signal,
    });
    runner.on('gap-countdown', () => controller.abort());
    const summary = await runner.run();
    expect(summary.status).toBe('interrupted');
    expect(summary.counts).toMatchObject({ completed: 1, pending: 1 });
  });

  it('an interrupt after the last run has ended leaves the study completed', async () => {
    const fake = fakeClock();
    const runner = fakeRunner(fake, {
      plan: makePlan([{ a: 1 }, { a: 2 }]),
    });
    runner.on('run-finished', (e) => {
      if (e.index === e.total) runner.interrupt();
    });
    const summary = await runner.run();
    expect(summary.status).toBe('completed');
    expect(readManifest(summary.studyDir).status).toBe('completed');
  });

  it('marks the run running before the residual check, and the observation reaches the child', async () => {
    const fake = fakeClock();
    const plan = makePlan([{ energy: { devices: [1, 3] } }], {
      residual_memory_threshold_mb: 250,
    });
    const seen: Array<{ status: string | undefined; resultExists: boolean; devices: number[] }> =
      [];
    let studyDir = '';
    const runner = fakeRunner(fake, {
      plan,
      residualCheck: (req) => {
        // The run's record is the truth (the manifest is an index rebuilt from the records).
        const key = plan.runs[0]?.key;
        const record = readJson<{ status: string }>(join(studyDir, 'runs', `${key}.record.json`));
        seen.push({
          status: record.status,
          resultExists: existsSync(join(studyDir, 'runs', `${key}.json`)),
          devices: req.deviceIndices,
        });
        return {
          status: 'exceeded',
          thresholdMb: req.thresholdMb,
          devices: [{ index: 1, usedMb: 900, totalMb: 8000, exceeded: true }],
          reason: null,
          checkedAt: '2026-01-02T03:04:05.000Z',
        };
      },
    });
    runner.on('study-started', (e) => {
      studyDir = e.studyDir;
    });
    const summary = await runner.run();
    expect(seen).toEqual([{ status: 'running', resultExists: false, devices: [1, 3] }]);
    const entry = readManifest(summary.studyDir).entries[0]!;
    const result = readJson<{ residualCheck: { thresholdMb: number; status: string } }>(
      join(summary.studyDir, entry.resultFile!),
    );
    expect(result.residualCheck).toMatchObject({ status: 'exceeded', thresholdMb: 250 });
  });

  it('a residual check that throws never blocks the run: the child gets a skipped observation', async () => {
    const fake = fakeClock();
    const warnings: string[] = [];
    const runner = fakeRunner(fake, {
      plan: makePlan([{ a: 1 }]),
      logger: { error() {}, warn: (m: string) => warnings.push(m), info() {}, debug() {} },
      residualCheck: () => {
        throw new Error('NVML_ERROR_UNKNOWN');
      },
    });
    const summary = await runner.run();
    expect(summary.counts.completed).toBe(1);
    const entry = readManifest(summary.studyDir).entries[0]!;
    const result = readJson<{ residualCheck: { status: string; reason: string } }>(
      join(summary.studyDir, entry.resultFile!),
    );
    expect(result.residualCheck.status).toBe('skipped');
    expect(result.residualCheck.reason).toContain('NVML_ERROR_UNKNOWN');
    expect(result.residualCheck).toMatchObject({ thresholdMb: 100 });
  });

  it('runs the cleanup registry after every run, even when a cleanup throws', async () => {
    const fake = fakeClock();
    const cleanups = new CleanupRegistry({ collectGarbage: false });
    const ran: string[] = [];
    const runner = fakeRunner(fake, {
      plan: makePlan([{ a: 1 }, { a: 2 }]),
      cleanups,
      afterRun: (run) => {
        ran.push(`${run.status}:${run.resultFile}`);
        cleanups.register('boom', () => {
          throw new Error('cleanup failed');
        });
        throw new Error('afterRun failed too');
      },
    });
    runner.on('run-started', () => cleanups.register('engine', () => ran.push('engine')));
    const summary = await runner.run();
    expect(summary.counts.completed).toBe(2);
    expect(ran.filter((r) => r === 'engine')).toHaveLength(2);
    expect(ran.filter((r) => r.startsWith('completed:runs/'))).toHaveLength(2);
  });

  it('writes study.json and a manifest that matches the domain schema, with no temp files left', async () => {
    const fake = fakeClock();
    const plan = makePlan([{ a: 1 }], { cycles: 2 }, '../../etc/passwd');
    const runner = fakeRunner(fake, {
      plan,
      toolVersion: '9.9.9',
    });
    const summary = await runner.run();
    expect(summary.studyDir).toBe(join(tmp.dir, 'etc_passwd_20260102T030405Z'));
    const manifest = readManifest(summary.studyDir);
    expect(ManifestSchema.parse(manifest)).toMatchObject({
      studyName: '../../etc/passwd',
      toolVersion: '9.9.9',
      designHash: plan.designHash,
      status: 'completed',
      counts: { total: 2, completed: 2, pending: 0, running: 0, failed: 0 },
    });
    expect(manifest.entries.map((e) => [e.cycle, e.attempts, e.status])).toEqual([
      [0, 1, 'completed'],
      [1, 1, 'completed'],
    ]);
    expect(readJson<{ plan: unknown }>(join(summary.studyDir, 'study.json')).plan).toEqual(plan);
    const leftovers = readdirSync(summary.studyDir, { recursive: true }).filter((f) =>
      String(f).endsWith('.tmp'),
    );
    expect(leftovers).toEqual([]);
    expect(existsSync(join(summary.studyDir, '.runner.lock'))).toBe(false);
  });

  it("runs a plan from @llem/domain's planStudy as it is (the quickstart: 4 configs × 2 cycles)", async () => {
    const fake = fakeClock();
    const plan: StudyPlan = planStudy(quickstartStudy, { file: 'builtin:quickstart' });
    const runner = fakeRunner(fake, {
      plan,
    });
    const summary = await runner.run();
    expect(summary.counts).toMatchObject({ total: 8, completed: 8 });
    const manifest = ManifestSchema.parse(readManifest(summary.studyDir));
    expect(manifest.entries.map((e) => e.key)).toEqual(plan.runs.map((r) => r.key));
    expect(manifest.entries.map((e) => e.label)).toEqual(
      plan.runs.map((r) => plan.configs[r.configIndex]?.label),
    );
    // experiment gap 1 s before runs 2..8, plus a 1 s cycle gap when cycle 1 starts.
    expect(fake.sleeps.reduce((a, b) => a + b, 0)).toBe(7000 + 1000);
    const first = readJson<{ task: { config: unknown; configHash: string } }>(
      join(summary.studyDir, manifest.entries[0]!.resultFile!),
    );
    expect(first.task.config).toEqual(plan.configs[plan.runs[0]!.configIndex]?.config);
  });
});
