import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  RetryableError,
  type RetryContext,
  type RetryEvent,
  retry,
  sleep,
  withRetry,
} from '../src/index';
import { flushMicrotasks, instantSleep, recordingLogger } from './_helpers';

afterEach(() => {
  vi.useRealTimers();
});

/** fn that fails with a fresh RetryableError `failures` times, then returns `value`. */
function failing<T>(failures: number, value: T) {
  const errors: RetryableError[] = [];
  const contexts: RetryContext[] = [];
  // Assigned inline so the function has no name and logs fall back to 'operation'.
  return Object.assign(
    async (context: RetryContext): Promise<T> => {
      contexts.push(context);
      if (errors.length < failures) {
        const error = new RetryableError(`boom ${errors.length + 1}`);
        errors.push(error);
        throw error;
      }
      return value;
    },
    { errors, contexts },
  );
}

describe('retry: attempts and result', () => {
  it('returns the first success without sleeping or logging', async () => {
    const logger = recordingLogger();
    const sleeper = instantSleep();
    const fn = failing(0, 'ok');
    await expect(retry(fn, { logger, sleep: sleeper })).resolves.toBe('ok');
    expect(fn.contexts).toHaveLength(1);
    expect(fn.contexts[0]).toMatchObject({ attempt: 1, attempts: 4 });
    expect(fn.contexts[0]?.signal).toBeInstanceOf(AbortSignal);
    expect(sleeper.delays).toEqual([]);
    expect(logger.entries).toEqual([]);
  });

  it('accepts a synchronous fn and a sync throw', async () => {
    let calls = 0;
    const result = await retry(
      () => {
        calls++;
        if (calls < 3) throw new RetryableError('not yet');
        return 42;
      },
      { sleep: instantSleep() },
    );
    expect(result).toBe(42);
    expect(calls).toBe(3);
  });

  it('makes retries + 1 attempts numbered from 1, then rejects with the LAST error itself', async () => {
    const fn = failing(Number.POSITIVE_INFINITY, 'never');
    const outcome = retry(fn, { retries: 3, sleep: instantSleep() });
    expect(await outcome.catch((e: unknown) => e)).toBe(fn.errors[3]);
    // the same check, spelled without the lazy lookup, to be sure it is not the first error
    const error = await outcome.catch((e: unknown) => e);
    expect(fn.errors).toHaveLength(4);
    expect(error).toBe(fn.errors[3]);
    expect(error).not.toBe(fn.errors[0]);
    expect(fn.contexts.map((c) => c.attempt)).toEqual([1, 2, 3, 4]);
    expect(fn.contexts.every((c) => c.attempts === 4)).toBe(true);
  });

  it('with retries: 0 makes exactly one attempt and logs the error', async () => {
    const logger = recordingLogger();
    const sleeper = instantSleep();
    const fn = failing(1, 'never');
    expect(await retry(fn, { retries: 0, logger, sleep: sleeper }).catch((e: unknown) => e)).toBe(
      fn.errors[0],
    );
    expect(fn.contexts).toHaveLength(1);
    expect(sleeper.delays).toEqual([]);
    expect(logger.at('error').map((e) => e.message)).toEqual([
      'operation: attempt 1/1 failed: boom 1; no retries left',
    ]);
  });

  it('succeeds after some failures and logs one warning per failure', async () => {
    const logger = recordingLogger();
    const fn = failing(2, 'done');
    await expect(retry(fn, { logger, sleep: instantSleep() })).resolves.toBe('done');
    expect(logger.at('warn')).toHaveLength(2);
    expect(logger.at('error')).toHaveLength(0);
  });
});

describe('retry: backoff timing', () => {
  it('sleeps delayMs × factor^k, capped at maxDelayMs (injected sleep)', async () => {
    const sleeper = instantSleep();
    const fn = failing(Number.POSITIVE_INFINITY, 'never');
    await expect(
      retry(fn, { retries: 6, delayMs: 100, factor: 3, maxDelayMs: 2000, sleep: sleeper }),
    ).rejects.toBeInstanceOf(RetryableError);
    expect(sleeper.delays).toEqual([100, 300, 900, 2000, 2000, 2000]);
  });

  it('defaults to 1000, 2000, 4000 ms and 4 attempts', async () => {
    const sleeper = instantSleep();
    const fn = failing(Number.POSITIVE_INFINITY, 'never');
    expect(await retry(fn, { sleep: sleeper }).catch((e: unknown) => e)).toBe(fn.errors[3]);
    expect(sleeper.delays).toEqual([1000, 2000, 4000]);
  });

  it('factor 1 gives a constant delay', async () => {
    const sleeper = instantSleep();
    await retry(failing(3, 1), { retries: 3, delayMs: 250, factor: 1, sleep: sleeper });
    expect(sleeper.delays).toEqual([250, 250, 250]);
  });

  it('runs attempts at the right instants with fake timers and the default sleep', async () => {
    vi.useFakeTimers();
    const start = Date.now();
    const times: number[] = [];
    const fn = async () => {
      times.push(Date.now() - start);
      throw new RetryableError('down');
    };
    const outcome = retry(fn, { retries: 3, delayMs: 1000, factor: 2, maxDelayMs: 3000 });
    const settled = outcome.catch((e: unknown) => e);

    await vi.advanceTimersByTimeAsync(999);
    expect(times).toEqual([0]);
    await vi.advanceTimersByTimeAsync(1);
    expect(times).toEqual([0, 1000]);
    await vi.advanceTimersByTimeAsync(1999);
    expect(times).toEqual([0, 1000]);
    await vi.advanceTimersByTimeAsync(1);
    expect(times).toEqual([0, 1000, 3000]);
    // third delay would be 4000 but the cap is 3000
    await vi.advanceTimersByTimeAsync(3000);
    expect(times).toEqual([0, 1000, 3000, 6000]);
    expect(await settled).toBeInstanceOf(RetryableError);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('retry: jitter', () => {
  async function firstDelay(jitter: 'none' | 'full' | 'equal' | number, r: number) {
    const sleeper = instantSleep();
    const random = vi.fn(() => r);
    await retry(failing(1, 'x'), { retries: 1, delayMs: 1000, jitter, random, sleep: sleeper });
    return { delay: sleeper.delays[0], random };
  }

  it("'none' gives the exact delay and never consults random()", async () => {
    const { delay, random } = await firstDelay('none', 0.5);
    expect(delay).toBe(1000);
    expect(random).not.toHaveBeenCalled();
  });

  it("'full' spans (0, d], 'equal' spans (d/2, d], a ratio r spans (d(1-r), d]", async () => {
    expect((await firstDelay('full', 0)).delay).toBe(1000);
    expect((await firstDelay('full', 0.25)).delay).toBe(750);
    expect((await firstDelay('full', 1)).delay).toBe(0);
    expect((await firstDelay('equal', 0)).delay).toBe(1000);
    expect((await firstDelay('equal', 0.5)).delay).toBe(750);
    expect((await firstDelay('equal', 1)).delay).toBe(500);
    expect((await firstDelay(0.2, 1)).delay).toBe(800);
    expect((await firstDelay(0.2, 0.5)).delay).toBe(900);
    expect((await firstDelay(0, 0.9)).delay).toBe(1000);
  });

  it('stays within bounds and under the cap for many random values', async () => {
    for (const jitter of ['full', 'equal', 0.3] as const) {
      const lower = { full: 0, equal: 0.5, 0.3: 0.7 }[jitter];
      for (const r of [0, 0.001, 0.17, 0.5, 0.83, 0.999, 1]) {
        const sleeper = instantSleep();
        await retry(failing(4, 'x'), {
          retries: 4,
          delayMs: 400,
          factor: 2,
          maxDelayMs: 1500,
          jitter,
          random: () => r,
          sleep: sleeper,
        });
        const caps = [400, 800, 1500, 1500];
        sleeper.delays.forEach((delay, i) => {
          const cap = caps[i] ?? Number.NaN;
          expect(delay).toBeLessThanOrEqual(cap);
          expect(delay).toBeGreaterThanOrEqual(Math.floor(cap * lower));
        });
      }
    }
  });

  it('rejects a random() that leaves [0, 1]', async () => {
    await expect(
      retry(failing(1, 'x'), { jitter: 'full', random: () => 2, sleep: instantSleep() }),
    ).rejects.toThrow(new RangeError('random() must return a number from 0 to 1, got 2'));
  });
});

describe('retry: which errors are retried', () => {
  it('rethrows a plain Error at once, unchanged, without sleeping or warning', async () => {
    const logger = recordingLogger();
    const sleeper = instantSleep();
    const permanent = new Error('bad config');
    let calls = 0;
    const outcome = retry(
      () => {
        calls++;
        throw permanent;
      },
      { logger, sleep: sleeper },
    );
    await expect(outcome).rejects.toBe(permanent);
    expect(calls).toBe(1);
    expect(sleeper.delays).toEqual([]);
    expect(logger.at('warn')).toEqual([]);
    expect(logger.at('error')).toEqual([]);
  });

  it('retries subclasses of RetryableError', async () => {
    class NvmlBusyError extends RetryableError {
      override name = 'NvmlBusyError';
    }
    let calls = 0;
    const result = await retry(
      () => {
        calls++;
        if (calls === 1) throw new NvmlBusyError('busy');
        return 'ok';
      },
      { sleep: instantSleep() },
    );
    expect(result).toBe('ok');
    expect(calls).toBe(2);
  });

  it('uses shouldRetry(error, attempt) instead of the default', async () => {
    const seen: Array<[string, number]> = [];
    const errors = [
      Object.assign(new Error('busy'), { code: 'EBUSY' }),
      Object.assign(new Error('busy'), { code: 'EBUSY' }),
      Object.assign(new Error('gone'), { code: 'ENOENT' }),
    ];
    let calls = 0;
    const outcome = retry(
      () => {
        throw errors[calls++];
      },
      {
        retries: 5,
        sleep: instantSleep(),
        shouldRetry: (error, attempt) => {
          const code = (error as { code: string }).code;
          seen.push([code, attempt]);
          return code === 'EBUSY';
        },
      },
    );
    expect(await outcome.catch((e: unknown) => e)).toBe(errors[2]);
    expect(seen).toEqual([
      ['EBUSY', 1],
      ['EBUSY', 2],
      ['ENOENT', 3],
    ]);
  });

  it('awaits an async shouldRetry, and rejects with its error when it throws', async () => {
    const sleeper = instantSleep();
    await expect(
      retry(failing(1, 'ok'), { sleep: sleeper, shouldRetry: async () => true }),
    ).resolves.toBe('ok');
    const predicateBug = new Error('predicate bug');
    await expect(
      retry(failing(1, 'ok'), {
        sleep: sleeper,
        shouldRetry: () => {
          throw predicateBug;
        },
      }),
    ).rejects.toBe(predicateBug);
  });

  it('retries non-Error throwables when the predicate says so', async () => {
    const logger = recordingLogger();
    const outcome = retry(
      () => {
        throw 'plain string';
      },
      { retries: 1, logger, sleep: instantSleep(), shouldRetry: () => true },
    );
    await expect(outcome).rejects.toBe('plain string');
    expect(logger.at('warn')[0]?.message).toContain('failed: plain string;');
  });
});

describe('retry: logging', () => {
  it('logs one warning per retried attempt with attempt n/N, message and next delay, then one error', async () => {
    const logger = recordingLogger();
    const fn = failing(Number.POSITIVE_INFINITY, 'never');
    expect(
      await retry(fn, {
        name: 'download',
        retries: 3,
        delayMs: 500,
        logger,
        sleep: instantSleep(),
      }).catch((e: unknown) => e),
    ).toBe(fn.errors[3]);

    expect(logger.at('warn').map((e) => e.message)).toEqual([
      'download: attempt 1/4 failed: boom 1; retrying in 500 ms',
      'download: attempt 2/4 failed: boom 2; retrying in 1000 ms',
      'download: attempt 3/4 failed: boom 3; retrying in 2000 ms',
    ]);
    expect(logger.at('warn')[1]?.meta[0]).toEqual({
      attempt: 2,
      attempts: 4,
      delayMs: 1000,
      error: fn.errors[1],
    });
    const errors = logger.at('error');
    expect(errors).toHaveLength(1);
    expect(errors[0]?.message).toBe('download: attempt 4/4 failed: boom 4; no retries left');
    expect(errors[0]?.meta[0]).toMatchObject({ attempt: 4, attempts: 4, error: fn.errors[3] });
    expect(logger.entries.map((e) => e.level)).toEqual(['warn', 'warn', 'warn', 'error']);
  });

  it("labels logs with the function's name when no name is given", async () => {
    const logger = recordingLogger();
    async function loadModel(): Promise<never> {
      throw new RetryableError('timeout');
    }
    await retry(loadModel, { retries: 1, logger, sleep: instantSleep() }).catch(() => undefined);
    expect(logger.at('warn')[0]?.message).toBe(
      'loadModel: attempt 1/2 failed: timeout; retrying in 1000 ms',
    );
  });

  it('calls onRetry with the event after the warning and before the sleep', async () => {
    const order: string[] = [];
    const events: RetryEvent[] = [];
    const logger = recordingLogger();
    const fn = failing(2, 'ok');
    await retry(fn, {
      retries: 3,
      delayMs: 10,
      logger: { ...logger, warn: (m: string) => order.push(`warn ${m.split(' failed')[0]}`) },
      onRetry: (event) => {
        events.push(event);
        order.push(`onRetry ${event.attempt}`);
      },
      sleep: async (ms) => {
        order.push(`sleep ${ms}`);
      },
    });
    expect(order).toEqual([
      'warn operation: attempt 1/4',
      'onRetry 1',
      'sleep 10',
      'warn operation: attempt 2/4',
      'onRetry 2',
      'sleep 20',
    ]);
    expect(events).toEqual([
      { error: fn.errors[0], attempt: 1, attempts: 4, delayMs: 10, retriesLeft: 3 },
      { error: fn.errors[1], attempt: 2, attempts: 4, delayMs: 20, retriesLeft: 2 },
    ]);
  });

  it('stops and rejects with the error onRetry throws', async () => {
    const hookError = new Error('hook failed');
    const sleeper = instantSleep();
    let calls = 0;
    await expect(
      retry(
        () => {
          calls++;
          throw new RetryableError('x');
        },
        {
          sleep: sleeper,
          onRetry: () => {
            throw hookError;
          },
        },
      ),
    ).rejects.toBe(hookError);
    expect(calls).toBe(1);
    expect(sleeper.delays).toEqual([]);
  });
});

describe('retry: maxElapsedMs and the injected clock', () => {
  it('gives up when the next delay would pass maxElapsedMs, logging why', async () => {
    let clock = 0;
    const logger = recordingLogger();
    const fn = failing(Number.POSITIVE_INFINITY, 'never');
    const outcome = retry(fn, {
      retries: 10,
      delayMs: 1000,
      maxElapsedMs: 5000,
      logger,
      now: () => clock,
      sleep: async (ms) => {
        clock += ms;
      },
    });
    // attempts at t=0, 1000, 3000; the next delay (4000) would end at 7000 > 5000
    expect(await outcome.catch((e: unknown) => e)).toBe(fn.errors[2]);
    expect(fn.contexts).toHaveLength(3);
    expect(logger.at('warn')).toHaveLength(2);
    expect(logger.at('error').map((e) => e.message)).toEqual([
      'operation: attempt 3/11 failed: boom 3; giving up, a 4000 ms delay would exceed maxElapsedMs (5000)',
    ]);
    expect(logger.at('error')[0]?.meta[0]).toMatchObject({ elapsedMs: 3000 });
  });
});

describe('retry: AbortSignal', () => {
  it('rejects with the reason before the first attempt when already aborted', async () => {
    const controller = new AbortController();
    const reason = new Error('user cancelled');
    controller.abort(reason);
    const fn = vi.fn();
    await expect(retry(fn, { signal: controller.signal })).rejects.toBe(reason);
    expect(fn).not.toHaveBeenCalled();
  });

  it('rejects with an AbortError when aborted without a reason', async () => {
    const controller = new AbortController();
    controller.abort();
    const error = await retry(() => 1, { signal: controller.signal }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DOMException);
    expect((error as DOMException).name).toBe('AbortError');
  });

  it('aborts during an attempt even if fn ignores the signal, and fn sees the signal aborted', async () => {
    const controller = new AbortController();
    const reason = new Error('stop');
    let seen: AbortSignal | undefined;
    let rejectLater: (error: unknown) => void = () => undefined;
    const outcome = retry(
      ({ signal }) => {
        seen = signal;
        // never settles on its own; rejected only after the abort, which must not leak
        return new Promise((_, reject) => {
          rejectLater = reject;
        });
      },
      { signal: controller.signal, sleep: instantSleep() },
    );
    let settled = false;
    outcome.catch(() => {
      settled = true;
    });
    await flushMicrotasks();
    expect(settled).toBe(false);
    controller.abort(reason);
    await flushMicrotasks();
    expect(settled).toBe(true);
    await expect(outcome).rejects.toBe(reason);
    expect(seen?.aborted).toBe(true);
    rejectLater(new RetryableError('late failure'));
    await flushMicrotasks();
  });

  it('prefers the abort reason over the error of an attempt that failed because of the abort', async () => {
    const controller = new AbortController();
    const reason = new Error('cancelled');
    const sleeper = instantSleep();
    const outcome = retry(
      () => {
        controller.abort(reason);
        throw new RetryableError('aborted fetch');
      },
      { signal: controller.signal, sleep: sleeper },
    );
    await expect(outcome).rejects.toBe(reason);
    expect(sleeper.delays).toEqual([]);
  });

  it('aborts between attempts (from onRetry) without sleeping or calling fn again', async () => {
    const controller = new AbortController();
    const reason = new Error('enough');
    const sleeper = instantSleep();
    let calls = 0;
    const outcome = retry(
      () => {
        calls++;
        throw new RetryableError('x');
      },
      { signal: controller.signal, sleep: sleeper, onRetry: () => controller.abort(reason) },
    );
    await expect(outcome).rejects.toBe(reason);
    expect(calls).toBe(1);
    expect(sleeper.delays).toEqual([]);
  });

  it('aborts during the backoff sleep at once, without waiting the remaining delay (fake timers)', async () => {
    vi.useFakeTimers();
    const controller = new AbortController();
    const reason = new Error('shutdown');
    let calls = 0;
    const outcome = retry(
      () => {
        calls++;
        throw new RetryableError('x');
      },
      { delayMs: 60_000, signal: controller.signal },
    );
    let settledWith: unknown = 'pending';
    outcome.catch((e: unknown) => {
      settledWith = e;
    });
    await vi.advanceTimersByTimeAsync(10);
    expect(calls).toBe(1);
    expect(vi.getTimerCount()).toBe(1); // the 60 s backoff
    const before = Date.now();

    controller.abort(reason);
    await flushMicrotasks();

    expect(settledWith).toBe(reason);
    expect(Date.now()).toBe(before); // no fake time had to pass
    expect(vi.getTimerCount()).toBe(0); // the backoff timer was cleared
    expect(calls).toBe(1);
  });

  it('aborts during the backoff even when an injected sleep ignores the signal', async () => {
    const controller = new AbortController();
    const reason = new Error('stop');
    let sleeping = false;
    const outcome = retry(
      () => {
        throw new RetryableError('x');
      },
      {
        signal: controller.signal,
        sleep: () => {
          sleeping = true;
          return new Promise<void>(() => undefined); // never resolves
        },
      },
    );
    let settled = false;
    outcome.catch(() => {
      settled = true;
    });
    await flushMicrotasks();
    expect(sleeping).toBe(true);
    expect(settled).toBe(false);
    controller.abort(reason);
    await flushMicrotasks();
    expect(settled).toBe(true);
    await expect(outcome).rejects.toBe(reason);
  });

  it('passes the signal to the injected sleep', async () => {
    const controller = new AbortController();
    const signals: AbortSignal[] = [];
    await retry(failing(1, 'ok'), {
      signal: controller.signal,
      sleep: async (_ms, signal) => {
        signals.push(signal);
      },
    });
    expect(signals).toEqual([controller.signal]);
  });
});

describe('option validation', () => {
  const cases: Array<[string, Record<string, unknown>, typeof TypeError, string]> = [
    [
      'negative retries',
      { retries: -1 },
      RangeError,
      'retries must be a non-negative integer, got -1',
    ],
    [
      'fractional retries',
      { retries: 1.5 },
      RangeError,
      'retries must be a non-negative integer, got 1.5',
    ],
    [
      'NaN retries',
      { retries: Number.NaN },
      RangeError,
      'retries must be a non-negative integer, got NaN',
    ],
    [
      'string retries',
      { retries: '3' },
      TypeError,
      'retries must be a non-negative integer, got "3"',
    ],
    [
      'negative delayMs',
      { delayMs: -5 },
      RangeError,
      'delayMs must be a non-negative finite number, got -5',
    ],
    [
      'infinite delayMs',
      { delayMs: Number.POSITIVE_INFINITY, maxDelayMs: Number.POSITIVE_INFINITY },
      RangeError,
      'delayMs must be a non-negative finite number, got Infinity',
    ],
    ['factor below 1', { factor: 0.5 }, RangeError, 'factor must be a finite number >= 1, got 0.5'],
    ['null factor', { factor: null }, TypeError, 'factor must be a finite number >= 1, got null'],
    [
      'negative maxDelayMs',
      { maxDelayMs: -1 },
      RangeError,
      'maxDelayMs must be a non-negative number (Infinity allowed), got -1',
    ],
    [
      'maxDelayMs below delayMs',
      { maxDelayMs: 500 },
      RangeError,
      'maxDelayMs must be >= delayMs (1000), got 500',
    ],
    [
      'maxDelayMs below a large delayMs',
      { delayMs: 60_000, maxDelayMs: 30_000 },
      RangeError,
      'maxDelayMs must be >= delayMs (60000), got 30000',
    ],
    [
      'negative maxElapsedMs',
      { maxElapsedMs: -1 },
      RangeError,
      'maxElapsedMs must be a non-negative number (Infinity allowed), got -1',
    ],
    [
      'unknown jitter name',
      { jitter: 'half' },
      RangeError,
      `jitter must be 'none', 'full', 'equal' or a number from 0 to 1, got "half"`,
    ],
    [
      'jitter above 1',
      { jitter: 1.5 },
      RangeError,
      `jitter must be 'none', 'full', 'equal' or a number from 0 to 1, got 1.5`,
    ],
    [
      'boolean jitter',
      { jitter: true },
      TypeError,
      `jitter must be 'none', 'full', 'equal' or a number from 0 to 1, got true`,
    ],
    [
      'string shouldRetry',
      { shouldRetry: 'yes' },
      TypeError,
      'shouldRetry must be a function, got "yes"',
    ],
    ['object onRetry', { onRetry: {} }, TypeError, 'onRetry must be a function, got an object'],
    ['number sleep', { sleep: 5 }, TypeError, 'sleep must be a function, got 5'],
    ['null random', { random: null }, TypeError, 'random must be a function, got null'],
    ['string now', { now: 'now' }, TypeError, 'now must be a function, got "now"'],
    [
      'fake signal',
      { signal: { aborted: false } },
      TypeError,
      'signal must be an AbortSignal, got an object',
    ],
    [
      'incomplete logger',
      { logger: { warn() {}, error() {} } },
      TypeError,
      'logger must have error, warn, info and debug methods, got an object',
    ],
    ['empty name', { name: '' }, TypeError, 'name must be a non-empty string, got ""'],
    [
      'misspelt option',
      { retry: 3 },
      TypeError,
      'unknown option "retry"; allowed: retries, delayMs, factor, maxDelayMs, jitter, maxElapsedMs, shouldRetry, onRetry, signal, logger, name, sleep, random, now',
    ],
  ];

  it.each(cases)(
    'retry rejects %s before calling fn',
    async (_label, options, ErrorClass, message) => {
      const fn = vi.fn();
      const error = await retry(fn, options as never).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ErrorClass);
      expect((error as Error).message).toBe(message);
      expect(fn).not.toHaveBeenCalled();
    },
  );

  it.each(cases)('withRetry throws %s synchronously', (_label, options, ErrorClass, message) => {
    let thrown: unknown;
    try {
      withRetry(() => 1, options as never);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ErrorClass);
    expect((thrown as Error).message).toBe(message);
  });

  it('rejects options that are not an object and a fn that is not a function', async () => {
    await expect(retry(() => 1, 5 as never)).rejects.toThrow(
      new TypeError('options must be an object, got 5'),
    );
    await expect(retry('fn' as never)).rejects.toThrow(
      new TypeError('fn must be a function, got string'),
    );
    expect(() => withRetry(null as never)).toThrow(
      new TypeError('fn must be a function, got object'),
    );
  });

  it('lets a delayMs above the default cap raise the cap instead of failing', async () => {
    const sleeper = instantSleep();
    await retry(failing(2, 'ok'), { delayMs: 45_000, sleep: sleeper });
    expect(sleeper.delays).toEqual([45_000, 45_000]);
  });

  it('accepts edge values: retries 0, delayMs 0, factor 1, Infinity caps, jitter 0 and 1', async () => {
    const options = {
      retries: 0,
      delayMs: 0,
      factor: 1,
      maxDelayMs: Number.POSITIVE_INFINITY,
      maxElapsedMs: Number.POSITIVE_INFINITY,
    };
    await expect(retry(() => 'a', options)).resolves.toBe('a');
    await expect(retry(() => 'b', { jitter: 0 })).resolves.toBe('b');
    await expect(retry(() => 'c', { jitter: 1 })).resolves.toBe('c');
  });
});

describe('withRetry', () => {
  it("keeps the function's name, length and this, passes the arguments and retries", async () => {
    const sleeper = instantSleep();
    let calls = 0;
    const client = {
      base: 'https://example.test',
      fetchJson: withRetry(
        async function fetchJson(this: { base: string }, path: string, tries: number) {
          calls++;
          if (calls < tries) throw new RetryableError('503');
          return `${this.base}${path}`;
        },
        { sleep: sleeper },
      ),
    };
    expect(client.fetchJson.name).toBe('fetchJson');
    expect(client.fetchJson.length).toBe(2);
    await expect(client.fetchJson('/models', 3)).resolves.toBe('https://example.test/models');
    expect(calls).toBe(3);
    expect(sleeper.delays).toEqual([1000, 2000]);
  });

  it('uses the name in log messages and rethrows the last error', async () => {
    const logger = recordingLogger();
    const errors: Error[] = [];
    const flaky = withRetry(
      function flaky() {
        const error = new RetryableError(`fail ${errors.length + 1}`);
        errors.push(error);
        throw error;
      },
      { retries: 1, logger, sleep: instantSleep() },
    );
    expect(await flaky().catch((e: unknown) => e)).toBe(errors[1]);
    expect(errors).toHaveLength(2);
    expect(logger.at('warn')[0]?.message).toBe(
      'flaky: attempt 1/2 failed: fail 1; retrying in 1000 ms',
    );
  });

  it('always returns a promise, even for a sync function', async () => {
    const double = withRetry((n: number) => n * 2);
    const result = double(21);
    expect(result).toBeInstanceOf(Promise);
    await expect(result).resolves.toBe(42);
  });
});

describe('sleep', () => {
  it('resolves after ms and not before (fake timers)', async () => {
    vi.useFakeTimers();
    let done = false;
    const pending = sleep(500).then(() => {
      done = true;
    });
    await vi.advanceTimersByTimeAsync(499);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(done).toBe(true);
    await pending;
  });

  it('rejects with the reason when aborted, clearing its timer', async () => {
    vi.useFakeTimers();
    const controller = new AbortController();
    const pending = sleep(10_000, controller.signal);
    expect(vi.getTimerCount()).toBe(1);
    controller.abort('bye');
    await expect(pending).rejects.toBe('bye');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('rejects at once when already aborted, and rejects a negative delay', async () => {
    const controller = new AbortController();
    controller.abort('early');
    await expect(sleep(10, controller.signal)).rejects.toBe('early');
    await expect(sleep(-1)).rejects.toThrow(
      new RangeError('ms must be a non-negative number, got -1'),
    );
  });
});

describe('RetryableError', () => {
  it('has name, code, message and cause, and is an Error', () => {
    const cause = new Error('ETIMEDOUT');
    const error = new RetryableError('download timed out', { cause });
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('RetryableError');
    expect(error.code).toBe('RETRYABLE');
    expect(error.message).toBe('download timed out');
    expect(error.cause).toBe(cause);
  });
});
