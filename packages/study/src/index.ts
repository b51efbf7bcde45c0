export type { Clock, SleepFn } from './clock';
export { systemClock, systemSleep } from './clock';
export type {
  ClaimState,
  HeldClaim,
  LivenessProbe,
  RunState,
  StudyDirectoryOptions,
  StudyState,
} from './directory';
export {
  currentOwner,
  DEFAULT_HEARTBEAT_MS,
  DEFAULT_STALE_CLAIM_MS,
  StudyDirectory,
  systemLiveness,
} from './directory';
export type { StudyErrorCode } from './errors';
export { StudyDesignChangedError, StudyDevicesError, StudyError } from './errors';
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
  NewStudyOptions,
  ResultVerdict,
  ResumeStudyOptions,
  StudyRunnerOptions,
} from './runner';
export { DEFAULT_GRACE_MS, STUDY_TOOL_VERSION, StudyRunner } from './runner';
export {
  createStudyDir,
  DEFAULT_OUTPUT_DIR,
  sanitiseStudyName,
  studyDirPath,
  utcStamp,
} from './study-dir';
export type { WorkerErrorReport, WorkerMessage, WorkerTask } from './task';
export { errorFileFor, TASK_FILE_ENV } from './task';
export type { ExecutionSettings } from './timeout';
export { DEFAULT_RUN_TIMEOUT_S, runTimeout } from './timeout';
export type {
  DefinedWorker,
  DefineWorkerOptions,
  WorkerContext,
  WorkerHandler,
} from './worker';
export { defineWorker, WorkerExitCode } from './worker';
