/**
 * The one place that maps errors to exit codes and human messages. Library packages throw typed
 * errors (each with `name` and a string-literal `code`); nothing else in the CLI decides exit codes.
 */
export const ExitCode = {
  ok: 0,
  failure: 1,
  usage: 2,
  interrupted: 130,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** Errors caused by what the user typed or wrote: message only, never a stack trace. */
const USER_ERROR_NAMES: ReadonlyMap<string, ExitCode> = new Map([
  ['ConfigError', ExitCode.usage],
  ['UsageError', ExitCode.usage],
  ['StudyDesignChangedError', ExitCode.usage],
  ['StudyDevicesError', ExitCode.usage],
  ['InterruptedError', ExitCode.interrupted],
]);

/** Runtime failures a user can act on (missing library, unreadable dir): message, exit 1. */
const RUNTIME_ERROR_NAMES: ReadonlySet<string> = new Set([
  'NvmlError',
  'NvmlLibraryError',
  'StudyError',
  'SlurmError',
  'EngineError',
  'ModelError',
  'MeasurementError',
  'ReportError',
  'RetryableError',
]);

/** Thrown by CLI commands for bad arguments that yargs itself cannot catch. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  readonly code = 'USAGE' as const;
}

export function exitCodeFor(error: unknown): ExitCode {
  if (error instanceof Error) {
    const mapped = USER_ERROR_NAMES.get(error.name);
    if (mapped !== undefined) return mapped;
  }
  return ExitCode.failure;
}

/** True when the message alone helps the user and a stack trace would only be noise. */
export function isExpectedError(error: unknown): boolean {
  return (
    error instanceof Error &&
    (USER_ERROR_NAMES.has(error.name) || RUNTIME_ERROR_NAMES.has(error.name))
  );
}

/** The text the CLI prints for an error: its message for expected errors, the stack otherwise. */
export function formatError(error: unknown): string {
  if (!(error instanceof Error)) return `llem: ${String(error)}`;
  if (isExpectedError(error)) return `llem: ${error.message}`;
  return `llem: unexpected error (this is a bug, please report it)\n${error.stack ?? error.message}`;
}
