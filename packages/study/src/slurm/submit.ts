import { hostname } from 'node:os';
import { basename } from 'node:path';
import {
  type SlurmSettings,
  SlurmSettingsSchema,
  type SlurmSubmission,
  slurmSubmissionFiles,
} from '@llem/domain';
import { type Logger, noopLogger } from '@llem/resilience';
import type { Clock } from '../clock';
import { type RunState, StudyDirectory, type StudyState } from '../directory';
import { SlurmError } from '../errors';
import type { StudyEvents } from '../events';
import type { LivenessProbe } from '../liveness';
import type { RunnerPlan } from '../plan';
import {
  type NewStudyOptions,
  type ResumeStudyOptions,
  STUDY_TOOL_VERSION,
  StudyRunner,
} from '../runner';
import { runTimeout } from '../timeout';
import { commandProblem, runSlurmCommand, type SlurmCommandRunner } from './command';
import { slurmLiveness } from './liveness';
import { batchScript, parseSbatchJobId, sbatchArguments } from './script';

/** Slurm accepts array indices up to `MaxArraySize − 1` (1001 by default): larger studies are split. */
export const SLURM_MAX_ARRAY_TASKS = 1000;

/** Added to a derived per-task time limit: node start-up, `setup` lines, opening NVML. */
export const SLURM_TASK_MARGIN_S = 300;

/** Options of `submitSlurmStudy` that are not about which study. */
interface SubmitCommon<Config> {
  /**
   * The program each array task runs, given the study directory and the submission number;
   * it must call `runSlurmTask` (llem: `llem slurm-task DIR --submission N`).
   */
  taskCommand: (submission: { studyDir: string; submission: number }) => string[];
  /** Over `execution.slurm` (the command line's flags). */
  settings?: Partial<SlurmSettings>;
  /** sbatch's environment, which every task inherits (`--export=ALL`). Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** sbatch's working directory, and where relative dataset paths resolve for time limits. */
  cwd?: string;
  logger?: Logger;
  clock?: Clock;
  /** Runs `sbatch` (and `squeue` for the default liveness). Default: the ones on `PATH`. */
  run?: SlurmCommandRunner;
  /** Default `slurmLiveness` with `run` and `env`. */
  liveness?: LivenessProbe;
  /** GPUs a run of `config` needs (`--gres=gpu:N`). Default `execution.devices_per_run`, else 1. */
  devicesPerRun?: (config: Config) => number | undefined;
  /**
   * A run's timeout without `execution.timeout_s`, as the tasks' runners will have it (llem:
   * `@llem/measure`'s `llemRunnerOptions`); the time limit is derived from it when
   * `time_limit_s` is not set. Default: the runner's default (1 h).
   */
  timeoutS?: (config: Config) => number;
  /** Called once the study directory exists (new, or opened and checked for a resume). */
  onStudyReady?: (event: StudyEvents['study-started']) => void;
  toolVersion?: string;
}

type PreparePick = 'verifyResult' | 'staleClaimMs' | 'owner';

/** Submit a new study: a fresh study directory, every run. */
export type SubmitNewStudyOptions<Config> = SubmitCommon<Config> &
  Pick<NewStudyOptions<Config>, 'plan' | 'outputDir' | PreparePick>;

/**
 * Resubmit a study: what is not completed (and not already queued or running) goes into a new
 * job array. With `plan`, a changed design is refused unless `force` (as a resume).
 */
export type SubmitResumeOptions<Config> = SubmitCommon<Config> &
  Pick<ResumeStudyOptions<Config>, 'resume' | 'plan' | 'force' | PreparePick>;

export type SlurmSubmitOptions<Config = unknown> =
  | SubmitNewStudyOptions<Config>
  | SubmitResumeOptions<Config>;

/** What `submitSlurmStudy` did. */
export interface SlurmSubmitResult {
  studyDir: string;
  /** One array job id per submission, in order; empty when nothing needed submitting. */
  jobIds: string[];
  submissions: SlurmSubmission[];
  /** Runs submitted. */
  runs: number;
  /** Runs left out because they are completed, running (claimed) or queued in a live job. */
  left: { completed: number; running: number; queued: number };
}

/**
 * Submit a study as Slurm job arrays: one array task per run (or per `runs_per_task` runs),
 * each asking for its runs' GPUs (`--gres=gpu:N`; runs needing different counts go in separate
 * arrays). The study directory must be on a filesystem every node shares. Each submission is
 * recorded (`slurm/submission-<n>.json`, with its batch script beside it) before sbatch runs, so
 * status says `running (Slurm job N)` while its tasks wait in the queue; every task claims its
 * runs, so a run is done once even when two submissions hold it. A resume submits only runs
 * that are not completed and not already queued or running.
 *
 * @example
 * const { studyDir, jobIds } = await submitSlurmStudy({
 *   plan, outputDir: '/shared/results',
 *   taskCommand: ({ studyDir, submission }) => ['node', 'my-task.js', studyDir, String(submission)],
 * });
 */
export async function submitSlurmStudy<Config>(
  options: SlurmSubmitOptions<Config>,
): Promise<SlurmSubmitResult> {
  const logger = options.logger ?? noopLogger;
  const env = options.env ?? process.env;
  const run = options.run ?? runSlurmCommand;
  const liveness = options.liveness ?? slurmLiveness({ run, env });
  const studyDir = await prepareStudy(options, liveness);
  const directory = StudyDirectory.open(studyDir, { liveness });
  const state = directory.state();
  const plan = state.stored.plan as RunnerPlan<Config>;
  const { chosen, left } = chooseRuns(state);
  if (chosen.length === 0) {
    logger.debug(
      `nothing to submit in ${studyDir}: ${left.completed} completed, ${left.running} running, ${left.queued} queued`,
    );
    return { studyDir, jobIds: [], submissions: [], runs: 0, left };
  }

  const settings = slurmSettings(plan, options.settings);
  const configs = new Map(plan.configs.map((c) => [c.index, c.config]));
  const runIndex = new Map(plan.runs.map((r) => [r.key, r]));
  const gpusOf = (run: RunState): number => {
    const config = configs.get(runIndex.get(run.key)?.configIndex ?? -1) as Config;
    return options.devicesPerRun?.(config) ?? plan.execution.devices_per_run ?? 1;
  };
  const timeOf = (run: RunState): number => {
    if (settings.time_limit_s) return settings.time_limit_s;
    const config = configs.get(runIndex.get(run.key)?.configIndex ?? -1) as Config;
    return runTimeout(plan.execution, config, options.timeoutS);
  };
  const gapS = (plan.execution.experiment_gap_s ?? 0) + (plan.execution.cycle_gap_s ?? 0);

  const submissions: SlurmSubmission[] = [];
  for (const [gpus, runs] of groupBy(chosen, gpusOf)) {
    const perTask = settings.runs_per_task ?? 1;
    const tasks = chunk(runs, perTask);
    for (const arrayTasks of chunk(tasks, SLURM_MAX_ARRAY_TASKS)) {
      const timeLimitS = Math.max(
        ...arrayTasks.map(
          (task) =>
            task.reduce((sum, r) => sum + timeOf(r) + gapS, 0) +
            (settings.time_limit_s ? 0 : SLURM_TASK_MARGIN_S),
        ),
      );
      const submission = submitOne(directory, {
        plan,
        tasks: arrayTasks,
        gpus,
        timeLimitS,
        settings,
        options,
        run,
        env,
        logger,
        submitted: submissions,
      });
      submissions.push(submission);
    }
  }
  const jobIds = submissions.map((s) => s.jobId as string);
  return { studyDir, jobIds, submissions, runs: chosen.length, left };
}

/** Create (or open and check, as a resume does) the study directory; returns its path. */
async function prepareStudy<Config>(
  options: SlurmSubmitOptions<Config>,
  liveness: LivenessProbe,
): Promise<string> {
  const common = {
    // `prepare()` forks nothing: it creates the directory, or opens it and checks it as a
    // resume does (design change, results that fail `verifyResult`, a legacy manifest).
    workerModule: 'llem:no-worker',
    // Nor does it look at GPUs: the nodes have them, not the machine that submits.
    devices: null,
    liveness,
    ...(options.env ? { env: options.env } : {}),
    ...(options.cwd ? { cwd: options.cwd } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.verifyResult ? { verifyResult: options.verifyResult } : {}),
    ...(options.staleClaimMs === undefined ? {} : { staleClaimMs: options.staleClaimMs }),
    ...(options.owner ? { owner: options.owner } : {}),
    ...(options.toolVersion ? { toolVersion: options.toolVersion } : {}),
  };
  const runner =
    'resume' in options
      ? new StudyRunner<Config>({
          ...common,
          resume: options.resume,
          ...(options.plan ? { plan: options.plan } : {}),
          ...(options.force ? { force: options.force } : {}),
        })
      : new StudyRunner<Config>({
          ...common,
          plan: options.plan,
          ...(options.outputDir ? { outputDir: options.outputDir } : {}),
        });
  if (options.onStudyReady) runner.on('study-started', options.onStudyReady);
  const summary = await runner.prepare();
  return summary.studyDir;
}

/**
 * The runs to submit: scheduled, not completed, not running under a live claim, not queued in
 * a live job of this study. A failed run is submitted again (with the attempts it has now).
 */
function chooseRuns(state: StudyState): {
  chosen: RunState[];
  left: SlurmSubmitResult['left'];
} {
  const left = { completed: 0, running: 0, queued: 0 };
  const chosen: RunState[] = [];
  for (const run of state.runs) {
    if (!run.scheduled) continue;
    if (run.status === 'completed') left.completed += 1;
    else if (run.liveOwner) left.running += 1;
    else if (run.queuedIn) left.queued += 1;
    else chosen.push(run);
  }
  return { chosen, left };
}

/** `execution.slurm` of the stored plan with `overrides` over it, checked. */
function slurmSettings(
  plan: RunnerPlan<unknown>,
  overrides: Partial<SlurmSettings> = {},
): SlurmSettings {
  const defined = Object.fromEntries(
    Object.entries(overrides).filter(([, value]) => value !== undefined),
  );
  const merged = { ...(plan.execution.slurm ?? {}), ...defined };
  const parsed = SlurmSettingsSchema.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new SlurmError(
      `execution.slurm${issue?.path.length ? `.${issue.path.join('.')}` : ''}: ${issue?.message ?? 'invalid'}`,
    );
  }
  return parsed.data;
}

interface SubmitOneInput<Config> {
  plan: RunnerPlan<Config>;
  tasks: RunState[][];
  gpus: number;
  timeLimitS: number;
  settings: SlurmSettings;
  options: SlurmSubmitOptions<Config>;
  run: SlurmCommandRunner;
  env: NodeJS.ProcessEnv;
  logger: Logger;
  /** Submissions already made by this call, named when this one fails. */
  submitted: readonly SlurmSubmission[];
}

/** Record one submission, write its batch script, run sbatch, record the job id. */
function submitOne<Config>(
  directory: StudyDirectory,
  input: SubmitOneInput<Config>,
): SlurmSubmission {
  const { plan, tasks, gpus, settings, options, logger } = input;
  const jobName = `llem-${basename(directory.dir)}`;
  const runs = tasks.reduce((n, t) => n + t.length, 0);
  // The number is taken first (an exclusive create), so the script and logs can carry it.
  let submission = directory.createSubmission({
    submittedBy: { host: hostname(), pid: process.pid },
    jobName,
    gpusPerTask: gpus,
    sbatchArgs: [],
    tasks: tasks.map((task) => task.map((r) => ({ key: r.key, attempts: r.attempts }))),
  });
  const n = submission.submission;
  const script = directory.writeSubmissionScript(
    n,
    batchScript({
      studyName: plan.name,
      studyDir: directory.dir,
      submission: n,
      tasks: tasks.length,
      runs,
      toolVersion: options.toolVersion ?? STUDY_TOOL_VERSION,
      setup: settings.setup ?? [],
      command: options.taskCommand({ studyDir: directory.dir, submission: n }),
    }),
  );
  const args = sbatchArguments({
    jobName,
    tasks: tasks.length,
    logPattern: directory.path(slurmSubmissionFiles(n).logPattern),
    gpusPerTask: gpus,
    timeLimitS: input.timeLimitS,
    settings,
    script,
  });
  submission = { ...submission, sbatchArgs: args };
  directory.writeSubmission(submission);
  logger.debug(`sbatch ${args.join(' ')}`);
  const out = input.run('sbatch', args, {
    env: input.env,
    ...(options.cwd ? { cwd: options.cwd } : {}),
  });
  const jobId = out.status === 0 ? parseSbatchJobId(out.stdout) : null;
  if (jobId === null) {
    const problem =
      out.status === 0
        ? `sbatch printed no job id (${JSON.stringify(out.stdout.trim().slice(0, 200))})`
        : commandProblem('sbatch', out);
    directory.writeSubmission({ ...submission, error: problem });
    const before = input.submitted.map((s) => s.jobId).join(', ');
    throw new SlurmError(
      `could not submit ${runs} runs of ${directory.dir} to Slurm: ${problem}${before ? ` (already submitted: job ${before})` : ''}`,
    );
  }
  submission = {
    ...submission,
    jobId,
    submittedAt: (options.clock?.date() ?? new Date()).toISOString(),
  };
  directory.writeSubmission(submission);
  logger.debug(
    `submitted ${runs} runs as Slurm job array ${jobId} (${tasks.length} tasks${gpus > 0 ? `, ${gpus} GPU${gpus === 1 ? '' : 's'} each` : ''}${settings.max_parallel ? `, at most ${settings.max_parallel} at once` : ''})`,
  );
  return submission;
}

function groupBy<T, K>(items: readonly T[], key: (item: T) => K): Map<K, T[]> {
  const out = new Map<K, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = out.get(k);
    if (list) list.push(item);
    else out.set(k, [item]);
  }
  return out;
}

function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
