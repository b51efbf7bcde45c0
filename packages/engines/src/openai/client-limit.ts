import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { clientSaturationReasons, type DispatchSummary, MIN_SEND_RATE_SHARE } from '@llem/domain';
import { type Logger, noopLogger } from '@llem/resilience';
import type { EngineRequest } from '../engine';
import { createOpenAIEngine } from './engine';
import { OpenAIEngineError } from './errors';

/**
 * A minimal OpenAI-compatible server for `measureClientLimit`: one token per completion, streamed
 * as SSE with usage, on 127.0.0.1, in a worker thread so it has an event loop (and a core) of its
 * own and costs as little as a server can. CommonJS source for `new Worker(…, { eval: true })`:
 * no file to ship or find, in the source tree or the build.
 */
const SERVER_SOURCE = `
const http = require('node:http');
const { parentPort } = require('node:worker_threads');
const MODEL = 'llem-client-limit';
const chunk = 'data: ' + JSON.stringify({ id: 'c', object: 'text_completion', model: MODEL, choices: [{ index: 0, text: 'ok', finish_reason: 'length' }] }) + '\\n\\n'
  + 'data: ' + JSON.stringify({ id: 'c', object: 'text_completion', model: MODEL, choices: [], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } }) + '\\n\\n'
  + 'data: [DONE]\\n\\n';
const models = JSON.stringify({ object: 'list', data: [{ id: MODEL, object: 'model' }] });
const server = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    if (req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(models) });
      res.end(models);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.end(chunk);
  });
});
server.keepAliveTimeout = 60000;
server.listen(0, '127.0.0.1', () => parentPort.postMessage(server.address().port));
`;

/** The model name the built-in server serves. */
const MODEL = 'llem-client-limit';

/** One rate tried by {@link measureClientLimit}. */
export interface ClientLimitStep {
  /** The target rate (req/s). */
  targetRate: number;
  /** How the schedule was kept (`extra.dispatch` of a run at this rate). */
  dispatch: DispatchSummary;
  /** Whether it sent at least 95 % of the rate its schedule asked for. */
  keptRate: boolean;
  /** Why a run at this rate would be `client-saturated` (rate or lateness); empty when not. */
  saturated: string[];
}

export interface ClientLimit {
  /**
   * The highest achieved send rate among the rates the client kept (≥ 95 % of the schedule's),
   * in req/s: past it the client, not the server, sets the pace. `null` when it kept none.
   */
  sustainableRate: number | null;
  /** The target rate of that step, and the p99 of the client's lateness there (ms). */
  sustainableTargetRate: number | null;
  sustainableLagP99Ms: number | null;
  /**
   * The highest achieved send rate among the rates with no `client-saturated` reason at all
   * (lateness p99 within `maxClientLagMs` too); `null` when every rate had one (a busy machine's
   * scheduler alone can make the client a few ms late now and then).
   */
  unsaturatedRate: number | null;
  /** The threshold used (`openai.max_client_lag_ms`). */
  maxClientLagMs: number;
  steps: ClientLimitStep[];
  /** CPUs Node sees (the client uses one; the built-in server another). */
  cpus: number;
  /** Wall time of the whole measurement (s). */
  elapsedS: number;
}

export interface ClientLimitOptions {
  /** Target rates tried in order (req/s). Default 500, 1,000, 2,000, 5,000, 10,000, 20,000. */
  rates?: readonly number[];
  /** Seconds of schedule per rate. Default 0.6. */
  stepS?: number;
  /** `client-saturated` threshold on the lateness p99 (ms). Default 5, as `openai.max_client_lag_ms`. */
  maxClientLagMs?: number;
  /**
   * Stop after this many rates in a row were not kept (send rate under 95 %). Default 2: on a busy
   * machine one short step can miss by a hiccup of the scheduler.
   */
  stopAfterMisses?: number;
  /** Measure against this OpenAI-compatible base URL instead of the built-in server. */
  baseUrl?: string;
  /** Served model name for `baseUrl`. */
  model?: string;
  signal?: AbortSignal;
  logger?: Logger;
  /** Called after each rate (for a progress line). */
  onStep?: (step: ClientLimitStep) => void;
}

const DEFAULT_RATES = [500, 1000, 2000, 5000, 10_000, 20_000] as const;

/** Starts the built-in server in a worker thread; resolves with its base URL and a stop. */
async function startBuiltinServer(): Promise<{ baseUrl: string; stop: () => Promise<void> }> {
  const worker = new Worker(SERVER_SOURCE, { eval: true });
  const port = await new Promise<number>((resolve, reject) => {
    const fail = (why: string, cause?: unknown) =>
      reject(
        new OpenAIEngineError('UNREACHABLE', `openai engine: the built-in server ${why}`, {
          cause,
        }),
      );
    worker.once('message', (value: number) => resolve(value));
    worker.once('error', (error) => fail(`failed to start: ${error.message}`, error));
    worker.once('exit', (code) => fail(`exited before listening (exit code ${code})`));
  });
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    stop: async () => {
      await worker.terminate();
    },
  };
}

/**
 * Measures the highest request rate this machine's `openai` client keeps: open-loop runs of the
 * real engine (Poisson arrivals, one-token answers) at rising target rates against a built-in
 * local server in a worker thread, a fraction of a second each, stopping once two rates in a row
 * were not kept (a send rate under 95 % of the schedule's). Each rate is also judged by the whole
 * `client-saturated` rule (lateness p99 above `maxClientLagMs` too). A few seconds in all;
 * `llem doctor --client-limit` prints it. A study's `openai.request_rate` above the result would
 * measure the client, not the server. Rejects with an `OpenAIEngineError` when the server does not
 * start (`UNREACHABLE`) or any request fails (`FAILURE_RATE_EXCEEDED`): rates would mean nothing.
 *
 * @example
 * const limit = await measureClientLimit();
 * limit.sustainableRate; // e.g. 4,870 (req/s)
 */
export async function measureClientLimit(options: ClientLimitOptions = {}): Promise<ClientLimit> {
  const started = performance.now();
  const rates = options.rates ?? DEFAULT_RATES;
  const stepS = options.stepS ?? 0.6;
  const maxClientLagMs = options.maxClientLagMs ?? 5;
  const logger = options.logger ?? noopLogger;
  const signal = options.signal ?? new AbortController().signal;
  const server = options.baseUrl === undefined ? await startBuiltinServer() : null;
  const baseUrl = options.baseUrl ?? server!.baseUrl;
  const model = options.model ?? MODEL;
  const steps: ClientLimitStep[] = [];
  try {
    // Warm up the JIT and the connection pool first, as the warmup of a run does.
    await openLoopStep(baseUrl, model, rates[0] ?? 500, 0.3, maxClientLagMs, logger, signal);
    let misses = 0;
    for (const targetRate of rates) {
      if (signal.aborted) break;
      const dispatch = await openLoopStep(
        baseUrl,
        model,
        targetRate,
        stepS,
        maxClientLagMs,
        logger,
        signal,
      );
      const asked = dispatch.scheduledRate;
      const step: ClientLimitStep = {
        targetRate,
        dispatch,
        keptRate:
          asked !== null &&
          dispatch.achievedSendRate !== null &&
          dispatch.achievedSendRate >= MIN_SEND_RATE_SHARE * asked,
        saturated: clientSaturationReasons(dispatch),
      };
      steps.push(step);
      options.onStep?.(step);
      misses = step.keptRate ? 0 : misses + 1;
      if (misses >= (options.stopAfterMisses ?? 2)) break;
    }
  } finally {
    await server?.stop();
  }
  const best = fastest(steps.filter((s) => s.keptRate));
  return {
    sustainableRate: best?.dispatch.achievedSendRate ?? null,
    sustainableTargetRate: best?.targetRate ?? null,
    sustainableLagP99Ms: best?.dispatch.clientLagMs?.p99 ?? null,
    unsaturatedRate:
      fastest(steps.filter((s) => s.saturated.length === 0))?.dispatch.achievedSendRate ?? null,
    maxClientLagMs,
    steps,
    cpus: availableParallelism(),
    elapsedS: (performance.now() - started) / 1000,
  };
}

/** The step with the highest achieved send rate; `null` for none. */
function fastest(steps: readonly ClientLimitStep[]): ClientLimitStep | null {
  let best: ClientLimitStep | null = null;
  for (const s of steps) {
    if (best === null || (s.dispatch.achievedSendRate ?? 0) > (best.dispatch.achievedSendRate ?? 0))
      best = s;
  }
  return best;
}

/** One open-loop run of the engine at `rate` for `seconds` of schedule; its dispatch summary. */
async function openLoopStep(
  baseUrl: string,
  model: string,
  rate: number,
  seconds: number,
  maxClientLagMs: number,
  logger: Logger,
  signal: AbortSignal,
): Promise<DispatchSummary> {
  const engine = createOpenAIEngine(
    {
      openai: {
        base_url: baseUrl,
        model,
        request_rate: rate,
        max_client_lag_ms: maxClientLagMs,
        // The server answers at once: any failed request makes the figures meaningless.
        max_failure_rate: 0,
        ready_timeout_s: 10,
      },
    },
    { logger, signal },
  );
  try {
    await engine.load();
    const n = Math.max(2, Math.round(rate * seconds));
    const requests: EngineRequest[] = Array.from({ length: n }, (_, id) => ({
      id,
      prompt: 'ping',
      maxOutputTokens: 1,
    }));
    const outcome = await engine.run(requests);
    return (outcome.extra as { dispatch: DispatchSummary }).dispatch;
  } finally {
    await engine.dispose();
  }
}
