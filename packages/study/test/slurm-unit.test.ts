import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { RunDevice, RunOwner } from '@llem/domain';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StudyDirectory } from '../src/directory';
import { SlurmError } from '../src/errors';
import type { LivenessProbe } from '../src/liveness';
import { StudyRunner } from '../src/runner';
import type { SlurmCommandOutput, SlurmCommandRunner } from '../src/slurm/command';
import { slurmAllocatedDevices } from '../src/slurm/devices';
import { parseSqueue, slurmLiveness } from '../src/slurm/liveness';
import { batchScript, parseSbatchJobId, sbatchArguments, shellQuote } from '../src/slurm/script';
import { submitSlurmStudy } from '../src/slurm/submit';
import { runSlurmTask, type TaskSignalSource } from '../src/slurm/task';
import { makePlan, TSX_EXEC_ARGV } from './fixtures/plan';
import { okResidual, tempDir } from './helpers';

// The Slurm executor's parts without a cluster: squeue's answers, the GPU mapping rules, the
// sbatch arguments and script, submissions in the study's state, and preemption in the runner.
// slurm.test.ts runs them through a real one.

const fixtureWorker = new URL('./fixtures/worker.ts', import.meta.url).href;

let tmp: ReturnType<typeof tempDir>;
beforeEach(() => {
  tmp = tempDir();
});
afterEach(() => tmp.cleanup());

const ok = (stdout: string): SlurmCommandOutput => ({ status: 0, stdout, stderr: '' });

describe('slurmLiveness (squeue)', () => {
  const rows = [
    '800|800|5-9%2|PENDING|0|',
    '812|800|3|RUNNING|0|',
    '813|800|4|RUNNING|1|',
    '801|800|0|CANCELLED|0|',
    '800|800|2|COMPLETING|0|',
  ].join('\n');

  it('judges one array task by its job id, task id and incarnation', () => {
    const calls: string[][] = [];
    const run: SlurmCommandRunner = (_cmd, args) => {
      calls.push([...args]);
      return ok(rows);
    };
    const probe = slurmLiveness({ run, local: { host: 'h', isPidAlive: () => true } });
    const ref = (task: string, restartCount?: number) => ({
      arrayJobId: '800',
      arrayTaskId: task,
      ...(restartCount === undefined ? {} : { restartCount }),
    });
    expect(probe.isSlurmJobActive('812', ref('3', 0))).toBe(true);
    expect(probe.isSlurmJobActive('801', ref('0'))).toBe(false); // cancelled
    expect(probe.isSlurmJobActive('800', ref('2'))).toBe(true); // completing: may still write
    // Requeued once since the claim was written: the claim's incarnation is gone.
    expect(probe.isSlurmJobActive('813', ref('4', 0))).toBe(false);
    expect(probe.isSlurmJobActive('813', ref('4', 1))).toBe(true);
    // One squeue for the whole array, reused.
    expect(calls).toHaveLength(1);
    expect(calls[0]).toContain('--jobs=800');
    // Not listed: asked again (it may have started after the cached answer), then ended.
    expect(probe.isSlurmJobActive('899', ref('7'))).toBe(false);
    expect(calls).toHaveLength(2);
    // The array as a whole (a submission): active while any task is.
    expect(probe.isSlurmJobActive('800')).toBe(true);
    expect(calls).toHaveLength(2);
  });

  it('says false for a job Slurm no longer knows, null when Slurm cannot be asked', () => {
    const answers: SlurmCommandOutput[] = [
      { status: 1, stdout: '', stderr: 'slurm_load_jobs error: Invalid job id specified\n' },
      {
        status: 1,
        stdout: '',
        stderr: 'slurm_load_jobs error: Unable to contact slurm controller',
      },
      {
        status: null,
        stdout: '',
        stderr: '',
        error: Object.assign(new Error('spawn squeue ENOENT'), { code: 'ENOENT' }),
      },
      ok('900|900|N/A|COMPLETED|0|\n'),
    ];
    const run: SlurmCommandRunner = () => answers.shift() as SlurmCommandOutput;
    const probe = slurmLiveness({ run, cacheMs: 0 });
    expect(probe.isSlurmJobActive('700')).toBe(false);
    expect(probe.isSlurmJobActive('700')).toBeNull();
    expect(probe.isSlurmJobActive('700')).toBeNull();
    expect(probe.isSlurmJobActive('900')).toBe(false);
  });

  it('parses the pending range, blank cells and restarts', () => {
    expect(parseSqueue('800|800|5-9%2|PENDING|0|\n\n812|800|3|RUNNING|2|\n')).toEqual([
      { jobId: '800', arrayJobId: '800', arrayTaskId: '5-9%2', state: 'PENDING', restartCount: 0 },
      { jobId: '812', arrayJobId: '800', arrayTaskId: '3', state: 'RUNNING', restartCount: 2 },
    ]);
  });
});

describe('slurmAllocatedDevices: the GPU mapping rules', () => {
  const node: RunDevice[] = [0, 1, 2, 3].map((index) => ({ index, uuid: `GPU-${index}aa` }));

  it('a UUID is the GPU with that UUID', () => {
    expect(slurmAllocatedDevices('GPU-3aa,GPU-1aa', node)).toEqual([node[3], node[1]]);
  });

  it('integers are NVML indices when NVML sees more GPUs than were allocated', () => {
    expect(slurmAllocatedDevices('2', node)).toEqual([node[2]]);
    expect(slurmAllocatedDevices('1,3', node)).toEqual([node[1], node[3]]);
  });

  it('when NVML sees exactly the allocation (cgroup-constrained), all visible GPUs are the task’s', () => {
    const constrained = [{ index: 0, uuid: 'GPU-3aa' }];
    expect(slurmAllocatedDevices('3', constrained)).toEqual(constrained);
  });

  it('no allocation is null; what cannot be matched is a StudyDevicesError naming the value', () => {
    expect(slurmAllocatedDevices(undefined, node)).toBeNull();
    expect(slurmAllocatedDevices('', node)).toBeNull();
    expect(slurmAllocatedDevices('2', null)).toEqual([{ index: 2, uuid: null }]);
    expect(() => slurmAllocatedDevices('GPU-9zz', node)).toThrow(
      /CUDA_VISIBLE_DEVICES=GPU-9zz: no GPU NVML sees has UUID GPU-9zz/,
    );
    expect(() => slurmAllocatedDevices('7', node)).toThrow(/NVML has no GPU 7/);
    expect(() => slurmAllocatedDevices('0,1,2', node.slice(0, 2))).toThrow(
      /allocated 3 GPUs, but NVML sees only 2/,
    );
    expect(() => slurmAllocatedDevices('NoDevFiles', node)).toThrow(
      /neither a GPU index nor a UUID/,
    );
    expect(() => slurmAllocatedDevices('GPU-0aa', null)).toThrow(/NVML cannot be opened/);
  });
});

describe('sbatch arguments and the batch script', () => {
  it('puts llem’s own options first and the study’s sbatch_args last, before the script', () => {
    expect(
      sbatchArguments({
        jobName: 'llem-s_1',
        tasks: 12,
        logPattern: '/d/slurm/submission-1_%A_%a.log',
        gpusPerTask: 2,
        timeLimitS: 601,
        settings: {
          partition: 'gpu',
          account: 'p1',
          qos: 'long',
          max_parallel: 3,
          sbatch_args: ['--mem=8G', '--time=30'],
        },
        script: '/d/slurm/submission-1.sbatch',
      }),
    ).toEqual([
      '--parsable',
      '--job-name=llem-s_1',
      '--array=0-11%3',
      '--output=/d/slurm/submission-1_%A_%a.log',
      '--open-mode=append',
      '--export=ALL',
      '--ntasks=1',
      '--gres=gpu:2',
      '--time=11',
      '--partition=gpu',
      '--account=p1',
      '--qos=long',
      '--mem=8G',
      '--time=30',
      '/d/slurm/submission-1.sbatch',
    ]);
  });

  it('runs the setup lines, then execs the task command quoted, under $LLEM_SLURM_PREFIX', () => {
    const script = batchScript({
      studyName: 's',
      studyDir: '/shared/results/s 1',
      submission: 2,
      tasks: 3,
      runs: 5,
      toolVersion: '1.2.3',
      setup: ['module load cuda/12.4', 'export LLEM_SLURM_PREFIX="apptainer exec --nv x.sif"'],
      command: [
        '/usr/bin/node',
        '/opt/llem/bin.js',
        'slurm-task',
        "/shared/it's",
        '--submission',
        '2',
      ],
    });
    const lines = script.trim().split('\n');
    expect(lines[0]).toBe('#!/bin/bash');
    expect(lines.slice(-4)).toEqual([
      'set -e',
      'module load cuda/12.4',
      'export LLEM_SLURM_PREFIX="apptainer exec --nv x.sif"',
      `exec \${LLEM_SLURM_PREFIX:-} /usr/bin/node /opt/llem/bin.js slurm-task '/shared/it'\\''s' --submission 2`,
    ]);
    expect(script).toContain("llem run --resume '/shared/results/s 1' --executor slurm");
    expect(shellQuote('a b')).toBe("'a b'");
  });

  it('reads the job id sbatch --parsable prints', () => {
    expect(parseSbatchJobId('812\n')).toBe('812');
    expect(parseSbatchJobId('812;cluster2\n')).toBe('812');
    expect(parseSbatchJobId('sbatch: warning: x\n812\n')).toBe('812');
    expect(parseSbatchJobId('Submitted batch job 812\n')).toBeNull();
  });
});

/** A Slurm that records sbatch calls and answers job ids 100, 101…; squeue says `states`. */
function fakeSlurm(states: Record<string, string> = {}) {
  const sbatch: string[][] = [];
  let next = 100;
  const run: SlurmCommandRunner = (cmd, args) => {
    if (cmd === 'sbatch') {
      sbatch.push([...args]);
      return ok(`${next++}\n`);
    }
    const id = /--jobs=(\d+)/.exec(args.join(' '))?.[1] ?? '';
    const state = states[id];
    return state
      ? ok(`${id}|${id}|0-9|${state}|0|\n`)
      : { status: 1, stdout: '', stderr: 'Invalid job id specified' };
  };
  return { run, sbatch, states };
}

const owner = (slurm?: RunOwner['slurm']): RunOwner => ({
  host: hostname(),
  pid: process.pid,
  runnerId: `r${Math.random()}`,
  ...(slurm ? { slurm } : {}),
});

describe('submitSlurmStudy without a cluster', () => {
  const taskCommand = ({ studyDir, submission }: { studyDir: string; submission: number }) => [
    'task',
    studyDir,
    String(submission),
  ];

  it('records the submission, one array per GPU count, runs_per_task runs per task, and a time limit per task', async () => {
    const slurm = fakeSlurm();
    const plan = makePlan(
      [{ n: 0 }, { n: 1 }, { n: 2, gpus: 2 }],
      {
        cycles: 2,
        timeout_s: 100,
        experiment_gap_s: 5,
        slurm: { partition: 'gpu', runs_per_task: 2, sbatch_args: ['--mem=4G'] },
      },
      'my study',
    );
    const result = await submitSlurmStudy({
      plan,
      outputDir: tmp.dir,
      taskCommand,
      run: slurm.run,
      settings: { partition: 'debug', max_parallel: undefined },
      devicesPerRun: (config: { gpus?: number }) => config.gpus,
    });
    expect(result.jobIds).toEqual(['100', '101']);
    expect(result.runs).toBe(6);
    const directory = StudyDirectory.open(result.studyDir);
    const [one, two] = directory.readSubmissions();
    expect(one?.tasks.map((t) => t.length)).toEqual([2, 2]); // 4 one-GPU runs, 2 per task
    expect(two?.tasks.map((t) => t.length)).toEqual([2]);
    expect(two?.gpusPerTask).toBe(2);
    expect(slurm.sbatch[0]).toEqual(
      expect.arrayContaining([
        '--array=0-1',
        '--gres=gpu:1',
        // 2 runs × (100 s + 5 s gap) + 300 s margin = 510 s → 9 minutes
        '--time=9',
        // the command line's --partition over the study's
        '--partition=debug',
        '--mem=4G',
        `--job-name=llem-${result.studyDir.split('/').pop()}`,
      ]),
    );
    expect(slurm.sbatch[1]).toContain('--gres=gpu:2');
    expect(slurm.sbatch[0]?.at(-1)).toBe(directory.slurmPaths(1).script);
    const script = readFileSync(directory.slurmPaths(1).script, 'utf8');
    expect(script).toContain(`exec \${LLEM_SLURM_PREFIX:-} task ${result.studyDir} 1`);
    expect(one).toMatchObject({ jobId: '100', error: null, submittedBy: { pid: process.pid } });
  });

  it('while the job is queued, the study is running as that job; when it ends unfinished, interrupted', async () => {
    const slurm = fakeSlurm();
    const plan = makePlan([{ n: 0 }, { n: 1 }], {}, 'queued');
    const liveness = slurmLiveness({ run: slurm.run, cacheMs: 0 });
    const { studyDir, jobIds } = await submitSlurmStudy({
      plan,
      outputDir: tmp.dir,
      taskCommand,
      run: slurm.run,
      liveness,
    });
    slurm.states['100'] = 'PENDING';
    const directory = new StudyDirectory(studyDir, { liveness });
    let state = directory.state();
    expect(jobIds).toEqual(['100']);
    expect(state.status).toBe('running');
    expect(state.runs.map((r) => r.queuedIn)).toEqual(['100', '100']);
    expect(state.owners).toEqual([
      expect.objectContaining({
        runnerId: 'slurm-job-100',
        slurm: expect.objectContaining({ jobId: '100' }),
      }),
    ]);
    // A resume while it is queued submits nothing.
    const again = await submitSlurmStudy({
      resume: studyDir,
      taskCommand,
      run: slurm.run,
      liveness,
    });
    expect(again).toMatchObject({ jobIds: [], runs: 0, left: { queued: 2 } });
    slurm.states['100'] = 'CANCELLED';
    state = directory.state();
    expect(state.status).toBe('interrupted');
    expect(state.runs.map((r) => r.queuedIn)).toEqual([null, null]);
    // Now a resume submits both again.
    expect(
      (await submitSlurmStudy({ resume: studyDir, taskCommand, run: slurm.run, liveness })).jobIds,
    ).toEqual(['101']);
  });

  it('a failed run is resubmitted with its attempts; one retried since its submission is not queued', async () => {
    const slurm = fakeSlurm({ '100': 'RUNNING' });
    const plan = makePlan([{ n: 0 }], {}, 'failed');
    const liveness = slurmLiveness({ run: slurm.run, cacheMs: 0 });
    const created = await submitSlurmStudy({
      plan,
      outputDir: tmp.dir,
      taskCommand,
      run: () => ({
        status: 1,
        stdout: '',
        stderr: 'sbatch: error: Batch job submission failed: Invalid partition name specified',
      }),
      liveness,
    }).catch((error: unknown) => error);
    expect(created).toBeInstanceOf(SlurmError);
    expect((created as Error).message).toMatch(
      /could not submit 1 runs of .* to Slurm: sbatch exited with status 1: sbatch: error: Batch job submission failed: Invalid partition name specified/,
    );
    const studyDir = join(tmp.dir, readdirSync(tmp.dir)[0] as string);
    const directory = new StudyDirectory(studyDir, { liveness });
    expect(directory.readSubmission(1).submission).toMatchObject({
      jobId: null,
      error: expect.stringContaining('Invalid partition name'),
    });
    const key = plan.runs[0]?.key as string;
    directory.writeRecord({
      key,
      configHash: plan.runs[0]?.configHash as string,
      cycle: 0,
      copy: 0,
      label: 'cfg0',
      status: 'failed',
      attempts: 1,
      owner: null,
      startedAt: null,
      endedAt: null,
      error: { type: 'engine', message: 'no' },
      resultFile: null,
    });
    const again = await submitSlurmStudy({
      resume: studyDir,
      taskCommand,
      run: slurm.run,
      liveness,
    });
    expect(again.submissions[0]?.tasks).toEqual([[{ key, attempts: 1 }]]);
    expect(directory.state().runs[0]?.queuedIn).toBe('100');
    // Retried (and failed again) by someone since: this job will not run it.
    const record = directory.readRecord(key).record;
    directory.writeRecord({ ...(record as NonNullable<typeof record>), attempts: 2 });
    expect(directory.state().runs[0]?.queuedIn).toBeNull();
    expect(directory.state().status).toBe('completed');
  });
});

describe('a resubmission checks the results first, as a resume does', () => {
  it('a damaged result is set aside and its run submitted again; a good one is left alone', async () => {
    const slurm = fakeSlurm({ '100': 'COMPLETED' });
    const liveness = slurmLiveness({ run: slurm.run, cacheMs: 0 });
    const plan = makePlan([{ n: 0 }, { n: 1 }], {}, 'verify');
    const taskCommand = () => ['x'];
    const { studyDir } = await submitSlurmStudy({
      plan,
      outputDir: tmp.dir,
      taskCommand,
      run: slurm.run,
      liveness,
    });
    const directory = new StudyDirectory(studyDir, { liveness });
    const [good, bad] = plan.runs.map((r) => r.key) as [string, string];
    writeFileSync(directory.runPaths(good).result, JSON.stringify({ ok: true }));
    writeFileSync(directory.runPaths(bad).result, '{"ok": tr');
    const again = await submitSlurmStudy({
      resume: studyDir,
      taskCommand,
      run: slurm.run,
      liveness,
      verifyResult: (value) =>
        (value as { ok?: boolean }).ok ? { ok: true } : { ok: false, reason: 'not ok' },
    });
    expect(again.submissions[0]?.tasks).toEqual([[{ key: bad, attempts: 0 }]]);
    expect(again.left.completed).toBe(1);
    expect(
      readdirSync(join(studyDir, 'runs')).some((n) => n.startsWith(`${bad}.json.damaged-`)),
    ).toBe(true);
  });
});

describe('a claim of a Slurm task', () => {
  it('is stale once Slurm says its task ended or was requeued past it', () => {
    const plan = makePlan([{ n: 0 }], {}, 'claims');
    let answer = '812|800|3|RUNNING|0|';
    const liveness: LivenessProbe = slurmLiveness({
      run: () => ok(answer),
      cacheMs: 0,
      local: { host: 'another-host', isPidAlive: () => true },
    });
    const directory = StudyDirectory.create(
      {
        outputDir: tmp.dir,
        name: 'c',
        now: new Date(),
        stored: { schemaVersion: 1, toolVersion: 't', createdAt: new Date().toISOString(), plan },
      },
      { liveness },
    );
    const key = plan.runs[0]?.key as string;
    const held = directory.claim(
      key,
      owner({ jobId: '812', arrayJobId: '800', arrayTaskId: '3', nodeName: 'n1', restartCount: 0 }),
    );
    expect(held).not.toBeNull();
    expect(directory.claimState(key).kind).toBe('live');
    answer = '812|800|3|RUNNING|1|'; // requeued: the same job id, a new incarnation
    expect(directory.claimState(key)).toMatchObject({ kind: 'stale', why: 'Slurm job 812 ended' });
    answer = '812|800|3|TIMEOUT|0|';
    expect(directory.claimState(key).kind).toBe('stale');
  });
});

describe('the runner under a batch scheduler (preemptible)', () => {
  it('a worker ended by a SIGTERM the runner did not send leaves its run preempted, and the runner stops', async () => {
    const plan = makePlan([{ behaviour: 'sigterm-self' }, { behaviour: 'ok' }], {}, 'preempted');
    const run = (preemptible: boolean) =>
      new StudyRunner({
        plan,
        outputDir: tmp.dir,
        workerModule: fixtureWorker,
        execArgv: TSX_EXEC_ARGV,
        residualCheck: okResidual,
        preemptible,
      }).run();
    const stopped = await run(true);
    expect(stopped.status).toBe('interrupted');
    const state = StudyDirectory.open(stopped.studyDir).state();
    expect(state.runs.map((r) => [r.status, r.error?.type ?? null])).toEqual([
      ['pending', 'preempted'],
      ['pending', null],
    ]);
    // Without a scheduler, a worker killed by someone else's SIGTERM crashed.
    const local = await run(false);
    const runs = StudyDirectory.open(local.studyDir).state().runs;
    expect(runs.map((r) => [r.status, r.error?.type ?? null])).toEqual([
      ['failed', 'crash'],
      ['completed', null],
    ]);
  }, 30_000);

  it('runSlurmTask: SIGTERM from Slurm mid-run leaves the run pending as preempted; a bad task id is a SlurmError', async () => {
    const slurm = fakeSlurm({ '100': 'RUNNING' });
    const liveness = slurmLiveness({ run: slurm.run, cacheMs: 0 });
    const plan = makePlan([{ behaviour: 'hang' }, { behaviour: 'ok' }], {}, 'task');
    const { studyDir } = await submitSlurmStudy({
      plan,
      outputDir: tmp.dir,
      taskCommand: () => ['x'],
      run: slurm.run,
      liveness,
      settings: { runs_per_task: 2 },
    });
    const listeners = new Map<string, () => void>();
    const signals: TaskSignalSource = {
      on: (event, listener) => listeners.set(event, listener),
      off: (event) => listeners.delete(event),
    };
    const env = {
      ...process.env,
      SLURM_ARRAY_TASK_ID: '0',
      SLURM_JOB_ID: '101',
      SLURM_ARRAY_JOB_ID: '100',
    };
    const task = runSlurmTask({
      studyDir,
      submission: 1,
      workerModule: fixtureWorker,
      execArgv: TSX_EXEC_ARGV,
      residualCheck: okResidual,
      graceMs: 200,
      env,
      liveness,
      signals,
    });
    const directory = new StudyDirectory(studyDir, { liveness });
    const key = plan.runs[0]?.key as string;
    while (directory.readRecord(key).record?.status !== 'running') {
      await new Promise((r) => setTimeout(r, 50));
    }
    await new Promise((r) => setTimeout(r, 300));
    listeners.get('SIGTERM')?.();
    const summary = await task;
    expect(summary.status).toBe('interrupted');
    expect(listeners.size).toBe(0);
    const record = directory.readRecord(key).record;
    expect(record).toMatchObject({
      status: 'pending',
      error: { type: 'preempted' },
      owner: { slurm: { jobId: '101', arrayJobId: '100', arrayTaskId: '0' } },
    });
    // The second run of the task was never started.
    expect(directory.readRecord(plan.runs[1]?.key as string).record).toBeNull();
    await expect(
      runSlurmTask({ studyDir, submission: 1, taskId: 5, workerModule: fixtureWorker, liveness }),
    ).rejects.toThrow(/has 1 array tasks \(0–0\); there is no task 5/);
    await expect(
      runSlurmTask({ studyDir, submission: 1, workerModule: fixtureWorker, env: {}, liveness }),
    ).rejects.toThrow(/no array task id: SLURM_ARRAY_TASK_ID=\(unset\)/);
    await expect(
      runSlurmTask({ studyDir, submission: 9, taskId: 0, workerModule: fixtureWorker, liveness }),
    ).rejects.toThrow(SlurmError);
  }, 30_000);
});
