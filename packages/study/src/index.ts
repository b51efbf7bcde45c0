export type { Clock, SleepFn } from './clock';
export { systemClock, systemSleep } from './clock';
export type {
  ClaimState,
  HeldClaim,
  HeldResource,
  RunState,
  StudyDirectoryOptions,
  StudyState,
} from './directory';
export {
  currentOwner,
  DEFAULT_HEARTBEAT_MS,
  DEFAULT_STALE_CLAIM_MS,
  StudyDirectory,
} from './directory';
export type { StudyErrorCode } from './errors';
export {
  SlurmError,
  StudyDesignChangedError,
  StudyDevicesError,
  StudyError,
} from './errors';
export type {
  Eta,
  RunEndStatus,
  StudyEventName,
  StudyEvents,
  StudySummary,
} from './events';
export { STUDY_EVENT_NAMES } from './events';
export type { Interruptible, SignalSource } from './interrupt';
export { handleSigint } from './interrupt';
export type { LivenessProbe, SlurmJobRef } from './liveness';
export { systemLiveness } from './liveness';
export type { LoadedStudy, LoadStudyOptions } from './load';
export { loadStudyFile } from './load';
export type { RunnerPlan, StoredStudy } from './plan';
export type { DeviceObservation, ResidualCheckFn, ResidualCheckRequest } from './residual';
export {
  DEFAULT_RESIDUAL_THRESHOLD_MB,
  foldObservations,
  nvmlResidualCheck,
  skippedResidualCheck,
} from './residual';
export type {
  FinishedRunInfo,
  InterruptReason,
  NewStudyOptions,
  ResultVerdict,
  ResumeStudyOptions,
  StudyRunnerOptions,
} from './runner';
export { DEFAULT_GRACE_MS, SLURM_PREEMPTED, STUDY_TOOL_VERSION, StudyRunner } from './runner';
export type { SlurmCommandOutput, SlurmCommandRunner } from './slurm/command';
export { runSlurmCommand } from './slurm/command';
export { resolveSlurmDevices, slurmAllocatedDevices } from './slurm/devices';
export type { SlurmLivenessOptions, SqueueRow } from './slurm/liveness';
export {
  isActiveSlurmState,
  parseSqueue,
  SLURM_ENDED_STATES,
  slurmLiveness,
  squeueArgs,
} from './slurm/liveness';
export type { BatchScriptInput, SbatchRequest } from './slurm/script';
export { batchScript, parseSbatchJobId, sbatchArguments, shellQuote } from './slurm/script';
export type {
  SlurmSubmitOptions,
  SlurmSubmitResult,
  SubmitNewStudyOptions,
  SubmitResumeOptions,
} from './slurm/submit';
export { SLURM_MAX_ARRAY_TASKS, SLURM_TASK_MARGIN_S, submitSlurmStudy } from './slurm/submit';
export type { SlurmTaskOptions, TaskSignalSource } from './slurm/task';
export { runSlurmTask } from './slurm/task';
export type { WaitForStudyOptions } from './slurm/wait';
export { waitForStudy } from './slurm/wait';
export {
  createStudyDir,
  DEFAULT_OUTPUT_DIR,
  sanitiseStudyName,
  studyDirPath,
  utcStamp,
} from './study-dir';
export type { WorkerErrorReport, WorkerMessage, WorkerTask } from './task';
export { TASK_FILE_ENV } from './task';
export type { ExecutionSettings } from './timeout';
export { DEFAULT_RUN_TIMEOUT_S, runTimeout } from './timeout';
export type {
  DefinedWorker,
  DefineWorkerOptions,
  WorkerContext,
  WorkerHandler,
} from './worker';
export { defineWorker, WorkerExitCode } from './worker';
