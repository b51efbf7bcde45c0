import type { ConfigSummary } from './aggregate';
import { ReportError } from './errors';
import { type Direction, getMetric, isMetricId, METRIC_IDS, type MetricId } from './metrics';
import type { ConfidenceInterval } from './stats';

/** One axis of a Pareto analysis: a metric and which way is better. */
export interface ParetoAxis {
  metric: MetricId;
  /** Defaults to the metric's own direction (e.g. `min` for J/token, `max` for tokens/s). */
  direction?: Direction;
}

export interface ParetoPoint {
  configHash: string;
  label: string;
  /** Config means of the two metrics. */
  x: number;
  y: number;
  /** The bootstrap 95% CI of each mean; `null` with fewer than two cycles. */
  xInterval: ConfidenceInterval | null;
  yInterval: ConfidenceInterval | null;
  onFrontier: boolean;
}

export interface ParetoResult {
  x: Required<ParetoAxis>;
  y: Required<ParetoAxis>;
  /** Configs with both means known; frontier points flagged. */
  points: ParetoPoint[];
  /** Configs left out because one of the two metrics was not measured. */
  excluded: { configHash: string; label: string }[];
}

/** The default trade-off: energy per output token (lower is better) vs output tokens/s (higher). */
export const DEFAULT_PARETO_AXES: readonly [ParetoAxis, ParetoAxis] = [
  { metric: 'energyPerOutputTokenJ' },
  { metric: 'outputTokensPerS' },
];

const better = (a: number, b: number, d: Direction): boolean => (d === 'min' ? a < b : a > b);
const atLeast = (a: number, b: number, d: Direction): boolean => (d === 'min' ? a <= b : a >= b);

/**
 * Indices of the non-dominated points. A point is dominated when another is at least as good on
 * both axes and strictly better on one. Ties (identical points) are all kept.
 *
 * @example
 * paretoIndices([[1, 10], [2, 20], [3, 5]], ['min', 'max']); // [0, 1]
 */
export function paretoIndices(
  points: readonly (readonly [number, number])[],
  directions: readonly [Direction, Direction],
): number[] {
  const [dx, dy] = directions;
  const out: number[] = [];
  points.forEach(([x, y], i) => {
    const dominated = points.some(
      ([ox, oy], j) =>
        j !== i &&
        atLeast(ox, x, dx) &&
        atLeast(oy, y, dy) &&
        (better(ox, x, dx) || better(oy, y, dy)),
    );
    if (!dominated) out.push(i);
  });
  return out;
}

/**
 * Parse an axis written as `metric` or `metric:min|max` (CLI flags, options).
 *
 * @example
 * parseParetoAxis('ttftP95Ms:min'); // { metric: 'ttftP95Ms', direction: 'min' }
 */
export function parseParetoAxis(text: string): ParetoAxis {
  const [metric = '', direction] = text.split(':');
  if (!isMetricId(metric)) {
    throw new ReportError(
      'INVALID_OPTION',
      `pareto axis "${text}": unknown metric "${metric}" (allowed: ${METRIC_IDS.join(', ')})`,
    );
  }
  if (direction !== undefined && direction !== 'min' && direction !== 'max') {
    throw new ReportError(
      'INVALID_OPTION',
      `pareto axis "${text}": unknown direction "${direction}" (allowed: min, max)`,
    );
  }
  return direction ? { metric, direction } : { metric };
}

/**
 * The Pareto frontier over configs, on the config means of two metrics. Each point carries the
 * 95% interval of both means, so a reader can see which differences are within the noise.
 *
 * @example
 * const { points } = paretoFrontier(summaries); // energy/token vs tokens/s
 * points.filter((p) => p.onFrontier).map((p) => p.label);
 */
export function paretoFrontier(
  summaries: readonly ConfigSummary[],
  axes: readonly [ParetoAxis, ParetoAxis] = DEFAULT_PARETO_AXES,
): ParetoResult {
  const [ax, ay] = axes;
  const x = { metric: ax.metric, direction: ax.direction ?? getMetric(ax.metric).direction };
  const y = { metric: ay.metric, direction: ay.direction ?? getMetric(ay.metric).direction };
  const points: ParetoPoint[] = [];
  const excluded: ParetoResult['excluded'] = [];
  for (const s of summaries) {
    const mx = s.metrics[x.metric];
    const my = s.metrics[y.metric];
    if (mx.mean === null || my.mean === null) {
      excluded.push({ configHash: s.configHash, label: s.label });
      continue;
    }
    points.push({
      configHash: s.configHash,
      label: s.label,
      x: mx.mean,
      y: my.mean,
      xInterval: mx.ci,
      yInterval: my.ci,
      onFrontier: false,
    });
  }
  for (const i of paretoIndices(
    points.map((p) => [p.x, p.y] as const),
    [x.direction, y.direction],
  )) {
    points[i]!.onFrontier = true;
  }
  return { x, y, points, excluded };
}
