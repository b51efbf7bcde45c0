import { OpenAIEngineError } from './errors';

/**
 * The `openai` config section as it appears in the YAML (snake_case). `@llem/domain` validates it
 * with zod; this local shape lets the engine be used on its own, and `resolveOpenAIConfig` applies
 * the same defaults so a hand-built object behaves like a validated one.
 */
export interface OpenAIConfig {
  /** Server root including the API prefix, e.g. `http://127.0.0.1:8000/v1`. */
  base_url: string;
  /** Served model name sent in every request; falls back to the experiment's `model`. */
  model?: string;
  /** NAME of the environment variable holding the API key (never the key itself). */
  api_key_env?: string | null;
  endpoint?: 'completions' | 'chat';
  /** Closed loop: this many requests in flight at all times. Exclusive with `request_rate`. */
  concurrency?: number | null;
  /** Open loop: mean arrivals per second (Poisson, or gamma with `burstiness`). */
  request_rate?: number | null;
  /** Gamma shape of inter-arrival times: 1 is Poisson, < 1 burstier, > 1 more regular. */
  burstiness?: number;
  arrival_seed?: number;
  /** Cap on requests in flight in open-loop mode (arrivals wait for a slot). */
  max_concurrency?: number | null;
  request_timeout_s?: number;
  /** Ask the server to ignore end-of-sequence so every request yields max tokens (vLLM). */
  ignore_eos?: boolean;
  /** Report the steady-state window (target concurrency reached) in `extra.steadyState`. */
  steady_state?: boolean;
  /** Highest acceptable share of failed requests, 0..1; above it the run fails. */
  max_failure_rate?: number;
  /** Optional service-level objectives; goodput is the share of requests meeting all given. */
  slo?: { ttft_ms?: number | null; itl_ms?: number | null; e2e_ms?: number | null } | null;
}

/** The decoder fields the engine forwards (the experiment's `decoder` section, presets resolved). */
export interface OpenAIDecoder {
  preset?: 'deterministic' | 'standard';
  temperature?: number;
  top_p?: number;
  top_k?: number;
  min_p?: number;
  repeat_penalty?: number;
  seed?: number;
}

/**
 * What `createOpenAIEngine` needs from an experiment config. An `ExperimentConfig` from
 * `@llem/domain` satisfies it structurally; library users can pass just these fields.
 */
export interface OpenAIEngineConfig {
  /** Served model name; `openai.model` wins when both are set. */
  model?: string;
  openai: OpenAIConfig;
  decoder?: OpenAIDecoder;
}

/** The section with defaults applied and the load mode made explicit. */
export interface ResolvedOpenAIConfig {
  baseUrl: string;
  model: string;
  apiKeyEnv: string | null;
  endpoint: 'completions' | 'chat';
  mode:
    | { kind: 'concurrency'; concurrency: number }
    | {
        kind: 'request_rate';
        requestRate: number;
        burstiness: number;
        arrivalSeed: number;
        maxConcurrency: number | null;
      };
  requestTimeoutMs: number;
  ignoreEos: boolean;
  steadyState: boolean;
  maxFailureRate: number;
  slo: { ttftMs: number | null; itlMs: number | null; e2eMs: number | null } | null;
  decoder: Record<string, number>;
}

/** Defaults, kept in one place so the README and the code agree. */
export const OPENAI_DEFAULTS = {
  endpoint: 'completions',
  burstiness: 1,
  arrival_seed: 0,
  request_timeout_s: 600,
  ignore_eos: false,
  steady_state: true,
  max_failure_rate: 0,
} as const;

function fail(field: string, message: string): never {
  throw new OpenAIEngineError('CONFIG', `openai engine: openai.${field} ${message}`);
}

function positive(value: unknown, field: string, integer: boolean): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    fail(field, `must be a positive ${integer ? 'integer' : 'number'}, got ${String(value)}`);
  }
  if (integer && !Number.isInteger(value)) fail(field, `must be an integer, got ${value}`);
  return value;
}

/**
 * Applies defaults and checks the rules zod also checks (so a hand-built config cannot slip
 * through): exactly one of `concurrency` / `request_rate`, positive numbers, an http(s) URL.
 *
 * @example
 * resolveOpenAIConfig({ openai: { base_url: 'http://127.0.0.1:8000/v1', model: 'm', concurrency: 4 } });
 */
export function resolveOpenAIConfig(config: OpenAIEngineConfig): ResolvedOpenAIConfig {
  const section = config.openai;
  if (section === undefined || section === null) {
    throw new OpenAIEngineError('CONFIG', 'openai engine: the config has no `openai` section');
  }
  let url: URL;
  try {
    url = new URL(section.base_url);
  } catch {
    fail('base_url', `must be an http(s) URL such as http://127.0.0.1:8000/v1`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    fail('base_url', `must use http or https, got ${url.protocol.replace(':', '')}`);
  }
  const model = section.model ?? config.model;
  if (typeof model !== 'string' || model.length === 0) {
    fail('model', 'is required (the served model name), or set the experiment `model`');
  }
  const hasConcurrency = section.concurrency !== undefined && section.concurrency !== null;
  const hasRate = section.request_rate !== undefined && section.request_rate !== null;
  if (hasConcurrency === hasRate) {
    fail('concurrency', 'and openai.request_rate: set exactly one of them');
  }
  const maxConcurrency =
    section.max_concurrency === undefined || section.max_concurrency === null
      ? null
      : positive(section.max_concurrency, 'max_concurrency', true);
  const mode: ResolvedOpenAIConfig['mode'] = hasConcurrency
    ? { kind: 'concurrency', concurrency: positive(section.concurrency, 'concurrency', true) }
    : {
        kind: 'request_rate',
        requestRate: positive(section.request_rate, 'request_rate', false),
        burstiness: positive(section.burstiness ?? OPENAI_DEFAULTS.burstiness, 'burstiness', false),
        arrivalSeed: section.arrival_seed ?? OPENAI_DEFAULTS.arrival_seed,
        maxConcurrency,
      };
  const maxFailureRate = section.max_failure_rate ?? OPENAI_DEFAULTS.max_failure_rate;
  if (!(maxFailureRate >= 0 && maxFailureRate <= 1)) {
    fail('max_failure_rate', `must be between 0 and 1, got ${maxFailureRate}`);
  }
  const slo = section.slo ?? null;
  const resolvedSlo =
    slo === null
      ? null
      : { ttftMs: slo.ttft_ms ?? null, itlMs: slo.itl_ms ?? null, e2eMs: slo.e2e_ms ?? null };
  return {
    // Keep the path (e.g. /v1) but drop a trailing slash so `${baseUrl}/models` is well formed.
    baseUrl: url.href.replace(/\/+$/, ''),
    model,
    apiKeyEnv: section.api_key_env ?? null,
    endpoint: section.endpoint ?? OPENAI_DEFAULTS.endpoint,
    mode,
    requestTimeoutMs:
      positive(
        section.request_timeout_s ?? OPENAI_DEFAULTS.request_timeout_s,
        'request_timeout_s',
        false,
      ) * 1000,
    ignoreEos: section.ignore_eos ?? OPENAI_DEFAULTS.ignore_eos,
    steadyState: section.steady_state ?? OPENAI_DEFAULTS.steady_state,
    maxFailureRate,
    slo:
      resolvedSlo &&
      (resolvedSlo.ttftMs !== null || resolvedSlo.itlMs !== null || resolvedSlo.e2eMs !== null)
        ? resolvedSlo
        : null,
    decoder: decoderParams(config.decoder),
  };
}

/**
 * Maps llem's decoder section to request fields. `temperature`, `top_p` and `seed` are OpenAI
 * fields; `top_k`, `min_p` and `repetition_penalty` are extensions vLLM, SGLang and llama-server
 * accept, so they are only sent when the user set them.
 */
function decoderParams(decoder: OpenAIDecoder | undefined): Record<string, number> {
  if (decoder === undefined) return {};
  const out: Record<string, number> = {};
  if (decoder.preset === 'deterministic') out.temperature = 0;
  if (decoder.temperature !== undefined) out.temperature = decoder.temperature;
  if (decoder.top_p !== undefined) out.top_p = decoder.top_p;
  if (decoder.seed !== undefined) out.seed = decoder.seed;
  if (decoder.top_k !== undefined) out.top_k = decoder.top_k;
  if (decoder.min_p !== undefined) out.min_p = decoder.min_p;
  if (decoder.repeat_penalty !== undefined) out.repetition_penalty = decoder.repeat_penalty;
  return out;
}

/** The base URL without credentials, query or fragment: safe to put in results and logs. */
export function publicBaseUrl(baseUrl: string): string {
  const url = new URL(baseUrl);
  url.username = '';
  url.password = '';
  url.search = '';
  url.hash = '';
  return url.href.replace(/\/+$/, '');
}
