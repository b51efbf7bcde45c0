import { isRetryableError } from '../errors';
import type { Logger } from '../logger';
import { noopLogger } from '../logger';
import type { Jitter, RetryOptions } from '../retry';
import { describeValue } from './describe';

/** Every option after defaults and validation; what the retry loop reads. */
export interface ResolvedRetryOptions {
  retries: number;
  delayMs: number;
  factor: number;
  maxDelayMs: number;
  /** Fraction of each delay that jitter may remove: 0 for 'none', 0.5 'equal', 1 'full'. */
  jitterRatio: number;
  maxElapsedMs: number;
  shouldRetry: (error: unknown, attempt: number) => boolean | PromiseLike<boolean>;
  onRetry: RetryOptions['onRetry'];
  signal: AbortSignal | undefined;
  logger: Logger;
  name: string;
  sleep: (ms: number, signal: AbortSignal) => PromiseLike<void>;
  random: () => number;
  now: () => number;
}

export const RETRY_DEFAULTS = {
  retries: 3,
  delayMs: 1000,
  factor: 2,
  maxDelayMs: 30_000,
  jitter: 'none',
  maxElapsedMs: Number.POSITIVE_INFINITY,
} as const;

const ALLOWED_KEYS = [
  'retries',
  'delayMs',
  'factor',
  'maxDelayMs',
  'jitter',
  'maxElapsedMs',
  'shouldRetry',
  'onRetry',
  'signal',
  'logger',
  'name',
  'sleep',
  'random',
  'now',
] as const;

const JITTER_RATIOS: Record<string, number> = { none: 0, equal: 0.5, full: 1 };

/**
 * Applies defaults and validates every option. Throws TypeError when a value has the wrong type
 * and RangeError when it has the right type but an allowed-range problem, always with the option
 * name, the rule and the value received, e.g. `retries must be a non-negative integer, got -1`.
 */
export function resolveRetryOptions(
  options: RetryOptions | undefined,
  fnName: string,
  defaultSleep: ResolvedRetryOptions['sleep'],
): ResolvedRetryOptions {
  const raw: unknown = options ?? {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new TypeError(`options must be an object, got ${describeValue(raw)}`);
  }
  for (const key of Object.keys(raw)) {
    if (!(ALLOWED_KEYS as readonly string[]).includes(key)) {
      throw new TypeError(
        `unknown option ${JSON.stringify(key)}; allowed: ${ALLOWED_KEYS.join(', ')}`,
      );
    }
  }
  const o = raw as RetryOptions;

  const retries = numberOption('retries', o.retries, RETRY_DEFAULTS.retries, {
    rule: 'a non-negative integer',
    ok: (n) => Number.isInteger(n) && n >= 0,
  });
  const delayMs = numberOption('delayMs', o.delayMs, RETRY_DEFAULTS.delayMs, {
    rule: 'a non-negative finite number',
    ok: (n) => Number.isFinite(n) && n >= 0,
  });
  const factor = numberOption('factor', o.factor, RETRY_DEFAULTS.factor, {
    rule: 'a finite number >= 1',
    ok: (n) => Number.isFinite(n) && n >= 1,
  });
  // The default cap yields to a larger delayMs, so `{ delayMs: 60_000 }` alone is valid; an
  // explicit cap below delayMs is a contradiction and is reported.
  const maxDelayMs = numberOption(
    'maxDelayMs',
    o.maxDelayMs,
    Math.max(RETRY_DEFAULTS.maxDelayMs, delayMs),
    { rule: 'a non-negative number (Infinity allowed)', ok: (n) => n >= 0 },
  );
  if (maxDelayMs < delayMs) {
    throw new RangeError(`maxDelayMs must be >= delayMs (${delayMs}), got ${maxDelayMs}`);
  }
  const maxElapsedMs = numberOption('maxElapsedMs', o.maxElapsedMs, RETRY_DEFAULTS.maxElapsedMs, {
    rule: 'a non-negative number (Infinity allowed)',
    ok: (n) => n >= 0,
  });

  const jitterRatio = resolveJitter(o.jitter);

  const shouldRetry = functionOption('shouldRetry', o.shouldRetry) ?? isRetryableError;
  const onRetry = functionOption('onRetry', o.onRetry);
  const sleep = functionOption('sleep', o.sleep) ?? defaultSleep;
  const random = functionOption('random', o.random) ?? Math.random;
  const now = functionOption('now', o.now) ?? (() => performance.now());

  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) {
    throw new TypeError(`signal must be an AbortSignal, got ${describeValue(o.signal)}`);
  }

  const logger = o.logger ?? noopLogger;
  if (
    typeof logger !== 'object' ||
    logger === null ||
    (['error', 'warn', 'info', 'debug'] as const).some(
      (level) => typeof logger[level] !== 'function',
    )
  ) {
    throw new TypeError(
      `logger must have error, warn, info and debug methods, got ${describeValue(logger)}`,
    );
  }

  if (o.name !== undefined && (typeof o.name !== 'string' || o.name === '')) {
    throw new TypeError(`name must be a non-empty string, got ${describeValue(o.name)}`);
  }
  const name = o.name ?? (fnName || 'operation');

  return {
    retries,
    delayMs,
    factor,
    maxDelayMs,
    jitterRatio,
    maxElapsedMs,
    shouldRetry,
    onRetry,
    signal: o.signal,
    logger,
    name,
    sleep,
    random,
    now,
  };
}

function numberOption(
  key: string,
  value: unknown,
  fallback: number,
  check: { rule: string; ok: (n: number) => boolean },
): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number') {
    throw new TypeError(`${key} must be ${check.rule}, got ${describeValue(value)}`);
  }
  if (Number.isNaN(value) || !check.ok(value)) {
    throw new RangeError(`${key} must be ${check.rule}, got ${describeValue(value)}`);
  }
  return value;
}

function functionOption<F>(key: string, value: F | undefined): F | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'function') {
    throw new TypeError(`${key} must be a function, got ${describeValue(value)}`);
  }
  return value;
}

function resolveJitter(value: Jitter | undefined): number {
  const rule = `jitter must be 'none', 'full', 'equal' or a number from 0 to 1`;
  if (value === undefined) return 0;
  if (typeof value === 'string') {
    const ratio = JITTER_RATIOS[value];
    if (ratio === undefined) throw new RangeError(`${rule}, got ${describeValue(value)}`);
    return ratio;
  }
  if (typeof value !== 'number') throw new TypeError(`${rule}, got ${describeValue(value)}`);
  if (!(value >= 0 && value <= 1)) throw new RangeError(`${rule}, got ${describeValue(value)}`);
  return value;
}
