import type { ResidualCheck, RunDevice, RunSlurm } from '@llem/domain';

/**
 * What the runner hands a worker child, as JSON in the file named by `LLEM_TASK_FILE`
 * (docs/ARCHITECTURE.md, "Runner ↔ worker"). Paths are absolute.
 */
export interface WorkerTask<Config = unknown> {
  /** `ScheduledRun.key`: unique per run in the study. */
  key: string;
  configHash: string;
  cycle: number;
  copy: number;
  /** The experiment config, as the plan resolved it (snake_case keys). */
  config: Config;
  studyDir: string;
  /** Where the worker writes its result JSON (write-temp + rename), then exits 0. */
  resultFile: string;
  /** Where the worker may write its timeseries (`files.timeseries`). */
  timeseriesFile: string;
  /**
   * Every file of this run, absolute, as `@llem/domain`'s study layout names them: `result`
   * (= `resultFile`), `error`, `log`, `timeseries`, `requests`, `serverLog`, `metrics`.
   */
  files: {
    result: string;
    error: string;
    log: string;
    timeseries: string;
    requests: string;
    serverLog: string;
    metrics: string;
  };
  /** What the runner saw on the GPU(s) right before starting this child; goes into the result. */
  residualCheck: ResidualCheck;
  toolVersion: string;
  /** Which dispatch of this run this is (1 on the first, higher after resume or failure). */
  attempt: number;
  /**
   * The GPUs the run was given (studies with `execution.devices`): measure exactly these. The
   * child's `CUDA_VISIBLE_DEVICES` names them by UUID. Absent otherwise.
   */
  devices?: RunDevice[];
  /** True when other runs of the study may run at the same time (host-wide energy is shared). */
  parallel?: boolean;
  /** The Slurm job the runner runs in (job, array job and task, node); the result records it. */
  slurm?: RunSlurm;
}

/** The name of the environment variable that holds the task file path. */
export const TASK_FILE_ENV = 'LLEM_TASK_FILE';

/** What a failing worker writes to the error file. */
export interface WorkerErrorReport {
  error: {
    /** One of `@llem/domain`'s `RUN_FAILURE_TYPES` (see `failureTypeOf`). */
    type: string;
    message: string;
    stack: string | null;
    /** The error's own code, when it had one. */
    code?: string;
  };
}

/** Messages a worker sends its runner over IPC. */
export type WorkerMessage =
  | { type: 'llem:child-started'; pid: number }
  | { type: 'llem:child-exited'; pid: number }
  /** A line for the user's console while the run goes on (e.g. waiting for a server). */
  | { type: 'llem:progress'; message: string };

/** True for messages that come from `defineWorker`'s plumbing. */
export function isWorkerMessage(value: unknown): value is WorkerMessage {
  if (typeof value !== 'object' || value === null) return false;
  const { type, pid, message } = value as { type?: unknown; pid?: unknown; message?: unknown };
  if (type === 'llem:progress') return typeof message === 'string';
  return (type === 'llem:child-started' || type === 'llem:child-exited') && typeof pid === 'number';
}
