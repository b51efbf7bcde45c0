import { type ChildProcess, spawn as nodeSpawn, type SpawnOptions } from 'node:child_process';
import { closeSync, openSync, readSync, statSync, writeSync } from 'node:fs';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  fillPort,
  formatCommandLine,
  type ServerConfig,
  serverCommandLine,
  usesPortTemplate,
} from '@llem/domain';
import { type Logger, noopLogger, retry } from '@llem/resilience';
import {
  signalProcessGroup,
  trackProcessGroup,
  untrackProcessGroup,
} from '../internal/process-group';
import { ManagedServerError } from './errors';
import { describeHttpError, httpGetText } from './http';
import { pickFreePort, portIsFree } from './port';
import { type PrometheusText, parsePrometheusText } from './prometheus';

/** How the server's process ended. `error` is set when it could not be started at all. */
export interface ServerProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  error?: Error;
}

/** What `stop()` saw: the exit, whether SIGKILL was needed, and how long it took. */
export interface ServerStop {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** True when the server outlived `stop_grace_s` after SIGTERM and was SIGKILLed. */
  forced: boolean;
  stopS: number;
}

/** One `/metrics` scrape: the parsed text, or why there is none. `t` is the request's midpoint. */
export type MetricsScrapeOutcome =
  | ({ ok: true; t: number; skipped: number } & PrometheusText)
  | { ok: false; t: number; status: number | null; message: string };

/** Starts a program in its own process group; `@llem/study`'s `WorkerContext.spawnGroup` fits. */
export type SpawnInGroup = (
  command: string,
  args: readonly string[],
  options: SpawnOptions,
) => ChildProcess;

export interface ManagedServerOptions {
  /** The parsed `server` section (`@llem/domain`'s `ServerConfig`). */
  server: ServerConfig;
  /** `openai.base_url` as written (`{port}` allowed): the ready and metrics paths are on its host. */
  baseUrl: string;
  /** Where a relative `server.cwd` resolves, and the server's directory without one. Default `process.cwd()`. */
  cwd?: string;
  /** The environment `server.env` is added to. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Variables that win over `server.env` (the run's `CUDA_VISIBLE_DEVICES`). */
  forcedEnv?: Readonly<Record<string, string>>;
  /** The server's stdout and stderr are appended here (a header line per start attempt). */
  logFile: string;
  logger?: Logger;
  /** Aborts the start (the run's timeout, Ctrl-C); the server is killed. */
  signal?: AbortSignal;
  /** Console lines while the server starts (also logged at info). */
  progress?: (message: string) => void;
  /**
   * Start the program in its own process group. Default: `spawn(…, { detached: true })`, with the
   * group killed when this process exits. The llem worker passes `WorkerContext.spawnGroup`, so
   * the runner kills the group even when the worker is SIGKILLed.
   */
  spawn?: SpawnInGroup;
  /** The port for `{port}`. Default: a free one from the OS. */
  pickPort?: () => Promise<number>;
  /** Starts with another port after a port clash (only with `{port}`). Default 3. */
  portRetries?: number;
  /** Monotonic ms. Default `performance.now`. */
  now?: () => number;
  /** First delay between readiness polls (ms); grows 1.5× to 2 s. Default 200. */
  pollDelayMs?: number;
}

/** A started, ready server. */
export interface ManagedServer {
  /** The command line that runs (`{port}` filled in). */
  readonly argv: readonly string[];
  readonly pid: number | null;
  /** The port picked for `{port}`, else `openai.base_url`'s port. */
  readonly port: number | null;
  /** `openai.base_url` with the port filled in. */
  readonly baseUrl: string;
  /** Start attempts (more than 1 after port clashes). */
  readonly attempts: number;
  /** When the attempt that got ready was spawned, and when it first answered 2xx (monotonic ms). */
  readonly startedAt: number;
  readonly readyAt: number;
  readonly logFile: string;
  /** Settles when the process exits, however. */
  readonly exited: Promise<ServerProcessExit>;
  /**
   * Rejects with a `ManagedServerError` (`SERVER_EXITED`, with the exit and the log's tail) when
   * the server exits before `stop()` is called; never settles otherwise. Race the run against it.
   */
  readonly died: Promise<never>;
  /** SIGTERM to the group, SIGKILL after `stop_grace_s`; resolves with the exit. Safe to call twice. */
  stop(): Promise<ServerStop>;
  /** GET a metrics path on the server and parse it (Prometheus text). Never throws. */
  scrapeMetrics(path: string, timeoutMs: number): Promise<MetricsScrapeOutcome>;
}

/** Words servers use when their port is taken (vLLM, SGLang, TGI, llama-server, Ollama, Node). */
const PORT_CLASH =
  /address already in use|EADDRINUSE|errno 98\b|only one usage of each socket address|couldn'?t bind|failed to bind|bind failed/i;

const LOOPBACK = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\]|::1)$/i;

/**
 * Start a managed server and wait until it is ready: `{port}` filled with a free port, the
 * program spawned without a shell in its own process group with its output appended to
 * `logFile`, then `server.ready.path` polled on `openai.base_url`'s host until it answers 2xx
 * (within `server.ready.timeout_s`). A server that exits first fails at once with its exit code
 * and the tail of its log (`SERVER_EXITED`); a port clash starts it again on another port
 * (`@llem/resilience`'s `retry`); a fixed port that is already taken fails before anything is
 * started. Throws `ManagedServerError`.
 *
 * @example
 * const server = await startManagedServer({ server: config.server, baseUrl: config.openai.base_url, logFile });
 * try { await Promise.race([runWorkload(server.baseUrl), server.died]); } finally { await server.stop(); }
 */
export async function startManagedServer(options: ManagedServerOptions): Promise<ManagedServer> {
  const logger = options.logger ?? noopLogger;
  const templated = usesPortTemplate({
    server: options.server,
    openai: { base_url: options.baseUrl },
  });
  const host = new URL(fillPort(options.baseUrl, 1)).hostname;
  const pick = options.pickPort ?? (() => pickFreePort(LOOPBACK.test(host) ? '127.0.0.1' : host));
  let attempts = 0;
  return retry(
    async () => {
      attempts++;
      const port = templated ? await pick() : null;
      if (!templated) await checkFixedPort(options.baseUrl);
      return startOnce(options, { port, attempt: attempts, logger });
    },
    {
      retries: templated ? (options.portRetries ?? 3) : 0,
      delayMs: 100,
      shouldRetry: (error) =>
        error instanceof ManagedServerError && error.code === 'SERVER_PORT_IN_USE',
      logger,
      name: 'managed server',
      ...(options.signal ? { signal: options.signal } : {}),
    },
  );
}

/** A fixed port (no `{port}`) that something already listens on fails before the server starts. */
async function checkFixedPort(baseUrl: string): Promise<void> {
  const url = new URL(baseUrl);
  if (!LOOPBACK.test(url.hostname)) return;
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  if (await portIsFree(port, '127.0.0.1')) return;
  throw new ManagedServerError(
    'SERVER_PORT_IN_USE',
    `port ${port} of openai.base_url is already in use before the server started: something else listens there (a server left over from an earlier run?). Stop it, or write {port} in server.argv and openai.base_url so llem picks a free port`,
  );
}

/** Spawn detached (its own process group) and kill the group when this process exits. */
const spawnInOwnGroup: SpawnInGroup = (command, args, options) => {
  const child = nodeSpawn(command, [...args], { ...options, detached: true });
  if (child.pid !== undefined) {
    const pid = child.pid;
    trackProcessGroup(pid);
    child.once('exit', () => {
      // The group outlives its leader while members remain: take them along.
      signalProcessGroup(pid, 'SIGKILL');
      untrackProcessGroup(pid);
    });
  }
  return child;
};

/** Append a line to the log; returns the file's size before it (where this attempt's output starts). */
function appendLogLine(file: string, line: string): number {
  let size = 0;
  try {
    size = statSync(file).size;
  } catch {
    // a new file
  }
  const fd = openSync(file, 'a');
  try {
    writeSync(fd, `${line}\n`);
  } finally {
    closeSync(fd);
  }
  return size;
}

/** The last lines of what the server wrote since `from` (at most ~3000 characters, 20 lines). */
export function logTail(file: string, from = 0, maxChars = 3000): string {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return '(no log)';
  }
  try {
    const size = statSync(file).size;
    const start = Math.max(from, size - maxChars * 4);
    const buffer = Buffer.alloc(Math.max(0, size - start));
    readSync(fd, buffer, 0, buffer.length, start);
    const lines = buffer.toString('utf8').trimEnd().split('\n').slice(-20).join('\n');
    return lines.length > maxChars ? lines.slice(-maxChars) : lines || '(empty)';
  } finally {
    closeSync(fd);
  }
}

function describeExit(exit: ServerProcessExit): string {
  if (exit.error) return `could not start: ${exit.error.message}`;
  return exit.signal ? `killed by ${exit.signal}` : `exit code ${exit.code}`;
}

async function startOnce(
  options: ManagedServerOptions,
  run: { port: number | null; attempt: number; logger: Logger },
): Promise<ManagedServer> {
  const { server, logFile } = options;
  const { port, logger } = run;
  const now = options.now ?? (() => performance.now());
  const argv = serverCommandLine(server, port);
  const baseUrl = port === null ? options.baseUrl : fillPort(options.baseUrl, port);
  const origin = new URL(baseUrl).origin;
  const urlPort = Number(new URL(baseUrl).port) || null;
  const env: NodeJS.ProcessEnv = { ...(options.env ?? process.env) };
  for (const [k, v] of Object.entries(server.env)) env[k] = port === null ? v : fillPort(v, port);
  Object.assign(env, options.forcedEnv);
  const base = options.cwd ?? process.cwd();
  const cwd = server.cwd ? resolve(base, server.cwd) : base;
  const say = (line: string): void => {
    logger.info(line);
    options.progress?.(line);
  };

  const logFrom = appendLogLine(
    logFile,
    `--- llem: start attempt ${run.attempt} at ${new Date().toISOString()} in ${cwd}: ${formatCommandLine(argv)}`,
  );
  const fd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    // Output goes straight to the file: nothing of it passes through this process's event loop.
    child = (options.spawn ?? spawnInOwnGroup)(argv[0] as string, argv.slice(1), {
      cwd,
      env,
      stdio: ['ignore', fd, fd],
    });
  } finally {
    closeSync(fd);
  }
  const startedAt = now();
  let exit: ServerProcessExit | null = null;
  const exited = new Promise<ServerProcessExit>((settle) => {
    child.once('error', (error) => settle({ code: null, signal: null, error }));
    child.once('exit', (code, signal) => settle({ code, signal }));
  });
  void exited.then((e) => {
    exit = e;
  });
  const pid = child.pid ?? null;
  say(
    `server: started ${formatCommandLine(argv)}${pid === null ? '' : ` (pid ${pid})`}; waiting for ${origin}${server.ready.path}`,
  );

  const stopGroup = async (graceMs: number): Promise<ServerStop> => {
    const t0 = now();
    if (exit !== null || pid === null) {
      const e = exit ?? (await exited);
      return { code: e.code, signal: e.signal, forced: false, stopS: 0 };
    }
    signalProcessGroup(pid, 'SIGTERM');
    let forced = false;
    let ended = await within(exited, graceMs);
    if (ended === null) {
      forced = true;
      logger.warn(
        `server: still running ${graceMs / 1000} s after SIGTERM (server.stop_grace_s): SIGKILL`,
      );
      signalProcessGroup(pid, 'SIGKILL');
      ended = (await within(exited, 10_000)) ?? { code: null, signal: 'SIGKILL' };
    }
    // Processes the server started in its group may outlive it: none may outlive the run.
    signalProcessGroup(pid, 'SIGKILL');
    return { code: ended.code, signal: ended.signal, forced, stopS: (now() - t0) / 1000 };
  };

  // --- wait until ready -------------------------------------------------------------------
  const readyUrl = new URL(server.ready.path, origin).href;
  const timeoutMs = server.ready.timeout_s * 1000;
  const waiting = new AbortController();
  const outer = options.signal;
  const onAbort = (): void => waiting.abort(outer?.reason);
  if (outer?.aborted) onAbort();
  else outer?.addEventListener('abort', onAbort, { once: true });
  void exited.then(() => waiting.abort(new Error('the server exited')));
  let last = 'no answer yet';
  let shownAt = startedAt;
  try {
    await retry(
      async ({ signal }) => {
        const left = startedAt + timeoutMs - now();
        const answer = await httpGetText(readyUrl, {
          signal,
          timeoutMs: Math.max(500, Math.min(5000, left)),
        }).catch((error: unknown) => {
          last = describeHttpError(error);
          throw error;
        });
        if (answer.status >= 200 && answer.status < 300) return;
        last = `HTTP ${answer.status}${answer.status === 404 ? ' (is server.ready.path right?)' : ''}`;
        throw new Error(last);
      },
      {
        retries: Number.MAX_SAFE_INTEGER,
        delayMs: options.pollDelayMs ?? 200,
        factor: 1.5,
        // Short timeouts poll finer, so the wait gives up at most a tenth of it early.
        maxDelayMs: Math.max(options.pollDelayMs ?? 200, Math.min(2000, timeoutMs / 10)),
        maxElapsedMs: timeoutMs,
        shouldRetry: () => true,
        onRetry: () => {
          const t = now();
          if (t - shownAt < 10_000) return;
          shownAt = t;
          say(
            `server: waiting for ${readyUrl} to answer 2xx: ${((t - startedAt) / 1000).toFixed(0)} s of server.ready.timeout_s ${server.ready.timeout_s} (last: ${last})`,
          );
        },
        signal: waiting.signal,
        now,
        logger: noopLogger,
        name: 'managed server ready',
      },
    );
  } catch (error) {
    if (outer?.aborted) {
      await stopGroup(0);
      throw outer.reason ?? error;
    }
    const waitedS = ((now() - startedAt) / 1000).toFixed(1);
    const early = exit as ServerProcessExit | null;
    if (early !== null) {
      const tail = logTail(logFile, logFrom);
      if (early.error) {
        const code = (early.error as NodeJS.ErrnoException).code;
        throw new ManagedServerError(
          'SERVER_SPAWN',
          `cannot start the server ${JSON.stringify(argv[0])} (server.argv[0]): ${code === 'ENOENT' ? 'not found; is it installed and on PATH, or is server.cwd right?' : early.error.message}`,
          { cause: early.error },
        );
      }
      if (port !== null && PORT_CLASH.test(tail)) {
        throw new ManagedServerError(
          'SERVER_PORT_IN_USE',
          `the server could not listen on port ${port} (taken since llem picked it): ${tail
            .split('\n')
            .findLast((l) => PORT_CLASH.test(l))
            ?.trim()}`,
        );
      }
      throw new ManagedServerError(
        'SERVER_EXITED',
        `the server exited (${describeExit(early)}) before it was ready, after ${waitedS} s: ${formatCommandLine(argv)}\nlast lines of ${logFile}:\n${tail}`,
      );
    }
    await stopGroup(Math.min(server.stop_grace_s, 5) * 1000);
    throw new ManagedServerError(
      'SERVER_NOT_READY',
      `the server did not answer ${readyUrl} with 2xx within server.ready.timeout_s ${server.ready.timeout_s} (last: ${last}); it was stopped: ${formatCommandLine(argv)}\nlast lines of ${logFile}:\n${logTail(logFile, logFrom)}`,
    );
  } finally {
    outer?.removeEventListener('abort', onAbort);
  }
  const readyAt = now();
  say(`server: ready after ${((readyAt - startedAt) / 1000).toFixed(1)} s at ${baseUrl}`);

  // --- ready: watch it, stop it, scrape it ------------------------------------------------
  let stopping: Promise<ServerStop> | null = null;
  const died = exited.then((e): Promise<never> => {
    if (stopping !== null) return new Promise<never>(() => undefined);
    const tail = logTail(logFile, logFrom);
    throw new ManagedServerError(
      'SERVER_EXITED',
      `the server exited (${describeExit(e)}) while the run was going on, ${((now() - readyAt) / 1000).toFixed(1)} s after it got ready\nlast lines of ${logFile}:\n${tail}`,
    );
  });
  // Callers race against it; a server that dies when nobody waits must not crash the process.
  died.catch(() => undefined);

  return {
    argv,
    pid,
    port: port ?? urlPort,
    baseUrl,
    attempts: run.attempt,
    startedAt,
    readyAt,
    logFile,
    exited,
    died,
    stop() {
      stopping ??= stopGroup(server.stop_grace_s * 1000);
      return stopping;
    },
    async scrapeMetrics(path, scrapeTimeoutMs) {
      const t0 = now();
      try {
        const answer = await httpGetText(new URL(path, origin).href, {
          timeoutMs: scrapeTimeoutMs,
        });
        const t = (t0 + now()) / 2;
        if (answer.status < 200 || answer.status >= 300)
          return { ok: false, t, status: answer.status, message: `HTTP ${answer.status}` };
        return { ok: true, t, ...parsePrometheusText(answer.body) };
      } catch (error) {
        return { ok: false, t: (t0 + now()) / 2, status: null, message: describeHttpError(error) };
      }
    },
  };
}

/** `promise`'s value, or `null` when it takes longer than `ms`. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<null>((r) => {
    timer = setTimeout(() => r(null), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
