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
export class RetryableError extends Error {
  override name = 'RetryableError';
  /** Stable machine-readable tag, kept when a subclass changes `name`. */
  readonly code = 'RETRYABLE' as const;

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
  return error instanceof RetryableError;
}
