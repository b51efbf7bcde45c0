import { LlemError } from '@llem/resilience';

/**
 * Error codes of the measurement harness. `DATASET_INVALID`: the dataset file is missing, holds
 * bad data (the message names the file, the line or entry, and what was expected) or no usable
 * request: a mistake in the study, found by `llem config validate` and `--dry-run` too.
 * `DATASET`: a dataset that cannot be read or used for another reason.
 */
export type MeasurementErrorCode =
  | 'DATASET'
  | 'DATASET_INVALID'
  | 'ENERGY_UNAVAILABLE'
  | 'WORKLOAD_FAILED'
  | 'CONFIG';

/** Errors of the measurement harness (`name` `MeasurementError`). */
export class MeasurementError extends LlemError<MeasurementErrorCode> {
  override readonly name = 'MeasurementError';
  readonly source = 'measurement' as const;
  constructor(
    message: string,
    readonly code: MeasurementErrorCode,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** A dataset file with bad data (or none usable) is the study's to fix: a `config` failure. */
  override get runFailure(): string | undefined {
    return this.code === 'DATASET_INVALID' ? 'config' : undefined;
  }
}
