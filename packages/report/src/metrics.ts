import { type KnownWarningCode, type RunResult, readDispatchSummary } from '@llem/domain';

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
  /**
   * Only some engines measure it (e.g. the openai engine's steady state). When no config has a
   * value it is left out of per-config files, tables and charts, so a study without it keeps
   * exactly the shape it always had. Default `false`.
   */
  optional?: boolean;
  /**
   * Warnings that make this figure unreliable when a run carries them: the tables mark the value
   * next to it (see {@link FIGURE_WARNINGS}). Default: none.
   */
  affectedBy?: readonly KnownWarningCode[];
}

/**
 * What a warning that affects figures means for them, in one line a table's footnote can show.
 * The metrics name the warnings that affect them (`MetricDefinition.affectedBy`).
 */
export const FIGURE_WARNINGS: Partial<Record<KnownWarningCode, string>> = {
  'client-saturated':
    'the client could not keep its arrival schedule, so latencies counted from the send leave its own lateness out and its late reads inflate them; TTFT from schedule includes the lateness — lower the rate or use a less loaded client',
};

/** Latency figures the client's own lateness distorts. */
const CLIENT_TIMED: readonly KnownWarningCode[] = ['client-saturated'];

export type MetricId =
  | 'energyPerOutputTokenJ'
  | 'outputTokensPerS'
  | 'ttftP50Ms'
  | 'ttftP95Ms'
  | 'itlP50Ms'
  | 'itlP95Ms'
  | 'tpotP50Ms'
  | 'tpotP95Ms'
  | 'totalEnergyJ'
  | 'gpuPeakMemoryMiB'
  | 'rssPeakMiB'
  | 'steadyStateEnergyPerOutputTokenJ'
  | 'goodputShare'
  | 'ttftFromScheduledP50Ms'
  | 'ttftFromScheduledP95Ms'
  | 'clientLagP99Ms';

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** `obj[key]` when `obj` is a plain object; `extra` is engine-defined, so nothing is trusted. */
const field = (obj: unknown, key: string): unknown =>
  typeof obj === 'object' && obj !== null ? (obj as Record<string, unknown>)[key] : undefined;

/**
 * The openai engine's steady-state energy per output token (`extra.steadyState.energy`, added by
 * @llem/measure). `null` when the run has no steady state (other engines, `steadyState: null`,
 * `{unavailable}`) or its window was too short to measure: never 0, which would read as "free".
 *
 * @example
 * readSteadyStateEnergyPerOutputTokenJ(result); // 0.42 or null
 */
export function readSteadyStateEnergyPerOutputTokenJ(result: RunResult): number | null {
  return num(field(field(field(result.extra, 'steadyState'), 'energy'), 'energyPerOutputTokenJ'));
}

/**
 * The share (0–1) of requests that met every SLO (`extra.goodput.share`); `null` without SLOs.
 *
 * @example
 * readGoodputShare(result); // 0.95 or null
 */
export function readGoodputShare(result: RunResult): number | null {
  return num(field(field(result.extra, 'goodput'), 'share'));
}

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
    affectedBy: CLIENT_TIMED,
  },
  {
    id: 'ttftP95Ms',
    label: 'TTFT p95',
    unit: 'ms',
    direction: 'min',
    read: (r) => num(r.latency.ttftMs?.p95),
    affectedBy: CLIENT_TIMED,
  },
  {
    id: 'itlP50Ms',
    label: 'ITL p50',
    unit: 'ms',
    direction: 'min',
    read: (r) => num(r.latency.itlMs?.p50),
    affectedBy: CLIENT_TIMED,
  },
  {
    id: 'itlP95Ms',
    label: 'ITL p95',
    unit: 'ms',
    direction: 'min',
    read: (r) => num(r.latency.itlMs?.p95),
    affectedBy: CLIENT_TIMED,
  },
  // TPOT: results written before it existed have none, so these show only where measured.
  {
    id: 'tpotP50Ms',
    label: 'TPOT p50',
    unit: 'ms',
    direction: 'min',
    read: (r) => num(r.latency.tpotMs?.p50),
    affectedBy: CLIENT_TIMED,
    optional: true,
  },
  {
    id: 'tpotP95Ms',
    label: 'TPOT p95',
    unit: 'ms',
    direction: 'min',
    read: (r) => num(r.latency.tpotMs?.p95),
    affectedBy: CLIENT_TIMED,
    optional: true,
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
  {
    id: 'steadyStateEnergyPerOutputTokenJ',
    label: 'Steady-state energy per output token',
    unit: 'J/token',
    direction: 'min',
    read: readSteadyStateEnergyPerOutputTokenJ,
    optional: true,
  },
  {
    id: 'goodputShare',
    label: 'Goodput share',
    unit: 'fraction',
    direction: 'max',
    read: readGoodputShare,
    optional: true,
  },
  // Open loop: latency a user arriving on schedule sees (client lateness and slot waits included).
  {
    id: 'ttftFromScheduledP50Ms',
    label: 'TTFT from schedule p50',
    unit: 'ms',
    direction: 'min',
    read: (r) => num(r.latency.ttftFromScheduledMs?.p50),
    optional: true,
  },
  {
    id: 'ttftFromScheduledP95Ms',
    label: 'TTFT from schedule p95',
    unit: 'ms',
    direction: 'min',
    read: (r) => num(r.latency.ttftFromScheduledMs?.p95),
    optional: true,
  },
  {
    id: 'clientLagP99Ms',
    label: 'Client lag p99',
    unit: 'ms',
    direction: 'min',
    read: (r) => num(readDispatchSummary(r.extra)?.clientLagMs?.p99),
    optional: true,
  },
];

/**
 * The warnings among `codes` that affect metric `id`, in the order the metric lists them.
 *
 * @example
 * warningsAffecting('ttftP50Ms', ['client-saturated', 'throttling']); // ['client-saturated']
 */
export function warningsAffecting(id: MetricId, codes: Iterable<string>): KnownWarningCode[] {
  const present = new Set(codes);
  return (getMetric(id).affectedBy ?? []).filter((code) => present.has(code));
}

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

/**
 * The metrics worth showing for these configs: every non-optional metric, and an optional one
 * only when at least one config measured it.
 *
 * @example
 * metricsFor(summaries).map((m) => m.id); // no 'goodputShare' for a llamacpp-only study
 */
export function metricsFor(
  summaries: readonly { metrics: Record<MetricId, { n: number }> }[],
): MetricDefinition[] {
  return METRICS.filter((m) => !m.optional || summaries.some((s) => s.metrics[m.id].n > 0));
}

/** True when `id` names a metric (for validating user input). */
export function isMetricId(id: string): id is MetricId {
  return (METRIC_IDS as readonly string[]).includes(id);
}
