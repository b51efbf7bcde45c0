import { LlemError } from '@llem/resilience';

/** Error codes of the measurement harness. */
export type MeasurementErrorCode = 'DATASET' | 'ENERGY_UNAVAILABLE' | 'WORKLOAD_FAILED' | 'CONFIG';

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
}
