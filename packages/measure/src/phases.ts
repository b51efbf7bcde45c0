import type { PhaseEnergy } from '@llem/domain';
import type { ChannelReading, EnergyChannel } from './energy/channel';

/**
 * Prefill vs decode: the window's energy attributed to the two phases of its requests. A device
 * reports one power for everything it does at once, so this is an attribution (its `method` says
 * how), never a measurement of either phase.
 */

/** What the attribution reads of a request (an engine's `RequestRecord` fits). */
export interface PhaseRequest {
  /** The request's start (monotonic ms): tokenising and prefill begin. */
  startedAt: number;
  /** Its first token (the end of the prefill); `null` when none came. */
  firstTokenAt: number | null;
  endedAt: number;
  inputTokens: number | null;
  outputTokens: number | null;
  error?: unknown;
}

export interface PhaseEnergyInput {
  requests: readonly PhaseRequest[];
  /** The window's edges, monotonic ms on the readings' clock. */
  startMs: number;
  endMs: number;
  /** The window's measured energy (`energy.totalJ`); the parts are scaled to add up to it. */
  totalJ: number | null;
  /** Why `totalJ` is `null`. */
  totalReason?: string | null;
  channels: readonly EnergyChannel[];
  /** Which channels `totalJ` counts (a shared host's CPU packages do not). Default: all. */
  counted?: readonly boolean[];
  /** Every reading of the window, edges included, in time order. */
  readings: readonly ChannelReading[];
}

/** A cumulative energy (J) at any instant inside the readings, for one channel. */
type Cumulative = (t: number) => number;

/** Trapezoidal cumulative integral of power samples, exact at any instant between them. */
function powerCumulative(points: readonly { t: number; w: number }[]): Cumulative {
  const cum = [0];
  for (let k = 1; k < points.length; k++) {
    const a = points[k - 1]!;
    const b = points[k]!;
    cum.push(cum[k - 1]! + ((a.w + b.w) / 2) * ((b.t - a.t) / 1000));
  }
  return (t) => {
    const k = segmentOf(points, t);
    const a = points[k]!;
    const b = points[Math.min(k + 1, points.length - 1)]!;
    const span = b.t - a.t;
    const x = Math.min(Math.max(t - a.t, 0), span);
    const w = span > 0 ? a.w + ((b.w - a.w) * x) / span : a.w;
    return cum[k]! + ((a.w + w) / 2) * (x / 1000);
  };
}

/**
 * A counter's cumulative energy, linear between reads (a read says how much a span used, not
 * when inside it). A wrap is added back through `rangeJ`; a reset leaves the channel unusable.
 */
function counterCumulative(
  points: readonly { t: number; j: number }[],
  rangeJ: number | null,
): Cumulative | null {
  const cum = [0];
  for (let k = 1; k < points.length; k++) {
    let delta = points[k]!.j - points[k - 1]!.j;
    if (delta < 0) {
      if (rangeJ === null) return null;
      delta += rangeJ;
    }
    cum.push(cum[k - 1]! + delta);
  }
  return (t) => {
    const k = segmentOf(points, t);
    const a = points[k]!;
    const b = points[Math.min(k + 1, points.length - 1)]!;
    const span = b.t - a.t;
    const x = Math.min(Math.max(t - a.t, 0), span);
    return (
      cum[k]! + (span > 0 ? ((cum[Math.min(k + 1, cum.length - 1)]! - cum[k]!) * x) / span : 0)
    );
  };
}

/** The index k of the span [k, k+1] holding `t` (clamped to the ends), by binary search. */
function segmentOf(points: readonly { t: number }[], t: number): number {
  let lo = 0;
  let hi = points.length - 1;
  if (t <= points[0]!.t) return 0;
  if (t >= points[hi]!.t) return Math.max(0, hi - 1);
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (points[mid]!.t <= t) lo = mid;
    else hi = mid;
  }
  return lo;
}

/**
 * How to weight each instant: each counted channel's power samples (a GPU), else its energy
 * counter (a RAPL package); with neither, time alone (constant power).
 */
function weighting(input: PhaseEnergyInput): {
  cumulative: Cumulative;
  weightedBy: PhaseEnergy['weightedBy'];
} {
  const parts: Cumulative[] = [];
  let byPower = 0;
  input.channels.forEach((channel, i) => {
    if (input.counted && input.counted[i] === false) return;
    const power = input.readings
      .map((r) => ({ t: r.t, w: r.powerW[i] ?? null }))
      .filter((p): p is { t: number; w: number } => p.w !== null);
    if (power.length >= 2) {
      parts.push(powerCumulative(power));
      byPower++;
      return;
    }
    const counter = input.readings
      .map((r) => ({ t: r.t, j: r.counterJ[i] ?? null }))
      .filter((p): p is { t: number; j: number } => p.j !== null);
    const cumulative =
      counter.length >= 2 ? counterCumulative(counter, channel.counterRangeJ) : null;
    if (cumulative) parts.push(cumulative);
  });
  if (parts.length === 0) return { cumulative: (t) => t / 1000, weightedBy: 'time' };
  return {
    cumulative: (t) => parts.reduce((sum, f) => sum + f(t), 0),
    weightedBy:
      byPower === parts.length ? 'power-samples' : byPower === 0 ? 'counter-deltas' : 'mixed',
  };
}

/**
 * Attribute the window's energy to prefill and decode (method `request-phase-time-share`): each
 * instant goes to the phases of the requests in flight then — prefill from a request's start to
 * its first token, decode from its first token to its end — in proportion to how many requests
 * are in each; instants with no request in either are `otherJ`. Instants are weighted by the power
 * the sampler saw then, and the parts are scaled to add up to the window's `totalJ`. J per input
 * token is the prefill's energy over the prompt tokens; J per output token is the decode's over the
 * tokens after each request's first (the first comes out of the prefill's last step).
 *
 * @example
 * // 200 W while prefilling for 1 s, 100 W while decoding for 2 s: 200 J and 200 J.
 * phaseEnergy({ requests: [{ startedAt: 0, firstTokenAt: 1000, endedAt: 3000, inputTokens: 100, outputTokens: 21 }],
 *   startMs: 0, endMs: 3000, totalJ: 400, channels, readings });
 * // { prefillJ: 200, decodeJ: 200, energyPerInputTokenJ: 2, energyPerOutputTokenJ: 10, … }
 */
export function phaseEnergy(input: PhaseEnergyInput): PhaseEnergy {
  const { startMs, endMs } = input;
  const done = input.requests.filter(
    (r) => r.error === undefined && r.firstTokenAt !== null && Number.isFinite(r.firstTokenAt),
  );
  const inputTokens = done.every((r) => r.inputTokens !== null)
    ? done.reduce((a, r) => a + (r.inputTokens ?? 0), 0)
    : null;
  const decodedTokens = done.every((r) => r.outputTokens !== null)
    ? done.reduce((a, r) => a + Math.max(0, (r.outputTokens ?? 0) - 1), 0)
    : null;
  const { cumulative, weightedBy } = weighting(input);
  const base = {
    kind: 'attribution' as const,
    method: 'request-phase-time-share' as const,
    weightedBy,
    inputTokens,
    decodedTokens,
  };
  const unavailable = (reason: string, prefillS = 0, decodeS = 0): PhaseEnergy => ({
    ...base,
    prefillJ: null,
    decodeJ: null,
    otherJ: null,
    prefillS,
    decodeS,
    energyPerInputTokenJ: null,
    energyPerOutputTokenJ: null,
    unavailableReason: reason,
  });
  if (done.length === 0) return unavailable('no request produced a token in the window');

  // Phase boundaries, clipped to the window: +1/−1 to the prefill and decode counts.
  const clip = (t: number) => Math.min(Math.max(t, startMs), endMs);
  const events: { t: number; prefill: number; decode: number }[] = [];
  for (const r of done) {
    const first = clip(r.firstTokenAt as number);
    events.push({ t: clip(r.startedAt), prefill: 1, decode: 0 });
    events.push({ t: first, prefill: -1, decode: 1 });
    events.push({ t: clip(Math.max(r.endedAt, first)), prefill: 0, decode: -1 });
  }
  events.push({ t: startMs, prefill: 0, decode: 0 }, { t: endMs, prefill: 0, decode: 0 });
  events.sort((a, b) => a.t - b.t);

  let prefill = 0;
  let decode = 0;
  let raw = { prefill: 0, decode: 0, other: 0 };
  let prefillS = 0;
  let decodeS = 0;
  for (let k = 0; k < events.length; k++) {
    const e = events[k]!;
    prefill += e.prefill;
    decode += e.decode;
    const next = events[k + 1];
    if (!next || !(next.t > e.t)) continue;
    const joules = cumulative(next.t) - cumulative(e.t);
    const seconds = (next.t - e.t) / 1000;
    if (prefill > 0) prefillS += seconds;
    if (decode > 0) decodeS += seconds;
    if (prefill + decode === 0) raw = { ...raw, other: raw.other + joules };
    else
      raw = {
        prefill: raw.prefill + (joules * prefill) / (prefill + decode),
        decode: raw.decode + (joules * decode) / (prefill + decode),
        other: raw.other,
      };
  }
  if (input.totalJ === null)
    return unavailable(
      `the window's energy was not measured${input.totalReason ? ` (${input.totalReason})` : ''}`,
      prefillS,
      decodeS,
    );
  const sum = raw.prefill + raw.decode + raw.other;
  if (!(sum > 0))
    return unavailable('the sampler saw no energy in the window to weight', prefillS, decodeS);
  const scale = input.totalJ / sum;
  const prefillJ = raw.prefill * scale;
  const decodeJ = raw.decode * scale;
  return {
    ...base,
    prefillJ,
    decodeJ,
    otherJ: raw.other * scale,
    prefillS,
    decodeS,
    energyPerInputTokenJ: inputTokens ? prefillJ / inputTokens : null,
    energyPerOutputTokenJ: decodedTokens ? decodeJ / decodedTokens : null,
    unavailableReason: null,
  };
}
