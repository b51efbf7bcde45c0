// Maps a validated `llamacpp` section and `decoder` (from @llem/domain's ExperimentConfig) to
// node-llama-cpp's options. No validation here: the domain's schema owns the rules, so a value
// that reaches this file is one the schema accepted.
import type { DecoderConfig, LlamaCppConfig } from '@llem/domain';
import type {
  LlamaContextOptions,
  LlamaModelOptions,
  SequenceEvaluateOptions,
  Token,
} from 'node-llama-cpp';

/** Context size used when the config leaves it to `auto`: big enough for any benchmark prompt, small enough for a laptop. */
export const AUTO_CONTEXT_SIZE_CAP = 4096;

/** Sampling settings as node-llama-cpp names them. `temperature: 0` means greedy. */
export interface ResolvedDecoder {
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  repeatPenalty: number;
  seed: number;
}

/**
 * The decoder section (presets already applied by the domain) in node-llama-cpp's terms.
 * `llamacpp.seed` wins over `decoder.seed` when set.
 */
export function resolveDecoder(decoder: DecoderConfig, seedOverride?: number): ResolvedDecoder {
  return {
    temperature: decoder.temperature,
    topK: decoder.top_k,
    topP: decoder.top_p,
    minP: decoder.min_p,
    repeatPenalty: decoder.repeat_penalty,
    seed: seedOverride ?? decoder.seed,
  };
}

/** node-llama-cpp model options for the section. */
export function modelOptions(modelPath: string, s: LlamaCppConfig): LlamaModelOptions {
  return {
    modelPath,
    gpuLayers: s.gpu_layers,
    useMmap: s.use_mmap,
    useMlock: s.use_mlock,
    defaultContextFlashAttention: s.flash_attention,
  };
}

/** node-llama-cpp context options for the section; `threads` is already resolved from `auto`. */
export function contextOptions(s: LlamaCppConfig, threads: number): LlamaContextOptions {
  return {
    sequences: s.parallel,
    contextSize: s.context_size === 'auto' ? { max: AUTO_CONTEXT_SIZE_CAP } : s.context_size,
    batchSize: s.batch_size,
    flashAttention: s.flash_attention,
    threads,
    experimentalKvCacheKeyType: s.kv_cache_type_k.toUpperCase() as 'F16',
    experimentalKvCacheValueType: s.kv_cache_type_v.toUpperCase() as 'F16',
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
  const repeatPenalty =
    d.repeatPenalty === 1 ? {} : { repeatPenalty: { punishTokens, penalty: d.repeatPenalty } };
  if (d.temperature === 0) {
    // Greedy: the sampler picks the arg-max, so top-k/p and the seed would change nothing.
    return { temperature: 0, ...repeatPenalty };
  }
  return {
    temperature: d.temperature,
    topK: d.topK,
    topP: d.topP,
    minP: d.minP,
    ...repeatPenalty,
    // One seed per request, so a request's output does not depend on which sequence ran it
    // or in what order requests were scheduled.
    seed: d.seed + requestId,
  };
}
