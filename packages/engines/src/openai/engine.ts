import { setMaxListeners } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import { performance } from 'node:perf_hooks';
import type { DispatchSummary } from '@llem/domain';
import { type Logger, noopLogger } from '@llem/resilience';
import type {
  Engine,
  EngineContext,
  EngineInfo,
  EngineRequest,
  RequestRecord,
  RunHooks,
  RunOptions,
  TokenCountSource,
  TokenizerProbe,
  WorkloadOutcome,
} from '../engine';
import { inTurnOrder, sendTimes } from '../internal/workload-order';
import {
  type OpenAIEngineConfig,
  type OpenAILoadMode,
  publicBaseUrl,
  type ResolvedOpenAIConfig,
  resolveOpenAIConfig,
} from './config';
import { type DispatchStats, dispatchStats } from './dispatch';
import { OpenAIEngineError, type OpenAIEngineErrorCode } from './errors';
import { type LoadResult, runLoad } from './load';
import { errorsByType, goodput, serverTimingsSummary, steadyStateWindow } from './metrics';
import { type HttpAnswer, type ReadyTransport, type ServerProblem, waitForServer } from './ready';
import { type StreamedRecord, type StreamTarget, streamRequest } from './stream';
import { findServerTokenizer } from './tokenize';

/**
 * How `load()` spaces its attempts while a server is not ready. The whole wait is bounded by
 * `openai.ready_timeout_s` whatever these say.
 */
export interface StartupRetryOptions {
  /** Retries after the first attempt. Default: as many as fit in the ready timeout. */
  retries?: number;
  /** First delay in ms. Default 250. */
  delayMs?: number;
  /** Backoff factor. Default 1.5. */
  factor?: number;
  /** Longest single delay in ms. Default 2000. */
  maxDelayMs?: number;
}

/** The engine error code for each reason a server is not usable. */
const PROBLEM_CODES: Record<ServerProblem, OpenAIEngineErrorCode> = {
  refused: 'UNREACHABLE',
  reset: 'UNREACHABLE',
  timeout: 'UNREACHABLE',
  unreachable: 'UNREACHABLE',
  loading: 'UNREACHABLE',
  http: 'UNREACHABLE',
  dns: 'DNS',
  tls: 'TLS',
  auth: 'AUTH',
  'model-not-found': 'MODEL_NOT_FOUND',
};

/** `EngineContext` plus what a library user or a test may want to inject. */
export interface OpenAIEngineOptions extends EngineContext {
  /** Where `api_key_env` is looked up. Default `process.env`, read when `load()` runs. */
  env?: Readonly<Record<string, string | undefined>>;
  startupRetry?: StartupRetryOptions;
}

const REDACTED = '[redacted]';

/**
 * Creates the `openai` engine: it drives an OpenAI-compatible server (vLLM, TGI, SGLang,
 * llama-server, Ollama) with streaming requests under closed-loop concurrency or open-loop
 * Poisson/gamma arrivals, and times every token. Throws `OpenAIEngineError` (name `EngineError`,
 * code `CONFIG`) at once for an inconsistent section.
 *
 * @example
 * const engine = createOpenAIEngine(
 *   { openai: { base_url: 'http://127.0.0.1:8000/v1', model: 'meta-llama/Llama-3.1-8B', api_key_env: 'OPENAI_API_KEY', concurrency: 8 } },
 *   { logger, signal: AbortSignal.timeout(600_000) },
 * );
 * await engine.load();
 * await engine.warmup(prompts.slice(0, 2));
 * const outcome = await engine.run(prompts);
 * await engine.dispose();
 */
export function createOpenAIEngine(
  config: OpenAIEngineConfig,
  ctx: OpenAIEngineOptions,
): Engine & { readonly config: ResolvedOpenAIConfig } {
  const resolved = resolveOpenAIConfig(config);
  return new OpenAIEngine(resolved, ctx);
}

class OpenAIEngine implements Engine {
  readonly name = 'openai' as const;
  readonly windowMarking = 'harness' as const;
  readonly config: ResolvedOpenAIConfig;
  readonly #logger: Logger;
  readonly #progress: ((message: string) => void) | undefined;
  readonly #signal: AbortSignal;
  readonly #env: Readonly<Record<string, string | undefined>>;
  readonly #startupRetry: StartupRetryOptions;
  // Private fields: the key never shows up in JSON.stringify, util.inspect or the logger.
  #apiKey: string | null = null;
  #agent: http.Agent | null = null;
  #freshAgent: http.Agent | null = null;
  #loaded = false;
  #disposed = false;

  constructor(config: ResolvedOpenAIConfig, ctx: OpenAIEngineOptions) {
    this.config = config;
    this.#logger = ctx.logger ?? noopLogger;
    this.#progress = ctx.progress;
    this.#signal = ctx.signal ?? new AbortController().signal;
    this.#env = ctx.env ?? process.env;
    this.#startupRetry = { ...ctx.startupRetry };
  }

  /** Replaces every occurrence of the key in text that leaves the engine. */
  #redact = (text: string): string => {
    const key = this.#apiKey;
    return key ? text.split(key).join(REDACTED) : text;
  };

  #headers(contentType: boolean): Record<string, string> {
    const headers: Record<string, string> = { accept: 'text/event-stream, application/json' };
    if (contentType) headers['content-type'] = 'application/json';
    if (this.#apiKey) headers.authorization = `Bearer ${this.#apiKey}`;
    return headers;
  }

  async load(): Promise<EngineInfo> {
    if (this.#disposed) throw new OpenAIEngineError('DISPOSED', 'openai engine: already disposed');
    const { apiKeyEnv, baseUrl, model, endpoint } = this.config;
    if (apiKeyEnv !== null) {
      const key = this.#env[apiKeyEnv];
      if (key === undefined || key === '') {
        throw new OpenAIEngineError(
          'API_KEY_MISSING',
          `openai engine: openai.api_key_env names the environment variable ${apiKeyEnv}, but it is not set or empty; export it (the key itself never goes in the config file)`,
        );
      }
      this.#apiKey = key;
    }
    const cap = this.#socketCap();
    this.#agent?.destroy();
    this.#freshAgent?.destroy();
    // The pool policy (README, "Connections and retries"): keep-alive, because a new TCP
    // connection per request adds a handshake to every TTFT and costs the client about twice the
    // CPU of a reused one. maxSockets follows the load mode (the closed-loop concurrency or
    // max_concurrency, else unlimited) so the agent never queues a request behind our back, and
    // maxFreeSockets matches it: Node's default of 256 would close the connections a burst
    // opened as soon as it drained, and the next burst would open them again. LIFO hands out the
    // most recently used socket, so the set in use stays as small as the load allows and idle
    // ones age out (the server's keep-alive timeout closes them).
    const options: http.AgentOptions = {
      keepAlive: true,
      maxSockets: cap,
      maxFreeSockets: cap,
      scheduling: 'lifo',
    };
    const https_ = new URL(baseUrl).protocol === 'https:';
    this.#agent = https_ ? new https.Agent(options) : new http.Agent(options);
    // Retries after a connection failed before any answer go through this one: a fresh socket
    // each time, never one from the pool that may be closing.
    this.#freshAgent = https_
      ? new https.Agent({ keepAlive: false })
      : new http.Agent({ keepAlive: false });

    const url = publicBaseUrl(baseUrl);
    const ready = await waitForServer(this.#transport(), {
      shownUrl: url,
      model,
      endpoint,
      readyTimeoutMs: this.config.readyTimeoutMs,
      apiKeyEnv,
      logger: this.#logger,
      ...(this.#progress ? { progress: this.#progress } : {}),
      signal: this.#signal,
      backoff: this.#startupRetry,
      redact: this.#redact,
    });
    if (!ready.ok) {
      throw new OpenAIEngineError(PROBLEM_CODES[ready.problem], `openai engine: ${ready.message}`);
    }
    const { models, modelListed } = ready;
    if (ready.note !== null) this.#logger.warn(`openai engine: ${ready.note}`);
    else if (modelListed === false) {
      // Not fatal: llama-server and some proxies serve whatever model name they are sent.
      this.#logger.info(
        `openai engine: model ${model} is not among the models ${url}/models lists (${models!.slice(0, 10).join(', ')}), but the server accepts it`,
      );
    }
    this.#loaded = true;
    this.#logger.info(`openai engine: connected to ${url}, model ${model}, endpoint ${endpoint}`);
    return {
      engine: 'openai',
      engineVersion: null,
      parameterCount: null,
      model,
      backend: 'remote',
      details: {
        baseUrl: url,
        endpoint,
        apiKeyEnv,
        authenticated: this.#apiKey !== null,
        servedModels: models === null ? null : models.slice(0, 50),
        modelListed,
        load: loadModeDetails(this.config.mode),
        requestTimeoutS: this.config.requestTimeoutMs / 1000,
        readyAfterS: ready.elapsedMs / 1000,
        ignoreEos: this.config.ignoreEos,
      },
    };
  }

  #socketCap(): number {
    const mode = this.config.mode;
    if (mode.kind === 'concurrency') return mode.concurrency;
    return mode.maxConcurrency ?? Number.POSITIVE_INFINITY;
  }

  /**
   * The load a call drives: the config's, or a sweep point's (`options.load`). A sweep's own
   * warmup, and a `run()` of a sweep without a point, go one request at a time.
   */
  #loadMode(options: RunOptions | undefined): OpenAILoadMode {
    const mode = this.config.mode;
    const load = options?.load;
    if (load === undefined)
      return mode.kind === 'sweep' ? { kind: 'concurrency', concurrency: 1 } : mode;
    const cap = mode.kind === 'concurrency' ? null : mode.maxConcurrency;
    if (load.kind === 'concurrency')
      return {
        kind: 'concurrency',
        concurrency: Math.min(load.concurrency, cap ?? load.concurrency),
      };
    return {
      kind: 'request_rate',
      requestRate: load.rate,
      burstiness: mode.kind === 'concurrency' ? 1 : mode.burstiness,
      arrivalSeed: mode.kind === 'concurrency' ? 0 : mode.arrivalSeed,
      maxConcurrency: cap,
    };
  }

  /** GET/POST against the base URL through the engine's pool, for the readiness check. */
  #transport(): ReadyTransport {
    return {
      get: (path, signal, timeoutMs) => this.#request('GET', path, null, signal, timeoutMs),
      post: (path, body, signal, timeoutMs) => this.#request('POST', path, body, signal, timeoutMs),
    };
  }

  /**
   * One plain request: `path` under the base URL, or an absolute URL. The readiness check goes
   * through a fresh connection each time; `pooled` ones (the tokenizer's many short calls) reuse
   * the keep-alive pool.
   */
  #request(
    method: 'GET' | 'POST',
    path: string,
    body: string | null,
    signal: AbortSignal,
    timeoutMs: number,
    pooled = false,
  ): Promise<HttpAnswer> {
    const url = /^https?:/.test(path) ? path : `${this.config.baseUrl}/${path}`;
    const transport = url.startsWith('https:') ? https : http;
    return new Promise((resolve, reject) => {
      const req = transport.request(url, {
        method,
        agent: pooled ? this.#agent! : this.#freshAgent!,
        headers: this.#headers(body !== null),
        signal,
        timeout: timeoutMs,
      });
      req.on('timeout', () => {
        const error: NodeJS.ErrnoException = new Error(`no answer in ${timeoutMs / 1000} s`);
        error.code = 'ATTEMPT_TIMEOUT';
        req.destroy(error);
      });
      req.on('error', (error: NodeJS.ErrnoException) => {
        error.message = this.#redact(error.message);
        reject(error);
      });
      req.on('response', (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          if (text.length < 1_000_000) text += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: this.#redact(text) }));
        res.on('error', (error) => reject(error));
      });
      req.end(body ?? undefined);
    });
  }

  #target(): StreamTarget {
    if (!this.#loaded || this.#agent === null) {
      throw new OpenAIEngineError(
        'DISPOSED',
        this.#disposed
          ? 'openai engine: already disposed'
          : 'openai engine: call load() before warmup() or run()',
      );
    }
    const path = this.config.endpoint === 'chat' ? 'chat/completions' : 'completions';
    return {
      url: new URL(`${this.config.baseUrl}/${path}`),
      agent: this.#agent,
      freshAgent: this.#freshAgent!,
      headers: this.#headers(true),
      endpoint: this.config.endpoint,
      timeoutMs: this.config.requestTimeoutMs,
      redact: this.#redact,
    };
  }

  #body(request: EngineRequest): string {
    const { model, endpoint, ignoreEos, decoder } = this.config;
    const body: Record<string, unknown> = {
      model,
      max_tokens: request.maxOutputTokens,
      stream: true,
      // Without this most servers send no token counts when streaming.
      stream_options: { include_usage: true },
      ...decoder,
    };
    if (endpoint === 'chat') body.messages = [{ role: 'user', content: request.prompt }];
    else body.prompt = request.prompt;
    if (ignoreEos) body.ignore_eos = true;
    return JSON.stringify(body);
  }

  async #drive(
    requests: EngineRequest[],
    requested: OpenAILoadMode,
  ): Promise<{
    records: StreamedRecord[];
    dispatch: DispatchSummary | null;
    /** The load the requests went out under: the one asked for, or a trace's schedule. */
    load: { mode: OpenAILoadMode; details: Record<string, unknown> };
    startedAt: number;
    endedAt: number;
  }> {
    const target = this.#target();
    const bodies = requests.map((r) => this.#body(r));
    // A trace's send times replace the load mode's arrivals (EngineRequest.sendAtMs). Its
    // requests leave at their times whatever is in flight, so the pool must neither hold them
    // back at the closed loop's socket cap nor close what a burst opened.
    const schedule = sendTimes(requests);
    if (schedule !== null && this.#agent !== null) {
      this.#agent.maxSockets = Number.POSITIVE_INFINITY;
      this.#agent.maxFreeSockets = Number.POSITIVE_INFINITY;
    }
    const mode = schedule === null ? requested : traceMode(schedule);
    // One abort listener per in-flight request: on a private signal, so hundreds of concurrent
    // streams neither trip Node's listener-leak warning nor pile listeners on the caller's signal.
    const run = new AbortController();
    setMaxListeners(0, run.signal);
    const forward = (): void => run.abort(this.#signal.reason);
    if (this.#signal.aborted) forward();
    else this.#signal.addEventListener('abort', forward, { once: true });
    // A later turn of a conversation waits for the previous one (EngineRequest.after).
    const send = inTurnOrder(
      requests,
      (index: number) =>
        streamRequest(target, requests[index]!.id, bodies[index]!, run.signal).then((record) => {
          if (record.error !== undefined) {
            this.#logger.debug(
              `openai engine: request ${record.id} failed (${record.error.type}): ${record.error.message}`,
            );
          }
          return record;
        }),
      run.signal,
    );
    const startedAt = performance.now();
    const load = await runLoad(requests.length, requested, send, run.signal, schedule).finally(() =>
      this.#signal.removeEventListener('abort', forward),
    );
    if (this.#signal.aborted) throw this.#signal.reason;
    const endedAt = performance.now();
    return {
      records: load.records,
      dispatch: openLoopDispatch(load, mode, this.config.maxClientLagMs, requests),
      load: {
        mode,
        details: schedule === null ? loadModeDetails(requested) : traceDetails(schedule),
      },
      startedAt,
      endedAt,
    };
  }

  /**
   * The server's tokenizer (`/tokenize`, as llama-server and vLLM serve it) for prompts of exact
   * lengths; unavailable for the chat endpoint, whose chat template adds tokens around the text.
   */
  async tokenizer(): Promise<TokenizerProbe> {
    this.#target();
    if (this.config.endpoint === 'chat')
      return {
        unavailable:
          'openai.endpoint is chat: the server wraps each prompt in its chat template, so a prompt’s length is not its text’s',
      };
    return findServerTokenizer(
      (url, body) =>
        this.#request('POST', url, body, this.#signal, this.config.requestTimeoutMs, true),
      {
        baseUrl: this.config.baseUrl,
        model: this.config.model,
        shownUrl: publicBaseUrl(this.config.baseUrl),
      },
    );
  }

  async warmup(requests: EngineRequest[]): Promise<RequestRecord[]> {
    if (requests.length === 0) return [];
    const { records } = await this.#drive(requests, this.#loadMode(undefined));
    const failed = records.filter((r) => r.error !== undefined);
    if (failed.length === records.length) {
      throw new OpenAIEngineError(
        'WARMUP_FAILED',
        `openai engine: all ${records.length} warmup requests failed; first: ${failed[0]!.error!.type}: ${failed[0]!.error!.message}`,
      );
    }
    return records.map(toRequestRecord);
  }

  async run(
    requests: EngineRequest[],
    _hooks?: RunHooks,
    options?: RunOptions,
  ): Promise<WorkloadOutcome> {
    const { records, dispatch, load, startedAt, endedAt } = await this.#drive(
      requests,
      this.#loadMode(options),
    );
    const failed = records.filter((r) => r.error !== undefined);
    const errors = errorsByType(records);
    const failureRate = records.length === 0 ? 0 : failed.length / records.length;
    if (failureRate > this.config.maxFailureRate) {
      const byType = Object.entries(errors)
        .map(([type, count]) => `${type} ${count}`)
        .join(', ');
      throw new OpenAIEngineError(
        'FAILURE_RATE_EXCEEDED',
        `openai engine: ${failed.length} of ${records.length} requests failed (${(failureRate * 100).toFixed(1)}%), above openai.max_failure_rate ${this.config.maxFailureRate}: ${byType}; first error: ${failed[0]!.error!.message}`,
      );
    }
    if (failed.length > 0) {
      this.#logger.warn(
        `openai engine: ${failed.length} of ${records.length} requests failed (${JSON.stringify(errors)}), within openai.max_failure_rate ${this.config.maxFailureRate}`,
      );
    }
    return this.#outcome(records, dispatch, load, startedAt, endedAt, errors);
  }

  #outcome(
    records: StreamedRecord[],
    dispatch: DispatchSummary | null,
    load: { mode: OpenAILoadMode; details: Record<string, unknown> },
    startedAt: number,
    endedAt: number,
    errors: Record<string, number>,
  ): WorkloadOutcome {
    let inputTokens = 0;
    let outputTokens = 0;
    let withUsage = 0;
    let succeeded = 0;
    let mismatched = 0;
    let perChunkUsage = 0;
    let peak = 0;
    let retried = 0;
    let retries = 0;
    for (const r of records) {
      if ((r.retries ?? 0) > 0) {
        retried++;
        retries += r.retries ?? 0;
      }
      if (r.error !== undefined) continue;
      succeeded++;
      inputTokens += r.inputTokens ?? 0;
      outputTokens += r.outputTokens ?? 0;
      if (r.usageReported) withUsage++;
      if (r.perChunkUsage) perChunkUsage++;
      if (r.usageReported && r.outputTokens !== r.timedTokens) mismatched++;
    }
    peak = peakInFlight(records);
    // 'server-usage' only when every successful request had it; one without means the total
    // is partly counted, and saying 'server-usage' would overstate it.
    const source: TokenCountSource =
      succeeded > 0 && withUsage === succeeded ? 'server-usage' : 'counted-chunks';
    const durationS = (endedAt - startedAt) / 1000;
    const extra: Record<string, unknown> = {
      load: load.details,
      workloadWindow: { startMs: startedAt, endMs: endedAt, durationS },
      // The harness divides this by the window for requests/s: completed requests only.
      requestCount: succeeded,
      requestOutcomes: {
        total: records.length,
        succeeded,
        failed: records.length - succeeded,
        failureRate: records.length === 0 ? 0 : (records.length - succeeded) / records.length,
      },
      errorsByType: errors,
      // Requests sent again on a fresh connection after theirs failed before any answer.
      connectionRetries: { requests: retried, retries },
      requestsPerS: durationS > 0 ? succeeded / durationS : null,
      peakInFlight: peak,
      tokenCounts: {
        source,
        requestsWithServerUsage: withUsage,
        requestsCounted: succeeded - withUsage,
        requestsWithPerChunkUsage: perChunkUsage,
        // Usage totals that disagree with the timestamped tokens: their ITLs are per chunk.
        requestsWithUntimedTokens: mismatched,
        inputTokensKnown: records.every((r) => r.error !== undefined || r.inputTokens !== null),
      },
      // Open loop: how the arrival schedule was kept (replaces the former `issueLagMs`).
      dispatch,
      steadyState: this.config.steadyState ? steadyStateWindow(records, load.mode) : null,
      goodput: this.config.slo === null ? null : goodput(records, this.config.slo, durationS),
      serverTimings: serverTimingsSummary(records),
    };
    return {
      requests: records.map(toRequestRecord),
      inputTokens,
      outputTokens,
      tokenCountSource: source,
      extra,
    };
  }

  async dispose(): Promise<void> {
    this.#disposed = true;
    this.#loaded = false;
    this.#agent?.destroy();
    this.#agent = null;
    this.#freshAgent?.destroy();
    this.#freshAgent = null;
    this.#apiKey = null;
  }
}

function toRequestRecord(r: StreamedRecord): RequestRecord {
  const record: RequestRecord = {
    id: r.id,
    startedAt: r.startedAt,
    firstTokenAt: r.firstTokenAt,
    tokenTimes: r.tokenTimes,
    endedAt: r.endedAt,
    inputTokens: r.inputTokens,
    outputTokens: r.outputTokens,
  };
  if (r.chunkTimes !== undefined) record.chunkTimes = r.chunkTimes;
  if (r.tokenSource !== undefined) record.tokenSource = r.tokenSource;
  if (r.retries !== undefined) record.retries = r.retries;
  if (r.serverTimings !== undefined) record.serverTimings = r.serverTimings;
  if (r.scheduledAt !== undefined) record.scheduledAt = r.scheduledAt;
  if (r.clientLagMs !== undefined) record.clientLagMs = r.clientLagMs;
  if (r.connectionWaitMs !== undefined) record.connectionWaitMs = r.connectionWaitMs;
  if (r.error !== undefined) record.error = r.error;
  return record;
}

/** `extra.load` of a trace replay: the send schedule replaced the configured mode. */
function traceDetails(schedule: readonly number[]): Record<string, unknown> {
  const spanMs = schedule.length > 0 ? (schedule[schedule.length - 1] as number) : 0;
  return {
    mode: 'trace',
    requests: schedule.length,
    spanS: spanMs / 1000,
    meanRequestRate: spanMs > 0 ? (schedule.length - 1) / (spanMs / 1000) : null,
  };
}

/**
 * The open-loop mode a trace amounts to: its mean rate and no slot cap, for the dispatch summary
 * (target rate) and the steady state (the arrivals rule).
 */
function traceMode(schedule: readonly number[]): OpenAILoadMode {
  const spanMs = schedule.length > 0 ? (schedule[schedule.length - 1] as number) : 0;
  return {
    kind: 'request_rate',
    requestRate: spanMs > 0 ? (schedule.length - 1) / (spanMs / 1000) : schedule.length,
    burstiness: 1,
    arrivalSeed: 0,
    maxConcurrency: null,
  };
}

function loadModeDetails(mode: ResolvedOpenAIConfig['mode']): Record<string, unknown> {
  if (mode.kind === 'sweep')
    return {
      mode: 'sweep',
      points: mode.points,
      burstiness: mode.burstiness,
      arrivalSeed: mode.arrivalSeed,
      maxConcurrency: mode.maxConcurrency,
    };
  return mode.kind === 'concurrency'
    ? { mode: 'concurrency', concurrency: mode.concurrency }
    : {
        mode: 'request_rate',
        requestRate: mode.requestRate,
        burstiness: mode.burstiness,
        arrivalSeed: mode.arrivalSeed,
        maxConcurrency: mode.maxConcurrency,
      };
}

function peakInFlight(records: readonly RequestRecord[]): number {
  const events: Array<[number, number]> = [];
  for (const r of records) events.push([r.startedAt, 1], [r.endedAt, -1]);
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let current = 0;
  let peak = 0;
  for (const [, delta] of events) {
    current += delta;
    if (current > peak) peak = current;
  }
  return peak;
}

/**
 * Stamps each record of an open-loop run with its scheduled time, the client's lateness and its
 * connection wait (slot wait + time to open a new connection), and sums them up as
 * `extra.dispatch`; `null` in closed loop. A later turn of a conversation (`after`) cannot be
 * sent before the previous turn ended: its scheduled time is the later of its arrival and that
 * end, so the latencies counted from it leave out the wait for the previous answer.
 */
function openLoopDispatch(
  load: LoadResult,
  mode: OpenAILoadMode,
  maxClientLagMs: number,
  requests: readonly EngineRequest[],
): DispatchSummary | null {
  const report = load.dispatch;
  if (report === null || mode.kind !== 'request_rate') return null;
  const connectMs = new Float64Array(report.results.length);
  const positionOf = new Map(requests.map((r, i) => [r.id, i]));
  let opened = 0;
  let reused = 0;
  report.results.forEach((record, i) => {
    if (record === undefined) return;
    const arrival = report.scheduledAt[i]!;
    const after = requests[i]?.after;
    const previous = after === undefined ? undefined : report.results[positionOf.get(after) ?? -1];
    const scheduled = previous === undefined ? arrival : Math.max(arrival, previous.endedAt);
    const ready = report.readyAt[i]!;
    const connect =
      record.connectedAt === null ? 0 : Math.max(0, record.connectedAt - record.startedAt);
    connectMs[i] = connect;
    if (record.newConnection) opened++;
    else reused++;
    record.scheduledAt = scheduled;
    record.clientLagMs = Math.max(0, report.issuedAt[i]! - ready);
    record.connectionWaitMs = Math.max(0, ready - arrival) + connect;
  });
  const stats: DispatchStats = dispatchStats(report, {
    targetRate: mode.requestRate,
    maxConcurrency: mode.maxConcurrency,
    connectionWaitMs: connectMs,
  });
  return { ...stats, maxClientLagMs, connections: { opened, reused } };
}

/** What `checkOpenAIServer` found. */
export type OpenAIServerCheck =
  | {
      ok: true;
      /** The base URL without credentials. */
      url: string;
      model: string;
      /** Model ids the server lists; `null` without a `/models` route. */
      models: string[] | null;
      modelListed: boolean | null;
      /** How long the server took to answer (ms). */
      elapsedMs: number;
    }
  | {
      ok: false;
      url: string;
      model: string;
      code: OpenAIEngineErrorCode | 'CONFIG';
      message: string;
    };

/**
 * Checks an `openai` section the way a run's `load()` does (API key variable, reachability, the
 * model: listed, or accepted by a one-token probe), waiting at most `timeoutS` for a server
 * that is starting. Never throws for an unusable server or section: the outcome says why.
 *
 * @example
 * const check = await checkOpenAIServer(config, { timeoutS: 5 });
 * if (!check.ok) console.error(check.code, check.message);
 */
export async function checkOpenAIServer(
  config: OpenAIEngineConfig,
  options: {
    timeoutS?: number;
    env?: Readonly<Record<string, string | undefined>>;
    logger?: Logger;
    signal?: AbortSignal;
  } = {},
): Promise<OpenAIServerCheck> {
  const section = {
    ...config.openai,
    ...(options.timeoutS !== undefined ? { ready_timeout_s: options.timeoutS } : {}),
  };
  let engine: ReturnType<typeof createOpenAIEngine>;
  const rawUrl = String(config.openai?.base_url ?? '');
  let url = rawUrl;
  try {
    url = publicBaseUrl(rawUrl);
  } catch {
    // an invalid URL: the config error below says so
  }
  const model = config.openai?.model ?? config.model ?? '';
  try {
    engine = createOpenAIEngine(
      { ...config, openai: section },
      {
        logger: options.logger ?? noopLogger,
        signal: options.signal ?? new AbortController().signal,
        ...(options.env ? { env: options.env } : {}),
      },
    );
  } catch (error) {
    return { ok: false, url, model, code: 'CONFIG', message: (error as Error).message };
  }
  try {
    const info = await engine.load();
    const details = info.details as {
      servedModels: string[] | null;
      modelListed: boolean | null;
      readyAfterS: number;
    };
    return {
      ok: true,
      url,
      model: info.model,
      models: details.servedModels,
      modelListed: details.modelListed,
      elapsedMs: details.readyAfterS * 1000,
    };
  } catch (error) {
    if (!(error instanceof OpenAIEngineError)) throw error;
    return { ok: false, url, model, code: error.code, message: error.message };
  } finally {
    await engine.dispose();
  }
}
