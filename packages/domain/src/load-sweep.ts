import { mean } from './stats';

/**
 * `openai.load: sweep`, the pure part: which rates to measure once the synchronous and saturation
 * points are known, and whether an open-loop point over-saturated the server. The harness
 * (`@llem/measure`) runs the points; the report reads what it recorded.
 */

/** Why a sweep plans no rate points, or `null` when it can. */
export function sweepRatesUnavailable(
  syncRate: number | null,
  saturationRate: number | null,
): string | null {
  if (syncRate === null || !(syncRate > 0))
    return 'the synchronous point completed no request, so there is no rate to start from';
  if (saturationRate === null || !(saturationRate > 0))
    return 'the saturation point completed no request, so there is no rate to go up to';
  return null;
}

/**
 * The open-loop rates of a sweep, as GuideLLM's sweep spaces them: `points − 2` rates linearly
 * spaced between the synchronous point's achieved request rate and the saturation point's,
 * both ends excluded (they were just measured), in ascending order. When the saturation rate is
 * not above the synchronous one (the server does not gain from concurrency) the rates still lie
 * between the two, lowest first. Empty when either rate is unknown or not positive (see
 * {@link sweepRatesUnavailable}) or when `points` ≤ 2.
 *
 * @example
 * sweepRates(2, 10, 6); // [3.6, 5.2, 6.8, 8.4]
 */
export function sweepRates(
  syncRate: number | null,
  saturationRate: number | null,
  points: number,
): number[] {
  if (sweepRatesUnavailable(syncRate, saturationRate) !== null) return [];
  const k = Math.max(0, Math.floor(points) - 2);
  const lo = Math.min(syncRate as number, saturationRate as number);
  const hi = Math.max(syncRate as number, saturationRate as number);
  return Array.from({ length: k }, (_, i) => lo + ((hi - lo) * (i + 1)) / (k + 1));
}

/**
 * The warning a sweep gets when its saturation point completed fewer requests per second than
 * its synchronous point: the server slows down under concurrency (contention, thrashing, a
 * server that serialises requests badly), so "saturation" is not its best throughput and the
 * rates in between lie below what one request at a time achieved. `null` otherwise, or when a
 * rate is unknown.
 *
 * @example
 * saturationBelowSync(4.36, 0.81, 16)?.code; // 'saturation-below-sync'
 */
export function saturationBelowSync(
  syncRate: number | null,
  saturationRate: number | null,
  saturationConcurrency: number,
): { code: 'saturation-below-sync'; message: string } | null {
  if (syncRate === null || saturationRate === null || !(saturationRate < syncRate)) return null;
  const r = (x: number) => x.toPrecision(3);
  return {
    code: 'saturation-below-sync',
    message: `the saturation point (${saturationConcurrency} in flight) completed ${r(saturationRate)} req/s, fewer than the synchronous point's ${r(syncRate)}: the server slows down under concurrency, so the open-loop rates were spaced below the synchronous rate (try a lower openai.max_concurrency)`,
  };
}

/** A least-squares line through (x, y): its slope, the slope's t statistic and relative growth. */
export interface LinearTrend {
  /** dy/dx. */
  slope: number;
  /** slope ÷ its standard error; `null` with fewer than 3 points or no spread in x. */
  t: number | null;
  /** slope × (x span) ÷ mean(y): how much y grew over the span, relative to its level. */
  relativeGrowth: number | null;
}

/**
 * Ordinary least squares of y on x. A perfect fit (zero residuals) with a non-zero slope has an
 * infinite t, reported as ±`Number.MAX_VALUE` so it stays JSON.
 *
 * @example
 * linearTrend([0, 1, 2, 3], [1, 2, 3, 4.1]).slope; // ≈ 1.03
 */
export function linearTrend(xs: readonly number[], ys: readonly number[]): LinearTrend {
  const n = Math.min(xs.length, ys.length);
  const mx = mean(xs.slice(0, n)) ?? 0;
  const my = mean(ys.slice(0, n)) ?? 0;
  let sxx = 0;
  let sxy = 0;
  for (let i = 0; i < n; i++) {
    sxx += (xs[i]! - mx) ** 2;
    sxy += (xs[i]! - mx) * (ys[i]! - my);
  }
  if (n < 2 || sxx === 0) return { slope: 0, t: null, relativeGrowth: null };
  const slope = sxy / sxx;
  let sse = 0;
  for (let i = 0; i < n; i++) sse += (ys[i]! - (my + slope * (xs[i]! - mx))) ** 2;
  const span = Math.max(...xs.slice(0, n)) - Math.min(...xs.slice(0, n));
  const relativeGrowth = my !== 0 ? (slope * span) / Math.abs(my) : null;
  if (n < 3) return { slope, t: null, relativeGrowth };
  const se = Math.sqrt(sse / (n - 2) / sxx);
  const t = se > 0 ? slope / se : slope === 0 ? 0 : Math.sign(slope) * Number.MAX_VALUE;
  return { slope, t, relativeGrowth };
}

/** What the over-saturation check reads of a request of an open-loop point (ms from any origin). */
export interface SaturationSample {
  /** When it was sent. */
  sentMs: number;
  /** Its time to first token; `null` when none came (left out of the TTFT trend). */
  ttftMs: number | null;
  /** When it ended. */
  endMs: number;
}

/** When a trend counts as "up significantly": both thresholds must be passed. */
export const OVER_SATURATION_RULE = {
  /** One-sided t above this (p < 0.005 for 30+ requests). */
  minT: 3,
  /** Growth over the point of at least a quarter of its mean level. */
  minRelativeGrowth: 0.25,
  /** At least this many requests after the ramp-up are needed to judge. */
  minRequests: 8,
} as const;

export interface OverSaturationCheck {
  detected: boolean;
  /** TTFT (ms) against send time (s): slope in ms per s of sending. */
  ttftMs: { slopePerS: number; t: number | null; relativeGrowth: number | null } | null;
  /** Requests in flight when each was sent against send time (s): slope in requests per s. */
  inFlight: { slopePerS: number; t: number | null; relativeGrowth: number | null } | null;
  reason: string | null;
}

/**
 * Is an open-loop point over-saturated? The server keeps up with a rate when its queue is
 * stationary; past its capacity the queue grows for as long as requests keep coming, so both the
 * TTFT and the requests in flight rise with send time. Requests sent during the ramp-up (before
 * the first send + the median E2E, at most half the point, while the in-flight count fills up from 0 even at a
 * sustainable rate) are left out; each series is fitted by least squares against send time, and
 * the point is over-saturated when both slopes are significantly positive and grow by a real
 * amount over the point ({@link OVER_SATURATION_RULE}).
 *
 * @example
 * overSaturation(samples).detected; // true when TTFT and in-flight both climb
 */
export function overSaturation(samples: readonly SaturationSample[]): OverSaturationCheck {
  const sorted = [...samples].sort((a, b) => a.sentMs - b.sentMs);
  const e2e = sorted.map((s) => s.endMs - s.sentMs).sort((a, b) => a - b);
  const medianE2e = e2e.length > 0 ? e2e[Math.floor((e2e.length - 1) / 2)]! : 0;
  const first = sorted[0]?.sentMs ?? 0;
  const span = (sorted[sorted.length - 1]?.sentMs ?? 0) - first;
  // Never more than half the point: an over-saturated point's E2E grows with it.
  const judged = sorted.filter((s) => s.sentMs >= first + Math.min(medianE2e, span / 2));
  const rule = OVER_SATURATION_RULE;
  if (judged.length < rule.minRequests)
    return {
      detected: false,
      ttftMs: null,
      inFlight: null,
      reason: null,
    };
  // In flight when each request was sent: every request of the point sent before and not ended.
  const inFlightAt = judged.map(
    (s) => sorted.filter((o) => o.sentMs <= s.sentMs && o.endMs > s.sentMs).length,
  );
  const withTtft = judged.filter((s) => s.ttftMs !== null);
  const toTrend = (t: LinearTrend) => ({
    slopePerS: t.slope * 1000,
    t: t.t,
    relativeGrowth: t.relativeGrowth,
  });
  const ttft = toTrend(
    linearTrend(
      withTtft.map((s) => s.sentMs),
      withTtft.map((s) => s.ttftMs as number),
    ),
  );
  const flight = toTrend(
    linearTrend(
      judged.map((s) => s.sentMs),
      inFlightAt,
    ),
  );
  const up = (t: { t: number | null; relativeGrowth: number | null }) =>
    t.t !== null &&
    t.t > rule.minT &&
    t.relativeGrowth !== null &&
    t.relativeGrowth >= rule.minRelativeGrowth;
  const detected = up(ttft) && up(flight);
  const fmt = (x: number | null) => (x === null ? '?' : Math.abs(x) >= 1e6 ? '∞' : x.toFixed(1));
  return {
    detected,
    ttftMs: ttft,
    inFlight: flight,
    reason: detected
      ? `over-saturated: TTFT rose ${ttft.slopePerS.toFixed(1)} ms per s (t ${fmt(ttft.t)}, +${Math.round((ttft.relativeGrowth ?? 0) * 100)}% over the point) and requests in flight ${flight.slopePerS.toFixed(2)} per s (t ${fmt(flight.t)}, +${Math.round((flight.relativeGrowth ?? 0) * 100)}%)`
      : null,
  };
}
