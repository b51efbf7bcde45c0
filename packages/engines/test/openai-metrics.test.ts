import { describe, expect, it } from 'vitest';
import type { RequestRecord } from '../src/engine';
import { goodput, steadyStateWindow } from '../src/openai/index';

function rec(
  id: number,
  startedAt: number,
  endedAt: number,
  tokens: number[] = [],
  error?: string,
): RequestRecord {
  const r: RequestRecord = {
    id,
    startedAt,
    firstTokenAt: tokens[0] ?? null,
    tokenTimes: tokens.slice(1),
    endedAt,
    inputTokens: null,
    outputTokens: tokens.length,
  };
  if (error) r.error = { type: error, message: error };
  return r;
}

describe('steadyStateWindow', () => {
  it('closed loop: from the moment N are in flight to the first drop below N', () => {
    // concurrency 2: requests 0,1 start at 0 and 5; 2 starts when 0 ends (10); 3 when 1 ends (15);
    // nothing is left when 2 ends at 20, so the window closes there.
    const records = [
      rec(0, 0, 10, [2, 4, 6]),
      rec(1, 5, 15, [7, 9, 11]),
      rec(2, 10, 20, [12, 14, 19]),
      rec(3, 15, 30, [17, 25, 29]),
    ];
    const window = steadyStateWindow(records, { kind: 'concurrency', concurrency: 2 });
    expect(window).toEqual({
      startMs: 5,
      endMs: 20,
      durationS: 0.015,
      rule: 'target-concurrency',
      targetConcurrency: 2,
      // tokens at 6, 7, 9, 11, 12, 14, 17, 19 lie in [5, 20]
      outputTokens: 8,
      requestIds: [1, 2],
      requests: 2,
    });
  });

  it('says why when the target concurrency is never reached', () => {
    const window = steadyStateWindow([rec(0, 0, 10), rec(1, 11, 20)], {
      kind: 'concurrency',
      concurrency: 2,
    });
    expect(window).toEqual({
      unavailable: 'the target concurrency 2 was never reached (2 requests)',
    });
  });

  it('open loop without a cap: first completion to last arrival', () => {
    const records = [rec(0, 0, 50, [10]), rec(1, 20, 80, [60]), rec(2, 70, 120, [90])];
    const window = steadyStateWindow(records, {
      kind: 'request_rate',
      requestRate: 10,
      burstiness: 1,
      arrivalSeed: 0,
      maxConcurrency: null,
    });
    expect(window).toMatchObject({ startMs: 50, endMs: 70, rule: 'arrivals', outputTokens: 1 });
  });

  it('open loop: too few requests for the rate gives no window', () => {
    const window = steadyStateWindow([rec(0, 0, 50), rec(1, 10, 60)], {
      kind: 'request_rate',
      requestRate: 100,
      burstiness: 1,
      arrivalSeed: 0,
      maxConcurrency: null,
    });
    expect(window).toHaveProperty('unavailable');
  });
});

describe('goodput', () => {
  const slo = { ttftMs: 10, itlMs: 5, e2eMs: 100 };
  it('counts successful requests meeting every SLO, ITL judged on the mean', () => {
    const records = [
      rec(0, 0, 50, [8, 12, 16, 20]), // ttft 8, mean itl 4: meets
      rec(1, 0, 50, [8, 9, 10, 30]), // one 20 ms gap but mean 7.3: misses itl
      rec(2, 0, 50, [11, 12]), // ttft 11: misses
      rec(3, 0, 150, [5, 6]), // e2e 150: misses
      rec(4, 0, 20, [5, 6], 'http_5xx'), // failed: misses
      rec(5, 0, 20, [5]), // single token, no ITL: meets
    ];
    expect(goodput(records, slo, 2)).toEqual({
      slo,
      met: 2,
      total: 6,
      share: 2 / 6,
      requestsPerS: 1,
    });
  });

  it('only the SLOs that are set apply', () => {
    const records = [rec(0, 0, 500, [100, 400])];
    expect(goodput(records, { ttftMs: null, itlMs: null, e2eMs: 1000 }, null).met).toBe(1);
    expect(goodput(records, { ttftMs: 50, itlMs: null, e2eMs: null }, null).met).toBe(0);
  });

  it('judges TPOT as (E2E − TTFT) / (output tokens − 1), counting every token of a chunk', () => {
    // ttft 10, 41 tokens over 400 ms after the first: TPOT 10 ms.
    const paced = rec(0, 0, 410, [10, 410]);
    paced.outputTokens = 41;
    // ttft 10, 11 tokens over 400 ms: TPOT 40 ms.
    const slow = rec(1, 0, 410, [10, 410]);
    slow.outputTokens = 11;
    const single = rec(2, 0, 500, [10]); // one token: no TPOT, meets
    const slo = { ttftMs: null, itlMs: null, e2eMs: null, tpotMs: 20 };
    const result = goodput([paced, slow, single], slo, null);
    expect(result.met).toBe(2);
    expect(goodput([slow], { ...slo, tpotMs: 40 }, null).met).toBe(1);
  });
});
