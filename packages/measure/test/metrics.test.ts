import { coefficientOfVariation, percentile, sampleStd } from '@llem/domain';
import type { RequestRecord } from '@llem/engines';
import { describe, expect, it } from 'vitest';
import {
  baselineAdjusted,
  chunkGapsMs,
  computeLatency,
  computeThroughput,
  energyPerOutputToken,
  estimateFlops,
  latencySamples,
  requestTpotMs,
} from '../src/metrics';
import { latencyStats } from '../src/stats';

const rec = (
  r: Partial<RequestRecord> & Pick<RequestRecord, 'startedAt' | 'endedAt'>,
): RequestRecord => ({
  id: 0,
  firstTokenAt: null,
  tokenTimes: [],
  inputTokens: null,
  outputTokens: null,
  ...r,
});

describe('statistics', () => {
  it('matches numpy.percentile (linear) on hand-computed values', () => {
    const xs = [10, 20, 30, 40];
    // rank = p/100 × 3: p50 → 1.5 → 25; p95 → 2.85 → 38.5; p99 → 2.97 → 39.7
    expect(latencyStats(xs)).toEqual({
      mean: 25,
      p50: 25,
      p95: 38.5,
      p99: expect.closeTo(39.7, 10),
    });
    expect(percentile([5], 99)).toBe(5);
    expect(latencyStats([])).toBeNull();
  });

  it('sample standard deviation and CV', () => {
    // mean 5, squared deviations 9+1+1+9 = 20, /3 → sqrt(6.667) = 2.5820
    expect(sampleStd([2, 4, 6, 8])).toBeCloseTo(2.582, 3);
    expect(coefficientOfVariation([2, 4, 6, 8])).toBeCloseTo(0.5164, 4);
    expect(coefficientOfVariation([3])).toBeNull();
    expect(coefficientOfVariation([0, 0])).toBeNull();
  });
});

describe('latency from request records', () => {
  it('TTFT, ITL (excluding the TTFT) and E2E', () => {
    const records = [
      // TTFT 100, tokens at 100,110,130 → ITL 10, 20; E2E 140
      rec({ startedAt: 0, firstTokenAt: 100, tokenTimes: [110, 130], endedAt: 140 }),
      // TTFT 50, one chunk of two tokens at 80 → ITL 30, 0; E2E 90
      rec({ startedAt: 10, firstTokenAt: 60, tokenTimes: [90, 90], endedAt: 100 }),
      // failed request: left out entirely
      rec({
        startedAt: 0,
        firstTokenAt: 1,
        tokenTimes: [2],
        endedAt: 999,
        error: { type: 'http', message: '500' },
      }),
      // no token at all: only E2E
      rec({ startedAt: 0, endedAt: 20 }),
    ];
    expect(latencySamples(records)).toEqual({
      ttftMs: [100, 50],
      itlMs: [10, 20, 30, 0],
      e2eMs: [140, 90, 20],
      // No record knows its output token count: no TPOT.
      tpotMs: [],
      // No schedule: nothing counted from a scheduled time.
      ttftFromScheduledMs: [],
      e2eFromScheduledMs: [],
    });
    const latency = computeLatency(records);
    expect(latency.ttftMs).toMatchObject({ mean: 75, p50: 75 });
    expect(latency.itlMs).toMatchObject({ mean: 15, p50: 15 });
    expect(latency.e2eMs?.p50).toBe(90);
    expect(computeLatency([])).toEqual({
      ttftMs: null,
      itlMs: null,
      e2eMs: null,
      tpotMs: null,
    });
  });

  it('ITL is one gap per token-carrying chunk; TPOT uses the final token count', () => {
    // A llama-server-like stream: first token at 100, then chunks of 3 tokens at 160 and 220
    // and a last one of 1 at 240; the usage says 8 tokens. E2E 250.
    const streamed = rec({
      startedAt: 0,
      firstTokenAt: 100,
      tokenTimes: [160, 220, 240],
      chunkTimes: [160, 220, 240],
      endedAt: 250,
      outputTokens: 8,
    });
    expect(chunkGapsMs(streamed)).toEqual([60, 60, 20]);
    // (250 − 100) / (8 − 1): the per-token time the server really took, not a per-chunk one.
    expect(requestTpotMs(streamed)).toBeCloseTo(150 / 7, 12);
    const s = latencySamples([
      streamed,
      rec({ startedAt: 0, firstTokenAt: 10, endedAt: 30, outputTokens: 1 }),
      rec({
        startedAt: 0,
        firstTokenAt: 10,
        tokenTimes: [20],
        endedAt: 40,
        outputTokens: 2,
        error: { type: 'timeout', message: 'x' },
      }),
    ]);
    expect(s.itlMs).toEqual([60, 60, 20]);
    // One token has no TPOT; a failed request has none either.
    expect(s.tpotMs).toEqual([150 / 7]);
    const latency = computeLatency([
      streamed,
      rec({ startedAt: 0, firstTokenAt: 50, endedAt: 250, outputTokens: 11 }),
    ]);
    expect(latency.tpotMs).toMatchObject({ mean: (150 / 7 + 20) / 2, p50: (150 / 7 + 20) / 2 });
  });
});

describe('latency from the scheduled send time (open loop)', () => {
  it('counts TTFT and E2E from when the schedule said to send, beside the figures from the send', () => {
    const records = [
      // Scheduled at 0, the client sent it 30 ms late: TTFT 10 from the send, 40 from the schedule.
      rec({ scheduledAt: 0, startedAt: 30, firstTokenAt: 40, endedAt: 50 }),
      rec({ scheduledAt: 100, startedAt: 100, firstTokenAt: 110, endedAt: 120 }),
      // Failed: in neither.
      rec({
        scheduledAt: 200,
        startedAt: 200,
        endedAt: 900,
        error: { type: 'timeout', message: 'x' },
      }),
    ];
    const s = latencySamples(records);
    expect(s.ttftMs).toEqual([10, 10]);
    expect(s.ttftFromScheduledMs).toEqual([40, 10]);
    expect(s.e2eFromScheduledMs).toEqual([50, 20]);
    const latency = computeLatency(records);
    expect(latency.ttftMs).toMatchObject({ p50: 10 });
    expect(latency.ttftFromScheduledMs).toMatchObject({ mean: 25, p50: 25 });
    expect(latency.e2eFromScheduledMs).toMatchObject({ mean: 35 });
  });

  it('leaves the fields out for a run without a schedule', () => {
    const latency = computeLatency([rec({ startedAt: 0, firstTokenAt: 5, endedAt: 9 })]);
    expect('ttftFromScheduledMs' in latency).toBe(false);
    expect('e2eFromScheduledMs' in latency).toBe(false);
  });
});

describe('rates, energy per token, baseline, flops', () => {
  it('computes rates over the window and null for unknowns', () => {
    expect(computeThroughput(4, 100, 200, 8)).toEqual({
      outputTokensPerS: 50,
      totalTokensPerS: 75,
      requestsPerS: 2,
    });
    expect(computeThroughput(0, 1, 1, 1)).toEqual({
      outputTokensPerS: null,
      totalTokensPerS: null,
      requestsPerS: null,
    });
    expect(computeThroughput(2, null, 10, null)).toEqual({
      outputTokensPerS: 5,
      totalTokensPerS: null,
      requestsPerS: null,
    });
  });

  it('J per output token, never dividing by zero and never inventing a figure', () => {
    expect(energyPerOutputToken(300, 150)).toBe(2);
    expect(energyPerOutputToken(null, 150)).toBeNull();
    expect(energyPerOutputToken(300, 0)).toBeNull();
  });

  it('baseline-adjusted energy is max(0, raw − W × s)', () => {
    expect(baselineAdjusted(500, 50, 4)).toBe(300);
    expect(baselineAdjusted(100, 50, 4)).toBe(0);
    expect(baselineAdjusted(100, null, 4)).toBeNull();
  });

  it('FLOPs = 2 × params × tokens, with its method', () => {
    expect(estimateFlops(1e9, 100, 50)).toEqual({
      estimate: 3e11,
      method: '2-params-tokens',
      parameterCount: 1e9,
    });
    expect(estimateFlops(null, 100, 50)).toEqual({
      estimate: null,
      method: 'none',
      parameterCount: null,
    });
  });
});
