export type {
  CleanupFn,
  CleanupRegistryOptions,
  CleanupReport,
  GcCleanupOptions,
  SafeCleanupOptions,
} from './cleanup';
export { CleanupRegistry, gcCleanup, safeCleanup } from './cleanup';
export type { LlemErrorSource } from './errors';
export { isLlemError, isRetryableError, LlemError, RetryableError } from './errors';
export type { Logger } from './logger';
export { noopLogger } from './logger';
export type { Jitter, RetryContext, RetryEvent, RetryOptions } from './retry';
export { retry, sleep, withRetry } from './retry';
