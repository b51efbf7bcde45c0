import {
  type InvalidMetricsLine,
  parseServerMetrics,
  type ServerMetricsScrape,
} from '@llem/domain';
import type { RunRecord } from './load';
import { readIfPresent } from './requests';

/** A run's scraped server metrics as the report read them. */
export interface RunServerMetrics {
  /** Absolute path of the file read. */
  file: string;
  scrapes: ServerMetricsScrape[];
  /** Lines that were not valid scrapes (left out). */
  invalid: InvalidMetricsLine[];
}

/**
 * Reads a run's managed-server metrics (`runs/<key>.metrics.jsonl` as the study layout names it,
 * one JSON line per scrape, written by the llem worker). `null` when the run has none (no managed
 * server, `server.metrics: false`, a failed run). Every read of the file goes through here.
 *
 * @example
 * const metrics = await readRunServerMetrics(run);
 * metrics?.scrapes.map((s) => s.tMs);
 */
export async function readRunServerMetrics(
  run: Pick<RunRecord, 'metricsFile'>,
): Promise<RunServerMetrics | null> {
  const file = run.metricsFile;
  const text = await readIfPresent(file);
  return text === null || file === null ? null : { file, ...parseServerMetrics(text) };
}

/**
 * The server figures the report draws beside power, recognised by name across servers (vLLM,
 * SGLang, TGI, llama-server): requests running and waiting, KV-cache usage, and generated tokens
 * per second (the rate of a token counter between scrapes). A figure a server does not expose is
 * simply not drawn; every series stays in the metrics file.
 */
export const MAIN_SERVER_METRICS = [
  {
    chart: 'requests',
    series: 'running',
    kind: 'gauge',
    match:
      /(^|[:_])(num_requests_running|num_running_reqs|requests_processing|batch_current_size)$/,
  },
  {
    chart: 'requests',
    series: 'waiting',
    kind: 'gauge',
    match: /(^|[:_])(num_requests_waiting|num_queue_reqs|requests_deferred|queue_size)$/,
  },
  {
    chart: 'kv-cache',
    series: 'KV cache used',
    kind: 'fraction',
    match: /(^|[:_])(gpu_cache_usage_perc|kv_cache_usage_perc|kv_cache_usage_ratio|token_usage)$/,
  },
  {
    chart: 'tokens',
    series: 'generated tokens/s',
    kind: 'rate',
    match: /(^|[:_])(generation_tokens_total|tokens_predicted_total|generated_tokens_total)$/,
  },
] as const;

/** One point of a main server figure: seconds on the power trace's axis (from the window's start). */
export interface ServerMetricPoint {
  chart: (typeof MAIN_SERVER_METRICS)[number]['chart'];
  series: string;
  tS: number;
  value: number;
}

/**
 * The main figures (`MAIN_SERVER_METRICS`) over time: each scrape's value, summed over label
 * sets (models, engines); a fraction as a percentage; a counter as its rate between scrapes.
 *
 * @example
 * serverMetricPoints(metrics.scrapes).filter((p) => p.chart === 'requests');
 */
export function serverMetricPoints(scrapes: readonly ServerMetricsScrape[]): ServerMetricPoint[] {
  const points: ServerMetricPoint[] = [];
  for (const metric of MAIN_SERVER_METRICS) {
    let previous: { tS: number; value: number } | null = null;
    for (const scrape of scrapes) {
      const values = scrape.samples
        .filter((s) => metric.match.test(s.name) && s.value !== null)
        .map((s) => s.value as number);
      if (values.length === 0) continue;
      const total = values.reduce((a, v) => a + v, 0);
      const tS = scrape.tMs / 1000;
      if (metric.kind === 'rate') {
        if (previous !== null && tS > previous.tS && total >= previous.value)
          points.push({
            chart: metric.chart,
            series: metric.series,
            tS,
            value: (total - previous.value) / (tS - previous.tS),
          });
        previous = { tS, value: total };
      } else {
        const value = metric.kind === 'fraction' && total <= 1 ? total * 100 : total;
        points.push({ chart: metric.chart, series: metric.series, tS, value });
      }
    }
  }
  return points;
}
