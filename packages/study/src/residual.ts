import type { ResidualCheck } from '@llem/domain';
import type { Logger } from '@llem/resilience';

/** What the runner passes its residual check before each run. */
export interface ResidualCheckRequest {
  deviceIndices: number[];
  thresholdMb: number;
  logger: Logger;
  /** The environment holding `LLEM_NVML_LIBRARY` (the runner's `env`). */
  env?: NodeJS.ProcessEnv | undefined;
}

/**
 * The pre-dispatch residual GPU-memory check (seed 000): it must never throw and never block.
 * The runner guards it anyway: a throw becomes a `skipped` observation with the reason.
 */
export type ResidualCheckFn = (
  request: ResidualCheckRequest,
) => ResidualCheck | Promise<ResidualCheck>;

/** Default `execution.residual_memory_threshold_mb`. */
export const DEFAULT_RESIDUAL_THRESHOLD_MB = 100;

/** A `skipped` observation, for when there is nothing to check or the check failed. */
export function skippedResidualCheck(
  thresholdMb: number,
  reason: string,
  now: Date = new Date(),
): ResidualCheck {
  return { status: 'skipped', thresholdMb, devices: [], reason, checkedAt: now.toISOString() };
}

/**
 * The default residual check: `@llem/nvml`'s `checkGpuMemoryResidualAll` (which logs the
 * warning naming device, MB used and threshold, and never throws), its per-device observations
 * folded into one `ResidualCheck` for the run's result. `@llem/nvml` is imported lazily, so a
 * runner given its own check (tests, a library user) never loads the native binding.
 *
 * @example
 * const observation = await nvmlResidualCheck({ deviceIndices: [0], thresholdMb: 100, logger });
 * // { status: 'ok', thresholdMb: 100, devices: [{ index: 0, usedMb: 1, totalMb: 81559, exceeded: false }], … }
 */
export const nvmlResidualCheck: ResidualCheckFn = async (request) => {
  const { checkGpuMemoryResidualAll } = await import('@llem/nvml');
  const seen = checkGpuMemoryResidualAll({
    deviceIndices: request.deviceIndices,
    thresholdMb: request.thresholdMb,
    logger: request.logger,
    env: request.env,
  });
  return foldObservations(seen, request.thresholdMb, new Date());
};

/** One device as `@llem/nvml` reports it. */
export interface DeviceObservation {
  checked: boolean;
  deviceIndex: number;
  usedMb: number | null;
  totalMb: number | null;
  exceeded: boolean;
  reason?: string;
}

/**
 * Fold per-device observations into the result's `ResidualCheck`: devices that could not be
 * read are left out and their reasons kept; none readable means `skipped`.
 *
 * @example
 * foldObservations([{ checked: false, deviceIndex: 0, usedMb: null, totalMb: null,
 *   exceeded: false, reason: 'NVML not found' }], 100, new Date()).status; // 'skipped'
 */
export function foldObservations(
  seen: readonly DeviceObservation[],
  thresholdMb: number,
  now: Date,
): ResidualCheck {
  const devices = seen
    .filter((d) => d.checked && d.usedMb !== null)
    .map((d) => ({
      index: d.deviceIndex,
      usedMb: d.usedMb as number,
      totalMb: d.totalMb,
      exceeded: d.exceeded,
    }));
  const reasons = [
    ...new Set(seen.filter((d) => !d.checked).map((d) => `device ${d.deviceIndex}: ${d.reason}`)),
  ];
  const reason = reasons.length > 0 ? reasons.join('; ') : null;
  if (devices.length === 0) {
    return skippedResidualCheck(thresholdMb, reason ?? 'no device to check', now);
  }
  return {
    status: devices.some((d) => d.exceeded) ? 'exceeded' : 'ok',
    thresholdMb,
    devices,
    reason,
    checkedAt: now.toISOString(),
  };
}
