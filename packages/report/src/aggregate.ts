import { coefficientOfVariation, fnv1a, mean, mulberry32, sampleStd } from '@llem/domain';
import type { LoadedStudy, RunRecord } from './load';
import { METRICS, type MetricContext, type MetricId } from './metrics';
import {
  type BootstrapOptions,
  bootstrapMeanCI,
  type ConfidenceInterval,
  DEFAULT_BOOTSTRAP_SEED,
} from './stats';

/** Statistics of one metric of one config across its completed cycles. */
export interface MetricSummary {
  metric: MetricId;
  /** Number of completed runs that measured this metric. */
  n: number;
  mean: number | null;
  std: number | null;
  cv: number | null;
  /** Bootstrap 95% CI of the mean (percentile method); `null` with fewer than 2 values. */
  ci: ConfidenceInterval | null;
  min: number | null;
  max: number | null;
  /** The per-run values, in schedule order. */
  values: number[];
}

/** One config's aggregate over its cycles. */
export interface ConfigSummary {
  configHash: string;
  label: string;
  runs: number;
  completed: number;
  failed: number;
  /** Pending or running (an interrupted study). */
  unfinished: number;
  metrics: Record<MetricId, MetricSummary>;
  /**
   * Warning code → how many of the completed runs carry it, so a table can mark the figures a
   * warning affects (`MetricDefinition.affectedBy`) next to their values.
   */
  warningRuns: Record<string, number>;
}

/** How to aggregate: the bootstrap, and the context some metrics need (carbon, cost). */
export interface AggregateOptions extends BootstrapOptions, MetricContext {}

/**
 * Summarise values of one metric.
 *
 * @example
 * summariseValues('outputTokensPerS', [10, 12, 14], { seed: 1 }).mean; // 12
 */
export function summariseValues(
  metric: MetricId,
  values: number[],
  options: BootstrapOptions = {},
): MetricSummary {
  return {
    metric,
    n: values.length,
    mean: mean(values),
    std: sampleStd(values),
    cv: coefficientOfVariation(values),
    ci: bootstrapMeanCI(values, options),
    min: values.length ? Math.min(...values) : null,
    max: values.length ? Math.max(...values) : null,
    values,
  };
}

/**
 * Aggregate runs per config: mean, sample std, CV and a seeded bootstrap CI across cycles for
 * every metric in {@link METRICS}. Only completed runs with a valid result count; failed,
 * pending and unreadable runs are counted but left out of the statistics. With `prices`, the
 * carbon and cost per 1M output tokens are aggregated too (else they have no values).
 *
 * @example
 * const summaries = aggregateRuns(study.runs, { seed: 7 });
 * summaries[0].metrics.energyPerOutputTokenJ.ci; // { low, high } or null
 */
export function aggregateRuns(
  runs: readonly RunRecord[],
  options: AggregateOptions = {},
): ConfigSummary[] {
  const groups = new Map<string, RunRecord[]>();
  for (const run of runs) {
    const g = groups.get(run.configHash);
    if (g) g.push(run);
    else groups.set(run.configHash, [run]);
  }
  const seed = options.seed ?? DEFAULT_BOOTSTRAP_SEED;
  const summaries: ConfigSummary[] = [];
  for (const [configHash, group] of groups) {
    const usable = group.filter((r) => r.status === 'completed' && r.result !== null);
    const metrics = {} as Record<MetricId, MetricSummary>;
    const { prices = null, ...bootstrap } = options;
    for (const def of METRICS) {
      const values: number[] = [];
      for (const r of usable) {
        const v = def.read(r.result!, { prices });
        if (v !== null) values.push(v);
      }
      // A metric that scales another draws the same resamples: its interval is the other's × the factor.
      const stream = `${configHash}:${def.scales ?? def.id}`;
      metrics[def.id] = summariseValues(def.id, values, {
        ...bootstrap,
        // Each (config, metric) has its own bootstrap stream derived from the seed, so adding a
        // config to a study never changes another config's intervals; a metric that scales
        // another draws the other's resamples.
        random: bootstrap.random ?? mulberry32((seed ^ fnv1a(stream)) >>> 0),
      });
    }
    const warningRuns: Record<string, number> = {};
    for (const r of usable) {
      for (const code of new Set(r.result!.warnings.map((w) => w.code))) {
        warningRuns[code] = (warningRuns[code] ?? 0) + 1;
      }
    }
    summaries.push({
      configHash,
      label: group[0]!.label,
      runs: group.length,
      completed: group.filter((r) => r.status === 'completed').length,
      failed: group.filter((r) => r.status === 'failed').length,
      unfinished: group.filter((r) => r.status === 'pending' || r.status === 'running').length,
      metrics,
      warningRuns,
    });
  }
  return summaries;
}

/**
 * {@link aggregateRuns} over a loaded study.
 *
 * @example
 * const summaries = aggregateStudy(await loadStudy(dir));
 */
export function aggregateStudy(
  study: LoadedStudy,
  options: AggregateOptions = {},
): ConfigSummary[] {
  return aggregateRuns(study.runs, options);
}

/** Below this many values (completed cycles) a percentile-bootstrap interval under-covers noticeably. */
export const SMALL_SAMPLE_CYCLES = 5;

/** The number of values behind a config's intervals: the largest `n` of a metric that has one. */
function intervalSize(summary: ConfigSummary): number {
  let n = 0;
  for (const m of Object.values(summary.metrics)) if (m.ci !== null && m.n > n) n = m.n;
  return n;
}

/**
 * A caution for tables and reports when some config's intervals rest on fewer than
 * {@link SMALL_SAMPLE_CYCLES} values, else `null`. With 2 (and almost always with 3) values the
 * percentile bootstrap interval is just [min, max]; it under-covers for any n below about 5.
 * Counted from the values behind the intervals, so a completed run whose result could not be
 * read does not count, and a config without any interval (0–1 values) is not mentioned.
 *
 * @example
 * smallSampleNote(summaries); // 'Intervals from only 2–4 completed cycles (3 of 4 configs): …' or null
 */
export function smallSampleNote(summaries: readonly ConfigSummary[]): string | null {
  const small = summaries.map(intervalSize).filter((n) => n >= 2 && n < SMALL_SAMPLE_CYCLES);
  if (small.length === 0) return null;
  const lo = Math.min(...small);
  const hi = Math.max(...small);
  const range = lo === hi ? `${lo}` : `${lo}–${hi}`;
  const which =
    summaries.length === 1
      ? ''
      : small.length === summaries.length
        ? ` (every config)`
        : ` (${small.length} of ${summaries.length} configs)`;
  return `Intervals from only ${range} completed cycles${which} are optimistic (with 2–3 they are almost always just [min, max]): treat differences as hints and run more cycles (execution.cycles) before claiming one.`;
}
