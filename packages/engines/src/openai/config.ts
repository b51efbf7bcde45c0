import {
  ConfigError,
  DECODER_PRESETS,
  DEFAULT_SWEEP_POINTS,
  type OpenaiConfig,
  OpenaiSchema,
} from '@llem/domain';

/**
 * The `openai` config section as written in a study file (snake_case), before defaults: the
 * validated shape is `@llem/domain`'s `OpenaiConfig`, which also fits here. `resolveOpenAIConfig`
 * runs the same `OpenaiSchema`, so a hand-built section gets exactly the study's defaults and
 * rules (`concurrency` XOR `request_rate`, `max_concurrency` only with a rate, positive numbers).
 */
export type OpenAIConfig = Omit<Partial<OpenaiConfig>, 'slo'> & {
  base_url: string;
  slo?: Partial<OpenaiConfig['slo']>;
};

/** The decoder fields the engine forwards (the experiment's `decoder` section). */
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

/** One load the engine drives: closed-loop concurrency, or an open-loop arrival rate. */
export type OpenAILoadMode =
  | { kind: 'concurrency'; concurrency: number }
  | {
      kind: 'request_rate';
      requestRate: number;
      burstiness: number;
      arrivalSeed: number;
      maxConcurrency: number | null;
    };

/**
 * `openai.load: sweep`: the harness asks for each point's load through `run(…, { load })`; the
 * arrival shape (`burstiness`, `arrival_seed`) and the in-flight cap apply to every point.
 */
export interface OpenAISweepMode {
  kind: 'sweep';
  points: number;
  burstiness: number;
  arrivalSeed: number;
  maxConcurrency: number | null;
}

/** The section with defaults applied and the load mode made explicit. */
export interface ResolvedOpenAIConfig {
  baseUrl: string;
  model: string;
  apiKeyEnv: string | null;
  endpoint: 'completions' | 'chat';
  mode: OpenAILoadMode | OpenAISweepMode;
  requestTimeoutMs: number;
  /** How long `load()` waits for the server to answer (`openai.ready_timeout_s`). */
  readyTimeoutMs: number;
  ignoreEos: boolean;
  /** Open loop: the `client-saturated` threshold on the client's p99 lateness (`openai.max_client_lag_ms`). */
  maxClientLagMs: number;
  steadyState: boolean;
  maxFailureRate: number;
  slo: {
    ttftMs: number | null;
    itlMs: number | null;
    e2eMs: number | null;
    tpotMs: number | null;
  } | null;
  decoder: Record<string, number>;
}

const CONFIG_SOURCE = '<openai engine config>';

/**
 * Validates the section with `@llem/domain`'s `OpenaiSchema` (defaults applied, the same rules as
 * a study file) and turns it into what the engine runs. Bad input throws a `ConfigError` naming
 * each field as `openai.<field>`.
 *
 * @example
 * resolveOpenAIConfig({ openai: { base_url: 'http://127.0.0.1:8000/v1', model: 'm', concurrency: 4 } });
 */
export function resolveOpenAIConfig(config: OpenAIEngineConfig): ResolvedOpenAIConfig {
  const parsed = OpenaiSchema.safeParse(config.openai ?? {});
  if (!parsed.success) {
    throw new ConfigError(
      'CONFIG_INVALID',
      CONFIG_SOURCE,
      parsed.error.issues.map((issue) => ({
        path: ['openai', ...issue.path.map(String)].join('.'),
        message: issue.message,
      })),
    );
  }
  const section = parsed.data;
  if (section.base_url.includes('{port}')) {
    // The domain accepts the template for a managed server; the harness fills it in first.
    throw new ConfigError('CONFIG_INVALID', CONFIG_SOURCE, [
      {
        path: 'openai.base_url',
        message:
          'holds {port}, which is filled in when llem starts the server (server section); give the engine the URL with the port',
      },
    ]);
  }
  const model = section.model ?? config.model;
  if (model === undefined || model.length === 0) {
    throw new ConfigError('CONFIG_INVALID', CONFIG_SOURCE, [
      { path: 'openai.model', message: 'is required (the served model name), or set `model`' },
    ]);
  }
  const mode: ResolvedOpenAIConfig['mode'] =
    section.load === 'sweep'
      ? {
          kind: 'sweep',
          points: section.sweep_points ?? DEFAULT_SWEEP_POINTS,
          burstiness: section.burstiness,
          arrivalSeed: section.arrival_seed,
          maxConcurrency: section.max_concurrency ?? null,
        }
      : section.request_rate !== undefined
        ? {
            kind: 'request_rate',
            requestRate: section.request_rate,
            burstiness: section.burstiness,
            arrivalSeed: section.arrival_seed,
            maxConcurrency: section.max_concurrency ?? null,
          }
        : { kind: 'concurrency', concurrency: section.concurrency ?? 1 };
  const slo = {
    ttftMs: section.slo.ttft_ms ?? null,
    itlMs: section.slo.itl_ms ?? null,
    e2eMs: section.slo.e2e_ms ?? null,
    tpotMs: section.slo.tpot_ms ?? null,
  };
  return {
    // Keep the path (e.g. /v1) but drop a trailing slash so `${baseUrl}/models` is well formed.
    baseUrl: new URL(section.base_url).href.replace(/\/+$/, ''),
    model,
    apiKeyEnv: section.api_key_env ?? null,
    endpoint: section.endpoint,
    mode,
    requestTimeoutMs: section.request_timeout_s * 1000,
    readyTimeoutMs: section.ready_timeout_s * 1000,
    ignoreEos: section.ignore_eos,
    maxClientLagMs: section.max_client_lag_ms,
    steadyState: section.steady_state,
    maxFailureRate: section.max_failure_rate,
    slo:
      slo.ttftMs !== null || slo.itlMs !== null || slo.e2eMs !== null || slo.tpotMs !== null
        ? slo
        : null,
    decoder: decoderParams(config.decoder),
  };
}

/**
 * Maps llem's decoder section to request fields. `temperature`, `top_p` and `seed` are OpenAI
 * fields and always sent. `top_k`, `min_p` and `repetition_penalty` are extensions (vLLM, SGLang,
 * llama-server accept them; api.openai.com rejects them), so they are sent only when they change
 * what is sampled: top-k and min-p only when sampling (temperature > 0), and a repeat penalty
 * other than 1. The `deterministic` preset therefore sends only standard fields.
 */
function decoderParams(decoder: OpenAIDecoder | undefined): Record<string, number> {
  if (decoder === undefined) return {};
  const preset = DECODER_PRESETS[decoder.preset ?? 'deterministic'];
  const temperature = decoder.temperature ?? preset.temperature;
  const topK = decoder.top_k ?? preset.top_k;
  const minP = decoder.min_p ?? preset.min_p;
  const repeatPenalty = decoder.repeat_penalty ?? preset.repeat_penalty;
  const out: Record<string, number> = {
    temperature,
    top_p: decoder.top_p ?? preset.top_p,
    seed: decoder.seed ?? preset.seed,
  };
  if (temperature > 0 && topK > 0) out.top_k = topK;
  if (temperature > 0 && minP > 0) out.min_p = minP;
  if (repeatPenalty !== 1) out.repetition_penalty = repeatPenalty;
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
