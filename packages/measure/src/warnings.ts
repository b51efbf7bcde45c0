import {
  clientSaturationReasons,
  type DispatchSummary,
  type ResidualCheck,
  type RunWarning,
} from '@llem/domain';
import type { GpuSample, GpuStaticInfo } from './gpu';
import { THROTTLE_MASK, throttleReasonNames } from './gpu';

/** Thresholds behind the warnings; the defaults are what the README documents. */
export interface WarningThresholds {
  /** A window shorter than this (s) is "too short". Default 2. */
  minDurationS: number;
  /** Fewer sampler ticks than this in the window is "too few samples". Default 10. */
  minSamples: number;
  /** A temperature range (max − min, °C) above this is "drift". Default 10. */
  maxTemperatureDriftC: number;
}

export const DEFAULT_WARNING_THRESHOLDS: WarningThresholds = {
  minDurationS: 2,
  minSamples: 10,
  maxTemperatureDriftC: 10,
};

export interface WarningInputs {
  durationS: number;
  /** Sampler ticks inside the window; `null` when nothing was sampled (no GPU, no RAPL). */
  samplesInWindow: number | null;
  sampleIntervalMs: number;
  gpus: readonly GpuStaticInfo[];
  /** Per-tick GPU samples inside the window. */
  gpuSamples: readonly GpuSample[][];
  residualCheck: ResidualCheck | null;
}

/**
 * The measurement-quality warnings of a run. Each says what was seen and why it matters, so a
 * reader can judge a number without reading the code.
 *
 * @example
 * measurementWarnings({ durationS: 0.4, ... }); // [{ code: 'run-too-short', message: '...' }]
 */
export function measurementWarnings(
  input: WarningInputs,
  thresholds: WarningThresholds = DEFAULT_WARNING_THRESHOLDS,
): RunWarning[] {
  const warnings: RunWarning[] = [];
  if (input.durationS < thresholds.minDurationS)
    warnings.push({
      code: 'run-too-short',
      message: `the measurement window lasted ${input.durationS.toFixed(3)} s (< ${thresholds.minDurationS} s); energy and rates are noisy at this length: use more or longer requests`,
    });
  for (const gpu of input.gpus)
    if (gpu.persistenceMode === false)
      warnings.push({
        code: 'persistence-mode-off',
        message: `GPU ${gpu.index}: persistence mode is off, so the driver may re-initialise between runs and add latency and energy (sudo nvidia-smi -pm 1)`,
      });
  if (input.residualCheck?.status === 'exceeded') {
    const over = input.residualCheck.devices.filter((d) => d.exceeded);
    warnings.push({
      code: 'residual-memory',
      message: `before dispatch ${over.map((d) => `GPU ${d.index} had ${d.usedMb.toFixed(0)} MB in use`).join(', ')} (threshold ${input.residualCheck.thresholdMb} MB); another process may have shared the GPU`,
    });
  }
  if (input.samplesInWindow !== null && input.samplesInWindow < thresholds.minSamples)
    warnings.push({
      code: 'too-few-samples',
      message: `only ${input.samplesInWindow} sampler reading(s) fell in the window (interval ${input.sampleIntervalMs} ms; want ≥ ${thresholds.minSamples}); power, memory peak and temperature figures are coarse`,
    });
  const byDevice = new Map<number, GpuSample[]>();
  for (const tick of input.gpuSamples)
    for (const s of tick) byDevice.set(s.index, [...(byDevice.get(s.index) ?? []), s]);
  for (const [index, samples] of byDevice) {
    const temps = samples.map((s) => s.temperatureC).filter((t): t is number => t !== null);
    if (temps.length >= 2) {
      const drift = Math.max(...temps) - Math.min(...temps);
      if (drift > thresholds.maxTemperatureDriftC)
        warnings.push({
          code: 'temperature-drift',
          message: `GPU ${index}: temperature moved ${drift.toFixed(0)} °C during the window (${Math.min(...temps)}–${Math.max(...temps)} °C); the GPU was not thermally steady, so later runs may differ`,
        });
    }
    let mask = 0;
    let throttled = 0;
    for (const s of samples)
      if (s.clockEventReasons !== null && (s.clockEventReasons & THROTTLE_MASK) !== 0) {
        mask |= s.clockEventReasons & THROTTLE_MASK;
        throttled++;
      }
    if (throttled > 0)
      warnings.push({
        code: 'throttling',
        message: `GPU ${index}: clocks were throttled in ${throttled} of ${samples.length} samples (${throttleReasonNames(mask).join(', ')}); throughput and energy reflect a slowed GPU`,
      });
  }
  return warnings;
}

/**
 * `client-saturated` when the client could not keep its arrival schedule (the rule is
 * `@llem/domain`'s `clientSaturationReasons`: lateness p99 above `openai.max_client_lag_ms`, or a
 * send rate under 95 % of what the realised schedule asked; slot waits for a slow server do not
 * count). `null` when the client kept up or the run had no schedule.
 *
 * @example
 * clientSaturationWarning(readDispatchSummary(result.extra)); // { code: 'client-saturated', … } or null
 */
export function clientSaturationWarning(dispatch: DispatchSummary | null): RunWarning | null {
  if (dispatch === null) return null;
  const reasons = clientSaturationReasons(dispatch);
  if (reasons.length === 0) return null;
  return {
    code: 'client-saturated',
    message: `the client could not keep the arrival schedule: ${reasons.join('; ')}. TTFT and E2E counted from the send leave that lateness out; latency.ttftFromScheduledMs and latency.e2eFromScheduledMs include it. Lower openai.request_rate to what this machine sustains (llem doctor --client-limit) or run the client on a less loaded machine`,
  };
}
