import { aggregateRuns, type ConfigSummary, SMALL_SAMPLE_CYCLES } from './aggregate';
import { ReportError } from './errors';
import type { LoadedStudy } from './load';
import { type Direction, METRICS, type MetricId } from './metrics';
import { type BootstrapOptions, bootstrapRatioCI, type ConfidenceInterval } from './stats';

/** How B compares with A on one metric. */
export interface MetricComparison {
  metric: MetricId;
  unit: string;
  direction: Direction;
  a: { n: number; mean: number | null };
  b: { n: number; mean: number | null };
  /** `mean(B) / mean(A)`; `null` when either is unknown or A's mean is 0. */
  ratio: number | null;
  /** Bootstrap 95% CI of the ratio (A and B resampled independently). */
  ci: ConfidenceInterval | null;
  /**
   * `better`/`worse` (for B, by the metric's direction) only when the CI excludes 1;
   * `similar` when it includes 1; `too-few-cycles` when a side has fewer than
   * {@link SMALL_SAMPLE_CYCLES} values (the bootstrap interval is then too narrow to decide on);
   * `unknown` without a CI (fewer than 2 runs on a side).
   */
  verdict: 'better' | 'worse' | 'similar' | 'too-few-cycles' | 'unknown';
}

export interface ConfigComparison {
  a: { study: string; configHash: string; label: string };
  b: { study: string; configHash: string; label: string };
  metrics: MetricComparison[];
}

export interface StudyComparison {
  /** Pairs of configs with the same measurement-config hash (or the only config of each). */
  pairs: ConfigComparison[];
  /** Configs present in only one of the two studies. */
  onlyInA: string[];
  onlyInB: string[];
}

function verdict(
  ci: ConfidenceInterval | null,
  direction: Direction,
  fewestValues: number,
): MetricComparison['verdict'] {
  if (!ci) return 'unknown';
  // With 2–4 values a side the percentile bootstrap's interval is optimistic (too narrow): it
  // would call noise a difference. Report the ratio and its interval, but decide nothing.
  if (fewestValues < SMALL_SAMPLE_CYCLES) return 'too-few-cycles';
  if (ci.low <= 1 && ci.high >= 1) return 'similar';
  const higher = ci.low > 1;
  return higher === (direction === 'max') ? 'better' : 'worse';
}

/**
 * Compare two aggregated configs metric by metric: the ratio B/A of their means with a bootstrap
 * CI of that ratio. The seed is fixed, so the same data always give the same interval.
 *
 * @example
 * const rows = compareSummaries(summaryA, summaryB);
 * rows.find((r) => r.metric === 'energyPerOutputTokenJ')?.ratio; // 0.8 → B uses 20% less
 */
export function compareSummaries(
  a: ConfigSummary,
  b: ConfigSummary,
  options: BootstrapOptions = {},
): MetricComparison[] {
  // An optional metric neither config measured (a llamacpp pair has no goodput) is no row at all.
  const defs = METRICS.filter((d) => !d.optional || a.metrics[d.id].n > 0 || b.metrics[d.id].n > 0);
  return defs.map((def) => {
    const ma = a.metrics[def.id];
    const mb = b.metrics[def.id];
    const ratio = ma.mean !== null && mb.mean !== null && ma.mean !== 0 ? mb.mean / ma.mean : null;
    const ci = ratio === null ? null : bootstrapRatioCI(ma.values, mb.values, options);
    return {
      metric: def.id,
      unit: def.unit,
      direction: def.direction,
      a: { n: ma.n, mean: ma.mean },
      b: { n: mb.n, mean: mb.mean },
      ratio,
      ci,
      verdict: verdict(ci, def.direction, Math.min(ma.n, mb.n)),
    };
  });
}

/**
 * Find a config in a study by exact label, by configHash (or a unique prefix of at least 4
 * characters), or by its 1-based position in the study's config list.
 */
export function findConfig(study: LoadedStudy, selector: string): ConfigSummary {
  const summaries = aggregateRuns(study.runs);
  const byLabel = summaries.filter((s) => s.label === selector);
  if (byLabel.length === 1) return byLabel[0]!;
  if (/^[0-9a-f]{4,16}$/.test(selector)) {
    const byHash = summaries.filter((s) => s.configHash.startsWith(selector));
    if (byHash.length === 1) return byHash[0]!;
  }
  if (/^\d+$/.test(selector)) {
    const s = summaries[Number(selector) - 1];
    if (s) return s;
  }
  const allowed = summaries.map((s, i) => `${i + 1}. ${s.label} (${s.configHash})`).join('; ');
  throw new ReportError(
    'CONFIG_NOT_FOUND',
    `config "${selector}" not found in ${study.dir} (give a label, a config hash prefix or a number; allowed: ${allowed})`,
  );
}

/**
 * Compare two configs of one study (B relative to A).
 *
 * @example
 * compareConfigs(study, 'batch_size=64', 'batch_size=256');
 */
export function compareConfigs(
  study: LoadedStudy,
  selectorA: string,
  selectorB: string,
  options: BootstrapOptions = {},
): ConfigComparison {
  const a = findConfig(study, selectorA);
  const b = findConfig(study, selectorB);
  return {
    a: { study: study.dir, configHash: a.configHash, label: a.label },
    b: { study: study.dir, configHash: b.configHash, label: b.label },
    metrics: compareSummaries(a, b, options),
  };
}

/**
 * Compare two studies (B relative to A): configs are paired by measurement-config hash, so the
 * same measurement is compared across machines, drivers or llem versions. When the studies share
 * no config but each has exactly one, those two are compared.
 *
 * @example
 * const { pairs } = compareStudies(await loadStudy(before), await loadStudy(after));
 */
export function compareStudies(
  a: LoadedStudy,
  b: LoadedStudy,
  options: BootstrapOptions = {},
): StudyComparison {
  const sa = aggregateRuns(a.runs);
  const sb = aggregateRuns(b.runs);
  const inB = new Map(sb.map((s) => [s.configHash, s]));
  const pairs: ConfigComparison[] = [];
  for (const x of sa) {
    const y = inB.get(x.configHash);
    if (y) pairs.push(pair(a.dir, x, b.dir, y, options));
  }
  if (pairs.length === 0 && sa.length === 1 && sb.length === 1) {
    pairs.push(pair(a.dir, sa[0]!, b.dir, sb[0]!, options));
  }
  if (pairs.length === 0) {
    throw new ReportError(
      'NOTHING_TO_COMPARE',
      `${a.dir} and ${b.dir} share no config (different measurement-config hashes); compare two configs of one study with --in STUDY_DIR, or studies with a config in common`,
    );
  }
  const paired = new Set(pairs.flatMap((p) => [p.a.configHash, p.b.configHash]));
  return {
    pairs,
    onlyInA: sa.filter((s) => !paired.has(s.configHash)).map((s) => s.label),
    onlyInB: sb.filter((s) => !paired.has(s.configHash)).map((s) => s.label),
  };
}

function pair(
  dirA: string,
  x: ConfigSummary,
  dirB: string,
  y: ConfigSummary,
  options: BootstrapOptions,
): ConfigComparison {
  return {
    a: { study: dirA, configHash: x.configHash, label: x.label },
    b: { study: dirB, configHash: y.configHash, label: y.label },
    metrics: compareSummaries(x, y, options),
  };
}
