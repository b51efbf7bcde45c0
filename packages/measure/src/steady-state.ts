import type { DeviceEnergy, EnergyMethod, RunWarning } from '@llem/domain';
import type { ChannelReading, EnergyChannel } from './energy/channel';
import { type ChannelIntervalEnergy, channelEnergyInInterval } from './energy/interval';
import { baselineAdjusted, energyPerOutputToken } from './metrics';

/**
 * Fewer sampler readings than this inside the steady-state window and its energy is not
 * reported: two or fewer points say almost nothing about the power inside the window.
 */
export const MIN_STEADY_STATE_SAMPLES = 3;

/** The fields of an engine's `extra.steadyState` window the harness needs. */
export interface SteadyStateSpan {
  /** Monotonic ms, the harness's clock (`performance.now()` in the same process). */
  startMs: number;
  endMs: number;
  /** Output tokens that arrived inside the window. */
  outputTokens: number;
}

/** Energy inside the steady-state window, shaped like the run's full-window `energy`. */
export interface SteadyStateEnergy {
  method: EnergyMethod;
  durationS: number;
  totalJ: number | null;
  /** `max(0, totalJ − baselineW × durationS)`; `null` without a baseline. */
  adjustedJ: number | null;
  perDevice: DeviceEnergy[];
  /** `totalJ / outputTokens` of the window. */
  energyPerOutputTokenJ: number | null;
  /** `adjustedJ / outputTokens` of the window. */
  adjustedEnergyPerOutputTokenJ: number | null;
  /** Sampler readings whose time lies inside the window. */
  samplesInWindow: number;
  /** Why a figure is `null`; `null` when everything was measured. */
  unavailableReason: string | null;
}

/**
 * The steady-state window of an engine's `extra`, or `null` when there is none (`steadyState`
 * absent, `null` because it is off, or `{ unavailable }`).
 *
 * @example
 * steadyStateSpan({ steadyState: { startMs: 1200, endMs: 4800, outputTokens: 900 } });
 * // { startMs: 1200, endMs: 4800, outputTokens: 900 }
 */
export function steadyStateSpan(
  extra: Record<string, unknown> | undefined,
): SteadyStateSpan | null {
  const s = extra?.steadyState;
  if (typeof s !== 'object' || s === null) return null;
  const { startMs, endMs, outputTokens } = s as Record<string, unknown>;
  if (typeof startMs !== 'number' || typeof endMs !== 'number') return null;
  if (!Number.isFinite(startMs) || !Number.isFinite(endMs)) return null;
  return {
    startMs,
    endMs,
    outputTokens:
      typeof outputTokens === 'number' && Number.isFinite(outputTokens) ? outputTokens : 0,
  };
}

export interface SteadyStateEnergyInput {
  span: SteadyStateSpan;
  channels: readonly EnergyChannel[];
  /** Every reading the sampler took during the workload, in time order. */
  readings: readonly ChannelReading[];
  /** The method each channel's full-window energy used (same order as `channels`). */
  methods: readonly DeviceEnergy['method'][];
  /** Idle power from the baseline, or `null`. */
  baselineW: number | null;
  /** Why the full window has no energy, for when there is no channel at all. */
  fullWindowReason?: string | null;
  /** Default {@link MIN_STEADY_STATE_SAMPLES}. */
  minSamples?: number;
}

/**
 * Energy and energy per output token inside the steady-state window, per device and in total,
 * with the same methods as the full window. A window holding fewer than `minSamples` readings
 * gets null figures, the reason and a `steady-state-too-short` warning rather than a guess.
 *
 * @example
 * const { energy, warning } = steadyStateEnergy({ span, channels, readings, methods, baselineW: null });
 * energy.energyPerOutputTokenJ; // J per token of the steady state
 */
export function steadyStateEnergy(input: SteadyStateEnergyInput): {
  energy: SteadyStateEnergy;
  warning: RunWarning | null;
} {
  const { span, channels, readings, methods, baselineW } = input;
  const minSamples = input.minSamples ?? MIN_STEADY_STATE_SAMPLES;
  const durationS = Math.max(0, (span.endMs - span.startMs) / 1000);
  const samplesInWindow = readings.filter((r) => r.t >= span.startMs && r.t <= span.endMs).length;
  const empty = (reason: string): SteadyStateEnergy => ({
    method: 'none',
    durationS,
    totalJ: null,
    adjustedJ: null,
    perDevice: [],
    energyPerOutputTokenJ: null,
    adjustedEnergyPerOutputTokenJ: null,
    samplesInWindow,
    unavailableReason: reason,
  });
  if (channels.length === 0)
    return {
      energy: empty(input.fullWindowReason ?? 'no energy source was sampled'),
      warning: null,
    };
  if (samplesInWindow < minSamples) {
    const reason = `the steady-state window (${durationS.toFixed(3)} s) held ${samplesInWindow} sampler reading(s), fewer than ${minSamples}; use a longer workload or a shorter energy.sample_interval_ms`;
    return {
      energy: empty(reason),
      warning: {
        code: 'steady-state-too-short',
        message: `steady-state energy not reported: ${reason}`,
      },
    };
  }
  const per: ChannelIntervalEnergy[] = channels.map((c, i) =>
    channelEnergyInInterval(c, i, readings, methods[i] ?? 'none', span.startMs, span.endMs),
  );
  const used = new Set(per.map((d) => d.method));
  const method: EnergyMethod = used.size === 1 ? ([...used][0] ?? 'none') : 'mixed';
  const totalJ = per.some((d) => d.totalJ === null)
    ? null
    : per.reduce((a, d) => a + (d.totalJ ?? 0), 0);
  const notes = per.filter((d) => d.note !== null).map((d) => `${d.kind} ${d.index}: ${d.note}`);
  if (totalJ !== null && !(span.outputTokens > 0))
    notes.push('no output token arrived inside the window, so there is no energy per token');
  const adjustedJ = baselineAdjusted(totalJ, baselineW, durationS);
  return {
    energy: {
      method,
      durationS,
      totalJ,
      adjustedJ,
      perDevice: per.map(({ index, kind, method: m, totalJ: j }) => ({
        index,
        kind,
        method: m,
        totalJ: j,
      })),
      energyPerOutputTokenJ: energyPerOutputToken(totalJ, span.outputTokens),
      adjustedEnergyPerOutputTokenJ: energyPerOutputToken(adjustedJ, span.outputTokens),
      samplesInWindow,
      unavailableReason: notes.length > 0 ? notes.join('; ') : null,
    },
    warning: null,
  };
}
