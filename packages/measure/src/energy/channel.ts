import type { DeviceEnergy, EnergyDeviceKind } from '@llem/domain';

/**
 * One thing whose energy can be measured: an NVML GPU or a RAPL CPU package. Reads never throw;
 * an unreadable value is `null`, never 0.
 */
export interface EnergyChannel {
  kind: EnergyDeviceKind;
  /** NVML device index, or RAPL package index. */
  index: number;
  /** The method a good counter delta is reported as. */
  counterMethod: 'nvml-counter' | 'rapl';
  /** Cumulative energy in joules, or `null` (unsupported, unreadable). */
  readCounterJ(): number | null;
  /**
   * Where the counter wraps to 0 (RAPL's `max_energy_range_uj`), in joules; `null` when it is
   * not expected to wrap (NVML's 64-bit mJ counter), so a decrease means a reset.
   */
  counterRangeJ: number | null;
  /** Instant power in watts for the integral fallback; absent or `null` when not available. */
  readPowerW?: () => number | null;
  /** A plausible upper bound on this device's power, to reject garbage counter deltas. */
  maxPlausibleW: number;
  /**
   * The counter read is expensive, so the harness reads it only at the window edges and every
   * `counterIntervalMs` in between, not every tick. NVML's total-energy counter costs ~3.86 ms
   * per read on a real H100 (driver 580), against ~1.5 µs for instant power. Default `false`
   * (RAPL's sysfs read is cheap and stays per tick).
   */
  counterReadCostly?: boolean;
}

/** Counter and power readings of every channel at one instant. */
export interface ChannelReading {
  /** Monotonic ms. */
  t: number;
  counterJ: (number | null)[];
  powerW: (number | null)[];
}

/**
 * Read every channel once. With `costlyCounters` false, channels whose counter read is costly
 * (`counterReadCostly`) get `null` for the counter this time: consumers treat a `null` counter
 * as "not read at this tick" and use the reads around it.
 *
 * @example
 * readChannels(channels, performance.now(), false); // power every tick, NVML counter skipped
 */
export function readChannels(
  channels: readonly EnergyChannel[],
  t: number,
  costlyCounters = true,
): ChannelReading {
  return {
    t,
    counterJ: channels.map((c) =>
      c.counterReadCostly && !costlyCounters ? null : safe(() => c.readCounterJ()),
    ),
    powerW: channels.map((c) => (c.readPowerW ? safe(() => c.readPowerW?.() ?? null) : null)),
  };
}

function safe(read: () => number | null): number | null {
  try {
    const v = read();
    return typeof v === 'number' && Number.isFinite(v) ? v : null;
  } catch {
    return null;
  }
}

export interface ChannelEnergy extends DeviceEnergy {
  /** Why the counter was not used (reset, wrap, unsupported), or why nothing was measured. */
  note: string | null;
  /** A counter reset or implausible jump was seen and the integral was used instead. */
  counterDiscarded: boolean;
}

/**
 * Energy of one channel over `readings` (window start, samples, window end, in time order).
 *
 * 1. Counter: the sum of consecutive deltas. Summing per sample (rather than end − start) lets a
 *    RAPL counter wrap several times in a long window and still be counted. A negative delta is a
 *    wrap when the channel has a range (add it), else a reset; a delta implying more than
 *    `maxPlausibleW` is garbage. Either discards the counter.
 * 2. Otherwise the trapezoidal integral of instant-power samples.
 * 3. Otherwise `null`, with the reason.
 *
 * @example
 * channelEnergy(gpuChannel, 0, readings); // { method: 'nvml-counter', totalJ: 301.2, ... }
 */
export function channelEnergy(
  channel: EnergyChannel,
  position: number,
  readings: readonly ChannelReading[],
): ChannelEnergy {
  const base = { index: channel.index, kind: channel.kind };
  let counterNote: string | null = null;
  let counterDiscarded = false;
  const counters = readings
    .map((r) => ({ t: r.t, j: r.counterJ[position] ?? null }))
    .filter((x): x is { t: number; j: number } => x.j !== null);
  const first = readings[0];
  const last = readings[readings.length - 1];
  const endpointsRead =
    first !== undefined &&
    last !== undefined &&
    (first.counterJ[position] ?? null) !== null &&
    (last.counterJ[position] ?? null) !== null;
  if (endpointsRead && counters.length >= 2) {
    let total = 0;
    for (let i = 1; i < counters.length; i++) {
      const a = counters[i - 1] as { t: number; j: number };
      const b = counters[i] as { t: number; j: number };
      let delta = b.j - a.j;
      if (delta < 0) {
        if (channel.counterRangeJ === null) {
          counterNote = `the energy counter went backwards by ${(-delta).toFixed(3)} J (a reset)`;
          break;
        }
        delta += channel.counterRangeJ;
      }
      const dtS = Math.max((b.t - a.t) / 1000, 1e-3);
      if (delta / dtS > channel.maxPlausibleW) {
        counterNote = `the energy counter jumped by ${delta.toFixed(1)} J in ${dtS.toFixed(3)} s (implausible; a wrap or reset)`;
        break;
      }
      total += delta;
    }
    if (counterNote === null)
      return {
        ...base,
        method: channel.counterMethod,
        totalJ: total,
        note: null,
        counterDiscarded,
      };
    counterDiscarded = true;
  } else {
    counterNote = 'the energy counter is not supported or not readable';
  }

  const power = readings
    .map((r) => ({ t: r.t, w: r.powerW[position] ?? null }))
    .filter((x): x is { t: number; w: number } => x.w !== null);
  if (channel.kind === 'gpu' && power.length >= 2) {
    return {
      ...base,
      method: 'nvml-power-integral',
      totalJ: trapezoidJ(power),
      note: `${counterNote}; used the integral of ${power.length} power samples`,
      counterDiscarded,
    };
  }
  const why =
    channel.kind === 'gpu'
      ? `${counterNote}, and only ${power.length} power sample(s) were read (need 2)`
      : counterNote;
  return { ...base, method: 'none', totalJ: null, note: why, counterDiscarded };
}

/** Trapezoidal integral of power samples (W at monotonic ms) in joules. */
export function trapezoidJ(samples: readonly { t: number; w: number }[]): number {
  let j = 0;
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1] as { t: number; w: number };
    const b = samples[i] as { t: number; w: number };
    j += ((a.w + b.w) / 2) * ((b.t - a.t) / 1000);
  }
  return j;
}
