export type { LlamaCppEngineOptions } from './engine';
export { createLlamaCppEngine } from './engine';
export type { LlamaCppEngineErrorCode } from './errors';
export { LlamaCppEngineError } from './errors';
export type { GgufModelMetadata } from './metadata';
export { readGgufMetadata } from './metadata';
