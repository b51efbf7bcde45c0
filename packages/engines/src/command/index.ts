import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { CommandConfig, CommandExperimentConfig } from '@llem/domain';
import { LlemError } from '@llem/resilience';
import type {
  Engine,
  EngineContext,
  EngineInfo,
  EngineRequest,
  RequestRecord,
  RunHooks,
  WorkloadOutcome,
} from '../engine';
import {
  signalProcessGroup,
  trackProcessGroup,
  untrackProcessGroup,
} from '../internal/process-group';
import { latenciesToRecords, type ProgramReport, parseProgramLine } from './protocol';

export { killAllProcessGroups } from '../internal/process-group';
export type { ProgramLatency, ProgramLine, ProgramReport } from './protocol';
export { latenciesToRecords, parseProgramLine } from './protocol';

export interface CommandEngineOptions {
  /** Time between SIGTERM and SIGKILL when stopping the program's group. Default 2000 ms. */
  killGraceMs?: number;
  /** How much of the program's stderr an error quotes. Default 4000 characters. */
  stderrTailChars?: number;
  /** Where the config/requests files go. Default the OS temp dir. */
  tmpDir?: string;
  /** Monotonic clock (ms). Default `performance.now`. */
  now?: () => number;
  /**
   * Told the program's process group id right after it starts, e.g. `@llem/study`'s
   * `WorkerContext.registerChild`, so the runner can kill the group even if this process is
   * SIGKILLed. (This process's own exit kills the group in any case.)
   */
  onProcessGroup?: (pgid: number) => void;
  /**
   * Variables the program gets whatever its config says, set last (over `command.env`, also
   * with `inherit_env: false`): the run's GPU assignment, `CUDA_VISIBLE_DEVICES`, in a study
   * with `execution.devices`, so the program never escapes the GPUs it is measured on.
   */
  env?: Readonly<Record<string, string>>;
}

/** Error codes the `command` engine throws. */
export type CommandEngineErrorCode =
  | 'COMMAND_CONFIG'
  | 'COMMAND_SPAWN'
  | 'COMMAND_EXIT'
  | 'COMMAND_NO_REPORT'
  | 'COMMAND_BAD_REPORT'
  | 'COMMAND_BAD_MARKERS'
  | 'COMMAND_ABORTED';

/** Errors of the `command` engine (`name` `EngineError`, like the other engines'). */
export class CommandEngineError extends LlemError<CommandEngineErrorCode> {
  override readonly name = 'EngineError';
  readonly source = 'engine' as const;

  /** A program that cannot be started or configured is the config's fault (`config`). */
  override get runFailure(): string | undefined {
    return this.code === 'COMMAND_CONFIG' || this.code === 'COMMAND_SPAWN' ? 'config' : undefined;
  }
  constructor(
    message: string,
    readonly code: CommandEngineErrorCode,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * This process's environment for a program it starts, without llem's own plumbing: the worker's
 * `LLEM_TASK_FILE` names the runner's task, not the program's, and must not leak into it.
 */
function inheritedEnv(): NodeJS.ProcessEnv {
  const { LLEM_TASK_FILE: _task, ...env } = process.env;
  return env;
}

/** Keeps the last `max` characters of a stream, for error messages. */
class Tail {
  private text = '';
  constructor(private readonly max: number) {}
  push(chunk: string): void {
    this.text += chunk;
    if (this.text.length > this.max * 2) this.text = this.text.slice(-this.max);
  }
  toString(): string {
    return this.text.slice(-this.max).trimEnd();
  }
}

/**
 * An engine that runs any program once per experiment and measures around it. The program gets
 * the effective config as JSON in the file named by `LLEM_CONFIG_FILE` and the workload as JSON
 * lines (`{"id","prompt","max_output_tokens"}`, plus `send_at_ms` for a trace and `after` for a
 * later turn of a conversation) in `LLEM_REQUESTS_FILE`; it reports its token
 * counts as one JSON line on stdout and may mark its measurement window with `{"llem":"start"}`
 * and `{"llem":"stop"}` so that a model load stays out of the energy.
 *
 * The program runs without a shell, detached in its own process group; abort and dispose kill the
 * whole group (SIGTERM, then SIGKILL after a grace period), and so does this process's exit.
 *
 * @example
 * const config = parseExperimentConfig({
 *   model: 'my-model',
 *   engine: 'command',
 *   command: { argv: ['python3', 'bench.py'], env: { CUDA_VISIBLE_DEVICES: '0' } },
 * });
 * const engine = createCommandEngine(config, {
 *   logger: console,
 *   signal: AbortSignal.timeout(600_000),
 * });
 * await engine.load();
 * const outcome = await engine.run(requests, { onWindowStart, onWindowStop });
 * await engine.dispose();
 */
export function createCommandEngine(
  config: CommandExperimentConfig,
  ctx: EngineContext,
  options: CommandEngineOptions = {},
): Engine {
  const graceMs = options.killGraceMs ?? 2000;
  const tailChars = options.stderrTailChars ?? 4000;
  const now = options.now ?? (() => performance.now());
  const { logger, signal } = ctx;
  let workDir: string | null = null;
  let child: ChildProcess | null = null;
  let disposed = false;

  // The domain's schema already requires a non-empty argv; this guard keeps a hand-built config
  // from reaching spawn() with nothing to run.
  const section = (): CommandConfig => {
    const s = config.command;
    if (
      !s ||
      !Array.isArray(s.argv) ||
      s.argv.length === 0 ||
      typeof s.argv[0] !== 'string' ||
      s.argv[0] === ''
    )
      throw new CommandEngineError(
        'command.argv: the command engine needs a non-empty argv list, e.g. command: { argv: [python3, bench.py] }',
        'COMMAND_CONFIG',
      );
    return s;
  };

  /** SIGTERM the group, then SIGKILL it if anything is left after the grace period. */
  const stopGroup = async (proc: ChildProcess): Promise<void> => {
    const pgid = proc.pid;
    if (pgid === undefined) return;
    const exited = new Promise<void>((res) => {
      if (proc.exitCode !== null || proc.signalCode !== null) res();
      else proc.once('exit', () => res());
    });
    if (!signalProcessGroup(pgid, 'SIGTERM')) {
      untrackProcessGroup(pgid);
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<'timeout'>((res) => {
      timer = setTimeout(() => res('timeout'), graceMs);
    });
    await Promise.race([exited, graceOver]);
    clearTimeout(timer);
    // The leader may be gone while its children linger in the group: SIGKILL sweeps them too.
    signalProcessGroup(pgid, 'SIGKILL');
    untrackProcessGroup(pgid);
  };

  return {
    name: 'command',
    windowMarking: 'engine',

    async load(): Promise<EngineInfo> {
      const s = section();
      const cwd = resolve(s.cwd ?? '.');
      if (!existsSync(cwd) || !statSync(cwd).isDirectory())
        throw new CommandEngineError(
          `command.cwd: directory ${cwd} does not exist`,
          'COMMAND_CONFIG',
        );
      workDir = await mkdtemp(join(options.tmpDir ?? tmpdir(), 'llem-command-'));
      await writeFile(join(workDir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
      return {
        engine: 'command',
        engineVersion: null,
        parameterCount: null,
        model: config.model,
        backend: 'unknown',
        details: { argv: s.argv, cwd },
      };
    },

    async warmup(): Promise<RequestRecord[]> {
      // llem cannot drive a program request by request; a program warms up on its own before
      // it prints {"llem":"start"}.
      logger.debug('command engine: warmup is left to the program (before its start marker)');
      return [];
    },

    run(requests: EngineRequest[], hooks: RunHooks = {}): Promise<WorkloadOutcome> {
      const s = section();
      if (workDir === null)
        return Promise.reject(
          new CommandEngineError('command engine: run() before load()', 'COMMAND_CONFIG'),
        );
      if (signal.aborted)
        return Promise.reject(
          new CommandEngineError('command engine: aborted before start', 'COMMAND_ABORTED', {
            cause: signal.reason,
          }),
        );
      const dir = workDir;
      const configFile = join(dir, 'config.json');
      const requestsFile = join(dir, 'requests.jsonl');
      return (async () => {
        await writeFile(
          requestsFile,
          requests
            .map((r) =>
              // A trace's send time and a turn's predecessor, for a program that honours them.
              JSON.stringify({
                id: r.id,
                prompt: r.prompt,
                max_output_tokens: r.maxOutputTokens,
                ...(r.sendAtMs !== undefined ? { send_at_ms: r.sendAtMs } : {}),
                ...(r.after !== undefined ? { after: r.after } : {}),
              }),
            )
            .join('\n') + (requests.length ? '\n' : ''),
        );
        return new Promise<WorkloadOutcome>((resolvePromise, rejectPromise) => {
          const [program, ...args] = s.argv as [string, ...string[]];
          const cwd = resolve(s.cwd ?? '.');
          const stderrTail = new Tail(tailChars);
          let report: ProgramReport | null = null;
          let badReport: string | null = null;
          const spawnedAt = now();
          let windowStart: number | null = null;
          let windowStopped = false;
          let stopBeforeStart = false;
          let settled = false;
          const settle = (fn: () => void) => {
            if (settled) return;
            settled = true;
            signal.removeEventListener('abort', onAbort);
            fn();
          };

          const proc = spawn(program, args, {
            cwd,
            env: {
              ...(s.inherit_env === false ? {} : inheritedEnv()),
              ...(s.env ?? {}),
              ...(options.env ?? {}),
              LLEM_CONFIG_FILE: configFile,
              LLEM_REQUESTS_FILE: requestsFile,
            },
            detached: true,
            shell: false,
            stdio: ['ignore', 'pipe', 'pipe'],
          });
          child = proc;
          if (proc.pid !== undefined) {
            trackProcessGroup(proc.pid);
            options.onProcessGroup?.(proc.pid);
          }
          logger.debug(
            `command engine: started ${JSON.stringify(s.argv)} (pid ${proc.pid ?? '?'}) in ${cwd}`,
          );

          const onAbort = () => {
            logger.warn('command engine: aborted, stopping the program');
            void stopGroup(proc);
            settle(() =>
              rejectPromise(
                new CommandEngineError('command engine: the run was aborted', 'COMMAND_ABORTED', {
                  cause: signal.reason,
                }),
              ),
            );
          };
          signal.addEventListener('abort', onAbort, { once: true });

          proc.on('error', (error) => {
            settle(() =>
              rejectPromise(
                new CommandEngineError(
                  `command engine: could not start ${JSON.stringify(program)} (${(error as NodeJS.ErrnoException).code ?? error.message}); check command.argv[0] is installed and on PATH`,
                  'COMMAND_SPAWN',
                  { cause: error },
                ),
              ),
            );
          });

          proc.stderr?.setEncoding('utf8');
          proc.stderr?.on('data', (chunk: string) => stderrTail.push(chunk));

          const lines = createInterface({
            input: proc.stdout!,
            crlfDelay: Number.POSITIVE_INFINITY,
          });
          lines.on('line', (line) => {
            const parsed = parseProgramLine(line);
            switch (parsed.kind) {
              case 'start':
                if (windowStart === null) {
                  windowStart = now();
                  hooks.onWindowStart?.();
                } else logger.warn('command engine: a second {"llem":"start"} was ignored');
                break;
              case 'stop':
                // A stop with no window open is a bug in the program's markers: whatever window
                // followed would not be the one it meant to measure, so the run fails below.
                if (windowStart === null) stopBeforeStart = true;
                else if (!windowStopped) {
                  windowStopped = true;
                  hooks.onWindowStop?.();
                }
                break;
              case 'report':
                if (report !== null)
                  logger.warn(
                    'command engine: the program printed more than one report line; the last one counts',
                  );
                report = parsed.report;
                break;
              case 'invalid-report':
                badReport = parsed.problem;
                break;
              default:
                logger.debug(`command stdout: ${line}`);
            }
          });

          proc.on('close', (code, sig) => {
            if (proc.pid !== undefined) {
              // Anything the program left running in its group goes with it.
              signalProcessGroup(proc.pid, 'SIGKILL');
              untrackProcessGroup(proc.pid);
            }
            child = null;
            if (windowStart !== null && !windowStopped) {
              logger.warn(
                'command engine: the program printed {"llem":"start"} but no stop marker; the window ends at its exit',
              );
              hooks.onWindowStop?.();
            }
            const tail = stderrTail.toString();
            const tailText = tail ? `\n--- stderr (tail) ---\n${tail}` : ' (stderr was empty)';
            if (code !== 0) {
              const how = sig ? `was killed by ${sig}` : `exited with code ${code}`;
              settle(() =>
                rejectPromise(
                  new CommandEngineError(
                    `command ${JSON.stringify(s.argv)} ${how}${tailText}`,
                    'COMMAND_EXIT',
                  ),
                ),
              );
              return;
            }
            if (stopBeforeStart) {
              settle(() =>
                rejectPromise(
                  new CommandEngineError(
                    `command ${JSON.stringify(s.argv)} printed {"llem":"stop"} before {"llem":"start"}: print {"llem":"start"} when the measured work begins (after loading) and {"llem":"stop"} when it ends`,
                    'COMMAND_BAD_MARKERS',
                  ),
                ),
              );
              return;
            }
            if (badReport !== null && report === null) {
              settle(() =>
                rejectPromise(
                  new CommandEngineError(
                    `command ${JSON.stringify(s.argv)} printed an invalid report line: ${badReport}. Expected {"input_tokens":N,"output_tokens":N,"requests":N}`,
                    'COMMAND_BAD_REPORT',
                  ),
                ),
              );
              return;
            }
            const finalReport = report as ProgramReport | null;
            if (finalReport === null) {
              settle(() =>
                rejectPromise(
                  new CommandEngineError(
                    `command ${JSON.stringify(s.argv)} exited 0 without a report line; it must print {"input_tokens":N,"output_tokens":N,"requests":N} on stdout${tailText}`,
                    'COMMAND_NO_REPORT',
                  ),
                ),
              );
              return;
            }
            const records = latenciesToRecords(
              finalReport.latencies ?? [],
              windowStart ?? spawnedAt,
            );
            settle(() =>
              resolvePromise({
                requests: records,
                inputTokens: finalReport.input_tokens,
                outputTokens: finalReport.output_tokens,
                tokenCountSource: 'program-report',
                extra: {
                  requestCount: finalReport.requests,
                  windowMarkers: windowStart !== null,
                },
              }),
            );
          });
        });
      })();
    },

    async dispose(): Promise<void> {
      if (disposed) return;
      disposed = true;
      const proc = child;
      child = null;
      if (proc) await stopGroup(proc);
      if (workDir !== null) {
        const dir = workDir;
        workDir = null;
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}
