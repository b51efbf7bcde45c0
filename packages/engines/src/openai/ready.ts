import { performance } from 'node:perf_hooks';
import { type Logger, noopLogger, type RetryOptions, retry } from '@llem/resilience';

/**
 * Why a server is not usable, as the run's error says it:
 * - `refused`: nothing listens at the address (ECONNREFUSED);
 * - `reset`: the connection was accepted then dropped (ECONNRESET, EPIPE, socket hang up);
 * - `timeout`: no answer to an attempt in time (ETIMEDOUT, a silent host);
 * - `unreachable`: no route to the host (EHOSTUNREACH, ENETUNREACH, EAI_AGAIN);
 * - `loading`: the server answers 502/503/504 (a proxy or a server still loading weights);
 * - `dns`: the host name does not resolve (ENOTFOUND);
 * - `tls`: the TLS handshake failed (certificate, protocol);
 * - `auth`: 401/403;
 * - `model-not-found`: 404 for the model;
 * - `http`: another unexpected status.
 * The first five may pass (the server is starting) and are waited out within the ready timeout;
 * the others cannot and fail at once.
 */
export type ServerProblem =
  | 'refused'
  | 'reset'
  | 'timeout'
  | 'unreachable'
  | 'loading'
  | 'dns'
  | 'tls'
  | 'auth'
  | 'model-not-found'
  | 'http';

const TRANSIENT: ReadonlySet<ServerProblem> = new Set([
  'refused',
  'reset',
  'timeout',
  'unreachable',
  'loading',
]);

/** An HTTP answer, or a socket error as Node reports it. */
export interface HttpAnswer {
  status: number;
  body: string;
}

/** How the check talks to the server; the engine passes its own agent-bound requests. */
export interface ReadyTransport {
  get(path: string, signal: AbortSignal, timeoutMs: number): Promise<HttpAnswer>;
  post(path: string, body: string, signal: AbortSignal, timeoutMs: number): Promise<HttpAnswer>;
}

export interface ReadyCheckOptions {
  /** Base URL without credentials, for messages. */
  shownUrl: string;
  model: string;
  endpoint: 'completions' | 'chat';
  /** How long to wait for a server that is not ready yet (ms). */
  readyTimeoutMs: number;
  /** The variable holding the API key, for the 401 hint; `null` without a key. */
  apiKeyEnv: string | null;
  logger?: Logger;
  /** Receives each progress line too (a console), besides the logger's info level. */
  progress?: (message: string) => void;
  signal?: AbortSignal;
  /** Backoff between attempts. Default 250 ms growing 1.5× to 2 s. */
  backoff?: Pick<RetryOptions, 'delayMs' | 'factor' | 'maxDelayMs' | 'retries' | 'sleep'>;
  /** Removes secrets from text that leaves the check. */
  redact?: (text: string) => string;
  now?: () => number;
}

/** What the check found. */
export type ReadyOutcome =
  | {
      ok: true;
      /** Model ids from `/models`; `null` when the server has no such route. */
      models: string[] | null;
      /** Whether `/models` lists the model; `null` without the route. */
      modelListed: boolean | null;
      /** A probe request had to confirm the model (it was not listed). */
      probed: boolean;
      attempts: number;
      elapsedMs: number;
      /** Something worth a warning that did not stop the run. */
      note: string | null;
    }
  | {
      ok: false;
      problem: ServerProblem;
      /** One line: what failed, with the cause and the hint. */
      message: string;
      attempts: number;
      elapsedMs: number;
    };

/** Socket error codes → problem. Anything unknown counts as `reset` (transient). */
function problemOf(error: NodeJS.ErrnoException): ServerProblem {
  const code = error.code ?? '';
  if (code === 'ECONNREFUSED') return 'refused';
  if (code === 'ENOTFOUND') return 'dns';
  if (code === 'EAI_AGAIN' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH')
    return 'unreachable';
  if (code === 'ETIMEDOUT' || code === 'ATTEMPT_TIMEOUT') return 'timeout';
  if (
    code.startsWith('ERR_TLS') ||
    code.startsWith('ERR_SSL') ||
    code.startsWith('CERT_') ||
    code === 'EPROTO' ||
    code === 'DEPTH_ZERO_SELF_SIGNED_CERT' ||
    code === 'SELF_SIGNED_CERT_IN_CHAIN' ||
    code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' ||
    code === 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' ||
    code === 'ERR_TLS_CERT_ALTNAME_INVALID'
  )
    return 'tls';
  return 'reset';
}

const WORDS: Record<ServerProblem, string> = {
  refused: 'connection refused',
  reset: 'connection dropped',
  timeout: 'no answer in time',
  unreachable: 'host unreachable',
  loading: 'server still loading',
  dns: 'DNS lookup failed',
  tls: 'TLS handshake failed',
  auth: 'authentication refused',
  'model-not-found': 'model not found',
  http: 'unexpected answer',
};

/** A failed attempt; `retry` waits out the transient ones. */
class NotReady extends Error {
  constructor(
    readonly problem: ServerProblem,
    detail: string,
  ) {
    super(`${WORDS[problem]} (${detail})`);
  }
}

function fromSocketError(error: unknown, what: string): NotReady {
  if (error instanceof NotReady) return error;
  const e = error as NodeJS.ErrnoException;
  const problem = problemOf(e);
  const code = e.code ? `${e.code}: ` : '';
  return new NotReady(problem, `${code}${e.message} on ${what}`);
}

function parseModels(body: string): string[] | null {
  try {
    const parsed = JSON.parse(body) as { data?: Array<{ id?: unknown }> };
    if (!Array.isArray(parsed.data)) return null;
    return parsed.data.map((m) => m.id).filter((id): id is string => typeof id === 'string');
  } catch {
    return null;
  }
}

const snippet = (body: string): string => body.trim().replace(/\s+/g, ' ').slice(0, 300);

/**
 * Waits for an already-running OpenAI-compatible server to be usable, within `readyTimeoutMs`:
 * `GET /models` answers, and the model is either listed or accepted by a one-token probe
 * request (so a 404 for the model, as vLLM answers, is caught before the run). Connection
 * refused/reset/timeouts and 502/503/504 are waited out, with one progress line per attempt at
 * info level; DNS and TLS failures, 401/403 and a 404 for the model end the wait at once.
 * Never throws for a server problem: the outcome says what was found.
 *
 * @example
 * const outcome = await waitForServer(transport, { shownUrl, model: 'm', endpoint: 'completions',
 *   readyTimeoutMs: 30_000, apiKeyEnv: null, logger });
 * if (!outcome.ok) throw new Error(outcome.message);
 */
export async function waitForServer(
  transport: ReadyTransport,
  options: ReadyCheckOptions,
): Promise<ReadyOutcome> {
  const logger = options.logger ?? noopLogger;
  const now = options.now ?? (() => performance.now());
  const redact = options.redact ?? ((t: string) => t);
  const started = now();
  const deadline = started + options.readyTimeoutMs;
  const shown = options.shownUrl;
  // Each attempt gets what is left of the budget (at least half a second, at most 10 s), so a
  // silent host cannot hold one attempt past the ready timeout.
  const attemptTimeout = (): number => Math.max(500, Math.min(10_000, deadline - now()));
  let attempts = 0;

  const attempt = async ({ signal }: { signal: AbortSignal }) => {
    attempts++;
    let models: string[] | null = null;
    const listed = await transport.get('models', signal, attemptTimeout()).catch((e: unknown) => {
      throw fromSocketError(e, `GET ${shown}/models`);
    });
    check(listed, `GET ${shown}/models`);
    if (listed.status >= 200 && listed.status < 300) models = parseModels(listed.body);
    if (models?.includes(options.model)) {
      return { models, modelListed: true, probed: false, note: null };
    }
    // Not listed (llama-server lists its file name, proxies list nothing): ask for one token.
    const path = options.endpoint === 'chat' ? 'chat/completions' : 'completions';
    const body = JSON.stringify({
      model: options.model,
      max_tokens: 1,
      stream: false,
      ...(options.endpoint === 'chat'
        ? { messages: [{ role: 'user', content: 'Hi' }] }
        : { prompt: 'Hi' }),
    });
    const probe = await transport.post(path, body, signal, attemptTimeout()).catch((e: unknown) => {
      throw fromSocketError(e, `POST ${shown}/${path}`);
    });
    if (probe.status === 404) {
      throw new NotReady(
        'model-not-found',
        `POST ${shown}/${path} answered HTTP 404 for model ${options.model}: ${snippet(probe.body)}`,
      );
    }
    check(probe, `POST ${shown}/${path}`, true);
    const note =
      probe.status >= 200 && probe.status < 300
        ? null
        : `a one-token probe of model ${options.model} answered HTTP ${probe.status} (${snippet(probe.body)}); going on`;
    return { models, modelListed: models === null ? null : false, probed: true, note };
  };

  /** Throws for a status that is not an answer to work with; `lenient` lets other 4xx/5xx by. */
  const check = (answer: HttpAnswer, what: string, lenient = false): void => {
    const { status } = answer;
    if (status === 502 || status === 503 || status === 504) {
      throw new NotReady('loading', `${what} answered HTTP ${status}: ${snippet(answer.body)}`);
    }
    if (status === 401 || status === 403) {
      const hint =
        options.apiKeyEnv === null
          ? 'set openai.api_key_env to the name of the environment variable holding the key'
          : `check the key in the environment variable ${options.apiKeyEnv}`;
      throw new NotReady('auth', `${what} answered HTTP ${status}; ${hint}`);
    }
    if (lenient || (status >= 200 && status < 300) || status === 404 || status === 405) return;
    throw new NotReady('http', `${what} answered HTTP ${status}: ${snippet(answer.body)}`);
  };

  try {
    const found = await retry(attempt, {
      retries: Number.MAX_SAFE_INTEGER,
      delayMs: 250,
      factor: 1.5,
      maxDelayMs: 2000,
      ...options.backoff,
      maxElapsedMs: options.readyTimeoutMs,
      shouldRetry: (error) => error instanceof NotReady && TRANSIENT.has(error.problem),
      onRetry: ({ error, delayMs }) => {
        const waited = (now() - started) / 1000;
        const line = redact(
          `openai engine: ${shown} not ready after ${waited.toFixed(1)} s of ${options.readyTimeoutMs / 1000} s: ${(error as Error).message}; trying again in ${(delayMs / 1000).toFixed(1)} s`,
        );
        logger.info(line);
        options.progress?.(line);
      },
      // The per-attempt lines above are the progress; retry's own lines would repeat them.
      logger: noopLogger,
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.now ? { now: options.now } : {}),
      name: `openai engine: waiting for ${shown}`,
    });
    return { ok: true, ...found, attempts, elapsedMs: now() - started };
  } catch (error) {
    if (options.signal?.aborted || !(error instanceof NotReady)) throw error;
    const elapsedMs = now() - started;
    const transient = TRANSIENT.has(error.problem);
    const tries = `${attempts} ${attempts === 1 ? 'attempt' : 'attempts'}`;
    const message = transient
      ? `${shown} was not ready after ${tries} in ${(elapsedMs / 1000).toFixed(1)} s (openai.ready_timeout_s ${options.readyTimeoutMs / 1000}): ${error.message}. Is the server running at openai.base_url?`
      : `${shown}: ${error.message}`;
    return { ok: false, problem: error.problem, message: redact(message), attempts, elapsedMs };
  }
}
