import { LlemError } from '@llem/resilience';

/** Why a study directory could not be read or reported on. */
export type ReportErrorCode =
  | 'STUDY_NOT_FOUND'
  | 'MANIFEST_INVALID'
  | 'CONFIG_NOT_FOUND'
  | 'INVALID_OPTION'
  | 'NOTHING_TO_COMPARE';

/**
 * The one error class of `@llem/report`. Every message names the file or argument at fault and,
 * where there is a fixed set, the allowed values. The CLI prints these without a stack.
 *
 * @example
 * try { await loadStudy('results/nope'); } catch (e) { if (e instanceof ReportError) console.error(e.message); }
 */
export class ReportError extends LlemError<ReportErrorCode> {
  override readonly name = 'ReportError';
  readonly code: ReportErrorCode;
  readonly source = 'report' as const;

  constructor(code: ReportErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
