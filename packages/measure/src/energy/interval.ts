import type { DeviceEnergy } from '@llem/domain';
import type { ChannelReading, EnergyChannel } from './channel';

/** A cumulative energy counter read at monotonic ms `t`, in joules. */
export interface CounterPoint {
  t: number;
  j: number;
}

/** An instant-power sample at monotonic ms `t`, in watts. */
export interface PowerPoint {
  t: number;
  w: number;
}

/** Energy inside an interval, or why there is none; never a guess. */
export type IntervalEnergy =
  | { totalJ: number; samplesInWindow: number; reason: null }
  | { totalJ: null; samplesInWindow: number; reason: string };

/** What a counter needs to tell a wrap or reset from a real delta (see `EnergyChannel`). */
export interface CounterLimits {
  /** Where the counter wraps to 0, in J; `null` when a decrease means a reset. Default `null`. */
  rangeJ?: number | null;
  /** A delta implying more than this is garbage. Default `Infinity`. */
  maxPlausibleW?: number;
}

function inWindow(points: readonly { t: number }[], startMs: number, endMs: number): number {
  let n = 0;
  for (const p of points) if (p.t >= startMs && p.t <= endMs) n++;
  return n;
}

/** `null` when the interval is usable, else the reason (empty, or not covered by readings). */
function coverage(
  points: readonly { t: number }[],
  startMs: number,
  endMs: number,
  what: string,
): string | null {
  if (!(Number.isFinite(startMs) && Number.isFinite(endMs)) || !(endMs > startMs))
    return `the interval [${startMs}, ${endMs}] ms is empty`;
  const first = points[0];
  const last = points[points.length - 1];
  if (first === undefined || last === undefined || points.length < 2)
    return `only ${points.length} ${what} reading(s) (need 2 around the interval)`;
  if (first.t > startMs || last.t < endMs)
    return `the ${what} readings (${first.t.toFixed(1)}–${last.t.toFixed(1)} ms) do not cover the interval ${startMs.toFixed(1)}–${endMs.toFixed(1)} ms`;
  return null;
}

/**
 * Energy inside `[startMs, endMs]` from a cumulative counter read at ticks (in time order). Each
 * delta between consecutive ticks is counted in proportion to how much of its span lies in the
 * interval: the counter says how much energy a span used, not when inside it, so the boundary
 * spans are pro-rated by time (constant power within one tick). Spans outside count nothing. A
 * wrap is added back through `rangeJ`; a reset (decrease without a range) or an implausible
 * jump in a span that touches the interval makes the whole figure `null` with the reason.
 *
 * @example
 * // 0, 10, 30, 60 J at 0, 100, 200, 300 ms: half of 10 + 20 + half of 30.
 * counterEnergyInInterval([{ t: 0, j: 0 }, { t: 100, j: 10 }, { t: 200, j: 30 }, { t: 300, j: 60 }], 50, 250);
 * // { totalJ: 40, samplesInWindow: 2, reason: null }
 */
export function counterEnergyInInterval(
  points: readonly CounterPoint[],
  startMs: number,
  endMs: number,
  limits: CounterLimits = {},
): IntervalEnergy {
  const samplesInWindow = inWindow(points, startMs, endMs);
  const uncovered = coverage(points, startMs, endMs, 'counter');
  if (uncovered !== null) return { totalJ: null, samplesInWindow, reason: uncovered };
  const rangeJ = limits.rangeJ ?? null;
  const maxW = limits.maxPlausibleW ?? Number.POSITIVE_INFINITY;
  let total = 0;
  for (let i = 1; i < points.length; i++) {
    const a = points[i - 1] as CounterPoint;
    const b = points[i] as CounterPoint;
    const lo = Math.max(a.t, startMs);
    const hi = Math.min(b.t, endMs);
    if (!(hi > lo) || !(b.t > a.t)) continue;
    let delta = b.j - a.j;
    if (delta < 0) {
      if (rangeJ === null)
        return {
          totalJ: null,
          samplesInWindow,
          reason: `the energy counter went backwards by ${(-delta).toFixed(3)} J at ${b.t.toFixed(1)} ms (a reset)`,
        };
      delta += rangeJ;
    }
    const spanS = (b.t - a.t) / 1000;
    if (delta / Math.max(spanS, 1e-3) > maxW)
      return {
        totalJ: null,
        samplesInWindow,
        reason: `the energy counter jumped by ${delta.toFixed(1)} J in ${spanS.toFixed(3)} s (implausible; a wrap or reset)`,
      };
    total += (delta * (hi - lo)) / (b.t - a.t);
  }
  return { totalJ: total, samplesInWindow, reason: null };
}

/** Linear interpolation of power at `t` between two samples that bracket it. */
function powerAt(a: PowerPoint, b: PowerPoint, t: number): number {
  if (b.t === a.t) return a.w;
  return a.w + ((b.w - a.w) * (t - a.t)) / (b.t - a.t);
}

/**
 * Trapezoidal integral of instant-power samples (in time order) clipped to `[startMs, endMs]`:
 * the power at each boundary is interpolated linearly between the samples around it, so a
 * linear ramp is integrated exactly and constant power P gives P × (end − start).
 *
 * @example
 * powerEnergyInInterval([{ t: 0, w: 100 }, { t: 1000, w: 300 }], 250, 750);
 * // { totalJ: 100, samplesInWindow: 0, reason: null } (mean 200 W over 0.5 s)
 */
export function powerEnergyInInterval(
  samples: readonly PowerPoint[],
  startMs: number,
  endMs: number,
): IntervalEnergy {
  const samplesInWindow = inWindow(samples, startMs, endMs);
  const uncovered = coverage(samples, startMs, endMs, 'power');
  if (uncovered !== null) return { totalJ: null, samplesInWindow, reason: uncovered };
  let total = 0;
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1] as PowerPoint;
    const b = samples[i] as PowerPoint;
    const lo = Math.max(a.t, startMs);
    const hi = Math.min(b.t, endMs);
    if (!(hi > lo)) continue;
    total += ((powerAt(a, b, lo) + powerAt(a, b, hi)) / 2) * ((hi - lo) / 1000);
  }
  return { totalJ: total, samplesInWindow, reason: null };
}

/**
 * Fewer counter reads than this inside an interval (two whole counter spans) and a GPU channel's
 * interval energy comes from its power integral instead of the pro-rated counter.
 */
export const MIN_COUNTER_READS_INSIDE = 3;

/** One channel's energy inside an interval, as `DeviceEnergy` plus why it is missing. */
export interface ChannelIntervalEnergy extends DeviceEnergy {
  note: string | null;
}

/**
 * One channel's energy inside `[startMs, endMs]` with the method its full window used:
 * `nvml-counter`/`rapl` pro-rate the counter ticks ({@link counterEnergyInInterval}), except
 * that a GPU whose counter was read fewer than {@link MIN_COUNTER_READS_INSIDE} times inside the
 * interval (it is read only every `counterIntervalMs`) uses its power integral and reports
 * `nvml-power-integral`;
 * `nvml-power-integral` integrates the power samples ({@link powerEnergyInInterval}); anything
 * else was not measured and stays `null`. Readings are every tick the sampler took, in time
 * order (not only the full window's), so a window edge always has a reading around it.
 *
 * @example
 * channelEnergyInInterval(gpuChannel, 0, readings, 'nvml-counter', 1200, 4800);
 */
export function channelEnergyInInterval(
  channel: EnergyChannel,
  position: number,
  readings: readonly ChannelReading[],
  method: DeviceEnergy['method'],
  startMs: number,
  endMs: number,
): ChannelIntervalEnergy {
  const base = { index: channel.index, kind: channel.kind };
  let got: IntervalEnergy;
  const powerSamples = () =>
    readings
      .map((r) => ({ t: r.t, w: r.powerW[position] ?? null }))
      .filter((p): p is PowerPoint => p.w !== null);
  if (method === 'nvml-counter' || method === 'rapl') {
    const points = readings
      .map((r) => ({ t: r.t, j: r.counterJ[position] ?? null }))
      .filter((p): p is CounterPoint => p.j !== null);
    // A sparsely read counter (NVML: every `counterIntervalMs`) with fewer than two whole spans
    // inside the interval would be mostly pro-rated edge spans, i.e. an assumption of constant
    // power over up to a second outside the interval. The per-tick power integral is the
    // better figure then, and `method` says that it was used.
    const inside = inWindow(points, startMs, endMs);
    const power = channel.kind === 'gpu' ? powerSamples() : [];
    if (inside < MIN_COUNTER_READS_INSIDE && power.length >= 2) {
      const integral = powerEnergyInInterval(power, startMs, endMs);
      if (integral.totalJ !== null)
        return { ...base, method: 'nvml-power-integral', totalJ: integral.totalJ, note: null };
    }
    got = counterEnergyInInterval(points, startMs, endMs, {
      rangeJ: channel.counterRangeJ,
      maxPlausibleW: channel.maxPlausibleW,
    });
  } else if (method === 'nvml-power-integral') {
    got = powerEnergyInInterval(powerSamples(), startMs, endMs);
  } else {
    return { ...base, method: 'none', totalJ: null, note: 'not measured in the full window' };
  }
  if (got.totalJ === null) return { ...base, method: 'none', totalJ: null, note: got.reason };
  return { ...base, method, totalJ: got.totalJ, note: null };
}
