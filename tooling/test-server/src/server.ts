import { appendFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { type Metrics, newMetrics, renderMetrics } from './metrics';
import { type Endpoint, type Script, type UsageMode, writeScripted } from './script';
import { tokenIds, wordCount } from './tokens';

/** A request as the server received it. */
export interface ReceivedRequest {
  /** 0-based position among requests of its kind (completions, or `/models` calls). */
  index: number;
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: Record<string, unknown> | null;
  /** `performance.now()` when the request's first byte was handled. */
  receivedAt: number;
  /** The prompt (completions) or the concatenated message contents (chat). */
  prompt: string;
  /** Prompt tokens by the server's tokenizer (one per whitespace-separated word). */
  promptTokens: number;
  /** Prompt tokens the prompt cache already held (0 without `promptCache`). */
  cachedTokens: number;
  /** `performance.now()` right after each content chunk was written. */
  chunkWrittenAt: number[];
}

/** One line of the arrival log (`arrivals`, `--log-arrivals`). */
export interface Arrival {
  /** ms since the server started (its own monotonic clock). */
  tMs: number;
  /** Wall clock, ISO-8601 UTC. */
  at: string;
  method: string;
  path: string;
  promptTokens: number | null;
  maxTokens: number | null;
}

/**
 * Behaviour of the server as a whole; the per-request part is a {@link Script}. Every field is
 * optional; the defaults answer like a fast, well-behaved vLLM.
 */
export interface TestServerOptions {
  /** Port to listen on; 0 (default) picks a free one. */
  port?: number;
  /** Default `127.0.0.1`. */
  host?: string;
  /** Model ids for `GET /v1/models`. Default `['test-model']`. */
  models?: string[];
  /** Answer 404 to a completion for a model not in `models`, as vLLM does. Default false (llama-server accepts any name). */
  strictModel?: boolean;
  /** Answer 404 on `/v1/models` (a server without the route). */
  noModelsRoute?: boolean;
  /** Require `Authorization: Bearer <apiKey>` on `/v1/*` (401 otherwise). */
  apiKey?: string;
  /** Status for `GET /v1/models` per call (index = call number); then 200. */
  modelsStatus?: number[];

  // --- the default script, built per request from its body ---------------------------------
  /** Output tokens when the request has no `max_tokens`. Default 16. */
  defaultMaxTokens?: number;
  /** Stop every response after this many tokens (an EOS), unless the request sets `ignore_eos`. */
  outputTokens?: number;
  /** Tokens per chunk after the first. Default 1. */
  tokensPerChunk?: number;
  /** Where the usage goes. Default `final`. */
  usage?: UsageMode;
  /** Attach logprobs. */
  logprobs?: boolean;
  /** llama-server's `timings` block on the finish chunk. */
  timings?: boolean;
  /** Time to the first token, besides prefill (ms). Default 0. */
  ttftMs?: number;
  /** Prefill time per prompt token not found in the prompt cache (ms). Default 0. */
  prefillMsPerToken?: number;
  /** Decode time per output token (ms), on an absolute schedule. Default 0. */
  paceMs?: number;
  /** One shared decode step of this period for every stream (overrides `paceMs`). */
  batchTickMs?: number;
  /**
   * Per-request override: return a whole {@link Script} (the defaults above are not applied) or
   * `undefined` for the default script.
   */
  scenario?: (request: ReceivedRequest) => Script | undefined;

  // --- server-level behaviour ----------------------------------------------------------------
  /**
   * Keep prompts: a prompt sharing a prefix (in words) with an earlier one has that prefix
   * cached, so its prefill skips it (reported as `cached_tokens` / `cache_n`).
   */
  promptCache?: boolean;
  /** At most this many streams at once; later requests wait (queue) for a free slot. */
  maxStreams?: number;
  /**
   * A server that slows under sustained load (thermal throttling, a KV cache that starts
   * preempting): every completion request after the first `slowAfter` takes `slowFactor` times as
   * long (its first-token delay and its pace or batch tick). With `maxStreams`, a rate the server
   * sustained before now queues, so TTFT and the requests in flight climb: over-saturation.
   */
  slowAfter?: number;
  /** How much slower (× the first-token delay and the pace). Default 4. */
  slowFactor?: number;
  /**
   * Close each connection after this many responses on it although every response says
   * `Connection: keep-alive` (some servers do). A request that arrives on a connection being
   * closed is dropped without an answer, as it would be on a real socket.
   */
  closeAfterResponses?: number;
  /** Wait this long after the response before closing (ms). Default 0. */
  closeDelayMs?: number;
  /** For this long after start (ms) answer 503 "Loading model" to everything (llama-server). */
  startupMs?: number;
  /** Crash when completion request N+1 arrives: every connection is reset and `onCrash` runs. */
  crashAfter?: number;
  /** What a crash does besides resetting connections. The program exits; in-process: nothing more. */
  onCrash?: () => void;
  /** Append one JSON line per request to this file (the arrival log). */
  logArrivals?: string;
  /** Close the server by itself after this long (ms). Default: never. */
  lifetimeMs?: number;
}

export interface TestServer {
  /** Base URL with the `/v1` prefix. */
  baseUrl: string;
  port: number;
  /** Completion requests in arrival order. */
  requests: ReceivedRequest[];
  /** `GET /v1/models` calls. */
  modelsCalls: ReceivedRequest[];
  /** Every request in arrival order (all routes). */
  arrivals: Arrival[];
  /** Streams being answered now, and the most seen at once. */
  readonly inFlight: number;
  readonly maxInFlight: number;
  /** Counters behind `/metrics`. */
  readonly metrics: Readonly<Metrics>;
  /** Destroys every open connection but keeps listening (a server closing idle keep-alives). */
  dropConnections(): void;
  close(): Promise<void>;
}

const json = (res: http.ServerResponse, status: number, body: unknown): void => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};

function promptOf(body: Record<string, unknown> | null): string {
  if (body === null) return '';
  if (typeof body.prompt === 'string') return body.prompt;
  if (typeof body.content === 'string') return body.content;
  if (Array.isArray(body.messages)) {
    return body.messages
      .map((m) => (typeof m?.content === 'string' ? (m.content as string) : ''))
      .join('\n');
  }
  return '';
}

/** Longest common prefix, in words, between `words` and any prompt in `seen`. */
function cachedPrefix(words: readonly string[], seen: readonly (readonly string[])[]): number {
  let best = 0;
  for (const other of seen) {
    const n = Math.min(words.length, other.length);
    let k = 0;
    while (k < n && words[k] === other[k]) k++;
    if (k > best) best = k;
    if (best === words.length) break;
  }
  return best;
}

/**
 * Starts the server on 127.0.0.1 (a random port by default). It answers `/v1/completions` and
 * `/v1/chat/completions` with SSE streams, `/v1/models`, `/health`, `/metrics` (Prometheus text)
 * and `/tokenize`.
 *
 * @example
 * const server = await startTestServer({ paceMs: 20, tokensPerChunk: 3, closeAfterResponses: 1 });
 * // … point a client at server.baseUrl …
 * await server.close();
 */
export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const startedAt = performance.now();
  const models = options.models ?? ['test-model'];
  const requests: ReceivedRequest[] = [];
  const modelsCalls: ReceivedRequest[] = [];
  const arrivals: Arrival[] = [];
  const metrics = newMetrics();
  const seenPrompts: string[][] = [];
  const sockets = new Set<Socket>();
  const closing = new WeakSet<Socket>();
  const servedOn = new WeakMap<Socket, number>();
  const waiting: Array<() => void> = [];
  let crashed = false;
  let maxInFlight = 0;

  const loading = (): boolean =>
    options.startupMs !== undefined && performance.now() - startedAt < options.startupMs;

  const acquire = async (): Promise<void> => {
    const cap = options.maxStreams ?? Number.POSITIVE_INFINITY;
    if (metrics.running >= cap) {
      metrics.waiting++;
      await new Promise<void>((resolve) => waiting.push(resolve));
      metrics.waiting--;
    }
    metrics.running++;
    if (metrics.running > maxInFlight) maxInFlight = metrics.running;
  };
  const release = (): void => {
    metrics.running--;
    waiting.shift()?.();
  };

  const crash = (): void => {
    crashed = true;
    server.close();
    for (const socket of sockets) socket.destroy();
    options.onCrash?.();
  };

  const logArrival = (method: string, path: string, body: Record<string, unknown> | null) => {
    const arrival: Arrival = {
      tMs: performance.now() - startedAt,
      at: new Date().toISOString(),
      method,
      path,
      promptTokens: body === null ? null : wordCount(promptOf(body)),
      maxTokens: typeof body?.max_tokens === 'number' ? body.max_tokens : null,
    };
    arrivals.push(arrival);
    if (options.logArrivals) appendFileSync(options.logArrivals, `${JSON.stringify(arrival)}\n`);
  };

  /** The default script for a completion request: the server options applied to its body. */
  const defaultScript = (record: ReceivedRequest): Script => {
    const body = record.body ?? {};
    const asked = typeof body.max_tokens === 'number' ? body.max_tokens : undefined;
    let tokens = asked ?? options.defaultMaxTokens ?? 16;
    if (options.outputTokens !== undefined && body.ignore_eos !== true) {
      tokens = Math.min(tokens, options.outputTokens);
    }
    const uncached = record.promptTokens - record.cachedTokens;
    const slow =
      options.slowAfter !== undefined && record.index >= options.slowAfter
        ? (options.slowFactor ?? 4)
        : 1;
    const script: Script = {
      tokens,
      promptTokens: record.promptTokens,
      firstDelayMs: slow * ((options.ttftMs ?? 0) + (options.prefillMsPerToken ?? 0) * uncached),
      tokensPerChunk: options.tokensPerChunk ?? 1,
      usage: options.usage ?? 'final',
    };
    if (options.promptCache) script.cachedTokens = record.cachedTokens;
    if (options.logprobs) script.logprobs = true;
    if (options.timings) script.timings = true;
    if (options.batchTickMs !== undefined) script.batchTickMs = slow * options.batchTickMs;
    else if (options.paceMs !== undefined) script.paceMs = slow * options.paceMs;
    return script;
  };

  const complete = async (
    endpoint: Endpoint,
    record: ReceivedRequest,
    res: http.ServerResponse,
  ): Promise<void> => {
    const model = record.body?.model;
    if (options.strictModel && (typeof model !== 'string' || !models.includes(model))) {
      json(res, 404, {
        error: {
          message: `The model \`${String(model)}\` does not exist.`,
          type: 'NotFoundError',
          code: 404,
        },
      });
      return;
    }
    await acquire();
    let released = false;
    const done = (): void => {
      if (released) return;
      released = true;
      release();
    };
    res.on('close', done);
    try {
      const script = options.scenario?.(record) ?? defaultScript(record);
      const facts = await writeScripted(endpoint, script, res);
      record.chunkWrittenAt = facts.chunkWrittenAt;
      metrics.generationTokens += facts.completionTokens;
      if (facts.completed) metrics.succeeded++;
    } finally {
      done();
    }
  };

  const route = async (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    body: Record<string, unknown> | null,
    receivedAt: number,
  ): Promise<void> => {
    const method = req.method ?? '';
    const path = (req.url ?? '').split('?')[0] ?? '';
    logArrival(method, path, body);
    if (method === 'GET' && path === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      res.end(renderMetrics(metrics, models[0] ?? 'test-model'));
      return;
    }
    if (loading()) {
      // llama-server's exact answer while it loads the model.
      json(res, 503, {
        error: { code: 503, message: 'Loading model', type: 'unavailable_error' },
      });
      return;
    }
    if (method === 'GET' && path === '/health') {
      json(res, 200, { status: 'ok' });
      return;
    }
    if (method === 'POST' && (path === '/tokenize' || path === '/v1/tokenize')) {
      const ids = tokenIds(promptOf(body));
      json(res, 200, { tokens: ids, count: ids.length, max_model_len: 1 << 20 });
      return;
    }
    if (options.apiKey !== undefined && req.headers.authorization !== `Bearer ${options.apiKey}`) {
      json(res, 401, { error: { message: 'Incorrect API key provided', code: 401 } });
      return;
    }
    const record: ReceivedRequest = {
      index: 0,
      method,
      path,
      headers: req.headers,
      body,
      receivedAt,
      prompt: '',
      promptTokens: 0,
      cachedTokens: 0,
      chunkWrittenAt: [],
    };
    if (method === 'GET' && path === '/v1/models') {
      record.index = modelsCalls.length;
      modelsCalls.push(record);
      const status = options.noModelsRoute ? 404 : (options.modelsStatus?.[record.index] ?? 200);
      json(
        res,
        status,
        status === 200
          ? { object: 'list', data: models.map((id) => ({ id, object: 'model' })) }
          : { error: { message: `models status ${status}` } },
      );
      return;
    }
    const endpoint: Endpoint | null =
      path === '/v1/chat/completions' ? 'chat' : path === '/v1/completions' ? 'completions' : null;
    if (method !== 'POST' || endpoint === null) {
      json(res, 404, { error: { message: `no route ${method} ${path}` } });
      return;
    }
    if (options.crashAfter !== undefined && requests.length >= options.crashAfter) {
      crash();
      return;
    }
    record.index = requests.length;
    record.prompt = promptOf(body);
    const words = record.prompt.split(/\s+/).filter((w) => w !== '');
    record.promptTokens = words.length;
    if (options.promptCache) {
      // Like llama-server, at least the last prompt token is evaluated again.
      record.cachedTokens = Math.min(cachedPrefix(words, seenPrompts), words.length - 1);
      record.cachedTokens = Math.max(0, record.cachedTokens);
      seenPrompts.push(words);
    }
    requests.push(record);
    metrics.requests++;
    metrics.promptTokens += record.promptTokens;
    metrics.cacheQueryTokens += record.promptTokens;
    metrics.cacheHitTokens += record.cachedTokens;
    await complete(endpoint, record, res);
  };

  const server = http.createServer((req, res) => {
    const socket = req.socket;
    const receivedAt = performance.now();
    if (closing.has(socket) || crashed) {
      // The connection is being closed: the request is lost, as on a real socket.
      metrics.droppedRequests++;
      socket.destroy();
      return;
    }
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      raw += chunk;
    });
    req.on('end', () => {
      let body: Record<string, unknown> | null = null;
      try {
        body = raw ? (JSON.parse(raw) as Record<string, unknown>) : null;
      } catch {
        body = null;
      }
      if (options.closeAfterResponses !== undefined) {
        res.on('finish', () => {
          const served = (servedOn.get(socket) ?? 0) + 1;
          servedOn.set(socket, served);
          if (served < options.closeAfterResponses!) return;
          closing.add(socket);
          metrics.closedConnections++;
          const close = (): void => {
            socket.end();
          };
          if ((options.closeDelayMs ?? 0) > 0) setTimeout(close, options.closeDelayMs);
          else setImmediate(close);
        });
      }
      route(req, res, body, receivedAt).catch(() => res.destroy());
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    metrics.connections++;
    socket.on('close', () => sockets.delete(socket));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  let closed: Promise<void> | null = null;
  const close = (): Promise<void> => {
    closed ??= new Promise<void>((resolve) => {
      if (lifetime) clearTimeout(lifetime);
      for (const socket of sockets) socket.destroy();
      if (!server.listening) resolve();
      else server.close(() => resolve());
    });
    return closed;
  };
  const lifetime =
    options.lifetimeMs === undefined ? null : setTimeout(() => void close(), options.lifetimeMs);
  lifetime?.unref();
  const host = options.host ?? '127.0.0.1';

  return {
    baseUrl: `http://${host.includes(':') ? `[${host}]` : host}:${port}/v1`,
    port,
    requests,
    modelsCalls,
    arrivals,
    get inFlight() {
      return metrics.running;
    },
    get maxInFlight() {
      return maxInFlight;
    },
    metrics,
    dropConnections() {
      for (const socket of sockets) socket.destroy();
    },
    close,
  };
}
