import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { mulberry32, type RunSlurm } from '@llem/domain';
import {
  ensureFakeNvmlBuilt,
  fakeNvmlLibraryPath,
  h100Profile,
  writeScenario,
} from '@llem/fake-nvml';
import { startSlurmCluster } from '@llem/slurm-cluster';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StudyDirectory, type StudyState } from '../src/directory';
import type { LivenessProbe } from '../src/liveness';
import type { RunnerPlan } from '../src/plan';
import { slurmLiveness } from '../src/slurm/liveness';
import { type SlurmSubmitOptions, submitSlurmStudy } from '../src/slurm/submit';
import { waitForStudy } from '../src/slurm/wait';
import { bundleFixtureWorker, bundleSlurmTask } from './fixtures/bundle';
import { readJsonLines } from './fixtures/chaos';
import { makePlan } from './fixtures/plan';
import { tempDir } from './helpers';

// Studies through a real one-node Slurm cluster of the test's own (munged, slurmctld, slurmd
// from Debian's packages; 4 fake GPUs as GRES), each array task running `runSlurmTask` with the
// fixture worker, its GPUs from Slurm's CUDA_VISIBLE_DEVICES and a fake NVML with 4 GPUs.
// Outside CI a machine without Slurm (or not root) skips these loudly; CI installs Slurm in
// .ci/prepare and must run them.

const cluster = await startSlurmCluster({ gpus: 4, killWaitS: 5 });
const skip = !cluster.ok && !process.env.CI;
if (!cluster.ok && !process.env.CI) {
  console.warn(
    `\n!!! slurm: ${cluster.reason}: SKIPPING the Slurm tests.\n!!! Install Slurm with: apt-get install -y slurmctld slurmd slurm-client munge   (CI does it in .ci/prepare)\n`,
  );
}

interface Fixture {
  behaviour: 'ok' | 'throw';
  delayMs: number;
  firstAttemptDelayMs?: number;
  id: number;
}

interface LedgerLine {
  event: 'start' | 'finish' | 'exit';
  key: string;
  attempt: number;
  t: number;
  pid: number;
  devices?: number[] | null;
  cuda?: string | null;
  slurm?: RunSlurm;
}

const GPU_UUIDS = [0, 1, 2, 3].map((i) => `GPU-${i}1111111-2222-3333-4444-555555555555`);

let tmp: ReturnType<typeof tempDir>;
let taskBundle: string;
let env: NodeJS.ProcessEnv;
let liveness: LivenessProbe;

beforeAll(async () => {
  if (!cluster.ok) {
    if (process.env.CI) throw new Error(`the Slurm test cluster did not start: ${cluster.reason}`);
    return;
  }
  tmp = tempDir();
  ensureFakeNvmlBuilt();
  const [worker, task] = await Promise.all([
    bundleFixtureWorker(tmp.dir),
    bundleSlurmTask(tmp.dir),
  ]);
  taskBundle = task;
  env = {
    ...cluster.env,
    LLEM_TEST_WORKER: worker,
    LLEM_NVML_LIBRARY: fakeNvmlLibraryPath(),
    LLEM_FAKE_NVML_SCENARIO: writeScenario(
      { devices: GPU_UUIDS.map((uuid) => h100Profile({ uuid })) },
      tmp.dir,
    ),
  };
  liveness = slurmLiveness({ env: cluster.env, cacheMs: 0 });
}, 60_000);

afterAll(async () => {
  // LLEM_TEST_KEEP=1 keeps the studies, task logs and the cluster's logs to look at.
  const keep = Boolean(process.env.LLEM_TEST_KEEP);
  if (cluster.ok) await cluster.stop({ keep });
  if (keep) console.log(`kept: ${tmp?.dir}${cluster.ok ? ` and ${cluster.dir}` : ''}`);
  else tmp?.cleanup();
});

/** Submit (or resubmit) through the test cluster, the fixture task as each array task. */
function submit(
  target: { plan: RunnerPlan<Fixture>; outputDir: string } | { resume: string },
  ledger: string,
  extra: Partial<SlurmSubmitOptions<Fixture>> = {},
) {
  return submitSlurmStudy<Fixture>({
    ...target,
    taskCommand: ({ studyDir, submission }) => [
      process.execPath,
      taskBundle,
      studyDir,
      String(submission),
    ],
    env: { ...env, LLEM_TEST_LEDGER: ledger },
    liveness,
    ...extra,
  } as SlurmSubmitOptions<Fixture>);
}

function squeue(jobId: string): Array<{ id: string; task: string; state: string }> {
  const out = spawnSync('squeue', ['-h', '--states=all', `--jobs=${jobId}`, '-o', '%A|%K|%T'], {
    env: cluster.ok ? cluster.env : {},
    encoding: 'utf8',
  });
  return out.stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [id, task, state] = l.split('|');
      return { id: id as string, task: task as string, state: state as string };
    });
}

function scancel(target: string): void {
  spawnSync('scancel', [target], { env: cluster.ok ? cluster.env : {} });
}

async function until(check: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function follow(studyDir: string): Promise<StudyState> {
  return waitForStudy(studyDir, { liveness, intervalMs: 200 });
}

function results(directory: StudyDirectory, state: StudyState) {
  return new Map(
    state.runs
      .filter((r) => r.status === 'completed')
      .map((r) => {
        const file = directory.runPaths(r.key).result;
        const result = JSON.parse(readFileSync(file, 'utf8')) as {
          attempt: number;
          devices?: Array<{ index: number; uuid: string | null }>;
          slurm?: RunSlurm;
          residualCheck: { status: string; devices: Array<{ index: number }> };
        };
        const stat = statSync(file);
        return [r.key, { result, identity: `${stat.ino}:${stat.mtimeMs}` }] as const;
      }),
  );
}

/** Pairs of worker lifetimes (start → exit) that overlapped on one GPU: must be none. */
function gpuOverlaps(lines: LedgerLine[]): number {
  const spans = lines
    .filter((l) => l.event === 'start')
    .flatMap((s) => {
      const end = lines.find(
        (l) => l.event === 'exit' && l.key === s.key && l.attempt === s.attempt && l.pid === s.pid,
      );
      return end ? [{ gpu: s.cuda, start: s.t, end: end.t }] : [];
    });
  let overlaps = 0;
  for (const [i, a] of spans.entries()) {
    for (const b of spans.slice(i + 1)) {
      if (a.gpu === b.gpu && a.start < b.end && b.start < a.end) overlaps += 1;
    }
  }
  return overlaps;
}

describe.skipIf(skip)('Slurm: a study as a job array on a one-node cluster', () => {
  it('each task claims its run and measures it on the GPU Slurm gave it; status says the job while queued', async () => {
    const ledger = join(tmp.dir, 'array.jsonl');
    const configs = Array.from({ length: 8 }, (_, id) => ({
      behaviour: 'ok' as const,
      delayMs: 300,
      id,
    }));
    const plan = makePlan(configs, { slurm: { max_parallel: 4 } }, 'slurm array');
    const submitted = await submit({ plan, outputDir: join(tmp.dir, 'array') }, ledger);
    expect(submitted.jobIds).toHaveLength(1);
    const jobId = submitted.jobIds[0] as string;
    expect(submitted.runs).toBe(8);

    // Right after sbatch: the study is running as that job, its runs queued in it.
    const directory = new StudyDirectory(submitted.studyDir, { liveness });
    const early = directory.state();
    expect(early.status).toBe('running');
    expect(early.owners.map((o) => o.slurm?.arrayJobId)).toContain(jobId);
    for (const run of early.runs) {
      if (run.status === 'pending') expect(run.queuedIn).toBe(jobId);
    }

    const state = await follow(submitted.studyDir);
    expect(state.status).toBe('completed');
    expect(state.counts.completed).toBe(8);
    expect(squeue(jobId).every((row) => row.state === 'COMPLETED')).toBe(true);

    const submission = directory.readSubmission(1).submission;
    expect(submission?.jobId).toBe(jobId);
    expect(submission?.sbatchArgs).toEqual(
      expect.arrayContaining(['--array=0-7%4', '--gres=gpu:1', '--export=ALL']),
    );
    expect(existsSync(directory.slurmPaths(1).script)).toBe(true);
    const lines = readJsonLines(ledger) as unknown as LedgerLine[];
    for (const [key, { result }] of results(directory, state)) {
      const task = submission?.tasks.findIndex((t) => t.some((r) => r.key === key));
      const start = lines.find((l) => l.event === 'start' && l.key === key);
      // The run saw Slurm's CUDA_VISIBLE_DEVICES as Slurm set it, and was measured (and
      // residual-checked) on that GPU as NVML numbers it.
      const gpu = Number(start?.cuda);
      expect(start?.cuda).toMatch(/^[0-3]$/);
      expect(result.devices).toEqual([{ index: gpu, uuid: GPU_UUIDS[gpu] }]);
      expect(result.residualCheck.devices.map((d) => d.index)).toEqual([gpu]);
      expect(result.slurm).toEqual({
        jobId: expect.stringMatching(/^[0-9]+$/),
        arrayJobId: jobId,
        arrayTaskId: String(task),
        nodeName: cluster.ok ? cluster.nodeName : '',
      });
      expect(existsSync(join(submitted.studyDir, `slurm/submission-1_${jobId}_${task}.log`))).toBe(
        true,
      );
    }
    expect(lines.filter((l) => l.event === 'start')).toHaveLength(8);
    expect(gpuOverlaps(lines)).toBe(0);
  }, 90_000);

  it('scancel of a running task leaves its run preempted; resume submits only that run and rewrites no result', async () => {
    const ledger = join(tmp.dir, 'preempt.jsonl');
    const configs: Fixture[] = Array.from({ length: 4 }, (_, id) => ({
      behaviour: 'ok',
      delayMs: 200,
      id,
      ...(id === 2 ? { firstAttemptDelayMs: 60_000 } : {}),
    }));
    const plan = makePlan(configs, {}, 'slurm preempt');
    const slowKey = plan.runs[2]?.key as string;
    const first = await submit({ plan, outputDir: join(tmp.dir, 'preempt') }, ledger);
    const jobId = first.jobIds[0] as string;
    const directory = new StudyDirectory(first.studyDir, { liveness });
    await until(() => directory.readRecord(slowKey).record?.status === 'running', 30_000);
    await until(() => directory.state().counts.completed === 3, 30_000);
    scancel(`${jobId}_2`);
    const stopped = await follow(first.studyDir);
    expect(stopped.status).toBe('interrupted');
    const slow = stopped.runs.find((r) => r.key === slowKey);
    expect(slow?.status).toBe('pending');
    expect(slow?.error?.type).toBe('preempted');
    expect(slow?.record?.attempts).toBe(1);
    const before = results(directory, stopped);
    expect(before.size).toBe(3);

    const second = await submit({ resume: first.studyDir }, ledger);
    expect(second.runs).toBe(1);
    expect(second.left).toEqual({ completed: 3, running: 0, queued: 0 });
    expect(second.submissions[0]?.submission).toBe(2);
    expect(second.submissions[0]?.tasks).toEqual([[{ key: slowKey, attempts: 1 }]]);
    const done = await follow(first.studyDir);
    expect(done.status).toBe('completed');
    const after = results(directory, done);
    for (const [key, { identity }] of before) expect(after.get(key)?.identity).toBe(identity);
    expect(after.get(slowKey)?.result.attempt).toBe(2);
    // A third submission has nothing to do.
    expect((await submit({ resume: first.studyDir }, ledger)).jobIds).toEqual([]);
  }, 120_000);

  it('a requeued task (same job id, next incarnation) takes over its run; the run is done once', async () => {
    const ledger = join(tmp.dir, 'requeue.jsonl');
    const configs: Fixture[] = [
      { behaviour: 'ok', delayMs: 100, firstAttemptDelayMs: 60_000, id: 0 },
      { behaviour: 'ok', delayMs: 100, id: 1 },
    ];
    const plan = makePlan(configs, {}, 'slurm requeue');
    const key = plan.runs[0]?.key as string;
    const { studyDir, jobIds } = await submit(
      { plan, outputDir: join(tmp.dir, 'requeue') },
      ledger,
      { settings: { sbatch_args: ['--requeue'] } },
    );
    const job = jobIds[0] as string;
    const directory = new StudyDirectory(studyDir, { liveness });
    // The worker of the first incarnation is measuring (its ledger line is written).
    const measuring = () =>
      (readJsonLines(ledger) as unknown as LedgerLine[]).some(
        (l) => l.event === 'start' && l.key === key,
      );
    await until(measuring, 30_000);
    const env = cluster.ok ? cluster.env : {};
    expect(spawnSync('scontrol', ['requeue', `${job}_0`], { env }).status).toBe(0);
    await until(() => squeue(job).some((r) => r.task === '0' && r.state === 'PENDING'), 20_000);
    // Slurm's SIGTERM left the run preempted, to be run again.
    await until(() => directory.readRecord(key).record?.error?.type === 'preempted', 20_000);
    expect(directory.readRecord(key).record?.status).toBe('pending');
    // Slurm holds a requeued job back (BeginTime) for a while, and slurmd refuses to start a
    // job it killed moments ago ("already killed, do not launch"): let it start in 2 s.
    await new Promise((r) => setTimeout(r, 2000));
    spawnSync('scontrol', ['update', `jobid=${job}_0`, 'StartTime=now'], { env });
    const state = await follow(studyDir);
    expect(state.status).toBe('completed');
    const lines = readJsonLines(ledger) as unknown as LedgerLine[];
    const starts = lines.filter((l) => l.event === 'start' && l.key === key);
    expect(starts.map((l) => l.attempt)).toEqual([1, 2]);
    // Both incarnations are the same Slurm job: the task id and job id do not tell them apart.
    expect(new Set(starts.map((l) => l.slurm?.jobId)).size).toBe(1);
    expect(
      lines.filter((l) => l.event === 'finish' && l.key === key).map((l) => l.attempt),
    ).toEqual([2]);
    expect(gpuOverlaps(lines)).toBe(0);
    const first = lines.find((l) => l.event === 'exit' && l.key === key && l.attempt === 1);
    expect(first?.t).toBeLessThanOrEqual(starts[1]?.t as number);
    const log = readFileSync(join(studyDir, `slurm/submission-1_${job}_0.log`), 'utf8');
    expect(log).toMatch(/CANCELLED .* DUE TO JOB REQUEUE/);
    expect(log.match(/Slurm task 0 of submission 1/g)).toHaveLength(2);
    expect(directory.readRecord(key).record).toMatchObject({
      status: 'completed',
      attempts: 2,
      owner: { slurm: { jobId: starts[0]?.slurm?.jobId, restartCount: 1 } },
    });
  }, 90_000);

  it('two submissions of the same runs at once: the tasks race by claims and each run is done once', async () => {
    const ledger = join(tmp.dir, 'twice.jsonl');
    const configs: Fixture[] = Array.from({ length: 6 }, (_, id) => ({
      behaviour: 'ok',
      delayMs: 150,
      id,
    }));
    const plan = makePlan(configs, {}, 'slurm twice');
    // The first submission only creates the study; then two resumes that cannot see each
    // other's job (a probe that cannot ask Slurm) both submit every run.
    const blind: LivenessProbe = { ...liveness, isSlurmJobActive: () => null };
    const created = await submit({ plan, outputDir: join(tmp.dir, 'twice') }, ledger, {
      settings: { runs_per_task: 6 },
      liveness: blind,
    });
    const again = await submit({ resume: created.studyDir }, ledger, { liveness: blind });
    expect(again.runs).toBe(6);
    const state = await follow(created.studyDir);
    expect(state.status).toBe('completed');
    const lines = readJsonLines(ledger) as unknown as LedgerLine[];
    for (const run of state.runs) {
      expect(lines.filter((l) => l.event === 'finish' && l.key === run.key)).toHaveLength(1);
    }
    expect(gpuOverlaps(lines)).toBe(0);
  }, 90_000);
});

// Chaos through Slurm: ≥100 runs as job arrays, random tasks and whole jobs cancelled with
// scancel while they run, then resumed with new submissions until every run ended. Every run
// must end once in the state its behaviour calls for (no preemption taken for a failure), be
// measured once, on the GPU Slurm gave its task; no result may be rewritten; no two workers
// may share a GPU or a run.
const SEED = Number(process.env.LLEM_CHAOS_SEED ?? 20261215);
const CHAOS_RUNS = 120;
const CHAOS_ROUNDS = 3;

describe.skipIf(skip)('Slurm chaos', () => {
  it(`${CHAOS_RUNS} runs, scancel of random tasks and whole jobs, resumes: each run once, no result rewritten, each on its GPU`, async () => {
    const random = mulberry32(SEED);
    const ledger = join(tmp.dir, 'chaos.jsonl');
    const configs: Fixture[] = Array.from({ length: CHAOS_RUNS }, (_, id) => ({
      behaviour: random() < 0.08 ? 'throw' : 'ok',
      delayMs: 100 + Math.floor(random() * 400),
      id,
    }));
    // Three runs per task at first (batches), one per task on resume.
    const plan = makePlan(configs, { slurm: { runs_per_task: 3 } }, 'slurm chaos');
    const started = Date.now();
    const seen = new Map<string, string>();
    let rewritten = 0;
    let misclassified = 0;
    let taskCancels = 0;
    let jobCancels = 0;
    let rounds = 0;
    const jobIds: string[] = [];
    let studyDir = '';
    let directory: StudyDirectory | null = null;
    const check = () => {
      if (!directory) return;
      const state = directory.state();
      for (const [key, { identity }] of results(directory, state)) {
        const before = seen.get(key);
        if (before !== undefined && before !== identity) rewritten += 1;
        seen.set(key, identity);
      }
      return state;
    };

    for (;;) {
      rounds += 1;
      const submitted = studyDir
        ? await submit({ resume: studyDir }, ledger)
        : await submit({ plan, outputDir: join(tmp.dir, 'chaos') }, ledger);
      if (submitted.jobIds.length === 0) break;
      studyDir = submitted.studyDir;
      directory ??= new StudyDirectory(studyDir, { liveness });
      jobIds.push(...submitted.jobIds);
      const job = submitted.jobIds[0] as string;
      let state = check();
      let cancelled = 0;
      while (state?.status === 'running') {
        await new Promise((r) => setTimeout(r, 200 + random() * 800));
        if (rounds <= CHAOS_ROUNDS) {
          const running = squeue(job).filter((row) => row.state === 'RUNNING');
          // Mostly single tasks; now and then (after a few tasks) the whole job.
          if (cancelled >= 4 && random() < 0.1 && running.length > 0) {
            scancel(job);
            jobCancels += 1;
          } else if (running.length > 0) {
            cancelled += 1;
            const victim = running[Math.floor(random() * running.length)];
            scancel(`${job}_${victim?.task}`);
            taskCancels += 1;
          }
        }
        state = check();
      }
      // After each round: a run that failed for any other reason than its own is a preemption
      // taken for a failure.
      misclassified += (state?.runs ?? []).filter(
        (r) => r.status === 'failed' && r.error?.type !== 'engine',
      ).length;
      if (rounds > CHAOS_ROUNDS && state?.status === 'completed') break;
      if (rounds > CHAOS_ROUNDS + 5) break;
    }
    const elapsedS = (Date.now() - started) / 1000;

    const final = check() as StudyState;
    const lines = readJsonLines(ledger) as unknown as LedgerLine[];
    const byKey = new Map(plan.runs.map((r) => [r.key, configs[r.configIndex] as Fixture]));
    let wrongState = 0;
    let duplicated = 0;
    let wrongGpu = 0;
    for (const run of final.runs) {
      const expected = byKey.get(run.key)?.behaviour === 'ok' ? 'completed' : 'failed';
      if (run.status !== expected) wrongState += 1;
      if (expected === 'failed' && run.error?.type !== 'engine') wrongState += 1;
      const finishes = lines.filter((l) => l.event === 'finish' && l.key === run.key);
      if (run.status !== 'completed') {
        if (finishes.length > 0) duplicated += 1;
        continue;
      }
      const { result } = results(directory as StudyDirectory, final).get(run.key) ?? {};
      if (finishes.length !== 1 || finishes[0]?.attempt !== result?.attempt) duplicated += 1;
      const start = lines.find(
        (l) => l.event === 'start' && l.key === run.key && l.attempt === result?.attempt,
      );
      const gpu = Number(start?.cuda);
      if (
        result?.devices?.[0]?.index !== gpu ||
        result.devices[0].uuid !== GPU_UUIDS[gpu] ||
        !jobIds.includes(result.slurm?.arrayJobId ?? '')
      ) {
        wrongGpu += 1;
      }
    }
    // Two workers on one run at once (a requeued or resubmitted task and its predecessor).
    const spans = lines
      .filter((l) => l.event === 'start')
      .map((s) => ({
        key: s.key,
        start: s.t,
        end:
          lines.find((l) => l.event === 'exit' && l.pid === s.pid)?.t ?? Number.POSITIVE_INFINITY,
      }));
    let sameRun = 0;
    for (const [i, a] of spans.entries()) {
      for (const b of spans.slice(i + 1)) {
        if (a.key === b.key && a.start < b.end && b.start < a.end) sameRun += 1;
      }
    }
    const attempts = lines.filter((l) => l.event === 'start').length;
    const conflicts = readdirSync(join(studyDir, 'runs')).filter((n) => n.includes('.conflict-'));
    const figures = {
      seed: SEED,
      runs: final.runs.length,
      rounds,
      submissions: jobIds.length,
      taskCancels,
      jobCancels,
      attempts,
      completed: final.counts.completed,
      failed: final.counts.failed,
      wrongState,
      misclassified,
      duplicated,
      rewritten,
      conflicts: conflicts.length,
      wrongGpu,
      gpuShared: gpuOverlaps(lines),
      sameRun,
      elapsedS,
    };
    console.log(`Slurm chaos figures: ${JSON.stringify(figures)}`);

    expect(final.runs).toHaveLength(CHAOS_RUNS);
    expect(final.status).toBe('completed');
    expect(taskCancels).toBeGreaterThanOrEqual(10);
    expect(jobCancels).toBeGreaterThanOrEqual(1);
    expect(attempts).toBeGreaterThan(CHAOS_RUNS);
    expect(wrongState).toBe(0);
    expect(misclassified).toBe(0);
    expect(duplicated).toBe(0);
    expect(rewritten).toBe(0);
    expect(conflicts).toEqual([]);
    expect(wrongGpu).toBe(0);
    expect(figures.gpuShared).toBe(0);
    expect(sameRun).toBe(0);
  }, 420_000);
});
