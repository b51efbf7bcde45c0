import { describeValue, errorMessage } from './internal/describe';
import type { Logger } from './logger';
import { noopLogger } from './logger';

/** A cleanup step: sync or async, takes nothing, its result is ignored. */
export type CleanupFn = () => unknown;

/** Options for `safeCleanup`. */
export interface SafeCleanupOptions {
  /** Where a failure is logged (as a warning). Default `noopLogger`. */
  logger?: Logger;
  /** Label in log messages. Default: the function's name, else `'cleanup'`. */
  name?: string;
  /**
   * Stop waiting after this many ms, log a warning and report failure; the cleanup itself keeps
   * running, since JavaScript cannot cancel it. Default: wait as long as it takes.
   */
  timeoutMs?: number;
}

/**
 * Runs a sync or async cleanup and never throws or rejects because of it: a failure (or a
 * timeout) is logged as a warning and swallowed, so the error that brought you to a `finally`
 * block is the one your caller sees. Resolves `true` when the cleanup succeeded.
 *
 * Passing something that is not a function, or bad options, rejects with a TypeError/RangeError:
 * that is a programming mistake, not a cleanup failure.
 *
 * @example
 * ```ts
 * import { safeCleanup } from '@llem/resilience';
 *
 * await backend.startTracking();
 * try {
 *   await runWorkload();
 * } finally {
 *   // if stopTracking throws, the workload's own error still propagates
 *   await safeCleanup(() => backend.stopTracking(), { logger, name: 'stopTracking' });
 * }
 * ```
 */
export async function safeCleanup(
  fn: CleanupFn,
  options: SafeCleanupOptions = {},
): Promise<boolean> {
  if (typeof fn !== 'function') {
    throw new TypeError(`fn must be a function, got ${describeValue(fn)}`);
  }
  const logger = options.logger ?? noopLogger;
  const name = options.name ?? (fn.name || 'cleanup');
  const { timeoutMs } = options;
  if (timeoutMs !== undefined && !(typeof timeoutMs === 'number' && timeoutMs > 0)) {
    throw new RangeError(`timeoutMs must be a positive number, got ${describeValue(timeoutMs)}`);
  }

  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const run = new Promise<unknown>((resolve) => resolve(fn()));
    if (timeoutMs === undefined || timeoutMs === Number.POSITIVE_INFINITY) {
      await run;
      return true;
    }
    const timedOut = Symbol('timeout');
    const outcome = await Promise.race([
      run,
      new Promise<typeof timedOut>((resolve) => {
        timer = setTimeout(() => resolve(timedOut), timeoutMs);
      }),
    ]);
    if (outcome === timedOut) {
      // Keep a late failure from surfacing as an unhandled rejection.
      run.catch(() => undefined);
      logger.warn(`cleanup ${name} did not finish within ${timeoutMs} ms; continuing without it`, {
        cleanup: name,
        timeoutMs,
      });
      return false;
    }
    return true;
  } catch (error) {
    logger.warn(`cleanup ${name} failed: ${errorMessage(error)}`, { cleanup: name, error });
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/** Options for `gcCleanup`. */
export interface GcCleanupOptions {
  /** Where the debug line goes. Default `noopLogger`. */
  logger?: Logger;
  /**
   * The collector to call. Default `globalThis.gc`, present only when Node runs with
   * `--expose-gc`; `null` behaves as if it is not exposed.
   */
  gc?: (() => unknown) | null;
}

/**
 * Runs a full garbage collection when Node exposes `gc` (`node --expose-gc`), so memory held by
 * disposed engines and contexts is given back before the next experiment is measured. Without
 * it, logs one debug line and returns `false`; nothing else changes. Errors from `gc` propagate:
 * run it through `safeCleanup` or a `CleanupRegistry` to swallow them.
 *
 * @example
 * ```ts
 * import { gcCleanup } from '@llem/resilience';
 *
 * await engine.dispose();
 * gcCleanup({ logger }); // true under `node --expose-gc`
 * ```
 */
export function gcCleanup(options: GcCleanupOptions = {}): boolean {
  const logger = options.logger ?? noopLogger;
  const gc =
    options.gc === undefined
      ? (globalThis as { gc?: () => unknown }).gc
      : (options.gc ?? undefined);
  if (typeof gc !== 'function') {
    logger.debug('garbage collection skipped: gc is not exposed (run node with --expose-gc)');
    return false;
  }
  gc();
  logger.debug('garbage collection done');
  return true;
}

/** Options for `CleanupRegistry`. */
export interface CleanupRegistryOptions {
  /** Where failures (warnings) and the gc line (debug) go. Default `noopLogger`. */
  logger?: Logger;
  /** After the registered cleanups, run `gcCleanup` as the last step. Default `true`. */
  collectGarbage?: boolean;
  /** Passed to `gcCleanup`. Default `globalThis.gc`; `null` means not exposed. */
  gc?: (() => unknown) | null;
  /** Per-cleanup `timeoutMs` passed to `safeCleanup`. Default: none. */
  timeoutMs?: number;
}

/** What `CleanupRegistry#runAll` did. */
export interface CleanupReport {
  /** Names of cleanups that succeeded, in the order they ran. */
  readonly succeeded: string[];
  /** Names of cleanups that threw, rejected or timed out, in the order they ran. */
  readonly failed: string[];
  /** Whether the final gc step actually collected (false when disabled or not exposed). */
  readonly garbageCollected: boolean;
}

interface Entry {
  readonly name: string;
  readonly fn: CleanupFn;
}

/**
 * Resources to release between experiments — engines, contexts, temp files — run last-in,
 * first-out (so something is released before what it depends on), each through `safeCleanup`
 * so one failure never stops the rest, then a garbage collection when Node exposes it.
 *
 * `runAll()` empties the registry as it starts, so calling it twice never runs a cleanup twice;
 * a call made while another is running gets the same promise. Cleanups registered while
 * `runAll()` runs wait for the next `runAll()`.
 *
 * @example
 * ```ts
 * import { CleanupRegistry } from '@llem/resilience';
 *
 * const cleanups = new CleanupRegistry({ logger });
 * const model = await loadModel();
 * cleanups.register('model', () => model.dispose());
 * const context = await model.createContext();
 * cleanups.register('context', () => context.dispose());
 *
 * const report = await cleanups.runAll(); // context, then model, then gc
 * if (report.failed.length > 0) logger.warn(`cleanups failed: ${report.failed.join(', ')}`);
 * ```
 */
export class CleanupRegistry {
  readonly #logger: Logger;
  readonly #collectGarbage: boolean;
  readonly #gc: (() => unknown) | null | undefined;
  readonly #timeoutMs: number | undefined;
  #entries: Entry[] = [];
  #running: Promise<CleanupReport> | undefined;

  constructor(options: CleanupRegistryOptions = {}) {
    this.#logger = options.logger ?? noopLogger;
    this.#collectGarbage = options.collectGarbage ?? true;
    this.#gc = options.gc;
    const { timeoutMs } = options;
    if (timeoutMs !== undefined && !(typeof timeoutMs === 'number' && timeoutMs > 0)) {
      throw new RangeError(`timeoutMs must be a positive number, got ${describeValue(timeoutMs)}`);
    }
    this.#timeoutMs = timeoutMs;
  }

  /** Number of cleanups waiting for the next `runAll()`. */
  get size(): number {
    return this.#entries.length;
  }

  /**
   * Adds a cleanup. Returns a function that removes exactly this registration (a no-op once it
   * ran or was removed), for a resource you released yourself. Names need not be unique.
   */
  register(name: string, fn: CleanupFn): () => void {
    if (typeof name !== 'string' || name === '') {
      throw new TypeError(`name must be a non-empty string, got ${describeValue(name)}`);
    }
    if (typeof fn !== 'function') {
      throw new TypeError(`fn must be a function, got ${describeValue(fn)}`);
    }
    const entry: Entry = { name, fn };
    this.#entries.push(entry);
    return () => {
      const index = this.#entries.indexOf(entry);
      if (index !== -1) this.#entries.splice(index, 1);
    };
  }

  /** Runs every registered cleanup, newest first, then gc; never rejects because of a cleanup. */
  runAll(): Promise<CleanupReport> {
    if (this.#running) return this.#running;
    const entries = this.#entries.reverse();
    this.#entries = [];
    this.#running = this.#run(entries).finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #run(entries: readonly Entry[]): Promise<CleanupReport> {
    const succeeded: string[] = [];
    const failed: string[] = [];
    for (const { name, fn } of entries) {
      const ok = await safeCleanup(fn, { logger: this.#logger, name, timeoutMs: this.#timeoutMs });
      (ok ? succeeded : failed).push(name);
    }
    let garbageCollected = false;
    if (this.#collectGarbage) {
      await safeCleanup(
        () => {
          garbageCollected = gcCleanup({ logger: this.#logger, gc: this.#gc });
        },
        { logger: this.#logger, name: 'gc' },
      );
    }
    return { succeeded, failed, garbageCollected };
  }
}
