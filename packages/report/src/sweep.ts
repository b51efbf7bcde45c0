import { mean, type SweepPoint, type SweepPointKind } from '@llem/domain';
import type { LoadedStudy, RunRecord } from './load';

/**
 * Load sweeps (`openai.load: sweep`) as curves: per configuration, each load point's figures as
 * means over the cycles that measured it (the same point index in every cycle), in point order.
 * `report.html` plots J/token, TTFT and TPOT against the achieved request rate from these.
 */

/** One load point of one configuration, over its cycles. */
export interface SweepCurvePoint {
  index: number;
  kind: SweepPointKind;
  /** Cycles that measured this point. */
  cycles: number;
  /** Open-loop target rate (requests/s), mean over cycles; `null` for the closed-loop points. */
  targetRate: number | null;
  /** Completed requests per second, mean over cycles. */
  achievedRequestRate: number | null;
  energyPerOutputTokenJ: number | null;
  /** TTFT p50 (ms): from the scheduled send time in open loop, as the SLO answer judges it. */
  ttftP50Ms: number | null;
  tpotP50Ms: number | null;
  /** The sweep found this point over-saturated in at least one cycle. */
  overSaturated: boolean;
}

/** A configuration's sweep, and why its sweeps stopped early (one line per distinct reason). */
export interface SweepCurve {
  configHash: string;
  label: string;
  points: SweepCurvePoint[];
  stopReasons: string[];
}

const avg = (values: readonly (number | null | undefined)[]): number | null =>
  mean(values.filter((v): v is number => typeof v === 'number' && Number.isFinite(v)));

function curvePoint(points: readonly SweepPoint[]): SweepCurvePoint {
  const first = points[0]!;
  return {
    index: first.index,
    kind: first.kind,
    cycles: points.length,
    targetRate: avg(points.map((p) => p.targetRate)),
    achievedRequestRate: avg(points.map((p) => p.achievedRequestRate)),
    energyPerOutputTokenJ: avg(points.map((p) => p.energyPerOutputTokenJ)),
    ttftP50Ms: avg(points.map((p) => (p.latency.ttftFromScheduledMs ?? p.latency.ttftMs)?.p50)),
    tpotP50Ms: avg(points.map((p) => p.latency.tpotMs?.p50)),
    overSaturated: points.some((p) => p.overSaturation?.detected === true),
  };
}

/**
 * The sweep curves of a set of runs: one per configuration whose completed runs have
 * `result.points`, in schedule order; configurations without a sweep are left out.
 *
 * @example
 * sweepCurves(study.runs)[0]?.points.map((p) => [p.achievedRequestRate, p.energyPerOutputTokenJ]);
 */
export function sweepCurves(runs: readonly RunRecord[]): SweepCurve[] {
  const byConfig = new Map<
    string,
    { label: string; points: Map<number, SweepPoint[]>; stops: Set<string> }
  >();
  for (const run of runs) {
    const result = run.status === 'completed' ? run.result : null;
    if (!result?.points || result.points.length === 0) continue;
    let entry = byConfig.get(run.configHash);
    if (!entry) {
      entry = { label: run.label, points: new Map(), stops: new Set() };
      byConfig.set(run.configHash, entry);
    }
    for (const p of result.points) {
      const list = entry.points.get(p.index);
      if (list) list.push(p);
      else entry.points.set(p.index, [p]);
    }
    if (result.sweep?.stopReason) entry.stops.add(result.sweep.stopReason);
  }
  return [...byConfig].map(([configHash, entry]) => ({
    configHash,
    label: entry.label,
    points: [...entry.points.values()].map(curvePoint).sort((a, b) => a.index - b.index),
    stopReasons: [...entry.stops],
  }));
}

/** {@link sweepCurves} over a loaded study. */
export function studySweepCurves(study: LoadedStudy): SweepCurve[] {
  return sweepCurves(study.runs);
}
