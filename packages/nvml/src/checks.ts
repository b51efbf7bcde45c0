import { type Logger, noopLogger } from '@llem/resilience';
import { Nvml, type NvmlOpenOptions } from './nvml';

/** Options shared by the pre-dispatch checks. */
export interface CheckOptions extends NvmlOpenOptions {
  /** Where the warning (and the debug line when skipped) goes. Default: `noopLogger`. */
  logger?: Logger | undefined;
}

export interface ResidualCheckOptions extends CheckOptions {
  /** GPU index (NVML order). Default `0`. */
  deviceIndex?: number | undefined;
  /** Warn when used memory is above this many MB (MiB, as nvidia-smi counts). Default `100`. */
  thresholdMb?: number | undefined;
}

export interface ResidualCheckAllOptions extends CheckOptions {
  /** GPU indices to check. Default `[0]`. */
  deviceIndices?: readonly number[] | undefined;
  /** Default `100`. */
  thresholdMb?: number | undefined;
}

/** What a residual-memory check saw, for the run's result file. */
export interface ResidualObservation {
  /** False when the check could not run (no NVML, NVML error); `reason` says why. */
  checked: boolean;
  deviceIndex: number;
  /** Used memory in MB (MiB); null when not read. */
  usedMb: number | null;
  /** Total memory in MB (MiB); null when not read. */
  totalMb: number | null;
  thresholdMb: number;
  /** True when `usedMb > thresholdMb` (a warning was logged). */
  exceeded: boolean;
  reason?: string;
}

export interface PersistenceCheckOptions extends CheckOptions {
  /** GPU indices to check. Default `[0]`. */
  deviceIndices?: readonly number[] | undefined;
}

export interface PersistenceObservation {
  checked: boolean;
  deviceIndex: number;
  /** True on, false off, null unknown. */
  enabled: boolean | null;
  reason?: string;
}

const DEFAULT_THRESHOLD_MB = 100;

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Whole MB like the seed's `%.0f`, but one decimal when rounding would hide the excess. */
function formatMb(mb: number): string {
  return Number.isInteger(mb) ? String(mb) : mb.toFixed(mb < 1000 ? 1 : 0);
}

function invalidIndices(indices: readonly number[]): string | null {
  const bad = indices.find((i) => !Number.isInteger(i) || i < 0);
  return bad === undefined ? null : `device index must be a non-negative integer, got ${bad}`;
}

/**
 * Open NVML, run `body`, and always close it again, even when `body` throws. Any failure to load
 * or initialise NVML becomes `{ error }` instead of an exception.
 */
function withNvml<T>(
  options: CheckOptions,
  body: (nvml: Nvml) => T,
): { value: T } | { error: unknown } {
  let nvml: Nvml | undefined;
  try {
    nvml = Nvml.open({ library: options.library, env: options.env });
    return { value: body(nvml) };
  } catch (error) {
    return { error };
  } finally {
    try {
      nvml?.close();
    } catch {
      // A failing nvmlShutdown must not turn a check into a crash.
    }
  }
}

/**
 * Check several GPUs for memory left behind by an earlier process, with one NVML open/close.
 * Logs one warning per device above the threshold; logs nothing for a clean device; never throws
 * (without NVML, or on an NVML error, it logs one debug line and reports `checked: false`).
 *
 * @example
 * const seen = checkGpuMemoryResidualAll({ deviceIndices: [0, 1], logger });
 * // [{ checked: true, deviceIndex: 0, usedMb: 1, thresholdMb: 100, exceeded: false }, …]
 */
export function checkGpuMemoryResidualAll(
  options: ResidualCheckAllOptions = {},
): ResidualObservation[] {
  const logger = options.logger ?? noopLogger;
  const thresholdMb = options.thresholdMb ?? DEFAULT_THRESHOLD_MB;
  const indices = options.deviceIndices ?? [0];
  const unchecked = (deviceIndex: number, reason: string): ResidualObservation => ({
    checked: false,
    deviceIndex,
    usedMb: null,
    totalMb: null,
    thresholdMb,
    exceeded: false,
    reason,
  });
  const skipped = (reason: string): ResidualObservation[] => {
    try {
      logger.debug(`GPU memory residual check skipped: ${reason}`);
    } catch {
      // A throwing logger must not break the never-throws promise.
    }
    return indices.map((deviceIndex) => unchecked(deviceIndex, reason));
  };
  if (!Number.isFinite(thresholdMb) || thresholdMb < 0) {
    return skipped(`thresholdMb must be a non-negative number, got ${thresholdMb}`);
  }
  const bad = invalidIndices(indices);
  if (bad) return skipped(bad);

  const outcome = withNvml(options, (nvml) =>
    indices.map((deviceIndex): ResidualObservation => {
      // One bad device (lost, wrong index) must not hide what the others show.
      try {
        const device = nvml.device(deviceIndex);
        const memory = device.memoryInfo();
        if (memory === null) throw device.lastError ?? new Error('memory info unavailable');
        const usedMb = memory.usedMiB;
        return {
          checked: true,
          deviceIndex,
          usedMb,
          totalMb: memory.totalMiB,
          thresholdMb,
          exceeded: usedMb > thresholdMb,
        };
      } catch (error) {
        return unchecked(deviceIndex, describe(error));
      }
    }),
  );
  if ('error' in outcome) return skipped(describe(outcome.error));
  for (const seen of outcome.value) {
    try {
      if (!seen.checked) {
        logger.debug(
          `GPU memory residual check skipped on device ${seen.deviceIndex}: ${seen.reason}`,
        );
      } else if (seen.exceeded) {
        logger.warn(
          `Residual GPU memory detected on device ${seen.deviceIndex}: ${formatMb(seen.usedMb ?? 0)} MB used ` +
            `(threshold: ${thresholdMb} MB). A prior process may not have released GPU resources; ` +
            'measurement accuracy could suffer.',
        );
      }
    } catch {
      // A throwing logger must not break the never-throws promise.
    }
  }
  return outcome.value;
}

/**
 * The pre-dispatch check from the study runner: is GPU memory already in use before an
 * experiment starts? Opens NVML, reads used memory, and always shuts NVML down again. Above
 * `thresholdMb` it logs one warning naming the device, the MB used and the threshold; at or
 * below, nothing. It never throws: without NVML or on an NVML error it logs one debug line and
 * returns `checked: false` with a `reason`.
 *
 * @example
 * const seen = checkGpuMemoryResidual({ deviceIndex: 0, thresholdMb: 100, logger });
 * if (seen.exceeded) result.warnings.push('residual GPU memory at dispatch');
 */
export function checkGpuMemoryResidual(options: ResidualCheckOptions = {}): ResidualObservation {
  const { deviceIndex = 0, ...rest } = options;
  const [seen] = checkGpuMemoryResidualAll({ ...rest, deviceIndices: [deviceIndex] });
  return seen!;
}

/**
 * Warn when persistence mode is off: without it the driver may tear down and re-initialise the
 * GPU between experiments, which adds start-up latency and power noise. Never throws; returns
 * what it saw per device.
 *
 * @example
 * checkPersistenceMode({ deviceIndices: [0], logger });
 */
export function checkPersistenceMode(
  options: PersistenceCheckOptions = {},
): PersistenceObservation[] {
  const logger = options.logger ?? noopLogger;
  const indices = options.deviceIndices ?? [0];
  const skipped = (reason: string): PersistenceObservation[] => {
    try {
      logger.debug(`GPU persistence-mode check skipped: ${reason}`);
    } catch {
      // never throw
    }
    return indices.map((deviceIndex) => ({ checked: false, deviceIndex, enabled: null, reason }));
  };
  const bad = invalidIndices(indices);
  if (bad) return skipped(bad);
  const outcome = withNvml(options, (nvml) =>
    indices.map((deviceIndex): PersistenceObservation => {
      let device: ReturnType<Nvml['device']>;
      try {
        device = nvml.device(deviceIndex);
      } catch (error) {
        return { checked: false, deviceIndex, enabled: null, reason: describe(error) };
      }
      const enabled = device.persistenceMode();
      return enabled === null
        ? {
            checked: false,
            deviceIndex,
            enabled,
            reason: device.lastError?.message ?? 'persistence mode unreadable',
          }
        : { checked: true, deviceIndex, enabled };
    }),
  );
  if ('error' in outcome) return skipped(describe(outcome.error));
  for (const seen of outcome.value) {
    try {
      if (seen.enabled === false) {
        logger.warn(
          `Persistence mode is off on GPU ${seen.deviceIndex}: the driver may re-initialise the GPU ` +
            'between experiments, adding latency and power noise. Enable it with `sudo nvidia-smi -pm 1`.',
        );
      } else if (seen.enabled === null) {
        logger.debug(
          `GPU persistence-mode check skipped on GPU ${seen.deviceIndex}: ${seen.reason}`,
        );
      }
    } catch {
      // never throw
    }
  }
  return outcome.value;
}
