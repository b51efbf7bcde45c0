// `@llem/study/worker`: only what a worker module needs, so a child does not load the runner
// (or @llem/nvml) just to run its handler.
export type { WorkerErrorReport, WorkerTask } from './task';
export { TASK_FILE_ENV } from './task';
export type {
  DefinedWorker,
  DefineWorkerOptions,
  WorkerContext,
  WorkerHandler,
} from './worker';
export { defineWorker, WorkerExitCode } from './worker';
