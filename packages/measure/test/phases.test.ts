import { PhaseEnergySchema } from '@llem/domain';
import { describe, expect, it } from 'vitest';
import type { ChannelReading, EnergyChannel } from '../src/energy/channel';
import { type HarnessConfig, measureRun } from '../src/harness';
import { type PhaseRequest, phaseEnergy } from '../src/phases';
import { fakeEngine, scriptedProbe } from './support/fakes';

const gpu: EnergyChannel = {
  kind: 'gpu',
  index: 0,
  counterMethod: 'nvml-counter',
  readCounterJ: () => null,
  counterRangeJ: null,
  maxPlausibleW: 3000,
};
const rapl: EnergyChannel = { ...gpu, kind: 'cpu-package', counterMethod: 'rapl' };

/**
 * A synthetic power trace: `watts(t)` sampled every 10 ms over [0, endMs], plus a sample on each
 * side of every phase switch so the trace steps exactly there.
 */
function powerTrace(
  watts: (t: number) => number,
  endMs: number,
  steps: number[],
): ChannelReading[] {
  const times = new Set<number>();
  for (let t = 0; t <= endMs; t += 10) times.add(t);
  for (const s of steps) times.add(s - 1e-6).add(s);
  return [...times]
    .filter((t) => t >= 0 && t <= endMs)
    .sort((a, b) => a - b)
    .map((t) => ({ t, counterJ: [null], powerW: [watts(t)] }));
}

const request = (
  startedAt: number,
  firstTokenAt: number,
  endedAt: number,
  inputTokens = 100,
  outputTokens = 21,
): PhaseRequest => ({ startedAt, firstTokenAt, endedAt, inputTokens, outputTokens });

describe('prefill vs decode attribution on a synthetic power trace with known phases', () => {
  it('one request: 200 W for 1 s of prefill, 100 W for 2 s of decode → 200 J and 200 J', () => {
    const readings = powerTrace((t) => (t < 1000 ? 200 : 100), 3000, [1000]);
    const phases = phaseEnergy({
      requests: [request(0, 1000, 3000)],
      startMs: 0,
      endMs: 3000,
      totalJ: 400,
      channels: [gpu],
      readings,
    });
    expect(PhaseEnergySchema.parse(phases)).toBeTruthy();
    expect(phases).toMatchObject({
      kind: 'attribution',
      method: 'request-phase-time-share',
      weightedBy: 'power-samples',
      inputTokens: 100,
      decodedTokens: 20,
      unavailableReason: null,
    });
    expect(phases.prefillJ).toBeCloseTo(200, 3);
    expect(phases.decodeJ).toBeCloseTo(200, 3);
    expect(phases.otherJ).toBeCloseTo(0, 6);
    expect(phases.prefillS).toBeCloseTo(1, 9);
    expect(phases.decodeS).toBeCloseTo(2, 9);
    // 200 J over 100 prompt tokens; 200 J over the 20 tokens after the first.
    expect(phases.energyPerInputTokenJ).toBeCloseTo(2, 3);
    expect(phases.energyPerOutputTokenJ).toBeCloseTo(10, 3);
  });

  it('time between requests is neither phase; the parts add up to the window’s energy', () => {
    // Request 1: prefill 0–500 at 300 W, decode 500–1500 at 150 W; idle 1500–2000 at 50 W;
    // request 2: prefill 2000–2500 at 300 W, decode 2500–3500 at 150 W.
    const watts = (t: number) =>
      t < 500 ? 300 : t < 1500 ? 150 : t < 2000 ? 50 : t < 2500 ? 300 : 150;
    const phases = phaseEnergy({
      requests: [request(0, 500, 1500, 10, 11), request(2000, 2500, 3500, 30, 11)],
      startMs: 0,
      endMs: 3500,
      totalJ: 625,
      channels: [gpu],
      readings: powerTrace(watts, 3500, [500, 1500, 2000, 2500]),
    });
    expect(phases.prefillJ).toBeCloseTo(300, 2); // 2 × 0.5 s × 300 W
    expect(phases.decodeJ).toBeCloseTo(300, 2); // 2 × 1 s × 150 W
    expect(phases.otherJ).toBeCloseTo(25, 2); // 0.5 s × 50 W
    // The integral is 625 J; the window measured 475 J (say the counter): scaled to it.
    const scaled = phaseEnergy({
      requests: [request(0, 500, 1500, 10, 11), request(2000, 2500, 3500, 30, 11)],
      startMs: 0,
      endMs: 3500,
      totalJ: 625 * 0.76,
      channels: [gpu],
      readings: powerTrace(watts, 3500, [500, 1500, 2000, 2500]),
    });
    expect(scaled.prefillJ).toBeCloseTo(300 * 0.76, 2);
    expect((scaled.prefillJ ?? 0) + (scaled.decodeJ ?? 0) + (scaled.otherJ ?? 0)).toBeCloseTo(
      625 * 0.76,
      6,
    );
    expect(phases.energyPerInputTokenJ).toBeCloseTo(300 / 40, 3);
    expect(phases.energyPerOutputTokenJ).toBeCloseTo(300 / 20, 3);
  });

  it('overlapping requests (parallel sequences) share each instant by how many are in each phase', () => {
    // Constant 100 W. r1: prefill 0–1000, decode 1000–3000; r2: prefill 500–1500, decode 1500–3000.
    // 0–500: one prefilling (50 J prefill); 500–1000: two (50 J prefill); 1000–1500: one each
    // (25 J + 25 J); 1500–3000: two decoding (150 J decode). Prefill 125 J, decode 175 J.
    const phases = phaseEnergy({
      requests: [request(0, 1000, 3000), request(500, 1500, 3000)],
      startMs: 0,
      endMs: 3000,
      totalJ: 300,
      channels: [gpu],
      readings: powerTrace(() => 100, 3000, []),
    });
    expect(phases.prefillJ).toBeCloseTo(125, 6);
    expect(phases.decodeJ).toBeCloseTo(175, 6);
    expect(phases.prefillS).toBeCloseTo(1.5, 9);
    expect(phases.decodeS).toBeCloseTo(2, 9);
  });

  it('weights by a counter’s deltas where no power is sampled (a RAPL package), wraps included', () => {
    // 100 W for 1 s then 20 W for 1 s, read as a cumulative counter every 100 ms that wraps at 150 J.
    const readings: ChannelReading[] = [];
    for (let t = 0; t <= 2000; t += 100) {
      const joules = t <= 1000 ? t / 10 : 100 + (t - 1000) / 50;
      readings.push({ t, counterJ: [joules % 150], powerW: [null] });
    }
    const phases = phaseEnergy({
      requests: [request(0, 1000, 2000, 50, 5)],
      startMs: 0,
      endMs: 2000,
      totalJ: 120,
      channels: [{ ...rapl, counterRangeJ: 150 }],
      readings,
    });
    expect(phases.weightedBy).toBe('counter-deltas');
    expect(phases.prefillJ).toBeCloseTo(100, 6);
    expect(phases.decodeJ).toBeCloseTo(20, 6);
  });

  it('without the window’s energy the figures are null with the reason; failed requests are left out', () => {
    const phases = phaseEnergy({
      requests: [
        request(0, 1000, 3000),
        {
          startedAt: 100,
          firstTokenAt: null,
          endedAt: 150,
          inputTokens: 9000,
          outputTokens: 0,
          error: { type: 'CONTEXT_OVERFLOW' },
        },
      ],
      startMs: 0,
      endMs: 3000,
      totalJ: null,
      totalReason: 'RAPL: energy_uj is not readable',
      channels: [],
      readings: [],
    });
    expect(phases).toMatchObject({
      prefillJ: null,
      decodeJ: null,
      energyPerInputTokenJ: null,
      weightedBy: 'time',
      inputTokens: 100,
      unavailableReason: "the window's energy was not measured (RAPL: energy_uj is not readable)",
    });
    expect(phases.prefillS).toBeCloseTo(1, 9);
  });
});

describe('measureRun: prefill vs decode for in-process llama.cpp runs only', () => {
  const config = (engine: HarnessConfig['engine']): HarnessConfig => ({
    engine,
    model: 'builtin:tiny',
    dataset: { synthetic: { n: 4, input_len: 8, output_len: 16, seed: 1 } },
    max_output_tokens: 16,
    warmup: { n: 0 },
    energy: { backend: 'nvml', sample_interval_ms: 20, devices: [0] },
  });
  const run = (engine: HarnessConfig['engine']) =>
    measureRun(
      {
        runId: 'abcdef0123456789_c0',
        configHash: 'abcdef0123456789',
        cycle: 0,
        config: config(engine),
      },
      {
        createEngine: async () => fakeEngine(),
        openGpuProbe: () => ({ probe: scriptedProbe({ powerW: 300, counter: 'supported' }) }),
        warningThresholds: { minDurationS: 0.1, minSamples: 3 },
      },
    );

  it('a llamacpp run carries the attribution, adding up to the window’s energy', async () => {
    const { result } = await run('llamacpp');
    const phases = result.phaseEnergy!;
    expect(phases.kind).toBe('attribution');
    expect(phases.weightedBy).toBe('power-samples');
    // The fake engine: 4 requests of 8 prompt tokens, 16 output tokens each.
    expect(phases.inputTokens).toBe(32);
    expect(phases.decodedTokens).toBe(60);
    expect((phases.prefillJ ?? 0) + (phases.decodeJ ?? 0) + (phases.otherJ ?? 0)).toBeCloseTo(
      result.energy.totalJ as number,
      6,
    );
    expect(phases.prefillJ).toBeGreaterThan(0);
    expect(phases.decodeJ).toBeGreaterThan(0);
  });

  it('an openai run has none (its phases happen in a server the client only times)', async () => {
    const { result } = await run('openai');
    expect(result.phaseEnergy).toBeUndefined();
  });
});

describe('measureRun: a real in-process llama.cpp run (builtin:tiny, CPU) gets the attribution', () => {
  it('the engine’s phase timestamps and the sampled power split the window’s energy', {
    timeout: 120_000,
  }, async () => {
    const config: HarnessConfig & { llamacpp: { gpu_layers: number } } = {
      engine: 'llamacpp',
      model: 'builtin:tiny',
      dataset: { synthetic: { n: 3, input_len: 64, output_len: 24, seed: 2 } },
      max_output_tokens: 24,
      warmup: { n: 0 },
      energy: { backend: 'nvml', sample_interval_ms: 10, devices: [0] },
      llamacpp: { gpu_layers: 0 },
    };
    // The real engine (node-llama-cpp on the CPU); the power comes from a scripted 300 W GPU.
    const { result } = await measureRun(
      { runId: 'abcdef0123456789_c0', configHash: 'abcdef0123456789', cycle: 0, config },
      {
        openGpuProbe: () => ({ probe: scriptedProbe({ powerW: 300, counter: 'supported' }) }),
        warningThresholds: { minDurationS: 0.01, minSamples: 1 },
      },
    );
    const phases = result.phaseEnergy!;
    expect(PhaseEnergySchema.parse(phases)).toEqual(phases);
    expect(phases).toMatchObject({ weightedBy: 'power-samples', unavailableReason: null });
    // Every prompt token of the three requests, and every output token after each first one.
    expect(phases.inputTokens).toBe(result.tokens.input);
    expect(phases.decodedTokens).toBe((result.tokens.output as number) - 3);
    expect(phases.prefillS).toBeGreaterThan(0);
    expect(phases.decodeS).toBeGreaterThan(0);
    // One sequence: the phases never overlap, so at a constant 300 W each phase's energy is its
    // time × 300 W (within the scaling to the counter's total).
    expect(phases.prefillS + phases.decodeS).toBeLessThanOrEqual(result.window.durationS + 1e-9);
    const watts = (result.energy.totalJ as number) / result.window.durationS;
    expect((phases.prefillJ as number) / phases.prefillS).toBeCloseTo(watts, 0);
    expect((phases.decodeJ as number) / phases.decodeS).toBeCloseTo(watts, 0);
    expect(
      (phases.prefillJ as number) + (phases.decodeJ as number) + (phases.otherJ as number),
    ).toBeCloseTo(result.energy.totalJ as number, 6);
    expect(phases.energyPerInputTokenJ).toBeCloseTo(
      (phases.prefillJ as number) / (phases.inputTokens as number),
      12,
    );
  });
});
