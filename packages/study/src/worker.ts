import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import type { RunFailureType } from '@llem/domain';

// `@llem/domain`'s RUN_FAILURE_TYPES, spelled out so a worker child does not load the domain
// package (and zod) to start; a test keeps the two equal.
export const RUN_FAILURE_TYPE_NAMES = [
  'timeout',
  'crash',
  'spawn',
  'no-result',
  'interrupted',
  'engine',
  'config',
  'measurement',
  'server',
  'preempted',
] as const satisfies readonly RunFailureType[];

import { isLlemError } from '@llem/resilience';
import { publishFileSync, writeJsonAtomicSync } from './internal/atomic';
import { TASK_FILE_ENV, type WorkerErrorReport, type WorkerMessage, type WorkerTask } from './task';

/** What a worker handler receives besides the task. */
export interface WorkerContext {
  /**
   * Aborted when the worker must stop: the runner sent SIGTERM (timeout, Ctrl-C) or the
   * runner died. Pass it to anything long-running.
   */
  signal: AbortSignal;
  /**
   * Start a program in its own process group and register it, so it is killed with the worker
   * (on timeout, on Ctrl-C, and when the runner dies, even by SIGKILL). Use this, not `spawn`,
   * for anything a handler starts.
   */
  spawnGroup(command: string, args: readonly string[], options?: SpawnOptions): ChildProcess;
  /**
   * Register a process group leader started some other way (it must be `detached`, so its pid
   * is its process group id). It is killed with its whole group when the worker stops.
   */
  registerChild(pid: number): void;
  /**
   * Show a line on the runner's console (its `run-progress` event) while the run goes on, e.g.
   * "waiting for the server". Also logged by the caller as it sees fit; a no-op without a runner.
   */
  progress(message: string): void;
}

/** A worker handler: run one experiment and return its result (any JSON value). */
export type WorkerHandler<Config = unknown, Result = unknown> = (
  task: WorkerTask<Config>,
  context: WorkerContext,
) => Result | Promise<Result>;

/** Exit codes of a worker made with `defineWorker`. */
export const WorkerExitCode = {
  ok: 0,
  /** The handler threw; the error file says why. */
  handlerError: 1,
  /** The task file could not be read. */
  badTask: 2,
  /** The runner died (the IPC channel closed) before the handler finished. */
  parentGone: 3,
  /** SIGTERM from the runner. */
  terminated: 143,
} as const;

/** Options of `defineWorker`. */
export interface DefineWorkerOptions {
  /**
   * Also watch for the runner's death from a separate thread (polling the parent pid every
   * 100 ms), so a handler that blocks the event loop (a long synchronous native call) is still
   * killed, with its registered process groups, when the runner dies. Costs a thread start
   * (~10–100 ms) per run. Default `false`: the IPC disconnect covers handlers that await.
   */
  watchdog?: boolean;
}

/** Registered process groups live here so the watchdog thread can see them. */
const MAX_GROUPS = 64;

export interface DefinedWorker<Config, Result> {
  handler: WorkerHandler<Config, Result>;
  /** Run the plumbing now (called for you when `LLEM_TASK_FILE` is set). */
  start(): Promise<void>;
}

/**
 * Turn a handler into a worker module the runner can fork. When the module runs as a child
 * (`LLEM_TASK_FILE` set), it reads the task, runs the handler, writes the result atomically to
 * `task.resultFile` and exits 0; if the handler throws it writes `{ error: { type, message,
 * stack, code } }` to `task.files.error` (`runs/<key>.error.json`) and exits 1. When the runner dies (the IPC channel
 * closes) or sends SIGTERM, it kills every process group it registered and exits at once: no
 * orphans.
 *
 * @example
 * // my-worker.ts
 * import { defineWorker } from '@llem/study/worker';
 * defineWorker(async (task, { signal, spawnGroup }) => {
 *   const p = spawnGroup('python', ['bench.py'], { stdio: 'inherit' });
 *   await new Promise((resolve) => p.on('exit', resolve));
 *   return { key: task.key, residualCheck: task.residualCheck };
 * });
 */
export function defineWorker<Config = unknown, Result = unknown>(
  handler: WorkerHandler<Config, Result>,
  options: DefineWorkerOptions = {},
): DefinedWorker<Config, Result> {
  const worker: DefinedWorker<Config, Result> = {
    handler,
    start: () => runWorker(handler, options),
  };
  if (process.env[TASK_FILE_ENV]) void worker.start();
  return worker;
}

async function runWorker<Config, Result>(
  handler: WorkerHandler<Config, Result>,
  options: DefineWorkerOptions,
): Promise<void> {
  const groups = new Set<number>();
  const shared = new Int32Array(new SharedArrayBuffer(4 * MAX_GROUPS));
  const share = (pid: number, add: boolean): void => {
    const slot = shared.indexOf(add ? 0 : pid);
    if (slot !== -1) Atomics.store(shared, slot, add ? pid : 0);
  };
  if (options.watchdog) startWatchdog(shared);
  const controller = new AbortController();
  let stopping = false;

  const send = (message: WorkerMessage): void => {
    if (process.connected && process.send) {
      try {
        process.send(message);
      } catch {
        // The runner is gone; the disconnect handler deals with it.
      }
    }
  };

  const killGroups = (): void => {
    for (const pgid of groups) {
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {
        // ESRCH: already gone.
      }
    }
    groups.clear();
  };

  const stop = (code: number): never => {
    stopping = true;
    controller.abort();
    killGroups();
    // With the runner gone no one else will clean up: it forked us as a process group leader,
    // so take any plain (non-detached) children down with us. (When the runner is alive it
    // kills our group itself after we exit.) Not a leader: the group does not exist, ESRCH.
    if (code === WorkerExitCode.parentGone) {
      try {
        process.kill(-process.pid, 'SIGKILL');
      } catch {
        // Not a group leader.
      }
    }
    process.exit(code);
  };

  // The runner died (even by SIGKILL): the kernel closed our IPC channel.
  process.on('disconnect', () => {
    if (!stopping) stop(WorkerExitCode.parentGone);
  });
  process.on('SIGTERM', () => stop(WorkerExitCode.terminated));
  if (process.send && !process.connected) stop(WorkerExitCode.parentGone);

  const context: WorkerContext = {
    signal: controller.signal,
    progress(message) {
      send({ type: 'llem:progress', message });
    },
    registerChild(pid) {
      groups.add(pid);
      share(pid, true);
      send({ type: 'llem:child-started', pid });
    },
    spawnGroup(command, args, options = {}) {
      const child = spawn(command, [...args], { ...options, detached: true });
      if (child.pid !== undefined) {
        const pid = child.pid;
        context.registerChild(pid);
        child.once('exit', () => {
          // Only forget the group when no one else can be in it: a process group outlives its
          // leader while members remain, so kill it anyway, then forget it.
          try {
            process.kill(-pid, 'SIGKILL');
          } catch {
            // ESRCH: the group is empty.
          }
          groups.delete(pid);
          share(pid, false);
          send({ type: 'llem:child-exited', pid });
        });
      }
      return child;
    },
  };

  const taskFile = process.env[TASK_FILE_ENV];
  let task: WorkerTask<Config>;
  try {
    if (!taskFile) throw new Error(`${TASK_FILE_ENV} is not set: this module is run by the runner`);
    task = JSON.parse(readFileSync(taskFile, 'utf8')) as WorkerTask<Config>;
  } catch (error) {
    process.stderr.write(`llem worker: cannot read the task: ${describe(error).message}\n`);
    return stop(WorkerExitCode.badTask);
  }

  try {
    const result = await handler(task, context);
    if (stopping) return;
    // JSON.stringify of a large result is the worker's memory to spend, not the runner's.
    // `undefined` is not JSON; a handler that returns nothing still completed its run.
    // Published with a no-clobber link: a result already there (another owner of this run won
    // a race) is never overwritten; ours is kept aside, not lost.
    const stamp = new Date().toISOString().replace(/[-:.]/g, '');
    // The aside name is @llem/domain's `runAsideFile(key, 'conflict', …)`, spelled out here so
    // a worker child does not load the domain package (and zod) to start: a test keeps them equal.
    const outcome = publishFileSync(task.resultFile, JSON.stringify(result ?? null), {
      keepAside: `${task.resultFile}.conflict-${stamp}-${process.pid}`,
    });
    if (outcome === 'exists') {
      process.stderr.write(
        `llem worker: ${task.resultFile} already exists (another runner published this run first); this attempt's result was kept beside it as a conflict file\n`,
      );
    }
    stopping = true;
    killGroups();
    process.exit(WorkerExitCode.ok);
  } catch (error) {
    if (stopping) return;
    const report: WorkerErrorReport = { error: describe(error) };
    try {
      writeJsonAtomicSync(task.files.error, report);
    } catch (writeError) {
      process.stderr.write(`llem worker: cannot write the error file: ${String(writeError)}\n`);
    }
    stop(WorkerExitCode.handlerError);
  }
}

/**
 * A thread that notices the runner's death even while the main thread is blocked: when our
 * parent pid changes (we were re-parented), it kills the registered groups, our own group and
 * us. `unref`: it never keeps the worker alive.
 */
function startWatchdog(shared: Int32Array): void {
  const code = `
    const { workerData } = require('node:worker_threads');
    const { shared, ppid, pid } = workerData;
    const kill = (target) => { try { process.kill(target, 'SIGKILL'); } catch {} };
    setInterval(() => {
      if (process.ppid === ppid) return;
      for (let i = 0; i < shared.length; i++) { const g = Atomics.load(shared, i); if (g) kill(-g); }
      kill(-pid);
      kill(pid);
    }, 100);
  `;
  const thread = new Worker(code, {
    eval: true,
    workerData: { shared, ppid: process.ppid, pid: process.pid },
  });
  thread.unref();
}

function describe(error: unknown): WorkerErrorReport['error'] {
  const type = failureTypeOf(error);
  const code = isLlemError(error) ? { code: error.code } : {};
  if (error instanceof Error) {
    return { type, message: error.message, stack: error.stack ?? null, ...code };
  }
  return { type, message: String(error), stack: null };
}

/**
 * The run-failure type (`@llem/domain`'s `RUN_FAILURE_TYPES`) of an error a handler threw: by
 * the `source` of a llem error (`engine`, `config`, `server`, `measurement`; a measurement error
 * with code `CONFIG` is `config`), `crash` for anything else (a bug, a library's own error).
 *
 * @example
 * failureTypeOf(new LlamaCppEngineError('MODEL_NOT_FOUND', '…')); // 'engine'
 */
export function failureTypeOf(error: unknown): RunFailureType {
  if (!isLlemError(error)) return 'crash';
  const own = error.runFailure;
  if (own !== undefined && (RUN_FAILURE_TYPE_NAMES as readonly string[]).includes(own)) {
    return own as RunFailureType;
  }
  switch (error.source) {
    case 'engine':
      return 'engine';
    case 'server':
      return 'server';
    case 'config':
      return 'config';
    case 'measurement':
    case 'nvml':
      return error.code === 'CONFIG' ? 'config' : 'measurement';
    default:
      return 'crash';
  }
}
