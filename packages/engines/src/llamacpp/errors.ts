import { LlemError } from '@llem/resilience';

/** Error codes the llamacpp engine throws; each message says what to do about it. */
export type LlamaCppEngineErrorCode =
  | 'MODEL_NOT_FOUND'
  | 'MODEL_LOAD_FAILED'
  | 'ENGINE_BINARY_MISSING'
  | 'CONTEXT_CREATE_FAILED'
  | 'CONTEXT_OVERFLOW'
  | 'NOT_LOADED';

/**
 * A failure of the llamacpp engine. Named `EngineError` (like the other engines' errors) so the
 * CLI prints it without a stack; `code` tells the cases apart.
 */
export class LlamaCppEngineError extends LlemError<LlamaCppEngineErrorCode> {
  override readonly name = 'EngineError';
  readonly code: LlamaCppEngineErrorCode;
  readonly source = 'engine' as const;

  constructor(code: LlamaCppEngineErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
