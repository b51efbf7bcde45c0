import type http from 'node:http';
import { performance } from 'node:perf_hooks';

/** One content chunk of a scripted stream. */
export interface ScriptChunk {
  text: string;
  /** Tokens this chunk stands for (usage, logprobs). Default 1 if `text` is not empty, else 0. */
  tokens?: number;
  /** Wait before writing this chunk (ms). Default: the script's `interChunkMs`. */
  delayMs?: number;
}

/**
 * Where the token counts go in a stream:
 * - `final`: one usage-only chunk (`choices: []`) after the finish chunk (vLLM, SGLang with
 *   `stream_options.include_usage`);
 * - `finish`: on the finish chunk, whose delta is empty (llama-server);
 * - `in-content`: on the last content chunk, which also carries the `finish_reason` (a token and
 *   the totals in one event);
 * - `continuous`: running usage in every chunk plus the final block (vLLM
 *   `continuous_usage_stats`);
 * - `none`: no usage at all.
 */
export type UsageMode = 'final' | 'finish' | 'in-content' | 'continuous' | 'none';

/** What the server does for one completion request. Every field is optional. */
export interface Script {
  /** Answer with this status and `errorBody` instead of a stream. */
  status?: number;
  errorBody?: string;
  /** Wait before the status line (ms). */
  headersDelayMs?: number;
  /** Wait between the headers and the first chunk (ms): the server-side TTFT. Default 0. */
  firstDelayMs?: number;
  /** Delay between chunks (ms), each measured from the previous write. Default 0. */
  interChunkMs?: number;
  /**
   * Decode time per token (ms), on an absolute schedule: token i is due `i × paceMs` after the
   * first, and a chunk is written when its last token is due, so timer lateness never adds up.
   * Overrides `interChunkMs`.
   */
  paceMs?: number;
  /**
   * Pace every stream off one shared clock instead: each tick of this period writes the next
   * chunk of every active stream, as a batching server's decode step does. Overrides delays.
   */
  batchTickMs?: number;
  /** The content chunks. Default: `tokens` tokens, `tokensPerChunk` per chunk after the first. */
  chunks?: ScriptChunk[];
  /** Output tokens when `chunks` is absent. Default 5. */
  tokens?: number;
  /** Tokens per content chunk after the first (which always carries one). Default 1. */
  tokensPerChunk?: number;
  /** Attach logprobs with one entry per token of each chunk (as with `logprobs: 1`). */
  logprobs?: boolean;
  /** Where the token counts go; see {@link UsageMode}. Default `final`. */
  usage?: UsageMode;
  /** Completion tokens reported in the usage; default the sum of chunk tokens. */
  usageCompletionTokens?: number;
  /** Prompt tokens reported in the usage. Default 7. */
  promptTokens?: number;
  /** Prompt tokens the prompt cache already held (`cached_tokens`, llama-server `cache_n`). */
  cachedTokens?: number;
  /** Add llama-server's `timings` block to the finish chunk. */
  timings?: boolean;
  /** Replace chunk i with invalid JSON. */
  malformedAt?: number;
  /** Send an error event after chunk i. */
  errorEventAt?: number;
  /** Destroy the socket after writing this many chunks. */
  dropAfter?: number;
  /** Send headers, then nothing until the client gives up. */
  hang?: boolean;
  /** After `headersDelayMs`, reset the connection without a byte of answer (a server dying). */
  reset?: boolean;
  /** Leave out `data: [DONE]` and the finish chunk. */
  unterminated?: boolean;
  /** Answer 200 with a plain JSON body instead of SSE. */
  notStreaming?: boolean;
  /** Write this raw text right after the headers (comments, unknown fields, keep-alives). */
  preamble?: string;
}

/** What the stream writer reports back for the server's records and metrics. */
export interface StreamFacts {
  /** `performance.now()` right after each content chunk was written. */
  chunkWrittenAt: number[];
  completionTokens: number;
  /** `true` when the stream ended normally (finish chunk and `[DONE]` written). */
  completed: boolean;
}

export type Endpoint = 'chat' | 'completions';

const event = (object: unknown): string => `data: ${JSON.stringify(object)}\n\n`;

const sleep = (ms: number): Promise<void> =>
  ms > 0 ? new Promise((resolve) => setTimeout(resolve, ms)) : Promise.resolve();

/** Sleeps until `performance.now()` reaches `due` (never resolves early by Node's ms rounding). */
async function until(due: number): Promise<void> {
  for (let wait = due - performance.now(); wait > 0; wait = due - performance.now()) {
    await sleep(Math.max(1, Math.ceil(wait)));
  }
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

/** The chunks a script stands for: explicit, or `tokens` split one, then `tokensPerChunk` each. */
export function scriptChunks(script: Script): ScriptChunk[] {
  if (script.chunks) return script.chunks;
  const total = script.tokens ?? 5;
  const per = Math.max(1, script.tokensPerChunk ?? 1);
  const chunks: ScriptChunk[] = [];
  let next = 0;
  while (next < total) {
    const k = next === 0 ? 1 : Math.min(per, total - next);
    let text = '';
    for (let j = 0; j < k; j++) text += `t${next + j} `;
    chunks.push(k === 1 ? { text } : { text, tokens: k });
    next += k;
  }
  return chunks;
}

const tokensOf = (chunk: ScriptChunk): number => chunk.tokens ?? (chunk.text.length > 0 ? 1 : 0);

function choiceFor(endpoint: Endpoint, text: string, finish: string | null): object {
  return endpoint === 'chat'
    ? { index: 0, delta: text === '' && finish ? {} : { content: text }, finish_reason: finish }
    : { index: 0, text, finish_reason: finish };
}

function logprobsChoice(endpoint: Endpoint, chunk: ScriptChunk): object {
  const entries = Array.from({ length: tokensOf(chunk) }, (_, j) => ({
    token: `x${j}`,
    logprob: -0.1,
  }));
  return endpoint === 'chat'
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
}

/** Content chunks without usage are identical for the same text: render each once. */
const rendered = new Map<string, string>();
function plainChunk(endpoint: Endpoint, text: string): string {
  const key = `${endpoint}\u0000${text}`;
  let out = rendered.get(key);
  if (out === undefined) {
    out = event({
      id: 'cmpl-test',
      object: endpoint === 'chat' ? 'chat.completion.chunk' : 'text_completion',
      model: 'test-model',
      choices: [choiceFor(endpoint, text, null)],
    });
    if (rendered.size < 10_000) rendered.set(key, out);
  }
  return out;
}

/** When each chunk is due, relative to the first chunk, on the `paceMs` schedule. */
function paceOffsets(chunks: readonly ScriptChunk[], paceMs: number): number[] {
  const offsets: number[] = [];
  let lastToken = -1;
  for (const chunk of chunks) {
    lastToken += Math.max(1, tokensOf(chunk));
    offsets.push(Math.max(0, lastToken) * paceMs);
  }
  return offsets;
}

/**
 * Writes one scripted response. Resolves when the response is finished or abandoned; never
 * rejects for a client that went away.
 */
export async function writeScripted(
  endpoint: Endpoint,
  script: Script,
  res: http.ServerResponse,
): Promise<StreamFacts> {
  const facts: StreamFacts = { chunkWrittenAt: [], completionTokens: 0, completed: false };
  await sleep(script.headersDelayMs ?? 0);
  if (res.destroyed) return facts;
  if (script.reset) {
    res.socket?.resetAndDestroy();
    return facts;
  }
  if (script.status !== undefined && script.status !== 200) {
    res.writeHead(script.status, { 'content-type': 'application/json' });
    res.end(script.errorBody ?? JSON.stringify({ error: { message: `status ${script.status}` } }));
    return facts;
  }
  if (script.notStreaming) {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ choices: [{ text: 'hello', finish_reason: 'length' }] }));
    return facts;
  }
  res.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
  });
  res.flushHeaders();
  if (script.hang) return facts;
  if (script.preamble !== undefined) res.write(script.preamble);
  const chunks = scriptChunks(script);
  const usageMode = script.usage ?? 'final';
  const promptTokens = script.promptTokens ?? 7;
  const total = script.usageCompletionTokens ?? chunks.reduce((a, c) => a + tokensOf(c), 0);
  const usageBlock = {
    prompt_tokens: promptTokens,
    completion_tokens: total,
    total_tokens: promptTokens + total,
    ...(script.cachedTokens !== undefined
      ? { prompt_tokens_details: { cached_tokens: script.cachedTokens } }
      : {}),
  };
  // Chat servers open with a role-only chunk that carries no token.
  if (endpoint === 'chat') {
    res.write(
      event({
        choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }],
        ...(usageMode === 'continuous'
          ? { usage: { prompt_tokens: promptTokens, completion_tokens: 0 } }
          : {}),
      }),
    );
  }
  const offsets = script.paceMs !== undefined ? paceOffsets(chunks, script.paceMs) : null;
  let firstAt = 0;
  let completion = 0;
  const inContent = usageMode === 'in-content' && !script.unterminated;
  for (let i = 0; i < chunks.length; i++) {
    const chunk = chunks[i]!;
    if (script.batchTickMs !== undefined) await nextBatchTick(script.batchTickMs);
    else if (offsets !== null && i > 0) await until(firstAt + offsets[i]!);
    else {
      await sleep(
        chunk.delayMs ?? (i === 0 ? (script.firstDelayMs ?? 0) : (script.interChunkMs ?? 0)),
      );
    }
    if (res.destroyed) return facts;
    if (i === 0) firstAt = performance.now();
    completion += tokensOf(chunk);
    const last = i === chunks.length - 1;
    if (script.malformedAt === i) {
      res.write('data: {"choices": [ this is not json\n\n');
    } else if (script.logprobs) {
      res.write(event({ choices: [logprobsChoice(endpoint, chunk)] }));
    } else if (usageMode === 'continuous') {
      const usage = { prompt_tokens: promptTokens, completion_tokens: completion };
      res.write(event({ choices: [choiceFor(endpoint, chunk.text, null)], usage }));
    } else if (inContent && last) {
      res.write(
        event({
          choices: [choiceFor(endpoint, chunk.text, 'length')],
          usage: usageBlock,
          ...(script.timings ? { timings: timings(script, firstAt, total) } : {}),
        }),
      );
    } else {
      res.write(plainChunk(endpoint, chunk.text));
    }
    facts.chunkWrittenAt.push(performance.now());
    facts.completionTokens = completion;
    if (script.errorEventAt === i) {
      res.end(event({ error: { message: 'boom: the model crashed', code: 500 } }));
      return facts;
    }
    if (script.dropAfter === i + 1) {
      res.socket?.destroy();
      return facts;
    }
  }
  if (script.unterminated) {
    res.end();
    return facts;
  }
  if (!inContent) {
    const onFinish: Record<string, unknown> = {};
    if (usageMode === 'continuous' || usageMode === 'finish') onFinish.usage = usageBlock;
    if (script.timings) onFinish.timings = timings(script, firstAt, total);
    res.write(event({ choices: [choiceFor(endpoint, '', 'length')], ...onFinish }));
    if (usageMode === 'final' || usageMode === 'continuous') {
      res.write(event({ choices: [], usage: usageBlock }));
    }
  }
  res.end('data: [DONE]\n\n');
  facts.completed = true;
  return facts;
}

/**
 * llama-server's per-request `timings` block. `predicted_ms` runs from the first token's write
 * to now (the last token's), as llama-server's generation time does; `prompt_ms` is the
 * scripted prefill delay.
 */
function timings(script: Script, firstAt: number, predicted: number): Record<string, number> {
  const promptN = script.promptTokens ?? 7;
  const cacheN = script.cachedTokens ?? 0;
  const promptMs = script.firstDelayMs ?? 0;
  const predictedMs = firstAt > 0 ? performance.now() - firstAt : 0;
  return {
    cache_n: cacheN,
    prompt_n: promptN - cacheN,
    prompt_ms: promptMs,
    prompt_per_token_ms: promptN - cacheN > 0 ? promptMs / (promptN - cacheN) : 0,
    prompt_per_second: promptMs > 0 ? ((promptN - cacheN) * 1000) / promptMs : 0,
    predicted_n: predicted,
    predicted_ms: predictedMs,
    predicted_per_token_ms: predicted > 0 ? predictedMs / predicted : 0,
    predicted_per_second: predictedMs > 0 ? (predicted * 1000) / predictedMs : 0,
  };
}
