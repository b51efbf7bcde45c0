import { setMaxListeners } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import { performance } from 'node:perf_hooks';
import { type Logger, noopLogger, RetryableError, retry } from '@llem/resilience';
import type {
  Engine,
  EngineContext,
  EngineInfo,
  EngineRequest,
  RequestRecord,
  TokenCountSource,
  WorkloadOutcome,
} from '../engine';
import {
  type OpenAIEngineConfig,
  publicBaseUrl,
  type ResolvedOpenAIConfig,
  resolveOpenAIConfig,
} from './config';
import { OpenAIEngineError } from './errors';
import { runLoad } from './load';
import { errorsByType, goodput, steadyStateWindow } from './metrics';
import { type StreamedRecord, type StreamTarget, streamRequest } from './stream';

/** How `load()` waits for a server that is still starting. */
export interface StartupRetryOptions {
  /** Retries after the first attempt. Default 30. */
  retries?: number;
  /** First delay in ms. Default 1000. */
  delayMs?: number;
  /** Backoff factor. Default 1.5. */
  factor?: number;
  /** Longest single delay in ms. Default 10 000 (so ~4 minutes in all with the defaults). */
  maxDelayMs?: number;
}

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
  readonly #signal: AbortSignal;
  readonly #env: Readonly<Record<string, string | undefined>>;
  readonly #startupRetry: Required<StartupRetryOptions>;
  // Private fields: the key never shows up in JSON.stringify, util.inspect or the logger.
  #apiKey: string | null = null;
  #agent: http.Agent | null = null;
  #loaded = false;
  #disposed = false;

  constructor(config: ResolvedOpenAIConfig, ctx: OpenAIEngineOptions) {
    this.config = config;
    this.#logger = ctx.logger ?? noopLogger;
    this.#signal = ctx.signal ?? new AbortController().signal;
    this.#env = ctx.env ?? process.env;
    this.#startupRetry = {
      retries: 30,
      delayMs: 1000,
      factor: 1.5,
      maxDelayMs: 10_000,
      ...ctx.startupRetry,
    };
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
    // keep-alive: a new TCP connection per request would add a handshake to every TTFT.
    // maxSockets follows the load mode so the agent never queues requests behind our back.
    const options: http.AgentOptions = { keepAlive: true, maxSockets: cap, scheduling: 'lifo' };
    this.#agent =
      new URL(baseUrl).protocol === 'https:' ? new https.Agent(options) : new http.Agent(options);

    const url = publicBaseUrl(baseUrl);
    const models = await this.#checkServer();
    const modelListed = models === null ? null : models.includes(model);
    if (modelListed === false) {
      // Not fatal: llama-server and some proxies serve whatever model name they are sent.
      this.#logger.warn(
        `openai engine: model ${model} is not among the models ${url}/models lists (${models!.slice(0, 10).join(', ')}); requests may fail`,
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
        load: loadModeDetails(this.config),
        requestTimeoutS: this.config.requestTimeoutMs / 1000,
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
   * GET {base_url}/models, retried while the server is not up yet (connection refused or reset,
   * 502/503/504 from a proxy or a server still loading weights). Returns the model ids, or `null`
   * when the server has no /models route.
   */
  async #checkServer(): Promise<string[] | null> {
    const url = `${this.config.baseUrl}/models`;
    const shown = `${publicBaseUrl(this.config.baseUrl)}/models`;
    let result: { status: number; body: string };
    let attempts = 0;
    try {
      result = await retry(
        async ({ signal, attempt }) => {
          attempts = attempt;
          const response = await this.#get(url, signal);
          if (response.status === 502 || response.status === 503 || response.status === 504) {
            throw new RetryableError(
              `HTTP ${response.status} from ${shown} (server still loading?)`,
            );
          }
          return response;
        },
        {
          ...this.#startupRetry,
          signal: this.#signal,
          logger: this.#logger,
          name: `openai engine: GET ${shown}`,
        },
      );
    } catch (error) {
      if (this.#signal.aborted) throw error;
      throw new OpenAIEngineError(
        'UNREACHABLE',
        this.#redact(
          `openai engine: could not reach ${shown} (${attempts === 1 ? '1 attempt' : `${attempts} attempts`}): ${(error as Error).message}. Is the server running at openai.base_url?`,
        ),
        { cause: error },
      );
    }
    if (result.status === 401 || result.status === 403) {
      const hint =
        this.config.apiKeyEnv === null
          ? 'set openai.api_key_env to the name of the environment variable holding the key'
          : `check the key in the environment variable ${this.config.apiKeyEnv}`;
      throw new OpenAIEngineError(
        'AUTH',
        `openai engine: ${shown} refused the request (HTTP ${result.status}); ${hint}`,
      );
    }
    if (result.status === 404 || result.status === 405) return null;
    if (result.status < 200 || result.status >= 300) {
      throw new OpenAIEngineError(
        'UNREACHABLE',
        this.#redact(
          `openai engine: ${shown} answered HTTP ${result.status}: ${result.body.slice(0, 300)}`,
        ),
      );
    }
    try {
      const parsed = JSON.parse(result.body) as { data?: Array<{ id?: unknown }> };
      if (!Array.isArray(parsed.data)) return null;
      return parsed.data.map((m) => m.id).filter((id): id is string => typeof id === 'string');
    } catch {
      return null;
    }
  }

  #get(url: string, signal: AbortSignal): Promise<{ status: number; body: string }> {
    const transport = url.startsWith('https:') ? https : http;
    return new Promise((resolve, reject) => {
      const req = transport.request(url, {
        method: 'GET',
        agent: this.#agent!,
        headers: this.#headers(false),
        signal,
        timeout: 30_000,
      });
      req.on('timeout', () => req.destroy(new RetryableError(`no answer from ${url} in 30 s`)));
      req.on('error', (error: NodeJS.ErrnoException) => {
        const transient =
          error.code === 'ECONNREFUSED' ||
          error.code === 'ECONNRESET' ||
          error.code === 'EPIPE' ||
          error instanceof RetryableError;
        const message = this.#redact(`${error.code ?? error.name}: ${error.message}`);
        reject(transient ? new RetryableError(message) : new Error(message));
      });
      req.on('response', (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          if (body.length < 1_000_000) body += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', (error) => reject(new RetryableError(this.#redact(error.message))));
      });
      req.end();
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

  async #drive(requests: EngineRequest[]): Promise<{
    records: StreamedRecord[];
    issueLagMs: number[];
    startedAt: number;
    endedAt: number;
  }> {
    const target = this.#target();
    const bodies = requests.map((r) => this.#body(r));
    // One abort listener per in-flight request: on a private signal, so hundreds of concurrent
    // streams neither trip Node's listener-leak warning nor pile listeners on the caller's signal.
    const run = new AbortController();
    setMaxListeners(0, run.signal);
    const forward = (): void => run.abort(this.#signal.reason);
    if (this.#signal.aborted) forward();
    else this.#signal.addEventListener('abort', forward, { once: true });
    const startedAt = performance.now();
    const { records, issueLagMs } = await runLoad(
      requests.length,
      this.config.mode,
      (index) =>
        streamRequest(target, requests[index]!.id, bodies[index]!, run.signal).then((record) => {
          if (record.error !== undefined) {
            this.#logger.debug(
              `openai engine: request ${record.id} failed (${record.error.type}): ${record.error.message}`,
            );
          }
          return record;
        }),
      run.signal,
    ).finally(() => this.#signal.removeEventListener('abort', forward));
    if (this.#signal.aborted) throw this.#signal.reason;
    return { records, issueLagMs, startedAt, endedAt: performance.now() };
  }

  async warmup(requests: EngineRequest[]): Promise<RequestRecord[]> {
    if (requests.length === 0) return [];
    const { records } = await this.#drive(requests);
    const failed = records.filter((r) => r.error !== undefined);
    if (failed.length === records.length) {
      throw new OpenAIEngineError(
        'WARMUP_FAILED',
        `openai engine: all ${records.length} warmup requests failed; first: ${failed[0]!.error!.type}: ${failed[0]!.error!.message}`,
      );
    }
    return records.map(toRequestRecord);
  }

  async run(requests: EngineRequest[]): Promise<WorkloadOutcome> {
    const { records, issueLagMs, startedAt, endedAt } = await this.#drive(requests);
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
    return this.#outcome(records, issueLagMs, startedAt, endedAt, errors);
  }

  #outcome(
    records: StreamedRecord[],
    issueLagMs: number[],
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
    for (const r of records) {
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
      load: loadModeDetails(this.config),
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
      issueLagMs: issueLagMs.length === 0 ? null : summary(issueLagMs),
      steadyState: this.config.steadyState ? steadyStateWindow(records, this.config.mode) : null,
      goodput: this.config.slo === null ? null : goodput(records, this.config.slo, durationS),
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
  if (r.error !== undefined) record.error = r.error;
  return record;
}

function loadModeDetails(config: ResolvedOpenAIConfig): Record<string, unknown> {
  const mode = config.mode;
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

function summary(values: number[]): { mean: number; max: number } {
  let sum = 0;
  let max = 0;
  for (const v of values) {
    sum += v;
    if (v > max) max = v;
  }
  return { mean: sum / values.length, max };
}
