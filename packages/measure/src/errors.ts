/**
 * Errors of the measurement harness. `name` is `MeasurementError`, which the CLI prints without
 * a stack trace (exit 1).
 */
export class MeasurementError extends Error {
  override readonly name = 'MeasurementError';
  constructor(
    message: string,
    readonly code: 'DATASET' | 'ENERGY_UNAVAILABLE' | 'WORKLOAD_FAILED' | 'CONFIG',
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
