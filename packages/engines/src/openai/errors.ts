/**
 * Error codes the openai engine throws. The class is named `EngineError` so the CLI maps it to
 * exit 1 with a message and no stack (apps/cli/src/errors.ts matches on `name`).
 */
export type OpenAIEngineErrorCode =
  | 'API_KEY_MISSING'
  | 'UNREACHABLE'
  | 'DNS'
  | 'TLS'
  | 'AUTH'
  | 'MODEL_NOT_FOUND'
  | 'FAILURE_RATE_EXCEEDED'
  | 'WARMUP_FAILED'
  | 'DISPOSED';

/** A failure of the openai engine that the user can act on; the message says what to do. */
export class OpenAIEngineError extends Error {
  override readonly name = 'EngineError';
  readonly code: OpenAIEngineErrorCode;

  constructor(code: OpenAIEngineErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
