import { describe, expect, it } from 'vitest';
import type { ChannelReading, EnergyChannel } from '../src/energy/channel';
import {
  channelEnergyInInterval,
  counterEnergyInInterval,
  powerEnergyInInterval,
} from '../src/energy/interval';
import { steadyStateEnergy, steadyStateSpan } from '../src/steady-state';

/** Ticks every `stepMs` from 0 to `endMs` inclusive. */
const times = (endMs: number, stepMs: number) =>
  Array.from({ length: Math.floor(endMs / stepMs) + 1 }, (_, i) => i * stepMs);

function channel(
  kind: EnergyChannel['kind'] = 'gpu',
  counterRangeJ: number | null = null,
): EnergyChannel {
  return {
    kind,
    index: 0,
    counterMethod: kind === 'gpu' ? 'nvml-counter' : 'rapl',
    readCounterJ: () => null,
    counterRangeJ,
    maxPlausibleW: kind === 'gpu' ? 3000 : 1000,
  };
}

describe('counterEnergyInInterval', () => {
  it('constant power P over [a, b] gives P × (b − a), whatever the tick phase', () => {
    // 250 W: the counter gains 0.25 J per ms. Ticks every 100 ms; the interval starts and ends
    // mid-tick, so both boundary spans are pro-rated.
    const points = times(2000, 100).map((t) => ({ t, j: 5000 + 0.25 * t }));
    const e = counterEnergyInInterval(points, 333, 1777);
    expect(e.reason).toBeNull();
    expect(e.totalJ).toBeCloseTo(250 * 1.444, 9);
    expect(e.samplesInWindow).toBe(14); // 400 … 1700
  });

  it('pro-rates the boundary ticks by time', () => {
    // 0, 10, 30, 60 J at 0, 100, 200, 300 ms; [50, 250]: half of 10, all of 20, half of 30.
    const points = [
      { t: 0, j: 0 },
      { t: 100, j: 10 },
      { t: 200, j: 30 },
      { t: 300, j: 60 },
    ];
    expect(counterEnergyInInterval(points, 50, 250)).toEqual({
      totalJ: 40,
      samplesInWindow: 2,
      reason: null,
    });
    // An interval inside one span takes its share of that span only: 20 J × 25/100.
    expect(counterEnergyInInterval(points, 110, 135).totalJ).toBeCloseTo(5, 12);
    // Spans outside the interval count nothing, even large ones.
    const spiky = [...points, { t: 400, j: 1000 }];
    expect(counterEnergyInInterval(spiky, 50, 250).totalJ).toBe(40);
  });

  it('adds a wrap back through the range; a reset or an implausible jump is null with the reason', () => {
    const wrapping = [
      { t: 0, j: 999 },
      { t: 100, j: 999.5 },
      { t: 200, j: 0.2 }, // wrapped at 1000 J: 0.7 J
      { t: 300, j: 0.7 },
    ];
    expect(counterEnergyInInterval(wrapping, 0, 300, { rangeJ: 1000 }).totalJ).toBeCloseTo(1.7, 9);
    const reset = counterEnergyInInterval(wrapping, 0, 300);
    expect(reset.totalJ).toBeNull();
    expect(reset.reason).toMatch(/went backwards .* \(a reset\)/);
    const jump = counterEnergyInInterval(
      [
        { t: 0, j: 0 },
        { t: 100, j: 1e6 },
      ],
      0,
      100,
      { maxPlausibleW: 3000 },
    );
    expect(jump.totalJ).toBeNull();
    expect(jump.reason).toMatch(/implausible/);
    // A reset outside the interval does not matter.
    expect(counterEnergyInInterval(wrapping, 0, 100).totalJ).toBeCloseTo(0.5, 9);
  });

  it('an empty interval or one the readings do not cover is null with the reason', () => {
    const points = times(1000, 100).map((t) => ({ t, j: t }));
    expect(counterEnergyInInterval(points, 500, 500)).toMatchObject({
      totalJ: null,
      reason: expect.stringMatching(/is empty/),
    });
    expect(counterEnergyInInterval(points, 600, 400).reason).toMatch(/is empty/);
    expect(counterEnergyInInterval(points, 900, 1200)).toMatchObject({
      totalJ: null,
      reason: expect.stringMatching(/do not cover the interval/),
    });
    expect(counterEnergyInInterval([], 0, 100).reason).toMatch(/only 0 counter reading/);
    expect(counterEnergyInInterval([{ t: 0, j: 0 }], 0, 100).reason).toMatch(/only 1/);
  });
});

describe('powerEnergyInInterval', () => {
  it('constant power P over [a, b] gives P × (b − a)', () => {
    const samples = times(1000, 20).map((t) => ({ t, w: 300 }));
    const e = powerEnergyInInterval(samples, 113, 871);
    expect(e.reason).toBeNull();
    expect(e.totalJ).toBeCloseTo(300 * 0.758, 9);
  });

  it('integrates a ramp exactly, interpolating the power at both boundaries', () => {
    // P(t) = 100 + 0.2 t W (t in ms) sampled every 100 ms. ∫ over [50, 250] ms:
    // mean power P(150) = 130 W over 0.2 s = 26 J.
    const samples = times(400, 100).map((t) => ({ t, w: 100 + 0.2 * t }));
    expect(powerEnergyInInterval(samples, 50, 250).totalJ).toBeCloseTo(26, 12);
    // Interval strictly between two samples: P(20)=104, P(70)=114 → 109 W × 0.05 s.
    expect(powerEnergyInInterval(samples, 20, 70)).toEqual({
      totalJ: expect.closeTo(5.45, 12),
      samplesInWindow: 0,
      reason: null,
    });
  });

  it('clips a step change to the window: the part of a trapezoid outside it is not counted', () => {
    // 0 W at 0 ms, 100 W at 100 ms and after. [50, 200]: 50→100 W over 50 ms = 3.75 J, then 10 J.
    const samples = [
      { t: 0, w: 0 },
      { t: 100, w: 100 },
      { t: 200, w: 100 },
    ];
    expect(powerEnergyInInterval(samples, 50, 200).totalJ).toBeCloseTo(3.75 + 10, 12);
  });

  it('an empty or uncovered interval is null with the reason', () => {
    const samples = times(500, 100).map((t) => ({ t, w: 50 }));
    expect(powerEnergyInInterval(samples, 200, 200).reason).toMatch(/is empty/);
    expect(powerEnergyInInterval(samples, -10, 200).reason).toMatch(/do not cover/);
    expect(powerEnergyInInterval([], 0, 1).totalJ).toBeNull();
  });
});

describe('channelEnergyInInterval', () => {
  const readings = (counter: (t: number) => number | null, power: number | null) =>
    times(1000, 50).map((t) => ({ t, counterJ: [counter(t)], powerW: [power] }));

  it('uses the counter when the full window did, the power integral when it did not', () => {
    const rs = readings((t) => 0.2 * t, 200); // 200 W both ways
    expect(channelEnergyInInterval(channel(), 0, rs, 'nvml-counter', 125, 625)).toEqual({
      index: 0,
      kind: 'gpu',
      method: 'nvml-counter',
      totalJ: expect.closeTo(100, 9),
      note: null,
    });
    const noCounter = readings(() => null, 200);
    expect(
      channelEnergyInInterval(channel(), 0, noCounter, 'nvml-power-integral', 125, 625),
    ).toMatchObject({ method: 'nvml-power-integral', totalJ: expect.closeTo(100, 9) });
    expect(channelEnergyInInterval(channel(), 0, noCounter, 'none', 125, 625)).toMatchObject({
      method: 'none',
      totalJ: null,
      note: 'not measured in the full window',
    });
  });

  it('a counter read every 1 s: pro-rated through the counter over a long interval (constant power exact)', () => {
    // 200 W, power every 50 ms, the counter only at 0, 1000, ..., 5000 ms.
    const rs: ChannelReading[] = times(5000, 50).map((t) => ({
      t,
      counterJ: [t % 1000 === 0 ? 0.2 * t : null],
      powerW: [200],
    }));
    const e = channelEnergyInInterval(channel(), 0, rs, 'nvml-counter', 1250, 4750);
    expect(e).toMatchObject({ method: 'nvml-counter', note: null });
    expect(e.totalJ).toBeCloseTo(700, 9);
    // Under two whole counter spans inside: the power integral, and the method says so.
    const short = channelEnergyInInterval(channel(), 0, rs, 'nvml-counter', 1250, 2750);
    expect(short).toMatchObject({ method: 'nvml-power-integral', note: null });
    expect(short.totalJ).toBeCloseTo(300, 9);
    // With no power samples there is nothing better: the pro-rated counter stays.
    const noPower = rs.map((r) => ({ ...r, powerW: [null] }));
    const viaCounter = channelEnergyInInterval(channel(), 0, noPower, 'nvml-counter', 1250, 2750);
    expect(viaCounter).toMatchObject({ method: 'nvml-counter' });
    expect(viaCounter.totalJ).toBeCloseTo(300, 9);
  });

  it('sparse counter reads: a reset between two reads nulls the counter figure with the reason', () => {
    const rs: ChannelReading[] = times(4000, 100).map((t) => ({
      t,
      counterJ: [t % 1000 === 0 ? (t < 2500 ? 0.2 * t : 0.2 * (t - 2500)) : null],
      powerW: [null],
    }));
    const e = channelEnergyInInterval(channel(), 0, rs, 'nvml-counter', 500, 3500);
    expect(e).toMatchObject({ method: 'none', totalJ: null });
    expect(e.note).toMatch(/went backwards/);
  });

  it('reads a RAPL package per tick, wraps included', () => {
    // 40 W package, counter wraps at 10 J.
    const rs: ChannelReading[] = times(1000, 50).map((t) => ({
      t,
      counterJ: [(0.04 * t) % 10],
      powerW: [null],
    }));
    const e = channelEnergyInInterval(channel('cpu-package', 10), 0, rs, 'rapl', 100, 900);
    expect(e).toMatchObject({ kind: 'cpu-package', method: 'rapl' });
    expect(e.totalJ).toBeCloseTo(32, 9);
  });
});

describe('steadyStateEnergy', () => {
  const gpu = channel();
  // 300 W on the counter and in the power samples, a reading every 50 ms over 0–2000 ms.
  const rs: ChannelReading[] = times(2000, 50).map((t) => ({
    t,
    counterJ: [0.3 * t],
    powerW: [300],
  }));

  it('totals, baseline-adjusts and divides by the window’s output tokens', () => {
    const { energy, warning } = steadyStateEnergy({
      span: { startMs: 500, endMs: 1500, outputTokens: 600 },
      channels: [gpu],
      readings: rs,
      methods: ['nvml-counter'],
      baselineW: 100,
    });
    expect(warning).toBeNull();
    expect(energy).toEqual({
      method: 'nvml-counter',
      durationS: 1,
      totalJ: expect.closeTo(300, 9),
      adjustedJ: expect.closeTo(200, 9),
      perDevice: [
        { index: 0, kind: 'gpu', method: 'nvml-counter', totalJ: expect.closeTo(300, 9) },
      ],
      energyPerOutputTokenJ: expect.closeTo(0.5, 9),
      adjustedEnergyPerOutputTokenJ: expect.closeTo(200 / 600, 9),
      samplesInWindow: 21,
      unavailableReason: null,
    });
  });

  it('a window with fewer than 3 readings is null with a reason and a warning, never a guess', () => {
    const { energy, warning } = steadyStateEnergy({
      span: { startMs: 510, endMs: 590, outputTokens: 40 },
      channels: [gpu],
      readings: rs,
      methods: ['nvml-counter'],
      baselineW: null,
    });
    expect(energy).toMatchObject({
      method: 'none',
      totalJ: null,
      adjustedJ: null,
      energyPerOutputTokenJ: null,
      adjustedEnergyPerOutputTokenJ: null,
      samplesInWindow: 1,
    });
    expect(energy.unavailableReason).toMatch(/held 1 sampler reading\(s\), fewer than 3/);
    expect(warning?.code).toBe('steady-state-too-short');
  });

  it('without an energy source: null, with the full window’s reason, and no extra warning', () => {
    const { energy, warning } = steadyStateEnergy({
      span: { startMs: 500, endMs: 1500, outputTokens: 600 },
      channels: [],
      readings: rs,
      methods: [],
      baselineW: null,
      fullWindowReason: 'NVML: not here',
    });
    expect(energy).toMatchObject({
      method: 'none',
      totalJ: null,
      unavailableReason: 'NVML: not here',
    });
    expect(warning).toBeNull();
  });

  it('no tokens in the window: energy yes, energy per token null with the reason', () => {
    const { energy } = steadyStateEnergy({
      span: { startMs: 500, endMs: 1500, outputTokens: 0 },
      channels: [gpu],
      readings: rs,
      methods: ['nvml-counter'],
      baselineW: null,
    });
    expect(energy.totalJ).toBeCloseTo(300, 9);
    expect(energy.energyPerOutputTokenJ).toBeNull();
    expect(energy.unavailableReason).toMatch(/no output token/);
  });
});

describe('steadyStateSpan', () => {
  it('reads a window and ignores off, unavailable and malformed ones', () => {
    expect(
      steadyStateSpan({ steadyState: { startMs: 1, endMs: 2, outputTokens: 3, rule: 'x' } }),
    ).toEqual({ startMs: 1, endMs: 2, outputTokens: 3 });
    expect(steadyStateSpan({ steadyState: null })).toBeNull();
    expect(steadyStateSpan({ steadyState: { unavailable: 'never reached' } })).toBeNull();
    expect(steadyStateSpan({ steadyState: { startMs: '1', endMs: 2 } })).toBeNull();
    expect(steadyStateSpan({})).toBeNull();
    expect(steadyStateSpan(undefined)).toBeNull();
  });
});
