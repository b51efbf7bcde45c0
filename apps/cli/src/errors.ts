/**
 * The one place that maps errors to exit codes and human messages. Library packages throw
 * `LlemError`s (a string-literal `code` from a closed union per package, recognised by a brand,
 * never by `name`); nothing else in the CLI decides exit codes.
 */
import type { ConfigErrorCode } from '@llem/domain';
import type {
  CommandEngineErrorCode,
  LlamaCppEngineErrorCode,
  ManagedServerErrorCode,
  OpenAIEngineErrorCode,
} from '@llem/engines';
import type { MeasurementErrorCode } from '@llem/measure';
import type { NvmlErrorCode, NvmlLibraryError } from '@llem/nvml';
import type { ReportErrorCode } from '@llem/report';
import { isLlemError, LlemError, type RetryableError } from '@llem/resilience';
import type { StudyErrorCode } from '@llem/study';

export const ExitCode = {
  ok: 0,
  failure: 1,
  usage: 2,
  interrupted: 130,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** Every code a llem error can carry: each package's closed union. */
export type LlemErrorCode =
  | ConfigErrorCode
  | StudyErrorCode
  | NvmlErrorCode
  | NvmlLibraryError['code']
  | LlamaCppEngineErrorCode
  | OpenAIEngineErrorCode
  | CommandEngineErrorCode
  | ManagedServerErrorCode
  | MeasurementErrorCode
  | ReportErrorCode
  | RetryableError['code']
  | UsageError['code'];

const user = ExitCode.usage;
const runtime = ExitCode.failure;

/**
 * The one table from error code to exit code: 2 for what the user wrote or typed (fix the file
 * or the flag), 1 for runtime failures. Every llem error prints its message alone, never a stack.
 * A code missing here fails the typecheck.
 */
export const EXIT_CODE_BY_ERROR: { readonly [C in LlemErrorCode]: ExitCode } = {
  // @llem/domain: the study file
  CONFIG_INVALID: user,
  CONFIG_NOT_FOUND: user, // also @llem/report: no such config in the study
  CONFIG_PARSE: user,
  CONFIG_EMPTY: user,
  STUDY_EMPTY: user,
  // @llem/study
  STUDY: runtime,
  STUDY_DESIGN_CHANGED: user,
  STUDY_DEVICES: user,
  SLURM: runtime, // sbatch refused the job, Slurm unreachable, a task its submission lacks
  // @llem/report
  STUDY_NOT_FOUND: user,
  MANIFEST_INVALID: runtime,
  INVALID_OPTION: user,
  NOTHING_TO_COMPARE: user,
  // the CLI
  USAGE: user,
  // @llem/nvml: the driver
  NVML_LIBRARY_NOT_FOUND: runtime,
  UNINITIALIZED: runtime,
  INVALID_ARGUMENT: runtime,
  NOT_SUPPORTED: runtime,
  NO_PERMISSION: runtime,
  ALREADY_INITIALIZED: runtime,
  NOT_FOUND: runtime,
  INSUFFICIENT_SIZE: runtime,
  INSUFFICIENT_POWER: runtime,
  DRIVER_NOT_LOADED: runtime,
  TIMEOUT: runtime,
  IRQ_ISSUE: runtime,
  LIBRARY_NOT_FOUND: runtime,
  FUNCTION_NOT_FOUND: runtime,
  CORRUPTED_INFOROM: runtime,
  GPU_IS_LOST: runtime,
  RESET_REQUIRED: runtime,
  OPERATING_SYSTEM: runtime,
  LIB_RM_VERSION_MISMATCH: runtime,
  IN_USE: runtime,
  MEMORY: runtime,
  NO_DATA: runtime,
  VGPU_ECC_NOT_SUPPORTED: runtime,
  INSUFFICIENT_RESOURCES: runtime,
  FREQ_NOT_SUPPORTED: runtime,
  ARGUMENT_VERSION_MISMATCH: runtime,
  DEPRECATED: runtime,
  NOT_READY: runtime,
  GPU_NOT_FOUND: runtime,
  INVALID_STATE: runtime,
  UNKNOWN: runtime,
  // @llem/engines
  MODEL_NOT_FOUND: runtime,
  MODEL_LOAD_FAILED: runtime,
  ENGINE_BINARY_MISSING: runtime,
  CONTEXT_CREATE_FAILED: runtime,
  CONTEXT_OVERFLOW: runtime,
  NOT_LOADED: runtime,
  API_KEY_MISSING: runtime,
  UNREACHABLE: runtime,
  DNS: runtime,
  TLS: runtime,
  AUTH: runtime,
  FAILURE_RATE_EXCEEDED: runtime,
  WARMUP_FAILED: runtime,
  DISPOSED: runtime,
  COMMAND_CONFIG: runtime,
  COMMAND_SPAWN: runtime,
  COMMAND_EXIT: runtime,
  COMMAND_NO_REPORT: runtime,
  COMMAND_BAD_REPORT: runtime,
  COMMAND_BAD_MARKERS: runtime,
  COMMAND_ABORTED: runtime,
  // @llem/engines: a managed server (run failure type `server`)
  SERVER_SPAWN: runtime,
  SERVER_EXITED: runtime,
  SERVER_NOT_READY: runtime,
  SERVER_PORT_IN_USE: runtime,
  // @llem/measure
  DATASET_INVALID: user, // a dataset file that is missing, holds bad data or no usable request
  DATASET: runtime,
  ENERGY_UNAVAILABLE: runtime,
  WORKLOAD_FAILED: runtime,
  CONFIG: runtime,
  // @llem/resilience
  RETRYABLE: runtime,
};

/** Thrown by CLI commands for bad arguments that yargs itself cannot catch. */
export class UsageError extends LlemError<'USAGE'> {
  override readonly name = 'UsageError';
  readonly code = 'USAGE' as const;
  readonly source = 'cli' as const;
}

/**
 * The exit code for an error: from `EXIT_CODE_BY_ERROR` for a llem error (by its `code`, never
 * its name), 1 for anything else.
 */
export function exitCodeFor(error: unknown): ExitCode {
  if (isLlemError(error)) {
    return (EXIT_CODE_BY_ERROR as Readonly<Record<string, ExitCode>>)[error.code] ?? runtime;
  }
  return runtime;
}

/** True when the message alone helps the user and a stack trace would only be noise. */
export function isExpectedError(error: unknown): boolean {
  return isLlemError(error);
}

/** The text the CLI prints for an error: its message for expected errors, the stack otherwise. */
export function formatError(error: unknown): string {
  if (!(error instanceof Error)) return `llem: ${String(error)}`;
  if (isExpectedError(error)) return `llem: ${error.message}`;
  return `llem: unexpected error (this is a bug, please report it)\n${error.stack ?? error.message}`;
}
