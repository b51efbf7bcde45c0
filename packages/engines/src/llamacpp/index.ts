export type { LlamaCppEngineOptions } from './engine';
export { createLlamaCppEngine } from './engine';
export type { LlamaCppEngineErrorCode } from './errors';
export { LlamaCppEngineError } from './errors';
export type { GgufModelMetadata } from './metadata';
export { readGgufMetadata } from './metadata';
export type {
  DecoderSection,
  KvCacheType,
  LlamaCppEngineConfig,
  LlamaCppSection,
  ResolvedDecoder,
  ResolvedLlamaCppSettings,
} from './options';
export { KV_CACHE_TYPES, resolveDecoder, resolveLlamaCppSettings } from './options';
