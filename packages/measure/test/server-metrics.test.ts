import { parseExperimentConfig, RunResultSchema } from '@llem/domain';
import { describe, expect, it } from 'vitest';
import { summariseServerMetrics, type TimedScrape } from '../src/server-metrics';
import { llemRunnerOptions } from '../src/study-options';
import { runTimeoutS } from '../src/timeout';

const types = {
  running: 'gauge',
  tokens_total: 'counter',
  ttft: 'histogram',
  req: 'summary',
  restarted_total: 'counter',
} as const;

function scrape(
  t: number,
  values: { running: number; tokens: number; count: number; sum: number; restarted: number },
): TimedScrape {
  const m = { model_name: 'm' };
  return {
    t,
    types: { ...types, odd_total: 'untyped', odd_gauge: 'untyped', x_created: 'gauge' },
    samples: [
      { name: 'running', labels: m, value: values.running },
      { name: 'tokens_total', labels: m, value: values.tokens },
      { name: 'ttft_bucket', labels: { ...m, le: '+Inf' }, value: values.count },
      { name: 'ttft_count', labels: m, value: values.count },
      { name: 'ttft_sum', labels: m, value: values.sum },
      { name: 'req', labels: { quantile: '0.5' }, value: 1 },
      { name: 'req_count', labels: {}, value: values.count },
      { name: 'req_sum', labels: {}, value: values.sum * 2 },
      { name: 'restarted_total', labels: {}, value: values.restarted },
      { name: 'odd_total', labels: {}, value: values.tokens },
      { name: 'odd_gauge', labels: {}, value: values.running },
      { name: 'x_created', labels: {}, value: 1.7e9 },
    ],
  };
}

describe('summariseServerMetrics over the window [1000, 3000] ms', () => {
  const scrapes = [
    scrape(990, { running: 0, tokens: 100, count: 2, sum: 1, restarted: 50 }), // opening edge
    scrape(1500, { running: 4, tokens: 300, count: 4, sum: 2, restarted: 60 }),
    scrape(2500, { running: 8, tokens: 700, count: 8, sum: 4, restarted: 5 }),
    scrape(3010, { running: 0, tokens: 900, count: 12, sum: 5, restarted: 7 }), // closing edge
  ];
  const summary = summariseServerMetrics(scrapes, 1000, 3000);

  it('gauges: mean and max of the scrapes inside the window (the idle edges left out)', () => {
    expect(summary['running{model_name="m"}']).toEqual({ type: 'gauge', mean: 6, max: 8 });
    expect(summary.odd_gauge).toEqual({ type: 'gauge', mean: 6, max: 8 });
  });

  it('counters: the increase between the edge scrapes, and per second', () => {
    expect(summary['tokens_total{model_name="m"}']).toEqual({
      type: 'counter',
      delta: 800,
      perS: 800 / 2.02,
    });
    // untyped but named _total: a counter.
    expect(summary.odd_total).toMatchObject({ type: 'counter', delta: 800 });
    // A counter that went down (the server restarted it) has no delta.
    expect(summary.restarted_total).toEqual({ type: 'counter', delta: null, perS: null });
  });

  it('histograms and summaries: count and sum increases and the mean observation', () => {
    expect(summary['ttft{model_name="m"}']).toEqual({
      type: 'histogram',
      count: 10,
      sum: 4,
      mean: 0.4,
    });
    expect(summary.req).toEqual({ type: 'summary', count: 10, sum: 8, mean: 0.8 });
  });

  it('leaves out buckets, quantile lines and _created timestamps', () => {
    expect(Object.keys(summary).some((k) => k.includes('_bucket') || k.includes('_created'))).toBe(
      false,
    );
    expect(summary['req{quantile="0.5"}']).toBeUndefined();
  });

  it('fits the result schema', () => {
    expect(
      RunResultSchema.shape.server.unwrap().shape.metrics.unwrap().shape.series.parse(summary),
    ).toEqual(summary);
  });

  it('is empty without scrapes, and has no gauge mean with no scrape inside the window', () => {
    expect(summariseServerMetrics([], 0, 1)).toEqual({});
    const edgesOnly = summariseServerMetrics([scrapes[0]!, scrapes[3]!], 1000, 3000);
    expect(edgesOnly['running{model_name="m"}']).toEqual({ type: 'gauge', mean: null, max: null });
    expect(edgesOnly['tokens_total{model_name="m"}']).toMatchObject({ delta: 800 });
  });
});

const served = parseExperimentConfig({
  engine: 'openai',
  model: 'm',
  max_output_tokens: 10,
  dataset: { synthetic: { n: 10 } },
  warmup: { n: 0 },
  openai: { base_url: 'http://127.0.0.1:{port}/v1' },
  server: { argv: ['srv', '--port', '{port}'], ready: { timeout_s: 900 }, stop_grace_s: 20 },
});
const external = parseExperimentConfig({
  engine: 'openai',
  model: 'm',
  openai: { base_url: 'http://127.0.0.1:8000/v1' },
});

describe('llem runner options for managed servers', () => {
  it('the derived timeout includes ready.timeout_s and stop_grace_s', () => {
    expect(runTimeoutS({}, served)).toBe(Math.ceil(120 + 10 * 10 * 0.1 + 900 + 20));
    const { server: _s, ...without } = served;
    expect(runTimeoutS({}, without)).toBe(Math.ceil(120 + 10 * 10 * 0.1));
  });

  it('openai runs against an external server never overlap; runs with their own server may', () => {
    const options = llemRunnerOptions({ cwd: '.' });
    expect(options.exclusiveGroup(external)).toBe('openai runs against an external server');
    expect(options.exclusiveGroup(served)).toBeNull();
  });
});
