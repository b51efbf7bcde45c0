import { fork } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { RUN_FAILURE_TYPES, type RunFailureType } from '@llem/domain';
import { isWorkerMessage, type WorkerErrorReport } from '../task';

/**
 * The longest delay `setTimeout` honours (2³¹−1 ms, about 24.8 days): a longer one fires after
 * 1 ms, which would turn a huge `timeout_s` into an instant timeout of every run.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export interface ChildRunOptions {
  workerModule: string;
  /** The Node executable for the child; default `process.execPath`. */
  execPath?: string;
  execArgv: readonly string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Where the child's stdout and stderr go (a file: a pipe could fill up and deadlock). */
  logFile: string;
  resultFile: string;
  /** Where a failing worker writes why (`runs/<key>.error.json`). */
  errorFile: string;
  timeoutMs: number;
  graceMs: number;
  /** Resolves when the runner wants the child stopped: 'graceful' (SIGTERM, grace, SIGKILL) or 'now'. */
  stopRequests: StopRequests;
  /** Called once the child has been forked. */
  onSpawn?: (pid: number) => void;
  /** Called with each progress line the worker sends (`WorkerContext.progress`). */
  onProgress?: (message: string) => void;
}

/** How the runner asks a running child to stop (Ctrl-C). */
export interface StopRequests {
  subscribe(listener: (mode: 'graceful' | 'now') => void): () => void;
}

export type ChildOutcome =
  | { kind: 'completed'; exitCode: number | null; signal: NodeJS.Signals | null }
  | {
      kind: 'failed';
      error: { type: RunFailureType; message: string; code?: string; stack?: string | null };
      exitCode: number | null;
      signal: NodeJS.Signals | null;
    }
  | { kind: 'stopped'; exitCode: number | null; signal: NodeJS.Signals | null };

/**
 * Fork the worker for one run, wait for it with a timeout, make sure nothing it started
 * survives, and classify what happened. Never throws for anything the child does.
 */
export function runChild(options: ChildRunOptions): Promise<ChildOutcome> {
  return new Promise((resolve, reject) => {
    const logFd = openSync(options.logFile, 'a');
    let child: ReturnType<typeof fork>;
    try {
      child = fork(options.workerModule, [], {
        cwd: options.cwd,
        env: options.env,
        execArgv: [...options.execArgv],
        ...(options.execPath === undefined ? {} : { execPath: options.execPath }),
        stdio: ['ignore', logFd, logFd, 'ipc'],
        // Its own process group: a terminal Ctrl-C reaches only the runner, which decides how
        // the child ends, and one kill(-pid) reaches the child and its plain children.
        detached: true,
        serialization: 'json',
      });
    } catch (error) {
      closeSync(logFd);
      reject(error);
      return;
    }
    closeSync(logFd);

    const pid = child.pid;
    const groups = new Set<number>();
    let timedOut = false;
    let stopMode: 'graceful' | 'now' | null = null;
    let killTimer: NodeJS.Timeout | undefined;

    const killGroup = (pgid: number, signal: NodeJS.Signals): void => {
      try {
        process.kill(-pgid, signal);
      } catch {
        // ESRCH: nothing left in that group.
      }
    };

    const terminate = (graceMs: number): void => {
      if (pid === undefined) return;
      if (graceMs <= 0) {
        killGroup(pid, 'SIGKILL');
        for (const g of groups) killGroup(g, 'SIGKILL');
        return;
      }
      // SIGTERM to the worker only: its handler kills what it registered and exits.
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // Already exited.
      }
      if (killTimer === undefined) {
        killTimer = setTimeout(() => {
          killGroup(pid, 'SIGKILL');
          for (const g of groups) killGroup(g, 'SIGKILL');
        }, graceMs);
      }
    };

    const timeoutTimer = setTimeout(
      () => {
        timedOut = true;
        terminate(options.graceMs);
      },
      Math.min(options.timeoutMs, MAX_TIMER_MS),
    );

    const unsubscribe = options.stopRequests.subscribe((mode) => {
      if (stopMode === 'now') return;
      stopMode = mode;
      if (mode === 'now') {
        if (killTimer) clearTimeout(killTimer);
        killTimer = undefined;
        terminate(0);
      } else {
        terminate(options.graceMs);
      }
    });

    child.on('message', (message) => {
      if (!isWorkerMessage(message)) return;
      if (message.type === 'llem:progress') options.onProgress?.(message.message);
      else if (message.type === 'llem:child-started') groups.add(message.pid);
      else groups.delete(message.pid);
    });
    child.on('error', (error) => {
      // An IPC write to a dying child can fail with EPIPE; the exit event tells the story. But
      // when the process never started (EAGAIN, ENOMEM, no such executable) there is no pid and
      // no 'exit' will come: settle here, or the run waits forever.
      if (pid !== undefined) return;
      clearTimeout(timeoutTimer);
      if (killTimer) clearTimeout(killTimer);
      unsubscribe();
      resolve({
        kind: 'failed',
        error: { type: 'spawn', message: `cannot start the worker: ${error.message}` },
        exitCode: null,
        signal: null,
      });
    });

    if (pid !== undefined) options.onSpawn?.(pid);

    child.once('exit', (exitCode, signal) => {
      clearTimeout(timeoutTimer);
      if (killTimer) clearTimeout(killTimer);
      unsubscribe();
      // Whatever the worker left behind in its group, or registered in groups of their own,
      // goes now. A pid is not reused while its process group exists, so this is safe.
      if (pid !== undefined) killGroup(pid, 'SIGKILL');
      for (const g of groups) killGroup(g, 'SIGKILL');
      resolve(classify({ exitCode, signal, timedOut, stopMode }, options));
    });
  });
}

interface ExitFacts {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  stopMode: 'graceful' | 'now' | null;
}

function classify(facts: ExitFacts, options: ChildRunOptions): ChildOutcome {
  const { exitCode, signal } = facts;
  // A result that made it to disk is complete (the worker renames it into place) and is kept,
  // whatever happened afterwards: the experiment ran to the end.
  if (existsSync(options.resultFile)) return { kind: 'completed', exitCode, signal };
  if (facts.stopMode !== null) return { kind: 'stopped', exitCode, signal };
  const fail = (
    type: RunFailureType,
    message: string,
    stack: string | null = null,
    code?: string,
  ): ChildOutcome => ({
    kind: 'failed',
    error: { type, message, stack, ...(code ? { code } : {}) },
    exitCode,
    signal,
  });
  if (facts.timedOut) {
    return fail('timeout', `the run exceeded its timeout of ${options.timeoutMs / 1000} s`);
  }
  const errorFile = options.errorFile;
  if (existsSync(errorFile)) {
    try {
      const report = JSON.parse(readFileSync(errorFile, 'utf8')) as Partial<WorkerErrorReport>;
      const e = report.error;
      if (e && typeof e.message === 'string') {
        // A worker written by hand may name a type outside the closed list: it is a crash,
        // and its own word is kept as the code.
        const known = (RUN_FAILURE_TYPES as readonly string[]).includes(e.type ?? '');
        const code = typeof e.code === 'string' && e.code ? e.code : known ? undefined : e.type;
        return fail(
          known ? (e.type as RunFailureType) : 'crash',
          e.message,
          e.stack ?? null,
          code || undefined,
        );
      }
    } catch {
      // Fall through to the exit status.
    }
  }
  if (signal !== null) return fail('crash', `the worker was killed by signal ${signal}`);
  if (exitCode !== 0) return fail('crash', `the worker exited with code ${exitCode}`);
  return fail('no-result', 'the worker exited with code 0 but wrote no result');
}
