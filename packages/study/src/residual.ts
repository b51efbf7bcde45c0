import type { ResidualCheck } from '@llem/domain';
import type { Logger } from '@llem/resilience';

/** What the runner passes its residual check before each run. */
export interface ResidualCheckRequest {
  deviceIndices: number[];
  thresholdMb: number;
  logger: Logger;
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
 * The default residual check: `@llem/nvml`'s `checkGpuMemoryResidualAll`, loaded lazily so a
 * runner that is given its own check (tests, a machine without NVML) never loads the binding.
 *
 * @example
 * const observation = await nvmlResidualCheck({ deviceIndices: [0], thresholdMb: 100, logger });
 */
export const nvmlResidualCheck: ResidualCheckFn = async (request) => {
  let check: ((r: ResidualCheckRequest) => unknown) | undefined;
  try {
    const nvml = (await import('@llem/nvml')) as Record<string, unknown>;
    const candidate = nvml.checkGpuMemoryResidualAll;
    if (typeof candidate === 'function') check = candidate as (r: ResidualCheckRequest) => unknown;
  } catch (error) {
    request.logger.debug(`residual check skipped: cannot load @llem/nvml: ${String(error)}`);
  }
  if (!check) return skippedResidualCheck(request.thresholdMb, 'NVML residual check unavailable');
  return toResidualCheck(await check(request), request.thresholdMb);
};

/** Accept either a full observation or a list of per-device observations. */
function toResidualCheck(value: unknown, thresholdMb: number): ResidualCheck {
  if (typeof value === 'object' && value !== null && 'status' in value && 'devices' in value) {
    return value as ResidualCheck;
  }
  if (Array.isArray(value)) {
    const devices = value
      .filter((d): d is { index: number; usedMb: number; totalMb?: number | null } => {
        return typeof d?.index === 'number' && typeof d?.usedMb === 'number';
      })
      .map((d) => ({
        index: d.index,
        usedMb: d.usedMb,
        totalMb: typeof d.totalMb === 'number' ? d.totalMb : null,
        exceeded: d.usedMb > thresholdMb,
      }));
    if (devices.length === 0) return skippedResidualCheck(thresholdMb, 'no device readable');
    return {
      status: devices.some((d) => d.exceeded) ? 'exceeded' : 'ok',
      thresholdMb,
      devices,
      reason: null,
      checkedAt: new Date().toISOString(),
    };
  }
  return skippedResidualCheck(thresholdMb, 'the residual check returned nothing usable');
}
