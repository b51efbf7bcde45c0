import { describe, expect, it } from 'vitest';
import {
  ExperimentConfigSchema,
  linearTrend,
  measurementConfigHash,
  overSaturation,
  RunResultSchema,
  type SaturationSample,
  SweepPointSchema,
  saturationBelowSync,
  sweepRates,
  sweepRatesUnavailable,
} from '../src/index';
import { validate } from '../src/internal/issues';

const served = {
  model: 'm',
  engine: 'openai',
  openai: { base_url: 'http://127.0.0.1:8000/v1', concurrency: 8 },
} as const;
const sweep = { model: 'm', engine: 'openai', openai: { base_url: 'http://127.0.0.1:8000/v1' } };

describe('openai.load: sweep in the config', () => {
  it('adds no key to configs without it: existing hashes stay (golden)', () => {
    // The hash this config had before sweeps existed.
    expect(measurementConfigHash(served)).toBe('44b675e6e0a74b66');
    const parsed = ExperimentConfigSchema.parse(served);
    expect(parsed.engine === 'openai' && 'sweep_points' in parsed.openai).toBe(false);
    expect(parsed.engine === 'openai' && 'load' in parsed.openai).toBe(false);
  });

  it('a sweep carries sweep_points (default 8): leaving it out or writing 8 is one config', () => {
    const a = ExperimentConfigSchema.parse({
      ...sweep,
      openai: { ...sweep.openai, load: 'sweep' },
    });
    expect(a.engine === 'openai' && a.openai).toMatchObject({ load: 'sweep', sweep_points: 8 });
    // No closed-loop concurrency is filled in: the sweep picks each point's load.
    expect(a.engine === 'openai' && a.openai.concurrency).toBeUndefined();
    const written = { ...sweep, openai: { ...sweep.openai, load: 'sweep', sweep_points: 8 } };
    expect(measurementConfigHash(written)).toBe(
      measurementConfigHash({ ...sweep, openai: { ...sweep.openai, load: 'sweep' } }),
    );
    expect(
      measurementConfigHash({
        ...sweep,
        openai: { ...sweep.openai, load: 'sweep', sweep_points: 5 },
      }),
    ).not.toBe(measurementConfigHash(written));
    expect(measurementConfigHash(written)).not.toBe(measurementConfigHash(sweep));
  });

  it('names the field and what is allowed for a bad sweep', () => {
    const issues = (openai: Record<string, unknown>) => {
      const r = validate(ExperimentConfigSchema, {
        ...sweep,
        openai: { ...sweep.openai, ...openai },
      });
      return r.ok ? [] : r.issues.map((i) => `${i.path}: ${i.message}`);
    };
    expect(issues({ load: 'sweep', concurrency: 4 })).toEqual([
      "openai.concurrency: does not apply with openai.load: sweep (the sweep picks each point's load; cap the in-flight requests with openai.max_concurrency)",
    ]);
    expect(issues({ load: 'sweep', request_rate: 4 })[0]).toMatch(
      /^openai\.request_rate: does not apply/,
    );
    expect(issues({ sweep_points: 4 })).toEqual([
      'openai.sweep_points: only applies with openai.load: sweep',
    ]);
    expect(issues({ load: 'sweep', sweep_points: 1 })[0]).toMatch(/^openai\.sweep_points: /);
    expect(issues({ load: 'ramp' })[0]).toMatch(/^openai\.load: .*sweep/);
    // max_concurrency caps a sweep's in-flight requests.
    expect(issues({ load: 'sweep', max_concurrency: 16 })).toEqual([]);
    // A trace's timestamps are its load: no sweep over them.
    const trace = validate(ExperimentConfigSchema, {
      ...sweep,
      openai: { ...sweep.openai, load: 'sweep' },
      dataset: { path: 'trace.jsonl', format: 'trace' },
    });
    expect(trace.ok ? [] : trace.issues.map((i) => i.path)).toEqual(['openai.load']);
  });
});

describe('sweep planning: the rates between the synchronous and the saturation point', () => {
  it('spaces points − 2 rates linearly between the two throughputs, ends excluded', () => {
    const six = sweepRates(2, 10, 6);
    expect(six).toHaveLength(4);
    for (const [i, r] of [3.6, 5.2, 6.8, 8.4].entries()) expect(six[i]).toBeCloseTo(r, 12);
    const eight = sweepRates(1, 8, 8);
    expect(eight).toHaveLength(6);
    expect(eight[0]).toBeCloseTo(2, 12);
    expect(eight[5]).toBeCloseTo(7, 12);
    // Evenly spaced.
    const gaps = eight.slice(1).map((r, i) => r - eight[i]!);
    for (const g of gaps) expect(g).toBeCloseTo(1, 12);
    expect(sweepRates(2, 10, 2)).toEqual([]);
    expect(sweepRates(2, 10, 3)).toEqual([6]);
  });

  it('a server that gains nothing from concurrency still gets rates between the two, lowest first', () => {
    expect(sweepRates(10, 4, 4)).toEqual([6, 8]);
  });

  it('plans no rate without two positive throughputs, and says why', () => {
    expect(sweepRates(null, 10, 8)).toEqual([]);
    expect(sweepRates(3, 0, 8)).toEqual([]);
    expect(sweepRatesUnavailable(0, 10)).toMatch(/synchronous point completed no request/);
    expect(sweepRatesUnavailable(3, null)).toMatch(/saturation point completed no request/);
    expect(sweepRatesUnavailable(3, 9)).toBeNull();
  });
});

describe('a saturation point slower than the synchronous one', () => {
  it('is a warning naming both rates; an equal or faster one, or an unknown rate, is none', () => {
    expect(saturationBelowSync(4.36, 0.806, 16)).toEqual({
      code: 'saturation-below-sync',
      message:
        "the saturation point (16 in flight) completed 0.806 req/s, fewer than the synchronous point's 4.36: the server slows down under concurrency, so the open-loop rates were spaced below the synchronous rate (try a lower openai.max_concurrency)",
    });
    expect(saturationBelowSync(4, 4, 16)).toBeNull();
    expect(saturationBelowSync(4, 12, 16)).toBeNull();
    expect(saturationBelowSync(null, 1, 16)).toBeNull();
    expect(saturationBelowSync(4, null, 16)).toBeNull();
  });
});

describe('over-saturation: TTFT and in-flight requests trending up within a point', () => {
  it('a least-squares line: slope, t and growth', () => {
    const trend = linearTrend([0, 1, 2, 3, 4], [10, 12, 13.9, 16.1, 18]);
    expect(trend.slope).toBeCloseTo(2, 1);
    expect(trend.t).toBeGreaterThan(30);
    expect(trend.relativeGrowth).toBeCloseTo((trend.slope * 4) / 14, 9);
    expect(linearTrend([1, 1, 1], [1, 2, 3]).t).toBeNull();
  });

  /** `n` requests sent every `gapMs`; request i waits `queueMs(i)` before a 50 ms service. */
  const samples = (n: number, gapMs: number, queueMs: (i: number) => number): SaturationSample[] =>
    Array.from({ length: n }, (_, i) => {
      const sentMs = i * gapMs;
      const ttftMs = queueMs(i) + 20;
      return { sentMs, ttftMs, endMs: sentMs + ttftMs + 30 };
    });

  it('a server keeping up (flat TTFT, stationary queue) is not over-saturated', () => {
    const wobble = (i: number) => (i % 3) * 2;
    const check = overSaturation(samples(60, 10, wobble));
    expect(check.detected).toBe(false);
    expect(check.reason).toBeNull();
    expect(Math.abs(check.ttftMs!.relativeGrowth!)).toBeLessThan(0.5);
  });

  it('a queue that grows for as long as requests come is over-saturated, and says by how much', () => {
    // Service takes 20 ms per request, one at a time; requests come every 10 ms: each waits 10 ms
    // more than the one before.
    const check = overSaturation(samples(60, 10, (i) => i * 10));
    expect(check.detected).toBe(true);
    expect(check.ttftMs!.slopePerS).toBeCloseTo(1000, 6); // 10 ms more per 10 ms of sending
    expect(check.inFlight!.slopePerS).toBeGreaterThan(0);
    expect(check.reason).toMatch(
      /^over-saturated: TTFT rose 1000\.0 ms per s .* requests in flight/,
    );
  });

  it('TTFT rising alone (the in-flight count flat) is not enough; too few requests are not judged', () => {
    // A server slowing down at a constant in-flight count of 1 (closed-loop-like spacing).
    const slowing = Array.from({ length: 40 }, (_, i) => ({
      sentMs: i * 1000,
      ttftMs: 10 + i,
      endMs: i * 1000 + 10 + i + 5,
    }));
    expect(overSaturation(slowing).detected).toBe(false);
    expect(overSaturation(samples(5, 10, (i) => i * 10))).toMatchObject({
      detected: false,
      ttftMs: null,
    });
  });
});

describe('points in the result schema', () => {
  it('is optional: results without it stay valid; a point has the metrics block of a run', () => {
    const shape = RunResultSchema.shape;
    expect(shape.points.safeParse(undefined).success).toBe(true);
    expect(shape.sweep.safeParse(undefined).success).toBe(true);
    const bad = SweepPointSchema.safeParse({ index: 0, kind: 'ramp' });
    expect(bad.success).toBe(false);
  });
});
