import {
  type PrometheusType,
  type ServerMetricSummary,
  type ServerMetricsScrape,
  seriesKey,
} from '@llem/domain';

/** One successful scrape on the harness's monotonic clock. */
export interface TimedScrape {
  /** Monotonic ms (the request's midpoint). */
  t: number;
  types: Record<string, PrometheusType>;
  samples: { name: string; labels: Record<string, string>; value: number | null }[];
}

/** `_created` series are prometheus_client's creation timestamps, not figures of the run. */
const CREATED = /_created$/;

/** The family of a sample and how to summarise it: by the family's `# TYPE` or its name. */
function kindOf(
  name: string,
  types: Readonly<Record<string, PrometheusType>>,
): {
  family: string;
  kind: 'gauge' | 'counter' | 'histogram' | 'summary';
  part?: 'sum' | 'count';
} | null {
  for (const suffix of ['_sum', '_count'] as const) {
    if (!name.endsWith(suffix)) continue;
    const family = name.slice(0, -suffix.length);
    const type = types[family];
    if (type === 'histogram' || type === 'summary')
      return { family, kind: type, part: suffix === '_sum' ? 'sum' : 'count' };
  }
  if (name.endsWith('_bucket') && types[name.slice(0, -'_bucket'.length)] === 'histogram')
    return null;
  const type = types[name] ?? 'untyped';
  if (type === 'histogram' || type === 'summary') return null; // a quantile line
  if (CREATED.test(name)) return null;
  if (type === 'counter') return { family: name, kind: 'counter' };
  if (type === 'gauge') return { family: name, kind: 'gauge' };
  return { family: name, kind: name.endsWith('_total') ? 'counter' : 'gauge' };
}

function valuesOf(scrape: TimedScrape): Map<string, number | null> {
  const out = new Map<string, number | null>();
  for (const s of scrape.samples) out.set(seriesKey(s.name, s.labels), s.value);
  return out;
}

/**
 * Summarise a server's scrapes over the measured window `[startT, endT]` (monotonic ms): for a
 * gauge, the mean and max of the scrapes inside the window; for a counter, the increase between
 * the edge scrapes (the last at or before `startT`, else the first; the first at or after `endT`,
 * else the last) and that per second; for a histogram or summary, the increase of `_count` and
 * `_sum` between the edges and their ratio (the mean observation over the window). A counter
 * that went down (the server restarted it) has no delta. Histogram buckets and quantile lines are
 * left out (they stay in the metrics file); so are `_created` timestamps. Keys are series names
 * as Prometheus writes them (`name{label="value"}`; a histogram's without `le`).
 *
 * @example
 * summariseServerMetrics(scrapes, w0.t, w1.t)['vllm:num_requests_running{model_name="m"}'];
 * // { type: 'gauge', mean: 7.6, max: 8 }
 */
export function summariseServerMetrics(
  scrapes: readonly TimedScrape[],
  startT: number,
  endT: number,
): Record<string, ServerMetricSummary> {
  if (scrapes.length === 0) return {};
  const sorted = [...scrapes].sort((a, b) => a.t - b.t);
  const opening = sorted.filter((s) => s.t <= startT).at(-1) ?? (sorted[0] as TimedScrape);
  const closing = sorted.find((s) => s.t >= endT) ?? (sorted.at(-1) as TimedScrape);
  const inside = sorted.filter((s) => s.t >= startT && s.t <= endT);
  const first = valuesOf(opening);
  const last = valuesOf(closing);
  const seconds = (closing.t - opening.t) / 1000;
  const delta = (key: string): number | null => {
    const a = first.get(key);
    const b = last.get(key);
    if (a === undefined || b === undefined || a === null || b === null || b < a) return null;
    return b - a;
  };

  const out: Record<string, ServerMetricSummary> = {};
  const types = { ...opening.types, ...closing.types };
  const names = new Map<string, { name: string; labels: Record<string, string> }>();
  for (const scrape of [opening, ...inside, closing])
    for (const s of scrape.samples) names.set(seriesKey(s.name, s.labels), s);
  for (const [key, { name, labels }] of [...names].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const kind = kindOf(name, types);
    if (kind === null) continue;
    if (kind.kind === 'gauge') {
      const values = inside
        .map((s) => valuesOf(s).get(key))
        .filter((v): v is number => typeof v === 'number');
      out[key] = {
        type: 'gauge',
        mean: values.length === 0 ? null : values.reduce((a, v) => a + v, 0) / values.length,
        max: values.length === 0 ? null : Math.max(...values),
      };
    } else if (kind.kind === 'counter') {
      const d = delta(key);
      out[key] = {
        type: 'counter',
        delta: d,
        perS: d === null || seconds <= 0 ? null : d / seconds,
      };
    } else {
      const familyKey = seriesKey(kind.family, labels);
      const entry = (out[familyKey] ?? {
        type: kind.kind,
        count: null,
        sum: null,
        mean: null,
      }) as Extract<ServerMetricSummary, { type: 'histogram' | 'summary' }>;
      if (kind.part === 'count') entry.count = delta(key);
      else entry.sum = delta(key);
      entry.mean =
        entry.count !== null && entry.sum !== null && entry.count > 0
          ? entry.sum / entry.count
          : null;
      out[familyKey] = entry;
    }
  }
  return out;
}

/**
 * The scrapes as the metrics file's lines: times in ms from the window's start `w0` (the
 * timeseries' `t_ms` of the `measure` window), rounded to the microsecond.
 *
 * @example
 * const lines = metricsFileLines(scrapes, w0.t).map((s) => JSON.stringify(s)).join('\n');
 */
export function metricsFileLines(
  scrapes: readonly TimedScrape[],
  w0: number,
): ServerMetricsScrape[] {
  return scrapes.map((s) => ({
    tMs: Math.round((s.t - w0) * 1000) / 1000,
    types: s.types,
    samples: s.samples,
  }));
}
