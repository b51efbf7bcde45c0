import http from 'node:http';
import https from 'node:https';
import { performance } from 'node:perf_hooks';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import type { RequestRecord, ServerTimings } from '../engine';

/**
 * How a request failed. Counted per run in `extra.errorsByType`.
 * - `connection_refused`: nothing listening (server down or still binding its port)
 * - `connection_error`: reset, dropped mid-stream, DNS or TLS failure
 * - `http_4xx` / `http_5xx`: the server answered with an error status
 * - `malformed_stream`: not SSE, invalid JSON in an event, or ended without finishing
 * - `stream_error`: the server sent an `{"error": …}` event inside the stream
 * - `timeout`: `openai.request_timeout_s` elapsed before the stream ended
 * - `aborted`: the run was cancelled (timeout of the whole experiment, SIGINT)
 */
export type RequestErrorType =
  | 'connection_refused'
  | 'connection_error'
  | 'http_4xx'
  | 'http_5xx'
  | 'malformed_stream'
  | 'stream_error'
  | 'timeout'
  | 'aborted';

/** A request record plus what only the openai engine knows about it. */
export interface StreamedRecord extends RequestRecord {
  /** `true` when `outputTokens`/`inputTokens` came from the server's `usage` block. */
  usageReported: boolean;
  /** Tokens that carry a timestamp (first + tokenTimes); may differ from `outputTokens`. */
  timedTokens: number;
  /** `true` when per-chunk token counts came from running usage (vLLM continuous usage). */
  perChunkUsage: boolean;
  /**
   * When the attempt that got the answer had a connection to write on (monotonic ms): its start
   * when it reused a kept-alive socket, the socket's `connect` when it opened one; `null` when
   * no attempt got that far. `connectedAt − startedAt` is the request's connection wait.
   */
  connectedAt: number | null;
  /** Whether the attempt that got the answer opened a new connection. */
  newConnection: boolean;
}

/** Everything one streamed request needs; built once per run so the hot path allocates little. */
export interface StreamTarget {
  url: URL;
  /** The kept-alive pool every first attempt goes through. */
  agent: http.Agent;
  /** An agent that never reuses a connection: retries go through it, on a fresh socket. */
  freshAgent: http.Agent;
  headers: Record<string, string>;
  endpoint: 'completions' | 'chat';
  timeoutMs: number;
  /** Removes secrets from any text that leaves the engine (error bodies may echo headers). */
  redact: (text: string) => string;
}

interface Usage {
  prompt_tokens?: number;
  completion_tokens?: number;
}

/**
 * How often a request that got no response byte is sent again on a fresh connection. Servers
 * that say `Connection: keep-alive` and then close the socket after a response (llama-server
 * among them) make the client's pool hand a request a socket that is already closing; Node
 * cannot always tell (`reusedSocket` is false when a queued request gets a freed socket).
 */
export const MAX_CONNECTION_RETRIES = 2;

/** Longest SSE line or event accepted (characters); real chunks are a few hundred. */
const MAX_SSE_BUFFER = 8 * 1024 * 1024;

class RequestFailure extends Error {
  constructor(
    readonly type: RequestErrorType,
    message: string,
  ) {
    super(message);
  }
}

/** Picks the failure type from a Node socket error. */
function classifySocketError(error: NodeJS.ErrnoException): RequestErrorType {
  return error.code === 'ECONNREFUSED' ? 'connection_refused' : 'connection_error';
}

/**
 * Sends one streaming request and times every token as it arrives.
 *
 * Token accounting per SSE chunk (documented in the README):
 * 1. when the server sends running `usage` in content chunks (vLLM `continuous_usage_stats`), a
 *    chunk carries `completion_tokens` minus the previous value;
 * 2. else, when the chunk has `logprobs`, one token per logprob entry;
 * 3. else one token for a chunk with non-empty text and none for an empty one (role-only chunks,
 *    keep-alives), since OpenAI-compatible servers send one token per chunk.
 * A chunk carrying k tokens adds k timestamps, all equal to the chunk's arrival time, and one
 * chunk time (the ITL samples are the gaps between chunks, as in vLLM's benchmark). Arrival
 * time is read once per socket read, the moment the bytes reached the process. llama-server's
 * `timings` block is kept when a chunk carries one.
 *
 * A connection that fails before any response byte (reset, closed, refused) is retried at most
 * {@link MAX_CONNECTION_RETRIES} times on a fresh connection; `startedAt` stays the first send,
 * the request timeout covers every attempt, and `retries` says how many there were.
 *
 * Never rejects: failures come back as a record with `error`.
 */
export function streamRequest(
  target: StreamTarget,
  id: number,
  body: string,
  signal: AbortSignal | null,
): Promise<StreamedRecord> {
  return new Promise((resolve) => {
    const startedAt = performance.now();
    // Per-chunk data kept flat; the accounting rule is applied once the stream has ended,
    // because only then do we know whether usage arrived in every chunk or just the last.
    const chunkTimes: number[] = [];
    const chunkCounted: number[] = [];
    const chunkUsage: number[] = [];
    let usageChunks = 0;
    let finalUsage: Usage | null = null;
    let timings: ServerTimings | undefined;
    let retries = 0;
    let connectedAt: number | null = null;
    let newConnection = false;
    let sawDone = false;
    let sawFinish = false;
    let now = startedAt;
    let settled = false;
    let failure: RequestFailure | null = null;
    const chat = target.endpoint === 'chat';

    const finish = (endedAt: number): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      resolve(
        buildRecord({
          id,
          startedAt,
          endedAt,
          chunkTimes,
          chunkCounted,
          chunkUsage,
          perChunkUsage: usageChunks >= 2,
          finalUsage,
          timings,
          retries,
          failure,
          connectedAt,
          newConnection,
        }),
      );
    };

    const fail = (type: RequestErrorType, message: string): void => {
      if (failure === null) failure = new RequestFailure(type, target.redact(message));
      req.destroy();
      finish(performance.now());
    };

    const onEvent = (event: EventSourceMessage): void => {
      if (failure !== null) return;
      const data = event.data;
      if (data === '[DONE]') {
        sawDone = true;
        return;
      }
      let parsed: {
        choices?: Array<{
          text?: string | null;
          delta?: { content?: string | null; reasoning_content?: string | null };
          logprobs?: { tokens?: unknown[]; content?: unknown[] | null } | null;
          finish_reason?: string | null;
        }>;
        usage?: Usage | null;
        timings?: unknown;
        error?: { message?: string } | string;
      };
      try {
        parsed = JSON.parse(data);
      } catch {
        fail('malformed_stream', `invalid JSON in SSE event: ${data.slice(0, 120)}`);
        return;
      }
      if (parsed === null || typeof parsed !== 'object') {
        fail('malformed_stream', `SSE event is not a JSON object: ${data.slice(0, 120)}`);
        return;
      }
      if (parsed.timings !== undefined) timings = readTimings(parsed.timings) ?? timings;
      if (parsed.error !== undefined) {
        const message =
          typeof parsed.error === 'string' ? parsed.error : (parsed.error.message ?? data);
        fail('stream_error', `server error event: ${String(message).slice(0, 300)}`);
        return;
      }
      const choice = parsed.choices?.[0];
      const usage = parsed.usage;
      if (usage !== undefined && usage !== null) finalUsage = usage;
      // A usage-only chunk (empty `choices`) carries totals, not tokens.
      if (choice === undefined) return;
      let counted: number;
      const logprobs = choice.logprobs;
      const logprobTokens = logprobs ? (chat ? logprobs.content : logprobs.tokens) : undefined;
      if (Array.isArray(logprobTokens)) {
        counted = logprobTokens.length;
      } else {
        const text = chat
          ? (choice.delta?.content ?? '') + (choice.delta?.reasoning_content ?? '')
          : (choice.text ?? '');
        counted = text.length > 0 ? 1 : 0;
      }
      chunkTimes.push(now);
      chunkCounted.push(counted);
      if (usage !== undefined && usage !== null && typeof usage.completion_tokens === 'number') {
        chunkUsage.push(usage.completion_tokens);
        usageChunks++;
      } else {
        chunkUsage.push(Number.NaN);
      }
      if (choice.finish_reason) sawFinish = true;
    };

    const parser = createParser({
      onEvent,
      // Unknown fields and bad `retry:` lines are ignored, as the SSE spec says; only a line
      // or event that never ends (a server not speaking SSE at all) is fatal.
      maxBufferSize: MAX_SSE_BUFFER,
      onError: (error) => {
        if (error.type === 'max-buffer-size-exceeded') {
          fail('malformed_stream', `an SSE event exceeded ${MAX_SSE_BUFFER} characters`);
        }
      },
    });

    const transport = target.url.protocol === 'https:' ? https : http;
    let req: http.ClientRequest;

    const timer = setTimeout(() => {
      fail('timeout', `no complete response within ${target.timeoutMs / 1000} s`);
    }, target.timeoutMs);
    const onAbort = (): void => fail('aborted', 'the run was cancelled');

    const onResponse = (res: http.IncomingMessage): void => {
      const status = res.statusCode ?? 0;
      res.setEncoding('utf8');
      if (status < 200 || status >= 300) {
        // Keep a bounded snippet of the body: it usually says why (unknown model, too long).
        let text = '';
        res.on('data', (chunk: string) => {
          if (text.length < 2000) text += chunk;
        });
        res.on('end', () => {
          fail(
            status >= 500 ? 'http_5xx' : 'http_4xx',
            `HTTP ${status}${text ? `: ${text.trim().slice(0, 300)}` : ''}`,
          );
        });
        res.on('error', () => fail(status >= 500 ? 'http_5xx' : 'http_4xx', `HTTP ${status}`));
        return;
      }
      res.on('data', (chunk: string) => {
        now = performance.now();
        parser.feed(chunk);
      });
      res.on('error', (error: NodeJS.ErrnoException) => {
        fail('connection_error', `stream interrupted: ${error.message}`);
      });
      res.on('aborted', () => fail('connection_error', 'connection dropped mid-stream'));
      res.on('end', () => {
        if (failure !== null) return;
        const endedAt = performance.now();
        if (res.readableAborted || !res.complete) {
          fail('connection_error', 'connection dropped mid-stream');
          return;
        }
        if (!sawDone && !sawFinish) {
          fail(
            'malformed_stream',
            chunkTimes.length === 0
              ? 'the response had no SSE events (is the server streaming?)'
              : 'the stream ended without [DONE] or a finish_reason',
          );
          return;
        }
        finish(endedAt);
      });
    };

    /** One attempt: the pooled agent first, a fresh connection for each retry. */
    const send = (): void => {
      let responded = false;
      const attemptAt = performance.now();
      const attempt = transport.request(target.url, {
        method: 'POST',
        agent: retries === 0 ? target.agent : target.freshAgent,
        headers: target.headers,
      });
      req = attempt;
      // The agent hands over a free kept-alive socket synchronously; anything else is a new
      // connection, ready at its `connect` event, or `secureConnect` once TLS is set up (the
      // connection wait). A new socket is handed over a tick after its creation, before any
      // handshake could finish, so waiting for the event is never too late.
      newConnection = !attempt.reusedSocket;
      connectedAt = newConnection ? null : attemptAt;
      if (newConnection) {
        const ready = target.url.protocol === 'https:' ? 'secureConnect' : 'connect';
        attempt.once('socket', (socket) => {
          if (attempt !== req) return;
          if (ready === 'connect' && !socket.connecting) connectedAt = performance.now();
          else
            socket.once(ready, () => {
              if (attempt === req) connectedAt = performance.now();
            });
        });
      }
      attempt.on('error', (error: NodeJS.ErrnoException) => {
        if (attempt !== req || failure !== null || settled) return;
        // No response byte yet: the server never answered this request, so sending it again
        // cannot count anything twice. Its latencies keep counting from the first send.
        if (!responded && retries < MAX_CONNECTION_RETRIES) {
          retries++;
          send();
          return;
        }
        fail(classifySocketError(error), `${error.code ?? 'error'}: ${error.message}`);
      });
      attempt.on('response', (res) => {
        responded = true;
        onResponse(res);
      });
      attempt.end(body);
    };

    if (signal !== null) {
      if (signal.aborted) {
        // Still goes through the normal path so the record is well formed.
        queueMicrotask(onAbort);
      } else {
        signal.addEventListener('abort', onAbort, { once: true });
      }
    }
    send();
  });
}

interface RecordParts {
  id: number;
  startedAt: number;
  endedAt: number;
  chunkTimes: number[];
  chunkCounted: number[];
  chunkUsage: number[];
  perChunkUsage: boolean;
  finalUsage: Usage | null;
  timings: ServerTimings | undefined;
  retries: number;
  failure: RequestFailure | null;
  connectedAt: number | null;
  newConnection: boolean;
}

/** llama-server's `timings` block, or `undefined` when it holds none of the known fields. */
function readTimings(value: unknown): ServerTimings | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const t = value as Record<string, unknown>;
  const num = (v: unknown): number | null =>
    typeof v === 'number' && Number.isFinite(v) ? v : null;
  const out: ServerTimings = {
    promptN: num(t.prompt_n),
    promptMs: num(t.prompt_ms),
    cacheN: num(t.cache_n),
    predictedN: num(t.predicted_n),
    predictedMs: num(t.predicted_ms),
  };
  return Object.values(out).some((v) => v !== null) ? out : undefined;
}

/** Turns the per-chunk data into token timestamps (see `streamRequest` for the rule). */
function buildRecord(parts: RecordParts): StreamedRecord {
  const { chunkTimes, chunkCounted, chunkUsage, perChunkUsage, finalUsage, failure } = parts;
  let firstTokenAt: number | null = null;
  const tokenTimes: number[] = [];
  const tokenChunkTimes: number[] = [];
  let previousUsage = 0;
  for (let i = 0; i < chunkTimes.length; i++) {
    let k: number;
    if (perChunkUsage) {
      const running = chunkUsage[i]!;
      // A chunk without usage in a continuous-usage stream: its tokens show up in the next delta.
      if (Number.isNaN(running)) continue;
      k = Math.max(0, running - previousUsage);
      previousUsage = Math.max(previousUsage, running);
    } else {
      k = chunkCounted[i]!;
    }
    if (k === 0) continue;
    const t = chunkTimes[i]!;
    if (firstTokenAt === null) {
      firstTokenAt = t;
      k--;
    } else {
      tokenChunkTimes.push(t);
    }
    for (let j = 0; j < k; j++) tokenTimes.push(t);
  }
  const timedTokens = firstTokenAt === null ? 0 : tokenTimes.length + 1;
  const completion = finalUsage?.completion_tokens;
  const prompt = finalUsage?.prompt_tokens;
  const usageReported = typeof completion === 'number';
  const record: StreamedRecord = {
    id: parts.id,
    startedAt: parts.startedAt,
    firstTokenAt,
    tokenTimes,
    chunkTimes: tokenChunkTimes,
    endedAt: parts.endedAt,
    inputTokens: typeof prompt === 'number' ? prompt : null,
    outputTokens: usageReported ? completion : timedTokens,
    tokenSource: usageReported ? 'server-usage' : 'counted-chunks',
    retries: parts.retries,
    usageReported,
    timedTokens,
    perChunkUsage,
    connectedAt: parts.connectedAt,
    newConnection: parts.newConnection,
  };
  if (parts.timings !== undefined) record.serverTimings = parts.timings;
  if (failure !== null) record.error = { type: failure.type, message: failure.message };
  return record;
}
