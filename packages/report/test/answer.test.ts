import { describe, expect, it } from 'vitest';
import {
  ANSWER_RULE,
  answerRuns,
  answerStudy,
  loadStudy,
  type RunRecord,
  renderAnswer,
  resolveEnergyPrices,
  sloOf,
} from '../src/index';
import { type FixtureRun, fakeHash, makeResult, standardStudy } from './fixture-study';

/** Hand-made completed runs: one per cycle, with the J/token and latency percentiles given. */
function runs(
  label: string,
  cycles: {
    ept: number | null;
    ttftP95: number;
    ttftP50?: number;
    tpotP95?: number;
  }[],
  slo: Record<string, number>,
): RunRecord[] {
  const hash = fakeHash(label);
  return cycles.map((c, cycle) => {
    const key = `${hash}_c${cycle}`;
    const run: FixtureRun = {
      cycle,
      energyPerTokenJ: c.ept,
      slo: {
        slo,
        ttftMs: { p50: c.ttftP50 ?? c.ttftP95 / 2, p95: c.ttftP95, p99: c.ttftP95 * 1.2 },
        ...(c.tpotP95 !== undefined
          ? { tpotMs: { p50: c.tpotP95 / 2, p95: c.tpotP95, p99: c.tpotP95 * 1.2 } }
          : {}),
      },
    };
    return {
      key,
      configHash: hash,
      label,
      cycle,
      copy: 0,
      status: 'completed',
      error: null,
      startedAt: null,
      endedAt: null,
      resultFile: null,
      result: makeResult(hash, label, run, key, true),
      timeseriesFile: null,
      requestsFile: null,
      metricsFile: null,
    };
  });
}

const slo95 = { ttft_ms: 500, tpot_ms: 50, percentile: 95 };
const cycles = (epts: number[], ttftP95: number, tpotP95 = 40) =>
  epts.map((ept) => ({ ept, ttftP95, tpotP95 }));

describe('the answer: lowest J/token that meets the SLOs', () => {
  it('names the cheapest configuration meeting every target, its interval and the runner-up', () => {
    const answer = answerRuns(
      [
        // Cheapest, but its TTFT p95 is 600 ms against 500: out.
        ...runs('fast-and-cheap', cycles([0.3, 0.31, 0.32], 600), slo95),
        ...runs('b', cycles([0.5, 0.52, 0.51], 400), slo95),
        ...runs('c', cycles([0.7, 0.72, 0.71], 300), slo95),
      ],
      { seed: 1 },
    );
    expect(answer.status).toBe('met');
    expect(answer.noSlo).toBe(false);
    expect(answer.best?.label).toBe('b');
    expect(answer.best?.energyPerOutputTokenJ?.mean).toBeCloseTo(0.51, 12);
    // Three cycles: a bootstrap interval inside the values' range.
    const ci = answer.best?.energyPerOutputTokenJ?.ci;
    expect(ci?.low).toBeGreaterThanOrEqual(0.5);
    expect(ci?.high).toBeLessThanOrEqual(0.52);
    expect(answer.best?.checks.map((k) => [k.label, k.value?.mean, k.met])).toEqual([
      ['TTFT p95', 400, true],
      ['TPOT p95', 40, true],
    ]);
    expect(answer.runnerUp?.label).toBe('c');
    expect(answer.runnerUp?.vsBest?.ratio).toBeCloseTo(0.71 / 0.51, 12);
    // 0.70–0.72 against 0.50–0.52: the interval of the ratio is well above 1.
    expect(answer.runnerUp?.vsBest?.tied).toBe(false);
    expect(answer.tiedWithBest).toEqual([]);
    // Ranked by J/token; the one that misses says by how much.
    expect(answer.candidates.map((c) => [c.label, c.meets])).toEqual([
      ['fast-and-cheap', false],
      ['b', true],
      ['c', true],
    ]);
    const miss = answer.candidates[0]!.checks[0]!;
    expect(miss).toMatchObject({ label: 'TTFT p95', met: false, excessMs: 100, ratio: 1.2 });
    expect(answer.rule).toBe(ANSWER_RULE);

    const text = renderAnswer(answer);
    expect(text).toContain('The answer (lowest J/token that meets its SLOs):');
    expect(text).toContain('  * b: 0.51 J/token (95% CI ');
    expect(text).toContain('TTFT p95 400 ms ≤ 500 ms; TPOT p95 40 ms ≤ 50 ms');
    expect(text).toContain('runner-up: c: 0.71 J/token');
    expect(text).toContain("1.39× the best's J/token (95% CI ");
    expect(text).toContain('How "meets" is judged: ');
  });

  it('reports candidates whose J/token the intervals do not separate from the best as tied', () => {
    const answer = answerRuns(
      [
        ...runs('b', cycles([0.5, 0.6, 0.4], 400), slo95),
        ...runs('c', cycles([0.52, 0.42, 0.62], 300), slo95),
        ...runs('d', cycles([0.9, 0.91, 0.92], 300), slo95),
      ],
      { seed: 1 },
    );
    expect(answer.best?.label).toBe('b');
    expect(answer.runnerUp?.label).toBe('c');
    expect(answer.runnerUp?.vsBest?.tied).toBe(true);
    expect(answer.runnerUp?.vsBest?.ci?.low).toBeLessThan(1);
    expect(answer.tiedWithBest.map((c) => c.label)).toEqual(['c']);
    // d is clearly dearer: not tied.
    expect(answer.candidates.find((c) => c.label === 'd')?.vsBest?.tied).toBe(false);
    expect(renderAnswer(answer)).toContain(
      "tied with the best within the intervals: c (1.04× the best's J/token (95% CI 0.8",
    );
  });

  it('with one cycle ranks without claiming a separation', () => {
    const answer = answerRuns([
      ...runs('b', cycles([0.5], 400), slo95),
      ...runs('c', cycles([0.6], 400), slo95),
    ]);
    expect(answer.best?.energyPerOutputTokenJ?.ci).toBeNull();
    expect(answer.runnerUp?.vsBest).toMatchObject({ ratio: 1.2, ci: null, tied: null });
    expect(renderAnswer(answer)).toContain('With one cycle there is no interval');
  });

  it('when none meets its SLOs, says which target is missed by how much', () => {
    const answer = answerRuns([
      ...runs('a', cycles([0.3, 0.3], 600), slo95),
      ...runs('b', cycles([0.5, 0.5], 800), slo95),
      // Misses TTFT by 10% and TPOT by 10%: the closest (a misses by 20%).
      ...runs('c', cycles([0.7, 0.7], 550, 55), slo95),
    ]);
    expect(answer.status).toBe('none-met');
    expect(answer.best).toBeNull();
    expect(answer.closest?.label).toBe('c');
    expect(answer.closest?.checks.map((k) => [k.label, k.met, k.excessMs, k.ratio])).toEqual([
      ['TTFT p95', false, 50, 1.1],
      ['TPOT p95', false, 5, 1.1],
    ]);
    // Per target, the best any candidate reached: TPOT is met by some, so only TTFT is listed.
    expect(answer.bestPerTarget).toEqual([
      {
        target: 'ttft_ms',
        label: 'TTFT p95',
        candidate: 'c',
        valueMs: 550,
        targetMs: 500,
        excessMs: 50,
        ratio: 1.1,
      },
    ]);
    const text = renderAnswer(answer);
    expect(text).toContain('The answer: no configuration meets its SLOs.');
    expect(text).toContain('closest: c: TTFT p95 550 ms misses 500 ms by 50 ms (+10%)');
    expect(text).toContain('best TTFT p95 reached: 550 ms by c, 50 ms over its 500 ms target');
  });

  it('judges the percentile the SLO names (50 when absent) as the mean over cycles', () => {
    // p50 300 ms, p95 600 ms against a 500 ms target.
    const data = [
      { ept: 0.5, ttftP95: 600, ttftP50: 300 },
      { ept: 0.5, ttftP95: 600, ttftP50: 300 },
    ];
    expect(answerRuns(runs('x', data, { ttft_ms: 500 })).best?.checks[0]).toMatchObject({
      label: 'TTFT p50',
      met: true,
    });
    expect(answerRuns(runs('x', data, { ttft_ms: 500, percentile: 95 })).status).toBe('none-met');
    // A mean under the target whose interval reaches above it: met, and marked marginal.
    const marginal = answerRuns(
      runs(
        'y',
        [
          { ept: 0.5, ttftP95: 420 },
          { ept: 0.5, ttftP95: 540 },
        ],
        { ttft_ms: 500, percentile: 95 },
      ),
    ).best?.checks[0];
    expect(marginal).toMatchObject({ met: true, marginal: true });
    expect(marginal?.value?.ci).toEqual({ low: 420, high: 540 });
  });

  it('does not judge a target a run did not measure, and says so', () => {
    // tpot_ms is set, but these results have no TPOT (written before it existed).
    const answer = answerRuns([
      ...runs('old', [{ ept: 0.2, ttftP95: 100 }], slo95),
      ...runs('new', cycles([0.5], 100), slo95),
    ]);
    expect(answer.candidates.find((c) => c.label === 'old')?.meets).toBeNull();
    expect(answer.best?.label).toBe('new');
    expect(renderAnswer(answer)).toContain('Not judged (a target not measured): old (TPOT p95)');
  });

  it('without any SLO names the lowest J/token overall; without runs there is no answer', async () => {
    const answer = answerStudy(await loadStudy(standardStudy()), { seed: 1 });
    expect(answer.noSlo).toBe(true);
    expect(answer.best?.label).toBe('batch_size=64,threads=2');
    expect(answer.runnerUp?.label).toBe('batch_size=256,threads=1');
    expect(renderAnswer(answer)).toContain('no SLO set in openai.slo');
    expect(answerRuns([]).status).toBe('no-results');
    expect(renderAnswer(answerRuns([]))).toBe(
      'The answer: no completed run yet, so no configuration to name.\n',
    );
  });

  it('without energy names no cheapest configuration', () => {
    const answer = answerRuns(runs('x', [{ ept: null, ttftP95: 100, tpotP95: 10 }], slo95));
    expect(answer.status).toBe('no-energy');
    expect(renderAnswer(answer)).toContain('energy per token was measured for no configuration');
  });

  it('without energy does not say none meets its SLOs when one does (another misses)', () => {
    // A machine with no energy source: `meets` is judged, J/token is not.
    const answer = answerRuns([
      ...runs('meets', [{ ept: null, ttftP95: 100, tpotP95: 10 }], slo95),
      ...runs('misses', [{ ept: null, ttftP95: 900, tpotP95: 10 }], slo95),
    ]);
    expect(answer.status).toBe('no-energy');
    expect(answer.closest).toBeNull();
    const text = renderAnswer(answer);
    expect(text).not.toContain('no configuration meets its SLOs');
    expect(text).toContain('energy per token was measured for no configuration');
    expect(text).toContain('Meeting their SLOs: meets.');
  });

  it('without energy and without any SLO lists no configuration as meeting SLOs', () => {
    // The quickstart on a machine with no energy source: llama.cpp runs, no openai.slo.
    const answer = answerRuns([
      ...runs('a', [{ ept: null, ttftP95: 100 }], {}),
      ...runs('b', [{ ept: null, ttftP95: 200 }], {}),
    ]);
    expect(answer).toMatchObject({ status: 'no-energy', noSlo: true });
    expect(renderAnswer(answer)).toBe(
      'The answer: energy per token was measured for no configuration, so none can be named the cheapest.\n',
    );
  });

  it('gives carbon and cost of the winner: its J/token and interval scaled', () => {
    const prices = resolveEnergyPrices({
      carbon_g_per_kwh: 360,
      price_per_kwh: 0.36,
      currency: 'EUR',
    });
    const answer = answerRuns(runs('b', cycles([0.5, 0.52, 0.51], 400), slo95), {
      prices,
      seed: 3,
    });
    const best = answer.best!;
    // J/token × 10⁶ tokens ÷ 3.6 MJ/kWh × 360 g/kWh = J/token × 100
    expect(best.carbonGPer1MOutputTokens?.mean).toBeCloseTo(51, 9);
    expect(best.carbonGPer1MOutputTokens?.ci?.low).toBeCloseTo(
      best.energyPerOutputTokenJ!.ci!.low * 100,
      9,
    );
    expect(best.costPer1MOutputTokens?.mean).toBeCloseTo(0.051, 12);
    expect(renderAnswer(answer)).toContain('51 gCO2e/1M tokens · 0.051 EUR/1M tokens');
  });

  it('reads the SLO of an openai config, defaulting the percentile to 50', () => {
    expect(sloOf({ engine: 'openai', openai: { slo: { ttft_ms: 500, tpot_ms: 20 } } })).toEqual({
      percentile: 50,
      targets: { ttft_ms: 500, tpot_ms: 20 },
    });
    expect(sloOf({ engine: 'llamacpp', llamacpp: {} })).toEqual({ percentile: 50, targets: {} });
  });
});
