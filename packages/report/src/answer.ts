import {
  fnv1a,
  type LatencyStats,
  mean,
  mulberry32,
  type RunLatency,
  SLO_PERCENTILES,
  type SloPercentile,
} from '@llem/domain';
import type { LoadedStudy, RunRecord } from './load';
import { type MetricSource, warningsAffecting } from './metrics';
import { carbonGPer1MTokens, costPer1MTokens, type EnergyPrices } from './prices';
import {
  type BootstrapOptions,
  bootstrapMeanCI,
  bootstrapRatioCI,
  type ConfidenceInterval,
  DEFAULT_BOOTSTRAP_SEED,
} from './stats';

/**
 * The answer a user runs a study for: which configuration (and, in a load sweep, which load
 * point) has the lowest energy per output token while meeting its latency targets, with its
 * interval and the runner-up; and when none meets them, which target is missed and by how much.
 */

/** The latency targets of `openai.slo`, by their config names. */
export const SLO_TARGETS = ['ttft_ms', 'itl_ms', 'e2e_ms', 'tpot_ms'] as const;
export type SloTarget = (typeof SLO_TARGETS)[number];

/** A config's SLO as the answer reads it: the targets that are set and the percentile. */
export interface Slo {
  percentile: SloPercentile;
  targets: Partial<Record<SloTarget, number>>;
}

/**
 * What each target is checked against. TTFT and E2E count from the scheduled send time where a
 * run has a schedule (open loop: what a user arriving on schedule waits), else from the send.
 */
const TARGETS: Record<
  SloTarget,
  { label: string; read: (latency: RunLatency) => LatencyStats | null | undefined }
> = {
  ttft_ms: { label: 'TTFT', read: (l) => l.ttftFromScheduledMs ?? l.ttftMs },
  itl_ms: { label: 'ITL', read: (l) => l.itlMs },
  e2e_ms: { label: 'E2E', read: (l) => l.e2eFromScheduledMs ?? l.e2eMs },
  tpot_ms: { label: 'TPOT', read: (l) => l.tpotMs },
};

/** How "meets" is judged, in words (`results show`, `report.html` and the JSON carry it). */
export const ANSWER_RULE =
  'A configuration (or load point) meets its SLOs when, for every target in its openai.slo, the mean over its completed cycles of the run’s chosen percentile of that latency (slo.percentile: 50, 95 or 99; default 50) is at or below the target; TTFT and E2E count from the scheduled send time in open loop. A load point of a sweep is judged on its own (the same point index over cycles); one the sweep found over-saturated never counts as meeting them. Among those that meet them, the lowest mean energy per output token wins. Another is tied with the winner when the bootstrap 95% interval of the ratio of their J/token includes 1: the data do not separate them.';

/** A mean over cycles with its bootstrap 95% interval (`null` with one cycle). */
export interface Estimate {
  mean: number;
  ci: ConfidenceInterval | null;
  /** Cycles behind it. */
  n: number;
  values: number[];
}

/** One target of one candidate, checked. */
export interface SloCheck {
  target: SloTarget;
  /** e.g. `TTFT p95`. */
  label: string;
  targetMs: number;
  /** The percentile's mean over cycles; `null` when no run measured it. */
  value: Estimate | null;
  /** `null`: not measured, so not judged. */
  met: boolean | null;
  /** Met by the mean, but its 95% interval reaches above the target. */
  marginal: boolean;
  /** How far above the target the mean is (ms), when missed. */
  excessMs: number | null;
  /** Mean ÷ target (above 1: missed). */
  ratio: number | null;
}

/** The load point a candidate stands for, in a sweep (`result.points`). */
export interface AnswerPoint {
  index: number;
  kind: string;
  /** Mean achieved requests/s over cycles. */
  achievedRate: number | null;
  /** The open-loop rate asked for, mean over cycles; `null` for closed-loop points. */
  targetRate: number | null;
}

/** One configuration (or load point) as the answer sees it. */
export interface AnswerCandidate {
  configHash: string;
  /** The config's label, with the load point when there is one. */
  label: string;
  configLabel: string;
  point: AnswerPoint | null;
  energyPerOutputTokenJ: Estimate | null;
  /** With a carbon intensity: the energy estimate × the factor. */
  carbonGPer1MOutputTokens: Estimate | null;
  /** With a price, in the prices' currency. */
  costPer1MOutputTokens: Estimate | null;
  slo: Slo;
  checks: SloCheck[];
  /** Every target met; `false`: one missed; `null`: one not measured (and none missed). */
  meets: boolean | null;
  /**
   * A load point the sweep found over-saturated (in any cycle): its queue grew for as long as the
   * load lasted, so it is never the answer, whatever its latencies were.
   */
  overSaturated: boolean;
  /** Warning codes on its runs that affect the latencies judged (e.g. `client-saturated`). */
  warnings: string[];
  /** Relative to the winner (meeting candidates other than the winner). */
  vsBest: { ratio: number; ci: ConfidenceInterval | null; tied: boolean | null } | null;
}

export interface StudyAnswer {
  /**
   * `met`: some candidate meets its SLOs (`best` is the answer); `none-met`; `no-energy`: energy
   * per token was measured for none that meets them (or none at all, with nothing missed);
   * `no-results`: no completed run.
   */
  status: 'met' | 'none-met' | 'no-energy' | 'no-results';
  rule: string;
  /** True when no candidate has any SLO target: the answer is the lowest J/token overall. */
  noSlo: boolean;
  best: AnswerCandidate | null;
  runnerUp: AnswerCandidate | null;
  /** Meeting candidates whose J/token the data do not separate from the winner's. */
  tiedWithBest: AnswerCandidate[];
  /** None met: the candidate whose worst miss is smallest (by mean ÷ target). */
  closest: AnswerCandidate | null;
  /** None met: per target, the best value any candidate reached and by how much it misses. */
  bestPerTarget: {
    target: SloTarget;
    label: string;
    candidate: string;
    valueMs: number;
    targetMs: number;
    excessMs: number;
    ratio: number;
  }[];
  /** Every candidate, by mean J/token (those without energy last). */
  candidates: AnswerCandidate[];
  prices: EnergyPrices | null;
}

export interface AnswerOptions extends BootstrapOptions {
  prices?: EnergyPrices | null;
}

const num = (v: unknown): number | undefined =>
  typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : undefined;

/**
 * The SLO of a run's effective config (`config.openai.slo`), as the answer reads it; no targets
 * for other engines or without one.
 *
 * @example
 * sloOf({ engine: 'openai', openai: { slo: { ttft_ms: 500, percentile: 95 } } });
 * // { percentile: 95, targets: { ttft_ms: 500 } }
 */
export function sloOf(config: unknown): Slo {
  const openai = (config as { openai?: { slo?: Record<string, unknown> } } | null)?.openai;
  const slo = openai?.slo ?? {};
  const targets: Partial<Record<SloTarget, number>> = {};
  for (const t of SLO_TARGETS) {
    const v = num(slo[t]);
    if (v !== undefined) targets[t] = v;
  }
  const p = slo.percentile;
  const percentile = (SLO_PERCENTILES as readonly unknown[]).includes(p)
    ? (p as SloPercentile)
    : 50;
  return { percentile, targets };
}

/** One measured unit: a config, or one load point of a config's sweep, over its cycles. */
interface Unit {
  key: string;
  configHash: string;
  configLabel: string;
  point: { index: number; kind: string } | null;
  sources: {
    source: MetricSource;
    warnings: readonly string[];
    config: unknown;
    /** A sweep point's open-loop target rate; `null` otherwise. */
    targetRate: number | null;
    /** A sweep point the sweep found over-saturated. */
    overSaturated: boolean;
  }[];
}

/**
 * The completed runs grouped into units in schedule order: one per config, or, for a load sweep
 * (`result.points`), one per config and point index (the same point of every cycle).
 */
function unitsOf(runs: readonly RunRecord[]): Unit[] {
  const units = new Map<string, Unit>();
  const add = (
    key: string,
    run: RunRecord,
    point: Unit['point'],
    source: Unit['sources'][number],
  ): void => {
    let unit = units.get(key);
    if (!unit) {
      unit = { key, configHash: run.configHash, configLabel: run.label, point, sources: [] };
      units.set(key, unit);
    }
    unit.sources.push(source);
  };
  // A sweep stops raising the rate at its first over-saturated point. The points above it that
  // another cycle of the same config measured lie at loads the server could not sustain in that
  // cycle: they count as over-saturated too, so the answer never rests on the one cycle that got
  // past a stop.
  const firstStop = new Map<string, number>();
  for (const run of runs) {
    if (run.status !== 'completed' || run.result === null) continue;
    for (const p of run.result.points ?? [])
      if (p.overSaturation?.detected === true)
        firstStop.set(run.configHash, Math.min(firstStop.get(run.configHash) ?? p.index, p.index));
  }
  for (const run of runs) {
    if (run.status !== 'completed' || run.result === null) continue;
    const result = run.result;
    if (result.points && result.points.length > 0) {
      const stop = firstStop.get(run.configHash) ?? Number.POSITIVE_INFINITY;
      for (const p of result.points)
        add(
          `${run.configHash}:p${p.index}`,
          run,
          { index: p.index, kind: p.kind },
          {
            source: p,
            warnings: p.warnings.map((w) => w.code),
            config: result.config,
            targetRate: p.targetRate,
            overSaturated: p.overSaturation?.detected === true || p.index > stop,
          },
        );
      continue;
    }
    add(run.configHash, run, null, {
      source: result,
      warnings: result.warnings.map((w) => w.code),
      config: result.config,
      targetRate: null,
      overSaturated: false,
    });
  }
  return [...units.values()];
}

function estimate(values: number[], options: BootstrapOptions, stream: string): Estimate | null {
  if (values.length === 0) return null;
  const seed = options.seed ?? DEFAULT_BOOTSTRAP_SEED;
  return {
    mean: mean(values) as number,
    ci: bootstrapMeanCI(values, {
      ...options,
      random: options.random ?? mulberry32((seed ^ fnv1a(stream)) >>> 0),
    }),
    n: values.length,
    values,
  };
}

const scaled = (e: Estimate | null, factor: number | null): Estimate | null =>
  e === null || factor === null
    ? null
    : {
        mean: e.mean * factor,
        ci: e.ci ? { low: e.ci.low * factor, high: e.ci.high * factor } : null,
        n: e.n,
        values: e.values.map((v) => v * factor),
      };

function checkTarget(
  unit: Unit,
  target: SloTarget,
  targetMs: number,
  percentile: SloPercentile,
  options: BootstrapOptions,
): SloCheck {
  const key = `p${percentile}` as 'p50' | 'p95' | 'p99';
  const values = unit.sources
    .map(({ source }) => TARGETS[target].read(source.latency)?.[key])
    .filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  const value = estimate(values, options, `${unit.key}:slo:${target}:${key}`);
  const met = value === null ? null : value.mean <= targetMs;
  return {
    target,
    label: `${TARGETS[target].label} p${percentile}`,
    targetMs,
    value,
    met,
    marginal: met === true && value?.ci != null && value.ci.high > targetMs,
    excessMs: met === false && value ? value.mean - targetMs : null,
    ratio: value ? value.mean / targetMs : null,
  };
}

/**
 * A load point in words: `load point 3 (rate 5.20 req/s target, 5.13 achieved)`, `load point 0
 * (sync, 2.41 req/s)`. The index is the one `summary.csv` has (`point_index`).
 *
 * @example
 * pointLabel({ index: 1, kind: 'saturation', achievedRate: 12.3, targetRate: null }); // 'load point 1 (saturation, 12.3 req/s)'
 */
export function pointLabel(point: AnswerPoint): string {
  const r = (x: number) => x.toPrecision(3);
  const achieved = point.achievedRate === null ? '?' : r(point.achievedRate);
  return point.targetRate === null
    ? `load point ${point.index} (${point.kind}, ${achieved} req/s)`
    : `load point ${point.index} (rate ${r(point.targetRate)} req/s target, ${achieved} achieved)`;
}

function candidateOf(unit: Unit, options: AnswerOptions): AnswerCandidate {
  const slo = sloOf(unit.sources[0]?.config);
  const energyValues = unit.sources
    .map(({ source }) => source.energyPerOutputTokenJ)
    .filter((v): v is number => v !== null && Number.isFinite(v));
  const energy = estimate(energyValues, options, `${unit.key}:energyPerOutputTokenJ`);
  const prices = options.prices ?? null;
  const checks = SLO_TARGETS.filter((t) => slo.targets[t] !== undefined).map((t) =>
    checkTarget(unit, t, slo.targets[t] as number, slo.percentile, options),
  );
  const meets = checks.some((c) => c.met === false)
    ? false
    : checks.some((c) => c.met === null)
      ? null
      : true;
  const codes = [...new Set(unit.sources.flatMap((s) => s.warnings))];
  const rates = (read: (s: Unit['sources'][number]) => number | null) =>
    mean(unit.sources.map(read).filter((v): v is number => v !== null));
  const point: AnswerPoint | null = unit.point
    ? {
        ...unit.point,
        achievedRate: rates((s) => s.source.throughput.requestsPerS),
        targetRate: rates((s) => s.targetRate),
      }
    : null;
  const overSaturated = unit.sources.some((s) => s.overSaturated);
  return {
    configHash: unit.configHash,
    label: point ? `${unit.configLabel} · ${pointLabel(point)}` : unit.configLabel,
    configLabel: unit.configLabel,
    point,
    energyPerOutputTokenJ: energy,
    carbonGPer1MOutputTokens: scaled(energy, carbonGPer1MTokens(1, prices)),
    costPer1MOutputTokens: scaled(energy, costPer1MTokens(1, prices)),
    slo,
    checks,
    meets,
    overSaturated,
    warnings: [
      ...warningsAffecting('ttftP50Ms', codes),
      ...(overSaturated ? ['over-saturated'] : []),
    ],
    vsBest: null,
  };
}

/** The worst miss of a candidate that misses: the largest mean ÷ target among its misses. */
const worstMiss = (c: AnswerCandidate): number =>
  Math.max(...c.checks.filter((k) => k.met === false).map((k) => k.ratio ?? 0));

/**
 * The answer for a set of runs (see {@link answerStudy}).
 *
 * @example
 * const answer = answerRuns(study.runs, { prices });
 * answer.best?.label; // 'max_num_seqs=64'
 */
export function answerRuns(runs: readonly RunRecord[], options: AnswerOptions = {}): StudyAnswer {
  const prices = options.prices ?? null;
  const all = unitsOf(runs).map((u) => candidateOf(u, options));
  const energyOf = (c: AnswerCandidate) => c.energyPerOutputTokenJ?.mean ?? Number.NaN;
  const ranked = all
    .filter((c) => c.energyPerOutputTokenJ !== null)
    .sort((a, b) => energyOf(a) - energyOf(b) || a.label.localeCompare(b.label));
  const candidates = [...ranked, ...all.filter((c) => c.energyPerOutputTokenJ === null)];
  const noSlo = all.every((c) => c.checks.length === 0);
  const base = {
    rule: ANSWER_RULE,
    noSlo,
    best: null,
    runnerUp: null,
    tiedWithBest: [],
    closest: null,
    bestPerTarget: [],
    candidates,
    prices,
  };
  if (all.length === 0) return { status: 'no-results', ...base };
  const meeting = ranked.filter((c) => c.meets === true && !c.overSaturated);
  const best = meeting[0];
  if (best) {
    for (const other of meeting.slice(1)) {
      const a = best.energyPerOutputTokenJ as Estimate;
      const b = other.energyPerOutputTokenJ as Estimate;
      const ci = a.mean > 0 ? bootstrapRatioCI(a.values, b.values, options) : null;
      other.vsBest = {
        ratio: a.mean > 0 ? b.mean / a.mean : Number.POSITIVE_INFINITY,
        ci,
        tied: ci === null ? null : ci.low <= 1 && ci.high >= 1,
      };
    }
    return {
      ...base,
      status: 'met',
      best,
      runnerUp: meeting[1] ?? null,
      tiedWithBest: meeting.slice(1).filter((c) => c.vsBest?.tied === true),
    };
  }
  // Some meet their SLOs but none of them has a J/token (no energy source): nothing to rank,
  // which is not the same as none meeting them.
  if (all.some((c) => c.meets === true && !c.overSaturated))
    return { ...base, status: 'no-energy' };
  const missing = all.filter((c) => c.meets === false);
  const closest = [...missing].sort((a, b) => worstMiss(a) - worstMiss(b))[0] ?? null;
  const bestPerTarget: StudyAnswer['bestPerTarget'] = [];
  for (const target of SLO_TARGETS) {
    const reached = all
      .flatMap((c) =>
        c.checks
          .filter((k) => k.target === target && k.value !== null && k.ratio !== null)
          .map((k) => ({ c, k })),
      )
      .sort((x, y) => (x.k.ratio as number) - (y.k.ratio as number))[0];
    if (!reached || (reached.k.ratio as number) <= 1) continue;
    bestPerTarget.push({
      target,
      label: reached.k.label,
      candidate: reached.c.label,
      valueMs: (reached.k.value as Estimate).mean,
      targetMs: reached.k.targetMs,
      excessMs: (reached.k.value as Estimate).mean - reached.k.targetMs,
      ratio: reached.k.ratio as number,
    });
  }
  return {
    ...base,
    status: ranked.length === 0 && missing.length === 0 ? 'no-energy' : 'none-met',
    closest,
    bestPerTarget,
  };
}

/**
 * The lowest-J/token configuration (or load point) of a study that meets its SLOs, its interval,
 * the runner-up and the candidates tied with it; or, when none meets them, which target is missed
 * by how much. How "meets" and ties are judged is {@link ANSWER_RULE}.
 *
 * @example
 * const answer = answerStudy(await loadStudy(dir), { prices: resolveEnergyPrices(study.reportSettings) });
 * if (answer.status === 'met') console.log(answer.best?.label, answer.best?.energyPerOutputTokenJ?.mean);
 */
export function answerStudy(study: LoadedStudy, options: AnswerOptions = {}): StudyAnswer {
  return answerRuns(study.runs, options);
}
