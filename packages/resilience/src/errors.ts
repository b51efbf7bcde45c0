const LLEM_ERROR = Symbol.for('llem.error');

/** Which part of llem raised an error (one family of codes each). */
export type LlemErrorSource =
  | 'config'
  | 'study'
  | 'engine'
  | 'server'
  | 'measurement'
  | 'nvml'
  | 'report'
  | 'resilience'
  | 'cli';

/**
 * The base of every error llem throws on purpose: a string-literal `code` from a closed union
 * (each package exports its own), the `source` that raised it, and `cause`. Recognise one with
 * `isLlemError`, never by `name` or `instanceof`: the brand is a `Symbol.for` key, so errors from
 * another copy of a package (two versions in one `node_modules`) are recognised too. The CLI maps
 * `code` to an exit code in one table.
 *
 * @example
 * ```ts
 * class ReportError extends LlemError<'STUDY_NOT_FOUND'> {
 *   readonly source = 'report' as const;
 *   constructor(readonly code: 'STUDY_NOT_FOUND', message: string) { super(message); }
 * }
 * ```
 */
export abstract class LlemError<Code extends string = string> extends Error {
  abstract readonly code: Code;
  abstract readonly source: LlemErrorSource;
  /**
   * The run-failure type a run that fails with this error gets (`@llem/domain`'s
   * `RUN_FAILURE_TYPES`), when it is not the one its `source` implies (a `command` program that
   * cannot be found is the config's fault, not the engine's). Default: from `source`.
   */
  get runFailure(): string | undefined {
    return undefined;
  }

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    Object.defineProperty(this, LLEM_ERROR, { value: true, enumerable: false });
  }
}

/**
 * True for an error any llem package threw on purpose (a `LlemError`, from any copy of the
 * package): its message is for people; `code` says which case.
 *
 * @example
 * if (isLlemError(error)) console.error(`${error.code}: ${error.message}`);
 */
export function isLlemError(value: unknown): value is LlemError {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as { [LLEM_ERROR]?: unknown })[LLEM_ERROR] === true &&
    typeof (value as { code?: unknown }).code === 'string'
  );
}

/**
 * A transient failure worth trying again: a network timeout, a busy device, a temporary NVML
 * error. `retry()` retries only these (and subclasses) unless given its own `shouldRetry`, so a
 * permanent error such as a bad config fails at once instead of burning the whole backoff budget.
 *
 * @example
 * ```ts
 * import { RetryableError } from '@llem/resilience';
 *
 * if (response.status === 503) {
 *   throw new RetryableError(`server busy: ${response.statusText}`, { cause: response });
 * }
 * ```
 */
export class RetryableError extends LlemError<'RETRYABLE'> {
  override name = 'RetryableError';
  /** Stable machine-readable tag, kept when a subclass changes `name`. */
  readonly code = 'RETRYABLE' as const;
  readonly source: LlemErrorSource = 'resilience';

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * The default `shouldRetry` of `retry`: true for `RetryableError` and its subclasses only.
 *
 * @example
 * ```ts
 * import { isRetryableError, retry } from '@llem/resilience';
 *
 * // also retry ECONNRESET from a library that does not know about RetryableError
 * await retry(fn, {
 *   shouldRetry: (error) =>
 *     isRetryableError(error) || (error as NodeJS.ErrnoException).code === 'ECONNRESET',
 * });
 * ```
 */
export function isRetryableError(error: unknown): boolean {
  return isLlemError(error) && error.code === 'RETRYABLE';
}
