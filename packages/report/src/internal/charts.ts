import type { MeasuredRequest } from '@llem/domain';
import * as Plot from '@observablehq/plot';
import { parseHTML } from 'linkedom';
import type { ConfigSummary } from '../aggregate';
import { formatNumber } from '../format';
import type { RunRecord } from '../load';
import { getMetric, METRICS, type MetricId } from '../metrics';
import type { ParetoResult } from '../pareto';
import type { ServerMetricPoint } from '../server-metrics';
import type { TimeseriesSample } from '../timeseries';

/**
 * Server-side SVG charts. Observable Plot builds the axes, scales and marks; linkedom gives it a
 * DOM in Node, so the report is plain SVG text with no script needed to draw it.
 */

const FRONTIER = '#d9480f';
const OTHER = '#868e96';
const ACCENT = '#1c7ed6';

function newDocument(): unknown {
  return parseHTML('<!doctype html><html><body></body></html>').document;
}

// biome-ignore lint/suspicious/noExplicitAny: Plot's options type references DOM types that the Node-only tsconfig lacks
type PlotOptions = Record<string, any>;

/** Render Plot options to an SVG (or figure, when a legend is on) HTML string. */
function render(options: PlotOptions): string {
  const el = Plot.plot({
    ...options,
    document: newDocument(),
    style: { fontSize: '12px', background: 'transparent', overflow: 'visible' },
  } as Plot.PlotOptions) as unknown as { outerHTML: string };
  return el.outerHTML;
}

/**
 * A domain for values that may all be equal. d3 picks how many decimals a tick label gets from
 * the step between ticks; a zero-width domain has no step, and a flat 250 W trace was labelled
 * `250.000000`. A flat series gets a band of ±5% (at least ±1) around its value instead; any other
 * series gets `undefined`, Plot's own domain.
 *
 * @example
 * flatDomain([250, 250]); // [237.5, 262.5]
 * flatDomain([240, 260]); // undefined
 */
export function flatDomain(values: readonly number[]): [number, number] | undefined {
  if (values.length === 0) return undefined;
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (hi - lo > 1e-9 * Math.max(1, Math.abs(hi))) return undefined;
  const pad = Math.max(Math.abs(lo) * 0.05, 1);
  return [lo - pad, hi + pad];
}

/** `{ domain }` for Plot's scale options when the values are flat, else nothing. */
const domainFor = (values: readonly number[]): { domain?: [number, number] } => {
  const domain = flatDomain(values);
  return domain ? { domain } : {};
};

const short = (label: string, max = 28): string =>
  label.length > max ? `${label.slice(0, max - 1)}…` : label;

const axisLabel = (id: MetricId, direction: 'min' | 'max'): string => {
  const m = getMetric(id);
  return `${m.label} (${m.unit}) ${direction === 'min' ? '— lower is better' : '— higher is better'}`;
};

const interval = (i: { low: number; high: number } | null): string =>
  i === null ? 'one cycle: no interval' : `95% CI ${formatNumber(i.low)}–${formatNumber(i.high)}`;

/**
 * Pareto scatter: every config a dot with its 95% interval on both axes as whiskers, the frontier
 * in colour, joined by a line and labelled.
 *
 * @example
 * const svg = paretoChart(paretoFrontier(summaries));
 */
export function paretoChart(pareto: ParetoResult): string {
  const frontier = pareto.points.filter((p) => p.onFrontier).sort((a, b) => a.x - b.x);
  const data = pareto.points.map((p) => ({ ...p, short: short(p.label) }));
  // Whiskers: one horizontal (x interval) and one vertical (y interval) per point that has one.
  const xWhiskers = data
    .filter((p) => p.xInterval !== null)
    .map((p) => ({ y: p.y, x1: p.xInterval!.low, x2: p.xInterval!.high, on: p.onFrontier }));
  const yWhiskers = data
    .filter((p) => p.yInterval !== null)
    .map((p) => ({ x: p.x, y1: p.yInterval!.low, y2: p.yInterval!.high, on: p.onFrontier }));
  const whisker = (d: { on: boolean }) => (d.on ? FRONTIER : OTHER);
  const xs = data.flatMap((p) => [
    p.x,
    ...(p.xInterval ? [p.xInterval.low, p.xInterval.high] : []),
  ]);
  const ys = data.flatMap((p) => [
    p.y,
    ...(p.yInterval ? [p.yInterval.low, p.yInterval.high] : []),
  ]);
  return render({
    width: 760,
    height: 420,
    marginRight: 40,
    marginTop: 30,
    grid: true,
    marginBottom: 45,
    // Inset keeps the labels of extreme points inside the frame.
    x: {
      label: axisLabel(pareto.x.metric, pareto.x.direction),
      nice: true,
      zero: false,
      inset: 70,
      labelAnchor: 'center',
      labelOffset: 38,
      ...domainFor(xs),
    },
    y: {
      label: axisLabel(pareto.y.metric, pareto.y.direction),
      nice: true,
      zero: false,
      inset: 20,
      ...domainFor(ys),
    },
    marks: [
      Plot.ruleY(xWhiskers, { y: 'y', x1: 'x1', x2: 'x2', stroke: whisker, strokeWidth: 1.5 }),
      Plot.ruleX(yWhiskers, { x: 'x', y1: 'y1', y2: 'y2', stroke: whisker, strokeWidth: 1.5 }),
      Plot.line(frontier, {
        x: 'x',
        y: 'y',
        stroke: FRONTIER,
        strokeWidth: 2,
        strokeDasharray: '4,3',
      }),
      Plot.dot(data, {
        x: 'x',
        y: 'y',
        r: 6,
        fill: (d: { onFrontier: boolean }) => (d.onFrontier ? FRONTIER : OTHER),
        stroke: 'white',
        title: (d: (typeof data)[number]) =>
          `${d.label}\nx ${formatNumber(d.x)} (${interval(d.xInterval)})\ny ${formatNumber(d.y)} (${interval(d.yInterval)})`,
      }),
      Plot.text(
        data.filter((d) => !d.onFrontier),
        { x: 'x', y: 'y', text: 'short', dy: -12, fill: '#495057' },
      ),
      // Frontier labels last so they sit on top, bold, in the frontier colour.
      Plot.text(
        data.filter((d) => d.onFrontier),
        { x: 'x', y: 'y', text: 'short', dy: -12, fill: FRONTIER, fontWeight: 'bold' },
      ),
    ],
  });
}

/**
 * One bar chart per metric: the config mean as a bar, the bootstrap 95% CI as a whisker.
 * Metrics that no config measured are left out.
 *
 * @example
 * for (const { metric, svg } of configBarCharts(summaries)) html += svg;
 */
export function configBarCharts(
  summaries: readonly ConfigSummary[],
): { metric: MetricId; svg: string }[] {
  const out: { metric: MetricId; svg: string }[] = [];
  for (const def of METRICS) {
    const rows = summaries
      .map((s) => ({ label: short(s.label, 40), m: s.metrics[def.id] }))
      .filter((r) => r.m.mean !== null)
      .map((r) => ({
        label: r.label,
        mean: r.m.mean as number,
        low: r.m.ci?.low ?? (r.m.mean as number),
        high: r.m.ci?.high ?? (r.m.mean as number),
      }));
    if (rows.length === 0) continue;
    out.push({
      metric: def.id,
      svg: render({
        width: 560,
        height: 60 + rows.length * 28,
        marginLeft: 230,
        marginRight: 30,
        marginBottom: 45,
        x: {
          label: `${def.label} (${def.unit}), mean ± 95% CI`,
          grid: true,
          nice: true,
          labelAnchor: 'center',
          labelOffset: 38,
        },
        y: { label: null, domain: rows.map((r) => r.label) },
        marks: [
          Plot.barX(rows, { y: 'label', x: 'mean', fill: ACCENT, fillOpacity: 0.75 }),
          Plot.ruleY(rows, {
            y: 'label',
            x1: 'low',
            x2: 'high',
            stroke: '#212529',
            strokeWidth: 1.5,
          }),
          Plot.tickX(rows, { y: 'label', x: 'low', stroke: '#212529' }),
          Plot.tickX(rows, { y: 'label', x: 'high', stroke: '#212529' }),
          Plot.ruleX([0]),
        ],
      }),
    });
  }
  return out;
}

/**
 * Power and temperature of one run over its measurement window (one line per device).
 * `null` when the trace has neither figure.
 */
export function traceChart(samples: readonly TimeseriesSample[]): string | null {
  // Downsample long traces: the eye cannot tell more than ~1000 points apart, the file size can.
  const step = Math.max(1, Math.ceil(samples.length / 1000));
  const data = samples
    .filter((_, i) => i % step === 0)
    .map((s) => ({ ...s, device: s.device ?? 'device' }));
  const charts: string[] = [];
  const series: [keyof TimeseriesSample, string, string][] = [
    ['powerW', 'Power (W)', '#e8590c'],
    ['temperatureC', 'Temperature (°C)', '#1971c2'],
  ];
  for (const [key, label, colour] of series) {
    const points = data.filter((d) => d[key] !== null);
    if (points.length === 0) continue;
    const multi = new Set(points.map((p) => p.device)).size > 1;
    charts.push(
      render({
        width: 760,
        height: 220,
        grid: true,
        marginBottom: 45,
        x: { label: 'Time in measurement window (s)', labelAnchor: 'center', labelOffset: 38 },
        y: { label, nice: true, ...domainFor(points.map((p) => p[key] as number)) },
        color: multi ? { legend: true } : undefined,
        marks: [
          Plot.line(points, {
            x: 'tS',
            y: key,
            z: 'device',
            stroke: multi ? 'device' : colour,
            strokeWidth: 1.5,
          }),
        ],
      }),
    );
  }
  return charts.length ? charts.join('\n') : null;
}

const SERVER_CHARTS: Record<ServerMetricPoint['chart'], string> = {
  requests: 'Server: requests',
  'kv-cache': 'Server: KV cache used (%)',
  tokens: 'Server: generated tokens/s',
};

/**
 * A managed server's main figures over the measurement window (requests running and waiting,
 * KV-cache usage, generated tokens/s), one small chart each, on the power trace's time axis.
 * `null` when the server exposed none of them.
 *
 * @example
 * const svg = serverMetricsChart(serverMetricPoints(metrics.scrapes));
 */
export function serverMetricsChart(points: readonly ServerMetricPoint[]): string | null {
  const charts: string[] = [];
  for (const [chart, label] of Object.entries(SERVER_CHARTS)) {
    const data = points.filter((p) => p.chart === chart);
    if (data.length === 0) continue;
    const series = [...new Set(data.map((p) => p.series))];
    charts.push(
      render({
        width: 760,
        height: 170,
        grid: true,
        marginBottom: 45,
        x: { label: 'Time in measurement window (s)', labelAnchor: 'center', labelOffset: 38 },
        y: { label, nice: true, zero: true, ...domainFor(data.map((p) => p.value)) },
        color: series.length > 1 ? { legend: true, domain: series } : undefined,
        marks: [
          Plot.line(data, {
            x: 'tS',
            y: 'value',
            z: 'series',
            stroke: series.length > 1 ? 'series' : '#5f3dc4',
            strokeWidth: 1.5,
            curve: 'step-after',
          }),
          Plot.dot(data, {
            x: 'tS',
            y: 'value',
            r: 1.5,
            fill: series.length > 1 ? 'series' : '#5f3dc4',
          }),
        ],
      }),
    );
  }
  return charts.length ? charts.join('\n') : null;
}

/**
 * Every measured request of one run over its measurement window: TTFT and E2E (ms) against the
 * time the request was sent (s from the window's start); a failed request is a red cross at its
 * E2E. `null` when there is no request to plot.
 *
 * @example
 * const svg = requestsChart((await readRunRequests(run))?.records ?? []);
 */
export function requestsChart(records: readonly MeasuredRequest[]): string | null {
  // Like the power trace: at most ~2000 dots per series (the file keeps every request).
  const step = Math.max(1, Math.ceil(records.length / 2000));
  const points: { tS: number; ms: number; series: string }[] = [];
  records.forEach((r, i) => {
    if (i % step !== 0) return;
    const tS = r.sentMs / 1000;
    if (r.error !== null) {
      points.push({ tS, ms: r.e2eMs, series: 'failed (E2E)' });
      return;
    }
    points.push({ tS, ms: r.e2eMs, series: 'E2E' });
    if (r.ttftMs !== null) points.push({ tS, ms: r.ttftMs, series: 'TTFT' });
  });
  if (points.length === 0) return null;
  const series = ['TTFT', 'E2E', 'failed (E2E)'].filter((s) => points.some((p) => p.series === s));
  return render({
    width: 760,
    height: 240,
    grid: true,
    marginBottom: 45,
    x: {
      label: 'Request sent, time in measurement window (s)',
      labelAnchor: 'center',
      labelOffset: 38,
    },
    y: { label: 'Latency (ms)', nice: true, zero: true },
    color: {
      legend: true,
      domain: series,
      range: series.map((s) => (s === 'TTFT' ? '#2f9e44' : s === 'E2E' ? ACCENT : '#e03131')),
    },
    marks: [
      Plot.dot(
        points.filter((p) => !p.series.startsWith('failed')),
        { x: 'tS', y: 'ms', fill: 'series', r: 2.5, fillOpacity: 0.75 },
      ),
      Plot.dot(
        points.filter((p) => p.series.startsWith('failed')),
        { x: 'tS', y: 'ms', stroke: 'series', symbol: 'times', r: 4 },
      ),
    ],
  });
}

/**
 * Latency distribution across runs: for each config, every completed run's p50/p95/p99 of TTFT,
 * ITL and TPOT as dots (the result keeps percentiles; every request is in the requests file).
 */
export function latencyCharts(runs: readonly RunRecord[]): { title: string; svg: string }[] {
  const out: { title: string; svg: string }[] = [];
  const kinds = [
    ['ttftMs', 'Time to first token (ms)'],
    ['itlMs', 'Inter-token latency (ms)'],
    ['tpotMs', 'Time per output token (ms)'],
  ] as const;
  for (const [key, title] of kinds) {
    const rows: { label: string; percentile: string; value: number }[] = [];
    for (const run of runs) {
      const stats = run.result?.latency[key];
      if (!stats) continue;
      for (const p of ['p50', 'p95', 'p99'] as const) {
        rows.push({ label: short(run.label, 40), percentile: p, value: stats[p] });
      }
    }
    if (rows.length === 0) continue;
    const labels = [...new Set(rows.map((r) => r.label))];
    out.push({
      title,
      svg: render({
        width: 560,
        height: 70 + labels.length * 28,
        marginLeft: 230,
        marginRight: 30,
        grid: true,
        marginBottom: 45,
        x: {
          label: `${title}, each run's p50 / p95 / p99`,
          nice: true,
          zero: true,
          labelAnchor: 'center',
          labelOffset: 38,
        },
        y: { label: null, domain: labels },
        color: {
          legend: true,
          domain: ['p50', 'p95', 'p99'],
          range: ['#2f9e44', '#f08c00', '#e03131'],
        },
        marks: [
          Plot.dot(rows, { x: 'value', y: 'label', fill: 'percentile', r: 4, fillOpacity: 0.8 }),
        ],
      }),
    });
  }
  return out;
}
