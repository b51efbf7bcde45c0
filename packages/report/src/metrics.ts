import type { RunResult } from '@llem/domain';

/** Whether smaller or larger values of a metric are better (drives Pareto and colours). */
export type Direction = 'min' | 'max';

/** A figure taken from each run's result and aggregated across cycles. */
export interface MetricDefinition {
  /** Stable identifier: used in CSV column names, `--metric` flags and JSON output. */
  id: MetricId;
  /** Human label for tables and plots. */
  label: string;
  unit: string;
  /** Which way is better. */
  direction: Direction;
  /** Read the value from a result; `null` when it was not measured. */
  read: (result: RunResult) => number | null;
}

export type MetricId =
  | 'energyPerOutputTokenJ'
  | 'outputTokensPerS'
  | 'ttftP50Ms'
  | 'ttftP95Ms'
  | 'itlP50Ms'
  | 'itlP95Ms'
  | 'totalEnergyJ'
  | 'gpuPeakMemoryMiB'
  | 'rssPeakMiB';

const num = (v: number | null | undefined): number | null =>
  typeof v === 'number' && Number.isFinite(v) ? v : null;

/**
 * The metrics aggregated per config, in display order. Peak memory is split in two because a
 * CPU-only run has no GPU peak but still has a peak RSS; mixing them in one column would lie.
 */
export const METRICS: readonly MetricDefinition[] = [
  {
    id: 'energyPerOutputTokenJ',
    label: 'Energy per output token',
    unit: 'J/token',
    direction: 'min',
    read: (r) => num(r.energyPerOutputTokenJ),
  },
  {
    id: 'outputTokensPerS',
    label: 'Output tokens/s',
    unit: 'tokens/s',
    direction: 'max',
    read: (r) => num(r.throughput.outputTokensPerS),
  },
  {
    id: 'ttftP50Ms',
    label: 'TTFT p50',
    unit: 'ms',
    direction: 'min',
    read: (r) => num(r.latency.ttftMs?.p50),
  },
  {
    id: 'ttftP95Ms',
    label: 'TTFT p95',
    unit: 'ms',
    direction: 'min',
    read: (r) => num(r.latency.ttftMs?.p95),
  },
  {
    id: 'itlP50Ms',
    label: 'ITL p50',
    unit: 'ms',
    direction: 'min',
    read: (r) => num(r.latency.itlMs?.p50),
  },
  {
    id: 'itlP95Ms',
    label: 'ITL p95',
    unit: 'ms',
    direction: 'min',
    read: (r) => num(r.latency.itlMs?.p95),
  },
  {
    id: 'totalEnergyJ',
    label: 'Total energy',
    unit: 'J',
    direction: 'min',
    read: (r) => num(r.energy.totalJ),
  },
  {
    id: 'gpuPeakMemoryMiB',
    label: 'Peak GPU memory',
    unit: 'MiB',
    direction: 'min',
    read: (r) => num(r.memory.gpuPeakUsedMiB),
  },
  {
    id: 'rssPeakMiB',
    label: 'Peak RSS',
    unit: 'MiB',
    direction: 'min',
    read: (r) => num(r.memory.rssPeakMiB),
  },
];

export const METRIC_IDS: readonly MetricId[] = METRICS.map((m) => m.id);

/**
 * Look a metric up by id.
 *
 * @example
 * getMetric('outputTokensPerS').direction; // 'max'
 */
export function getMetric(id: MetricId): MetricDefinition {
  const metric = METRICS.find((m) => m.id === id);
  if (!metric) throw new Error(`unknown metric ${id}`);
  return metric;
}

/** True when `id` names a metric (for validating user input). */
export function isMetricId(id: string): id is MetricId {
  return (METRIC_IDS as readonly string[]).includes(id);
}
