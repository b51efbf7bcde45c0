import { abortReason } from './internal/abort';
import { errorMessage } from './internal/describe';
import { type ResolvedRetryOptions, resolveRetryOptions } from './internal/options';
import type { Logger } from './logger';

/**
 * How much randomness each backoff delay gets. One rule covers every form: the computed delay
 * `d` becomes `d − ratio × d × random()`, so jitter only ever *shortens* a delay and never breaks
 * `maxDelayMs`. `'none'` is ratio 0 (exact delays), `'equal'` is 0.5 (uniform in `(d/2, d]`),
 * `'full'` is 1 (uniform in `(0, d]`), and a number from 0 to 1 is the ratio itself.
 */
export type Jitter = 'none' | 'full' | 'equal' | number;

/** What `fn` receives on every attempt. */
export interface RetryContext {
  /** 1-based number of this attempt. */
  readonly attempt: number;
  /** Total attempts allowed: `retries + 1`. */
  readonly attempts: number;
  /** Aborted when the caller's signal aborts; pass it on to fetch, child processes, etc. */
  readonly signal: AbortSignal;
}

/** What `onRetry` receives after a failed attempt that will be retried, before the backoff. */
export interface RetryEvent {
  /** The error the attempt failed with, unchanged. */
  readonly error: unknown;
  /** 1-based number of the attempt that failed. */
  readonly attempt: number;
  /** Total attempts allowed: `retries + 1`. */
  readonly attempts: number;
  /** The backoff about to be slept, in ms, after cap and jitter. */
  readonly delayMs: number;
  /** Attempts still to come. */
  readonly retriesLeft: number;
}

/** Options for `retry` and `withRetry`. Every field is optional; see the README for defaults. */
export interface RetryOptions {
  /** Retries after the first attempt, so `attempts = retries + 1`. Default 3. */
  retries?: number;
  /** Delay before the first retry, in ms. Default 1000. */
  delayMs?: number;
  /** Each further delay is multiplied by this: delay k = `delayMs × factor^k`. Default 2. */
  factor?: number;
  /** Upper bound of any single delay, in ms (`Infinity` allowed). Default 30 000, or `delayMs` if larger. */
  maxDelayMs?: number;
  /** Randomness applied to each delay; see {@link Jitter}. Default `'none'`. */
  jitter?: Jitter;
  /**
   * Give up (log an error, rethrow the last error) when the next retry would start later than
   * this many ms after the first attempt started. Default `Infinity`.
   */
  maxElapsedMs?: number;
  /**
   * Which errors are worth another attempt; `attempt` is the 1-based attempt that failed.
   * Default: `error instanceof RetryableError`. If it throws, `retry` rejects with that error.
   */
  shouldRetry?: (error: unknown, attempt: number) => boolean | PromiseLike<boolean>;
  /**
   * Called (and awaited) after the warning for each attempt that will be retried, before the
   * backoff sleep. If it throws, `retry` stops and rejects with that error.
   */
  onRetry?: (event: RetryEvent) => void | PromiseLike<void>;
  /** Aborts the whole operation: before, during and between attempts and during the backoff. */
  signal?: AbortSignal;
  /** Where the per-attempt warning and the final error go. Default `noopLogger`. */
  logger?: Logger;
  /** Label used in log messages. Default: the function's name, else `'operation'`. */
  name?: string;
  /** Sleeps `ms` and rejects when `signal` aborts. Default: the exported `sleep` (setTimeout). */
  sleep?: (ms: number, signal: AbortSignal) => PromiseLike<void>;
  /** Source of jitter, returning a number in [0, 1]. Default `Math.random`. */
  random?: () => number;
  /** Monotonic clock in ms for `maxElapsedMs` and the elapsed time logged. Default `performance.now`. */
  now?: () => number;
}

// setTimeout fires at once for delays above this (2^31 − 1 ms, about 24.8 days), so longer
// sleeps are cut into chunks rather than silently becoming a busy retry loop.
const MAX_TIMER_MS = 2_147_483_647;

/**
 * Resolves after `ms` milliseconds, or rejects with the signal's reason (an `AbortError`
 * DOMException when none was given) as soon as `signal` aborts; the timer is cleared then, so
 * nothing is left pending. Uses the global `setTimeout`, so fake timers control it.
 *
 * @example
 * ```ts
 * import { sleep } from '@llem/resilience';
 *
 * const controller = new AbortController();
 * setTimeout(() => controller.abort(), 10);
 * await sleep(60_000, controller.signal); // rejects after ~10 ms with an AbortError
 * ```
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (typeof ms !== 'number' || Number.isNaN(ms) || ms < 0) {
    return Promise.reject(new RangeError(`ms must be a non-negative number, got ${String(ms)}`));
  }
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortReason(signal));
      return;
    }
    let remaining = ms;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortReason(signal as AbortSignal));
    };
    const arm = (): void => {
      const step = Math.min(remaining, MAX_TIMER_MS);
      remaining -= step;
      timer = setTimeout(() => {
        if (remaining > 0) {
          arm();
          return;
        }
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, step);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    arm();
  });
}

/**
 * Calls `fn` until it succeeds, retrying errors that `shouldRetry` accepts with exponential
 * backoff: the delay after the k-th failure (k from 0) is `delayMs × factor^k`, capped at
 * `maxDelayMs`, then shortened by `jitter`. Each attempt that will be retried logs one warning
 * (`attempt 2/4 failed: <message>; retrying in 2000 ms`); when attempts run out it logs an error
 * and rejects with the **last** error, the very same object. An error `shouldRetry` refuses is
 * rethrown at once, unchanged.
 *
 * `signal` aborts promptly at any point — before the first attempt, while an attempt runs (even
 * if `fn` ignores the signal), and during the backoff sleep (even if an injected `sleep` ignores
 * it) — rejecting with `signal.reason`.
 *
 * Invalid options reject the returned promise with a TypeError (wrong type) or RangeError (out of
 * range) before `fn` is called; `withRetry` throws the same errors synchronously instead.
 *
 * @example
 * ```ts
 * import { retry, RetryableError } from '@llem/resilience';
 *
 * const body = await retry(
 *   async ({ signal }) => {
 *     const res = await fetch(url, { signal });
 *     if (res.status >= 500) throw new RetryableError(`HTTP ${res.status}`);
 *     return res.text();
 *   },
 *   { retries: 4, delayMs: 500, maxDelayMs: 5000, jitter: 'equal', signal, logger },
 * );
 * ```
 */
export async function retry<T>(
  fn: (context: RetryContext) => T | PromiseLike<T>,
  options?: RetryOptions,
): Promise<T> {
  if (typeof fn !== 'function') {
    throw new TypeError(`fn must be a function, got ${typeof fn}`);
  }
  return runRetry(fn, resolveRetryOptions(options, fn.name, sleep));
}

/**
 * Wraps `fn` so that every call goes through `retry` with the same options. The wrapper keeps
 * `fn`'s `name`, `length`, parameters and `this`, and always returns a promise. Options are
 * validated now, synchronously, so a bad configuration fails where it is written.
 *
 * @example
 * ```ts
 * import { withRetry } from '@llem/resilience';
 *
 * const download = withRetry(async function download(url: string, dest: string) {
 *   // ...throws RetryableError on a network timeout
 * }, { retries: 5, logger });
 *
 * download.name; // 'download'
 * await download('https://example.com/model.gguf', '/tmp/model.gguf');
 * ```
 */
export function withRetry<A extends unknown[], R>(
  fn: (...args: A) => R,
  options?: RetryOptions,
): (...args: A) => Promise<Awaited<R>> {
  if (typeof fn !== 'function') {
    throw new TypeError(`fn must be a function, got ${typeof fn}`);
  }
  const resolved = resolveRetryOptions(options, fn.name, sleep);
  const wrapped = function (this: unknown, ...args: A): Promise<Awaited<R>> {
    return runRetry(() => fn.apply(this, args) as Awaited<R> | PromiseLike<Awaited<R>>, resolved);
  };
  Object.defineProperty(wrapped, 'name', { value: fn.name, configurable: true });
  Object.defineProperty(wrapped, 'length', { value: fn.length, configurable: true });
  return wrapped;
}

async function runRetry<T>(
  fn: (context: RetryContext) => T | PromiseLike<T>,
  o: ResolvedRetryOptions,
): Promise<T> {
  // A private signal when the caller gave none, so `fn` and `sleep` always receive one.
  const signal = o.signal ?? new AbortController().signal;
  const attempts = o.retries + 1;
  const started = o.now();
  const throwIfAborted = (): void => {
    if (signal.aborted) throw abortReason(signal);
  };

  throwIfAborted();
  for (let attempt = 1; ; attempt++) {
    try {
      const result = new Promise<T>((resolve) => resolve(fn({ attempt, attempts, signal })));
      return await raceAbort(result, signal);
    } catch (error) {
      // An abort wins over whatever the attempt failed with: the caller asked to stop.
      throwIfAborted();
      if (!(await o.shouldRetry(error, attempt))) {
        o.logger.debug(
          `${o.name}: attempt ${attempt}/${attempts} failed with an error not retried`,
          {
            attempt,
            attempts,
            error,
          },
        );
        throw error;
      }
      throwIfAborted();
      const message = errorMessage(error);
      const elapsedMs = o.now() - started;
      if (attempt >= attempts) {
        o.logger.error(
          `${o.name}: attempt ${attempt}/${attempts} failed: ${message}; no retries left`,
          { attempt, attempts, elapsedMs, error },
        );
        throw error;
      }
      const delayMs = backoffDelay(attempt - 1, o);
      if (elapsedMs + delayMs > o.maxElapsedMs) {
        o.logger.error(
          `${o.name}: attempt ${attempt}/${attempts} failed: ${message}; giving up, ` +
            `a ${delayMs} ms delay would exceed maxElapsedMs (${o.maxElapsedMs})`,
          { attempt, attempts, elapsedMs, error },
        );
        throw error;
      }
      o.logger.warn(
        `${o.name}: attempt ${attempt}/${attempts} failed: ${message}; retrying in ${delayMs} ms`,
        { attempt, attempts, delayMs, error },
      );
      if (o.onRetry) {
        await o.onRetry({ error, attempt, attempts, delayMs, retriesLeft: attempts - attempt });
        throwIfAborted();
      }
      await raceAbort(o.sleep(delayMs, signal), signal);
      throwIfAborted();
    }
  }
}

/** Delay after the (k+1)-th failure: exponential, capped, then shortened by jitter. */
function backoffDelay(k: number, o: ResolvedRetryOptions): number {
  const capped = Math.min(o.delayMs * o.factor ** k, o.maxDelayMs);
  if (o.jitterRatio === 0) return capped;
  const r = o.random();
  if (typeof r !== 'number' || !(r >= 0 && r <= 1)) {
    throw new RangeError(`random() must return a number from 0 to 1, got ${String(r)}`);
  }
  return Math.round(capped - o.jitterRatio * capped * r);
}

/**
 * Settles like `promise`, or rejects with the abort reason the moment `signal` aborts. The
 * rejection handler stays attached to `promise`, so if it fails later it is not unhandled.
 */
function raceAbort<T>(promise: PromiseLike<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortReason(signal));
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    Promise.resolve(promise).then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}
