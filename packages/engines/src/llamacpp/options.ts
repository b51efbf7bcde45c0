import { KV_CACHE_TYPES, type KvCacheType } from '@llem/domain';
import type {
  LlamaContextOptions,
  LlamaModelOptions,
  SequenceEvaluateOptions,
  Token,
} from 'node-llama-cpp';
import { LlamaCppEngineError } from './errors';

/**
 * The `llamacpp` section of an experiment config (snake_case, as in the YAML). Every field is
 * optional; see the README for defaults.
 */
export interface LlamaCppSection {
  /** Layers offloaded to the GPU: `auto` (fit what VRAM allows), `max` (all), or a count. */
  gpu_layers?: 'auto' | 'max' | number;
  /** Tokens per sequence, or `auto` (as large as memory and the model allow, capped at 4096). */
  context_size?: number | 'auto';
  /** Logical batch: tokens llama.cpp decodes per step. */
  batch_size?: number;
  /** Physical batch. node-llama-cpp always uses `ubatch = batch`, so only that value is accepted. */
  ubatch_size?: number;
  /** CPU threads for evaluation; `auto` (or 0) means all math cores. */
  // `string & {}`: @llem/domain's parsed type widens 'auto' to string; the value is checked at run time.
  threads?: number | 'auto' | (string & {});
  /** Sequences evaluated concurrently on one context. */
  parallel?: number;
  flash_attention?: boolean | 'auto';
  kv_cache_type_k?: KvCacheType;
  kv_cache_type_v?: KvCacheType;
  use_mmap?: boolean;
  use_mlock?: boolean;
  /** Sampling seed; overrides `decoder.seed` when set. */
  seed?: number;
}

/** The `decoder` section: sampling settings or a preset. */
export interface DecoderSection {
  preset?: 'deterministic' | 'standard';
  temperature?: number;
  top_k?: number;
  top_p?: number;
  min_p?: number;
  repeat_penalty?: number;
  seed?: number;
}

/** The parts of an experiment config the llamacpp engine reads. `@llem/domain`'s `ExperimentConfig` fits. */
export interface LlamaCppEngineConfig {
  /** A `.gguf` path, `builtin:tiny`, or `builtin:tiny-micro`. */
  model: string;
  engine?: string;
  decoder?: DecoderSection | null;
  llamacpp?: LlamaCppSection | null;
}

// One list for the config schema and the engine: `@llem/domain` owns it, re-exported here so
// engine users need not import the domain for it.
export { KV_CACHE_TYPES, type KvCacheType };

const SECTION_KEYS = [
  'gpu_layers',
  'context_size',
  'batch_size',
  'ubatch_size',
  'threads',
  'parallel',
  'flash_attention',
  'kv_cache_type_k',
  'kv_cache_type_v',
  'use_mmap',
  'use_mlock',
  'seed',
] as const;

/** Context size used when the config leaves it to `auto`: big enough for any benchmark prompt, small enough for a laptop. */
export const AUTO_CONTEXT_SIZE_CAP = 4096;

/** Settings after validation, with defaults applied where the engine picks them. */
export interface ResolvedLlamaCppSettings {
  gpuLayers: 'auto' | 'max' | number;
  contextSize: number | 'auto';
  batchSize: number | undefined;
  threads: number | undefined;
  parallel: number;
  flashAttention: boolean | 'auto';
  kvCacheTypeK: KvCacheType | undefined;
  kvCacheTypeV: KvCacheType | undefined;
  useMmap: boolean | undefined;
  useMlock: boolean | undefined;
  seed: number | undefined;
}

/** Sampling settings after presets are applied. `temperature: 0` means greedy. */
export interface ResolvedDecoder {
  temperature: number;
  topK: number | undefined;
  topP: number | undefined;
  minP: number | undefined;
  repeatPenalty: number | undefined;
  seed: number;
}

function invalid(path: string, allowed: string, got: unknown): LlamaCppEngineError {
  return new LlamaCppEngineError(
    'INVALID_OPTION',
    `${path}: expected ${allowed}, got ${JSON.stringify(got)}`,
  );
}

function intAtLeast(path: string, value: unknown, min: number): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw invalid(path, `an integer ≥ ${min}`, value);
  }
  return value;
}

function numberIn(path: string, value: unknown, min: number, max: number): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw invalid(path, `a number from ${min} to ${max}`, value);
  }
  return value;
}

function bool(path: string, value: unknown): boolean | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean') throw invalid(path, 'true or false', value);
  return value;
}

function kvType(path: string, value: unknown): KvCacheType | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || !(KV_CACHE_TYPES as readonly string[]).includes(value)) {
    throw invalid(path, `one of ${KV_CACHE_TYPES.join(', ')}`, value);
  }
  return value as KvCacheType;
}

/**
 * Checks the `llamacpp` section and turns it into engine settings. Throws an `EngineError` with
 * code `INVALID_OPTION` (bad value: names the field and the allowed values) or
 * `UNSUPPORTED_OPTION` (a valid llama.cpp setting node-llama-cpp cannot apply).
 *
 * @example
 * resolveLlamaCppSettings({ threads: 2, batch_size: 256 }).batchSize; // 256
 */
export function resolveLlamaCppSettings(
  section: LlamaCppSection | null | undefined,
): ResolvedLlamaCppSettings {
  const s = (section ?? {}) as Record<string, unknown>;
  if (typeof s !== 'object' || Array.isArray(s)) throw invalid('llamacpp', 'an object', section);
  for (const key of Object.keys(s)) {
    if (!(SECTION_KEYS as readonly string[]).includes(key)) {
      throw new LlamaCppEngineError(
        'INVALID_OPTION',
        `llamacpp.${key}: unknown option; allowed: ${SECTION_KEYS.join(', ')}`,
      );
    }
  }
  let gpuLayers: 'auto' | 'max' | number = 'auto';
  if (s.gpu_layers === 'auto' || s.gpu_layers === 'max') gpuLayers = s.gpu_layers;
  else if (s.gpu_layers !== undefined && s.gpu_layers !== null) {
    if (typeof s.gpu_layers !== 'number' || !Number.isInteger(s.gpu_layers) || s.gpu_layers < 0) {
      throw invalid('llamacpp.gpu_layers', '"auto", "max" or an integer ≥ 0', s.gpu_layers);
    }
    gpuLayers = s.gpu_layers;
  }
  let contextSize: number | 'auto' = 'auto';
  if (s.context_size !== undefined && s.context_size !== null && s.context_size !== 'auto') {
    if (typeof s.context_size !== 'number') {
      throw invalid('llamacpp.context_size', '"auto" or an integer ≥ 16', s.context_size);
    }
    contextSize = intAtLeast('llamacpp.context_size', s.context_size, 16) ?? 'auto';
  }
  const batchSize = intAtLeast('llamacpp.batch_size', s.batch_size, 1);
  const ubatchSize = intAtLeast('llamacpp.ubatch_size', s.ubatch_size, 1);
  if (ubatchSize !== undefined && ubatchSize !== (batchSize ?? 512)) {
    throw new LlamaCppEngineError(
      'UNSUPPORTED_OPTION',
      `llamacpp.ubatch_size: node-llama-cpp always runs with ubatch_size = batch_size (${batchSize ?? 512}), ` +
        `so ${ubatchSize} cannot be honoured; remove ubatch_size or set it equal to batch_size`,
    );
  }
  let threads: number | undefined;
  if (s.threads !== 'auto') {
    if (s.threads !== undefined && s.threads !== null && typeof s.threads !== 'number') {
      throw invalid('llamacpp.threads', '"auto" or an integer ≥ 0', s.threads);
    }
    threads = intAtLeast('llamacpp.threads', s.threads, 0);
  }
  const parallel = intAtLeast('llamacpp.parallel', s.parallel, 1) ?? 1;
  let flashAttention: boolean | 'auto' = 'auto';
  if (s.flash_attention !== undefined && s.flash_attention !== null) {
    if (s.flash_attention === 'auto' || typeof s.flash_attention === 'boolean')
      flashAttention = s.flash_attention;
    else throw invalid('llamacpp.flash_attention', 'true, false or "auto"', s.flash_attention);
  }
  const kvCacheTypeK = kvType('llamacpp.kv_cache_type_k', s.kv_cache_type_k);
  const kvCacheTypeV = kvType('llamacpp.kv_cache_type_v', s.kv_cache_type_v);
  if (kvCacheTypeV && !['f32', 'f16', 'bf16'].includes(kvCacheTypeV) && flashAttention === false) {
    throw new LlamaCppEngineError(
      'UNSUPPORTED_OPTION',
      `llamacpp.kv_cache_type_v: a quantized V cache (${kvCacheTypeV}) needs flash attention in llama.cpp; ` +
        'set flash_attention: true or use f16',
    );
  }
  const seed = intAtLeast('llamacpp.seed', s.seed, 0);
  return {
    gpuLayers,
    contextSize,
    batchSize,
    threads,
    parallel,
    flashAttention,
    kvCacheTypeK,
    kvCacheTypeV,
    useMmap: bool('llamacpp.use_mmap', s.use_mmap),
    useMlock: bool('llamacpp.use_mlock', s.use_mlock),
    seed,
  };
}

/** llama.cpp's own sampling defaults (common/common.h), used by the `standard` preset. */
const STANDARD = { temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05, repeatPenalty: 1.1 };

/**
 * Applies the decoder preset, then any explicit fields over it (as `@llem/domain` does).
 * `deterministic` is greedy decoding (temperature 0: always the most likely token), so the same
 * prompt gives the same output every time. Without a preset and without a temperature, decoding
 * is greedy too. `seedOverride` (the `llamacpp.seed` field) wins over `decoder.seed`.
 *
 * @example
 * resolveDecoder({ preset: 'standard', seed: 1 }).temperature; // 0.8
 */
export function resolveDecoder(
  decoder: DecoderSection | null | undefined,
  seedOverride?: number,
): ResolvedDecoder {
  const d = (decoder ?? {}) as Record<string, unknown>;
  const preset = d.preset;
  if (
    preset !== undefined &&
    preset !== null &&
    preset !== 'deterministic' &&
    preset !== 'standard'
  ) {
    throw invalid('decoder.preset', '"deterministic" or "standard"', preset);
  }
  const base =
    preset === 'standard'
      ? STANDARD
      : {
          temperature: 0,
          topK: undefined,
          topP: undefined,
          minP: undefined,
          repeatPenalty: undefined,
        };
  const temperature = numberIn('decoder.temperature', d.temperature, 0, 100);
  const decoderSeed = intAtLeast('decoder.seed', d.seed, 0);
  return {
    temperature: temperature ?? base.temperature,
    topK: intAtLeast('decoder.top_k', d.top_k, 0) ?? base.topK,
    topP: numberIn('decoder.top_p', d.top_p, 0, 1) ?? base.topP,
    minP: numberIn('decoder.min_p', d.min_p, 0, 1) ?? base.minP,
    repeatPenalty:
      numberIn('decoder.repeat_penalty', d.repeat_penalty, 0, 100) ?? base.repeatPenalty,
    seed: seedOverride ?? decoderSeed ?? 0,
  };
}

/** node-llama-cpp model options for the settings. */
export function modelOptions(modelPath: string, s: ResolvedLlamaCppSettings): LlamaModelOptions {
  return {
    modelPath,
    gpuLayers: s.gpuLayers,
    ...(s.useMmap === undefined ? {} : { useMmap: s.useMmap }),
    ...(s.useMlock === undefined ? {} : { useMlock: s.useMlock }),
    defaultContextFlashAttention: s.flashAttention,
  };
}

/** node-llama-cpp context options for the settings. */
export function contextOptions(s: ResolvedLlamaCppSettings, threads: number): LlamaContextOptions {
  return {
    sequences: s.parallel,
    contextSize: s.contextSize === 'auto' ? { max: AUTO_CONTEXT_SIZE_CAP } : s.contextSize,
    ...(s.batchSize === undefined ? {} : { batchSize: s.batchSize }),
    flashAttention: s.flashAttention,
    threads,
    ...(s.kvCacheTypeK
      ? { experimentalKvCacheKeyType: s.kvCacheTypeK.toUpperCase() as 'F16' }
      : {}),
    ...(s.kvCacheTypeV
      ? { experimentalKvCacheValueType: s.kvCacheTypeV.toUpperCase() as 'F16' }
      : {}),
    // A measurement must run the configured context size or fail, never a silently smaller one.
    failedCreationRemedy: false,
  };
}

/** Per-request sampling options for `LlamaContextSequence.evaluate`. */
export function evaluateOptions(
  d: ResolvedDecoder,
  requestId: number,
  punishTokens: () => Token[],
): SequenceEvaluateOptions {
  if (d.temperature === 0) {
    // Greedy: the sampler picks the arg-max, so top-k/p and the seed would change nothing.
    return d.repeatPenalty !== undefined && d.repeatPenalty !== 1
      ? { temperature: 0, repeatPenalty: { punishTokens, penalty: d.repeatPenalty } }
      : { temperature: 0 };
  }
  return {
    temperature: d.temperature,
    ...(d.topK === undefined ? {} : { topK: d.topK }),
    ...(d.topP === undefined ? {} : { topP: d.topP }),
    ...(d.minP === undefined ? {} : { minP: d.minP }),
    ...(d.repeatPenalty === undefined || d.repeatPenalty === 1
      ? {}
      : { repeatPenalty: { punishTokens, penalty: d.repeatPenalty } }),
    // One seed per request, so a request's output does not depend on which sequence ran it
    // or in what order requests were scheduled.
    seed: d.seed + requestId,
  };
}
