import { LlemError } from '@llem/resilience';

/** Error codes the openai engine throws; the CLI maps each to an exit code (`apps/cli/src/errors.ts`). */
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
export class OpenAIEngineError extends LlemError<OpenAIEngineErrorCode> {
  override readonly name = 'EngineError';
  readonly code: OpenAIEngineErrorCode;
  readonly source = 'engine' as const;

  constructor(code: OpenAIEngineErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
