import {
  type OverSaturation,
  overSaturation,
  type RunResult,
  type RunWarning,
  type SweepPoint,
  type SweepPointKind,
  type SweepSummary,
  saturationBelowSync,
  sweepRates,
  sweepRatesUnavailable,
} from '@llem/domain';
import type { Engine, EngineRequest, LoadPoint, RequestRecord } from '@llem/engines';
import type { Logger } from '@llem/resilience';
import type { GpuProbe } from '../gpu';
import type { Recorder, Tick } from './recorder';
import { recordWindow, type WindowRecording } from './window';

/**
 * `openai.load: sweep`: one run measures a series of load points, each in its own energy window,
 * as GuideLLM's sweep does — a synchronous point (one request at a time), a saturation point (as
 * many in flight as the cap allows) for the sustainable throughput, then open-loop rates
 * linearly spaced between the two throughputs, lowest first. The rate stops rising at the first
 * point that over-saturates the server (`overSaturation` in `@llem/domain`); the rates above it
 * are not measured and the summary says why. Every point runs the config's whole workload.
 */

/** What the sweep reads of the config. */
export interface SweepPlan {
  /** `openai.sweep_points`. */
  points: number;
  /** `openai.max_concurrency`: the saturation point's concurrency and every point's cap. */
  maxConcurrency: number | null;
}

/** One point as measured, before its metrics are built. */
export interface PointRecording {
  index: number;
  kind: SweepPointKind;
  concurrency: number | null;
  targetRate: number | null;
  window: WindowRecording;
  overSaturation: OverSaturation | null;
}

export interface SweepRecording {
  /** The whole sweep as one window (its first point's start to its last point's end). */
  window: WindowRecording;
  points: PointRecording[];
  /** The run's warnings about the sweep as a whole (`saturation-below-sync`). */
  warnings: RunWarning[];
  summary: SweepSummary;
}

/** Completed requests per second of a point's window. */
export function achievedRequestRate(window: WindowRecording): number | null {
  const { outcome, durationS } = window;
  const count =
    typeof outcome.extra?.requestCount === 'number'
      ? outcome.extra.requestCount
      : outcome.requests.filter((r) => !r.error).length;
  return durationS > 0 ? count / durationS : null;
}

/** Run the sweep's points one after another on a loaded engine; see the module comment. */
export async function recordSweep(step: {
  engine: Engine;
  requests: EngineRequest[];
  recorder: Recorder;
  probe: GpuProbe | null;
  plan: SweepPlan;
  logger: Logger;
  progress?: ((message: string) => void) | undefined;
}): Promise<SweepRecording> {
  const { plan, requests } = step;
  const t0 = step.recorder.read().t;
  const points: PointRecording[] = [];
  const measure = async (
    kind: SweepPointKind,
    load: LoadPoint,
    label: string,
  ): Promise<PointRecording> => {
    const index = points.length;
    step.progress?.(`sweep point ${index + 1}/${plan.points}: ${label}`);
    const window = await recordWindow(step.engine, requests, step.recorder, step.probe, {
      run: { load },
      t0,
    });
    const point: PointRecording = {
      index,
      kind,
      concurrency: load.kind === 'concurrency' ? load.concurrency : null,
      targetRate: load.kind === 'rate' ? load.rate : null,
      window,
      overSaturation: load.kind === 'rate' ? checkSaturation(window.outcome.requests) : null,
    };
    points.push(point);
    step.logger.info(
      `measure: sweep point ${index} (${label}): ${formatRate(achievedRequestRate(window))} req/s achieved`,
    );
    return point;
  };

  const sync = await measure('sync', { kind: 'concurrency', concurrency: 1 }, 'synchronous');
  const cap = plan.maxConcurrency ?? requests.length;
  const inFlight = Math.max(1, Math.min(cap, requests.length));
  const saturation = await measure(
    'saturation',
    { kind: 'concurrency', concurrency: inFlight },
    `saturation (${inFlight} in flight)`,
  );
  const syncRate = achievedRequestRate(sync.window);
  const saturationRate = achievedRequestRate(saturation.window);
  const slower = saturationBelowSync(syncRate, saturationRate, inFlight);
  if (slower) step.logger.warn(`measure: ${slower.code}: ${slower.message}`);
  const rates = sweepRates(syncRate, saturationRate, plan.points);
  let stopReason =
    plan.points > 2 && rates.length === 0
      ? `no rate point was measured: ${sweepRatesUnavailable(syncRate, saturationRate)}`
      : null;
  let stoppedAtPoint: number | null = null;
  for (const [i, rate] of rates.entries()) {
    const point = await measure('rate', { kind: 'rate', rate }, `${formatRate(rate)} req/s`);
    if (point.overSaturation?.detected) {
      const left = rates.length - i - 1;
      stoppedAtPoint = point.index;
      stopReason = `point ${point.index} (${formatRate(rate)} req/s) ${point.overSaturation.reason}; ${left === 0 ? 'it was the last rate' : `the ${left} higher rate${left === 1 ? ' was' : 's were'} not measured`}`;
      step.logger.info(`measure: sweep stopped raising the rate: ${stopReason}`);
      break;
    }
  }
  return {
    window: mergeWindows(points.map((p) => p.window)),
    points,
    warnings: slower ? [slower] : [],
    summary: {
      plannedPoints: plan.points,
      syncRequestRate: syncRate,
      saturationRequestRate: saturationRate,
      rates,
      stoppedAtPoint,
      stopReason,
    },
  };
}

function formatRate(rate: number | null): string {
  return rate === null ? '?' : rate >= 100 ? rate.toFixed(0) : rate.toPrecision(3);
}

/** The over-saturation check on a point's requests (sent, first token, end; failures left out). */
function checkSaturation(requests: readonly RequestRecord[]): OverSaturation {
  const done = requests.filter((r) => !r.error);
  return overSaturation(
    done.map((r) => ({
      sentMs: r.startedAt,
      ttftMs: r.firstTokenAt === null ? null : r.firstTokenAt - r.startedAt,
      endMs: r.endedAt,
    })),
  );
}

/**
 * The sweep as one window for the run's top-level figures: from the first point's opening edge to
 * the last point's closing edge, every reading between, every request (renumbered so ids stay
 * unique across points), tokens summed.
 */
function mergeWindows(windows: readonly WindowRecording[]): WindowRecording {
  const first = windows[0]!;
  const last = windows[windows.length - 1]!;
  const readings = [...new Set(windows.flatMap((w) => w.readings))].sort((a, b) => a.t - b.t);
  const inWindow = readings.filter((t: Tick) => t.t > first.w0.t && t.t < last.w1.t);
  const requests = windows.flatMap((w) => w.outcome.requests).map((r, id) => ({ ...r, id }));
  const sources = new Set(windows.map((w) => w.outcome.tokenCountSource));
  const counts = windows.map((w) => w.samplesInWindow);
  return {
    outcome: {
      requests,
      inputTokens: windows.reduce((a, w) => a + w.outcome.inputTokens, 0),
      outputTokens: windows.reduce((a, w) => a + w.outcome.outputTokens, 0),
      tokenCountSource: sources.size === 1 ? first.outcome.tokenCountSource : 'counted-chunks',
      extra: {
        requestCount: windows.reduce(
          (a, w) =>
            a +
            (typeof w.outcome.extra?.requestCount === 'number'
              ? w.outcome.extra.requestCount
              : w.outcome.requests.filter((r) => !r.error).length),
          0,
        ),
      },
    },
    w0: first.w0,
    w1: last.w1,
    inWindow,
    readings,
    durationS: Math.max(0, (last.w1.t - first.w0.t) / 1000),
    samplesInWindow: counts.some((c) => c === null)
      ? null
      : counts.reduce((a: number, c) => a + (c ?? 0), 0),
  };
}

/** A point's entry in `result.points`, from the result built over its own window. */
export function sweepPoint(recording: PointRecording, built: RunResult): SweepPoint {
  const { warmup: _w, engineInfo: _e, ...extra } = built.extra;
  const warnings = [...built.warnings];
  if (recording.overSaturation?.detected)
    warnings.push({ code: 'over-saturated', message: recording.overSaturation.reason ?? '' });
  return {
    index: recording.index,
    kind: recording.kind,
    concurrency: recording.concurrency,
    targetRate: recording.targetRate,
    achievedRequestRate: achievedRequestRate(recording.window),
    window: built.window,
    energy: built.energy,
    tokens: built.tokens,
    throughput: built.throughput,
    energyPerOutputTokenJ: built.energyPerOutputTokenJ,
    latency: built.latency,
    memory: built.memory,
    overSaturation: recording.overSaturation,
    warnings,
    extra,
  };
}
