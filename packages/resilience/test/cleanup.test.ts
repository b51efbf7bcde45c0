import { afterEach, describe, expect, it, vi } from 'vitest';
import { CleanupRegistry, gcCleanup, safeCleanup } from '../src/index';
import { flushMicrotasks, recordingLogger } from './_helpers';

afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

describe('safeCleanup', () => {
  it('resolves true and logs nothing when the cleanup succeeds (sync and async)', async () => {
    const logger = recordingLogger();
    let ran = 0;
    await expect(safeCleanup(() => void ran++, { logger })).resolves.toBe(true);
    await expect(
      safeCleanup(
        async () => {
          await flushMicrotasks();
          ran++;
        },
        { logger },
      ),
    ).resolves.toBe(true);
    expect(ran).toBe(2);
    expect(logger.entries).toEqual([]);
  });

  it('swallows a sync throw, resolves false and logs one warning naming the cleanup', async () => {
    const logger = recordingLogger();
    const error = new Error('disk gone');
    const ok = await safeCleanup(
      () => {
        throw error;
      },
      { logger, name: 'closeFile' },
    );
    expect(ok).toBe(false);
    expect(logger.entries).toHaveLength(1);
    expect(logger.entries[0]).toEqual({
      level: 'warn',
      message: 'cleanup closeFile failed: disk gone',
      meta: [{ cleanup: 'closeFile', error }],
    });
  });

  it('swallows an async rejection and a non-Error throwable', async () => {
    const logger = recordingLogger();
    await expect(
      safeCleanup(async () => Promise.reject(new Error('socket reset')), { logger, name: 'close' }),
    ).resolves.toBe(false);
    await expect(
      safeCleanup(
        () => {
          throw 'just a string';
        },
        { logger, name: 'odd' },
      ),
    ).resolves.toBe(false);
    expect(logger.at('warn').map((e) => e.message)).toEqual([
      'cleanup close failed: socket reset',
      'cleanup odd failed: just a string',
    ]);
  });

  it('never masks the original error in a finally block', async () => {
    const original = new Error('workload failed');
    const run = async () => {
      try {
        throw original;
      } finally {
        await safeCleanup(async () => {
          throw new Error('stopTracking failed too');
        });
      }
    };
    await expect(run()).rejects.toBe(original);
  });

  it("labels the log with the function's name, else 'cleanup'", async () => {
    const logger = recordingLogger();
    function releaseContext(): void {
      throw new Error('x');
    }
    await safeCleanup(releaseContext, { logger });
    await safeCleanup(
      () => {
        throw new Error('y');
      },
      { logger },
    );
    expect(logger.at('warn').map((e) => e.message)).toEqual([
      'cleanup releaseContext failed: x',
      'cleanup cleanup failed: y',
    ]);
  });

  it('gives up on a hung cleanup after timeoutMs, logging it, with no unhandled late failure', async () => {
    vi.useFakeTimers();
    const logger = recordingLogger();
    let failLate: (error: Error) => void = () => undefined;
    const pending = safeCleanup(
      () =>
        new Promise((_, reject) => {
          failLate = reject;
        }),
      { logger, name: 'dispose', timeoutMs: 5000 },
    );
    let result: boolean | undefined;
    pending.then((ok) => {
      result = ok;
    });
    await vi.advanceTimersByTimeAsync(4999);
    expect(result).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(result).toBe(false);
    expect(logger.at('warn').map((e) => e.message)).toEqual([
      'cleanup dispose did not finish within 5000 ms; continuing without it',
    ]);
    failLate(new Error('late'));
    await flushMicrotasks();
    expect(logger.entries).toHaveLength(1);
  });

  it('clears its timeout timer when the cleanup finishes first', async () => {
    vi.useFakeTimers();
    await expect(safeCleanup(async () => undefined, { timeoutMs: 60_000 })).resolves.toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('rejects programming mistakes: a non-function and a bad timeoutMs', async () => {
    await expect(safeCleanup('close' as never)).rejects.toThrow(
      new TypeError('fn must be a function, got "close"'),
    );
    await expect(safeCleanup(() => undefined, { timeoutMs: 0 })).rejects.toThrow(
      new RangeError('timeoutMs must be a positive number, got 0'),
    );
  });
});

describe('gcCleanup', () => {
  it('calls the injected gc, logs a debug line and returns true', () => {
    const logger = recordingLogger();
    const gc = vi.fn();
    expect(gcCleanup({ logger, gc })).toBe(true);
    expect(gc).toHaveBeenCalledTimes(1);
    expect(logger.entries).toEqual([
      { level: 'debug', message: 'garbage collection done', meta: [] },
    ]);
  });

  it('uses globalThis.gc when exposed', () => {
    const gc = vi.fn();
    vi.stubGlobal('gc', gc);
    expect(gcCleanup()).toBe(true);
    expect(gc).toHaveBeenCalledTimes(1);
  });

  it('returns false with one debug line naming --expose-gc when gc is not exposed', () => {
    const logger = recordingLogger();
    vi.stubGlobal('gc', undefined);
    expect(gcCleanup({ logger })).toBe(false);
    expect(gcCleanup({ logger, gc: null })).toBe(false);
    expect(logger.entries.map((e) => [e.level, e.message])).toEqual([
      ['debug', 'garbage collection skipped: gc is not exposed (run node with --expose-gc)'],
      ['debug', 'garbage collection skipped: gc is not exposed (run node with --expose-gc)'],
    ]);
  });
});

describe('CleanupRegistry', () => {
  it('runs cleanups last-in first-out, then gc last', async () => {
    const order: string[] = [];
    const registry = new CleanupRegistry({ gc: () => order.push('gc') });
    registry.register('model', () => void order.push('model'));
    registry.register('context', async () => {
      await flushMicrotasks();
      order.push('context');
    });
    registry.register('sequence', () => void order.push('sequence'));
    expect(registry.size).toBe(3);

    const report = await registry.runAll();
    expect(order).toEqual(['sequence', 'context', 'model', 'gc']);
    expect(report).toEqual({
      succeeded: ['sequence', 'context', 'model'],
      failed: [],
      garbageCollected: true,
    });
    expect(registry.size).toBe(0);
  });

  it('awaits each async cleanup before starting the next', async () => {
    const events: string[] = [];
    const registry = new CleanupRegistry({ collectGarbage: false });
    for (const name of ['a', 'b']) {
      registry.register(name, async () => {
        events.push(`${name} start`);
        await flushMicrotasks();
        events.push(`${name} end`);
      });
    }
    await registry.runAll();
    expect(events).toEqual(['b start', 'b end', 'a start', 'a end']);
  });

  it('isolates failures: the rest still run, the report names the failed ones, each is logged', async () => {
    const logger = recordingLogger();
    const ran: string[] = [];
    const registry = new CleanupRegistry({ logger, gc: null });
    registry.register('engine', () => void ran.push('engine'));
    registry.register('context', () => {
      ran.push('context');
      throw new Error('context busy');
    });
    registry.register('tempdir', async () => {
      ran.push('tempdir');
      throw new Error('EBUSY');
    });
    registry.register('sampler', () => void ran.push('sampler'));

    const report = await registry.runAll();
    expect(ran).toEqual(['sampler', 'tempdir', 'context', 'engine']);
    expect(report).toEqual({
      succeeded: ['sampler', 'engine'],
      failed: ['tempdir', 'context'],
      garbageCollected: false,
    });
    expect(logger.at('warn').map((e) => e.message)).toEqual([
      'cleanup tempdir failed: EBUSY',
      'cleanup context failed: context busy',
    ]);
    expect(logger.at('debug').map((e) => e.message)).toEqual([
      'garbage collection skipped: gc is not exposed (run node with --expose-gc)',
    ]);
  });

  it('is idempotent: a second runAll runs nothing again', async () => {
    const cleanup = vi.fn();
    const registry = new CleanupRegistry({ collectGarbage: false });
    registry.register('once', cleanup);
    await registry.runAll();
    const second = await registry.runAll();
    expect(cleanup).toHaveBeenCalledTimes(1);
    expect(second).toEqual({ succeeded: [], failed: [], garbageCollected: false });
  });

  it('gives a concurrent runAll the same promise, so nothing runs twice', async () => {
    const cleanup = vi.fn(async () => {
      await flushMicrotasks();
    });
    const registry = new CleanupRegistry({ collectGarbage: false });
    registry.register('slow', cleanup);
    const first = registry.runAll();
    const second = registry.runAll();
    expect(second).toBe(first);
    await first;
    expect(cleanup).toHaveBeenCalledTimes(1);
  });

  it('keeps cleanups registered during runAll for the next runAll', async () => {
    const registry = new CleanupRegistry({ collectGarbage: false });
    const late = vi.fn();
    registry.register('registers another', () => {
      registry.register('late', late);
    });
    const first = await registry.runAll();
    expect(first.succeeded).toEqual(['registers another']);
    expect(late).not.toHaveBeenCalled();
    expect(registry.size).toBe(1);
    const second = await registry.runAll();
    expect(second.succeeded).toEqual(['late']);
    expect(late).toHaveBeenCalledTimes(1);
  });

  it('unregister removes exactly that registration, and is a no-op afterwards', async () => {
    const ran: string[] = [];
    const registry = new CleanupRegistry({ collectGarbage: false });
    registry.register('dup', () => void ran.push('dup 1'));
    const unregister = registry.register('dup', () => void ran.push('dup 2'));
    registry.register('other', () => void ran.push('other'));
    unregister();
    unregister();
    expect(registry.size).toBe(2);
    await registry.runAll();
    expect(ran).toEqual(['other', 'dup 1']);
    unregister();
    expect(registry.size).toBe(0);
  });

  it('skips gc when collectGarbage is false', async () => {
    const gc = vi.fn();
    const registry = new CleanupRegistry({ collectGarbage: false, gc });
    await registry.runAll();
    expect(gc).not.toHaveBeenCalled();
  });

  it('swallows a throwing gc and reports garbageCollected false', async () => {
    const logger = recordingLogger();
    const registry = new CleanupRegistry({
      logger,
      gc: () => {
        throw new Error('gc exploded');
      },
    });
    const report = await registry.runAll();
    expect(report.garbageCollected).toBe(false);
    expect(logger.at('warn').map((e) => e.message)).toEqual(['cleanup gc failed: gc exploded']);
  });

  it('applies timeoutMs to each cleanup so a hung one does not stall the rest', async () => {
    vi.useFakeTimers();
    const ran: string[] = [];
    const registry = new CleanupRegistry({ collectGarbage: false, timeoutMs: 1000 });
    registry.register('after', () => void ran.push('after'));
    registry.register('hangs', () => new Promise(() => undefined));
    const pending = registry.runAll();
    await vi.advanceTimersByTimeAsync(1000);
    await expect(pending).resolves.toEqual({
      succeeded: ['after'],
      failed: ['hangs'],
      garbageCollected: false,
    });
  });

  it('validates register arguments and options', () => {
    const registry = new CleanupRegistry();
    expect(() => registry.register('', () => undefined)).toThrow(
      new TypeError('name must be a non-empty string, got ""'),
    );
    expect(() => registry.register('x', undefined as never)).toThrow(
      new TypeError('fn must be a function, got undefined'),
    );
    expect(() => new CleanupRegistry({ timeoutMs: -1 })).toThrow(
      new RangeError('timeoutMs must be a positive number, got -1'),
    );
  });
});
