/**
 * A real OpenAI-compatible HTTP server for tests and the benchmark: it listens on 127.0.0.1 on a
 * random port and streams SSE exactly as vLLM/llama-server do, with per-request scripts that
 * control timing, chunking (multi-token and empty chunks), usage blocks and failures. It records
 * what it received and when it wrote each chunk, and closes itself after `lifetimeMs`.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';

export interface ScriptChunk {
  text: string;
  /** Tokens this chunk stands for (reported in continuous usage). Default 1 if text, else 0. */
  tokens?: number;
  /** Wait before writing this chunk (ms). Default: the script's `interChunkMs`. */
  delayMs?: number;
}

/** What the server does for one request. */
export interface Script {
  /** Answer with this status and `errorBody` instead of a stream. */
  status?: number;
  errorBody?: string;
  /** Wait before the status line (ms). */
  headersDelayMs?: number;
  /** Wait between the headers and the first chunk (ms); the server-side TTFT. Default 0. */
  firstDelayMs?: number;
  /** Default delay between chunks (ms). Default 0. */
  interChunkMs?: number;
  /**
   * Pace every stream off one shared clock instead: each tick of this period writes the next
   * chunk of every active stream, as a batching server's decode step does. Overrides delays.
   */
  batchTickMs?: number;
  /** The content chunks. Default: `tokens` single-token chunks. */
  chunks?: ScriptChunk[];
  /** Number of single-token chunks when `chunks` is absent. Default 5. */
  tokens?: number;
  /** Attach logprobs with one entry per token of each chunk (as with `logprobs: 1`). */
  logprobs?: boolean;
  /** `final`: one usage block at the end (include_usage); `continuous`: running usage in every chunk too (vLLM continuous_usage_stats); `none`. */
  usage?: 'final' | 'continuous' | 'none';
  /** Completion tokens reported in the final usage; default the sum of chunk tokens. */
  usageCompletionTokens?: number;
  promptTokens?: number;
  /** Replace chunk i with invalid JSON. */
  malformedAt?: number;
  /** Send an error event after chunk i. */
  errorEventAt?: number;
  /** Destroy the socket after writing this many chunks. */
  dropAfter?: number;
  /** Send headers, then nothing until the client gives up. */
  hang?: boolean;
  /** Leave out `data: [DONE]` and the finish_reason chunk. */
  unterminated?: boolean;
  /** Answer 200 with a plain JSON body instead of SSE. */
  notStreaming?: boolean;
  /** Write this raw text right after the headers (comments, unknown fields, keep-alives). */
  preamble?: string;
}

export interface ReceivedRequest {
  index: number;
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: Record<string, unknown> | null;
  receivedAt: number;
  /** performance.now() right after each content chunk was written. */
  chunkWrittenAt: number[];
}

export interface ServerOptions {
  /** Script for POST /v1/completions and /v1/chat/completions. */
  scenario?: (request: ReceivedRequest) => Script;
  /** Model ids for GET /v1/models. */
  models?: string[];
  /** Status for GET /v1/models per call (index = call number); then 200. */
  modelsStatus?: number[];
  /** Close the server by itself after this long (ms). Default 60 000. */
  lifetimeMs?: number;
  /** Listen on this port instead of a random one. */
  port?: number;
}

export interface OpenAITestServer {
  /** Base URL with the /v1 prefix. */
  baseUrl: string;
  port: number;
  /** POST requests in arrival order. */
  requests: ReceivedRequest[];
  modelsCalls: ReceivedRequest[];
  /** Streams in flight now and the most seen at once. */
  readonly inFlight: number;
  readonly maxInFlight: number;
  /** Destroys every open connection but keeps listening (a server closing idle keep-alives). */
  dropConnections(): void;
  close(): Promise<void>;
}

const encoder = (object: unknown): string => `data: ${JSON.stringify(object)}\n\n`;

function contentChunk(endpoint: 'chat' | 'completions', text: string, extra: object): string {
  return endpoint === 'chat'
    ? encoder({
        id: 'cmpl-test',
        object: 'chat.completion.chunk',
        model: 'test-model',
        choices: [{ index: 0, delta: { content: text }, finish_reason: null }],
        ...extra,
      })
    : encoder({
        id: 'cmpl-test',
        object: 'text_completion',
        model: 'test-model',
        choices: [{ index: 0, text, finish_reason: null }],
        ...extra,
      });
}

function finishChunk(endpoint: 'chat' | 'completions', extra: object): string {
  return endpoint === 'chat'
    ? encoder({ choices: [{ index: 0, delta: {}, finish_reason: 'length' }], ...extra })
    : encoder({ choices: [{ index: 0, text: '', finish_reason: 'length' }], ...extra });
}

/** One shared decode-step clock per period: resolves every waiter on the same tick. */
const batchClocks = new Map<number, { waiters: Array<() => void>; timer: NodeJS.Timeout }>();
function nextBatchTick(periodMs: number): Promise<void> {
  let clock = batchClocks.get(periodMs);
  if (clock === undefined) {
    const created = {
      waiters: [] as Array<() => void>,
      timer: setInterval(() => {
        const ready = created.waiters;
        created.waiters = [];
        for (const resolve of ready) resolve();
        if (created.waiters.length === 0 && ready.length === 0) {
          clearInterval(created.timer);
          batchClocks.delete(periodMs);
        }
      }, periodMs),
    };
    created.timer.unref();
    batchClocks.set(periodMs, created);
    clock = created;
  }
  const target = clock;
  return new Promise((resolve) => target.waiters.push(resolve));
}

/** Content chunks without usage are identical for the same text: render each once. */
const renderedChunks = new Map<string, string>();

const sleep = (ms: number): Promise<void> =>
  ms > 0 ? new Promise((resolve) => setTimeout(resolve, ms)) : Promise.resolve();

/**
 * Starts the server.
 *
 * @example
 * const server = await startOpenAIServer({ scenario: () => ({ tokens: 3, interChunkMs: 10 }) });
 * // ... point the engine at server.baseUrl
 * await server.close();
 */
export async function startOpenAIServer(options: ServerOptions = {}): Promise<OpenAITestServer> {
  const scenario = options.scenario ?? (() => ({}));
  const requests: ReceivedRequest[] = [];
  const modelsCalls: ReceivedRequest[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const sockets = new Set<import('node:net').Socket>();

  const server = http.createServer((req, res) => {
    const receivedAt = performance.now();
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
      const path = (req.url ?? '').split('?')[0] ?? '';
      const record: ReceivedRequest = {
        index: 0,
        method: req.method ?? '',
        path,
        headers: req.headers,
        body,
        receivedAt,
        chunkWrittenAt: [],
      };
      if (req.method === 'GET' && path === '/v1/models') {
        record.index = modelsCalls.length;
        modelsCalls.push(record);
        const status = options.modelsStatus?.[record.index] ?? 200;
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(
          status === 200
            ? JSON.stringify({
                object: 'list',
                data: (options.models ?? ['test-model']).map((id) => ({ id, object: 'model' })),
              })
            : JSON.stringify({ error: { message: `models status ${status}` } }),
        );
        return;
      }
      const endpoint =
        path === '/v1/chat/completions'
          ? 'chat'
          : path === '/v1/completions'
            ? 'completions'
            : null;
      if (req.method !== 'POST' || endpoint === null) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: `no route ${req.method} ${path}` } }));
        return;
      }
      record.index = requests.length;
      requests.push(record);
      inFlight++;
      if (inFlight > maxInFlight) maxInFlight = inFlight;
      let counted = false;
      const done = (): void => {
        if (counted) return;
        counted = true;
        inFlight--;
      };
      res.on('close', done);
      void serve(endpoint, scenario(record), record, res).catch(() => res.destroy());
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  let closed: Promise<void> | null = null;
  const close = (): Promise<void> => {
    closed ??= new Promise<void>((resolve) => {
      clearTimeout(lifetime);
      server.close(() => resolve());
      for (const socket of sockets) socket.destroy();
    });
    return closed;
  };
  // The server stops by itself even if a test forgets to close it.
  const lifetime = setTimeout(() => void close(), options.lifetimeMs ?? 60_000);
  lifetime.unref();

  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    port,
    requests,
    modelsCalls,
    get inFlight() {
      return inFlight;
    },
    get maxInFlight() {
      return maxInFlight;
    },
    dropConnections() {
      for (const socket of sockets) socket.destroy();
    },
    close,
  };
}

async function serve(
  endpoint: 'chat' | 'completions',
  script: Script,
  record: ReceivedRequest,
  res: http.ServerResponse,
): Promise<void> {
  await sleep(script.headersDelayMs ?? 0);
  if (script.status !== undefined && script.status !== 200) {
    res.writeHead(script.status, { 'content-type': 'application/json' });
    res.end(script.errorBody ?? JSON.stringify({ error: { message: `status ${script.status}` } }));
    return;
  }
  if (script.notStreaming) {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ choices: [{ text: 'hello', finish_reason: 'length' }] }));
    return;
  }
  res.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
  });
  res.flushHeaders();
  if (script.hang) return;
  if (script.preamble !== undefined) res.write(script.preamble);
  const chunks =
    script.chunks ??
    Array.from({ length: script.tokens ?? 5 }, (_, i) => ({ text: `t${i} ` }) as ScriptChunk);
  const usageMode = script.usage ?? 'final';
  const promptTokens = script.promptTokens ?? 7;
  let completion = 0;
  // Chat servers open with a role-only chunk that carries no token.
  if (endpoint === 'chat') {
    res.write(
      encoder({
        choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }],
        ...(usageMode === 'continuous'
          ? { usage: { prompt_tokens: promptTokens, completion_tokens: 0 } }
          : {}),
      }),
    );
  }
  for (let i = 0; i < chunks.length; i++) {
    const chunk = chunks[i]!;
    if (script.batchTickMs !== undefined) {
      await nextBatchTick(script.batchTickMs);
    } else {
      await sleep(
        chunk.delayMs ?? (i === 0 ? (script.firstDelayMs ?? 0) : (script.interChunkMs ?? 0)),
      );
    }
    if (res.destroyed) return;
    completion += chunk.tokens ?? (chunk.text.length > 0 ? 1 : 0);
    if (script.malformedAt === i) {
      res.write('data: {"choices": [ this is not json\n\n');
    } else if (script.logprobs) {
      const k = chunk.tokens ?? (chunk.text.length > 0 ? 1 : 0);
      const entries = Array.from({ length: k }, (_, j) => ({ token: `x${j}`, logprob: -0.1 }));
      const choice =
        endpoint === 'chat'
          ? {
              index: 0,
              delta: { content: chunk.text },
              logprobs: { content: entries },
              finish_reason: null,
            }
          : {
              index: 0,
              text: chunk.text,
              logprobs: {
                tokens: entries.map((e) => e.token),
                token_logprobs: entries.map((e) => e.logprob),
              },
              finish_reason: null,
            };
      res.write(encoder({ choices: [choice] }));
    } else if (usageMode === 'continuous') {
      const usage = { prompt_tokens: promptTokens, completion_tokens: completion };
      res.write(contentChunk(endpoint, chunk.text, { usage }));
    } else {
      const key = `${endpoint}\u0000${chunk.text}`;
      let rendered = renderedChunks.get(key);
      if (rendered === undefined) {
        rendered = contentChunk(endpoint, chunk.text, {});
        renderedChunks.set(key, rendered);
      }
      res.write(rendered);
    }
    record.chunkWrittenAt.push(performance.now());
    if (script.errorEventAt === i) {
      res.end(encoder({ error: { message: 'boom: the model crashed', code: 500 } }));
      return;
    }
    if (script.dropAfter === i + 1) {
      res.socket?.destroy();
      return;
    }
  }
  if (script.unterminated) {
    res.end();
    return;
  }
  const total = script.usageCompletionTokens ?? completion;
  const usage = {
    prompt_tokens: promptTokens,
    completion_tokens: total,
    total_tokens: promptTokens + total,
  };
  res.write(finishChunk(endpoint, usageMode === 'continuous' ? { usage } : {}));
  if (usageMode !== 'none') res.write(encoder({ choices: [], usage }));
  res.end('data: [DONE]\n\n');
}
