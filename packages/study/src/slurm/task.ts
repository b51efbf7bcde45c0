import { resolve } from 'node:path';
import type { RunDevice } from '@llem/domain';
import { type Logger, noopLogger } from '@llem/resilience';
import { StudyDirectory } from '../directory';
import { SlurmError } from '../errors';
import type { StudySummary } from '../events';
import { type ResumeStudyOptions, SLURM_PREEMPTED, StudyRunner } from '../runner';
import { resolveSlurmDevices } from './devices';
import { slurmLiveness } from './liveness';

/** Where a Slurm task hears Slurm's signals (`process`, or a fake in tests). */
export interface TaskSignalSource {
  on(event: 'SIGTERM' | 'SIGINT', listener: () => void): unknown;
  off(event: 'SIGTERM' | 'SIGINT', listener: () => void): unknown;
}

/** `runSlurmTask`'s options: a resume's runner options, less what the task decides itself. */
export type SlurmTaskOptions<Config = unknown> = Omit<
  ResumeStudyOptions<Config>,
  'resume' | 'plan' | 'force' | 'runs' | 'devices' | 'inheritCudaVisibleDevices' | 'preemptible'
> & {
  studyDir: string;
  /** The submission the task belongs to (`slurm/submission-<n>.json`). */
  submission: number;
  /** The array task id. Default: `SLURM_ARRAY_TASK_ID` of `env`. */
  taskId?: number;
  /** The task's GPUs. Default `resolveSlurmDevices` (CUDA_VISIBLE_DEVICES and NVML). */
  allocatedDevices?: (env: NodeJS.ProcessEnv, logger: Logger) => Promise<RunDevice[] | null>;
  /** Where SIGTERM (scancel, time limit, preemption) and SIGINT come from. Default `process`. */
  signals?: TaskSignalSource;
};

/**
 * One array task of a Slurm submission: the runs `slurm/submission-<n>.json` lists for this
 * task, done by a `StudyRunner` that joins the study (`resume`). Each run is claimed first (two
 * tasks never work on one run: a requeued task and its predecessor, two submissions of one
 * run), measured on the GPUs Slurm allocated the task (`CUDA_VISIBLE_DEVICES`, left as Slurm
 * set it; the residual check looks at exactly those), and published. Slurm's SIGTERM leaves
 * the run pending with error type `preempted`, never half-written; the task stops.
 *
 * @example
 * // my-task.js, run by each array task: node my-task.js STUDY_DIR SUBMISSION
 * const summary = await runSlurmTask({
 *   studyDir: process.argv[2], submission: Number(process.argv[3]), workerModule: './my-worker.js',
 * });
 */
export async function runSlurmTask<Config = unknown>(
  options: SlurmTaskOptions<Config>,
): Promise<StudySummary> {
  const env = options.env ?? process.env;
  const logger = options.logger ?? noopLogger;
  const studyDir = resolve(options.cwd ?? process.cwd(), options.studyDir);
  const taskId = options.taskId ?? Number.parseInt(env.SLURM_ARRAY_TASK_ID ?? '', 10);
  if (!Number.isInteger(taskId) || taskId < 0) {
    throw new SlurmError(
      `no array task id: SLURM_ARRAY_TASK_ID=${env.SLURM_ARRAY_TASK_ID ?? '(unset)'} (a Slurm task runs inside a job array)`,
    );
  }
  const liveness = options.liveness ?? slurmLiveness({ env });
  const directory = StudyDirectory.open(studyDir, { liveness });
  const { submission, problem } = directory.readSubmission(options.submission);
  if (!submission) {
    throw new SlurmError(`Slurm submission ${options.submission} of ${studyDir}: ${problem}`);
  }
  const runs = submission.tasks[taskId];
  if (!runs) {
    throw new SlurmError(
      `Slurm submission ${options.submission} of ${studyDir} has ${submission.tasks.length} array tasks (0–${submission.tasks.length - 1}); there is no task ${taskId}`,
    );
  }
  const devices =
    submission.gpusPerTask > 0
      ? await (options.allocatedDevices ?? resolveSlurmDevices)(env, logger)
      : null;
  const {
    studyDir: _dir,
    submission: _n,
    taskId: _task,
    allocatedDevices: _alloc,
    signals: _signals,
    ...runnerOptions
  } = options;
  const runner = new StudyRunner<Config>({
    ...runnerOptions,
    env,
    logger,
    liveness,
    resume: studyDir,
    runs,
    devices,
    inheritCudaVisibleDevices: true,
    preemptible: true,
  });
  const signals = options.signals ?? process;
  const onTerm = (): void => {
    logger.warn('SIGTERM from Slurm (scancel, time limit or preemption): stopping the run');
    runner.interrupt(SLURM_PREEMPTED);
  };
  const onInt = (): void => runner.interrupt();
  signals.on('SIGTERM', onTerm);
  signals.on('SIGINT', onInt);
  try {
    logger.info(
      `Slurm task ${taskId} of submission ${options.submission} (job ${env.SLURM_JOB_ID ?? '?'} on ${env.SLURMD_NODENAME ?? '?'}): ${runs.length} run${runs.length === 1 ? '' : 's'}`,
    );
    return await runner.run();
  } finally {
    signals.off('SIGTERM', onTerm);
    signals.off('SIGINT', onInt);
  }
}
