import type { Engine, EngineRequest, RunHooks, RunOptions, WorkloadOutcome } from '@llem/engines';
import type { GpuProbe } from '../gpu';
import type { Recorder, Tick } from './recorder';

/** What the measured window saw: its edges, the readings inside it and the engine's outcome. */
export interface WindowRecording {
  outcome: WorkloadOutcome;
  /** The window's opening and closing reads (the engine's marks, else the run's own edges). */
  w0: Tick;
  w1: Tick;
  /** Reads strictly inside the window. */
  inWindow: Tick[];
  /** Every read of the run, edges included, in time order (for sub-windows: steady state). */
  readings: Tick[];
  durationS: number;
  /** GPU readings in the window (the sparsest device's), `null` when nothing was sampled. */
  samplesInWindow: number | null;
}

/** How a window is run and recorded: one of a sweep's points passes its load and the sweep's start. */
export interface WindowOptions {
  /** Passed to `engine.run` (a sweep point's load). */
  run?: RunOptions;
  /** The timeseries' time origin for this window's rows. Default: the window's own start. */
  t0?: number;
}

/**
 * Run the workload inside the energy window: prepare the sampler, read the opening edge, start
 * sampling, run the engine (which may mark the window itself, e.g. a `command` program that
 * loads first), stop, read the closing edge. The window is recorded in the timeseries.
 */
export async function recordWindow(
  engine: Engine,
  requests: EngineRequest[],
  recorder: Recorder,
  probe: GpuProbe | null,
  options: WindowOptions = {},
): Promise<WindowRecording> {
  let start: Tick | null = null;
  let stop: Tick | null = null;
  const hooks: RunHooks = {
    onWindowStart: () => {
      start = recorder.read();
    },
    onWindowStop: () => {
      stop = recorder.read();
    },
  };
  const begin = recorder.sampling ? recorder.prepare('measure') : null;
  const runStart = recorder.read();
  const sampler = begin?.() ?? null;
  let ticks: Tick[] = [];
  let outcome: WorkloadOutcome;
  try {
    const marks = engine.windowMarking === 'engine' ? hooks : undefined;
    outcome = await (options.run
      ? engine.run(requests, marks, options.run)
      : engine.run(requests, marks));
  } finally {
    ticks = sampler?.stop() ?? [];
  }
  const runEnd = recorder.read();
  const w0: Tick = start ?? runStart;
  const w1: Tick = stop ?? runEnd;
  const inWindow = ticks.filter((t) => t.t > w0.t && t.t < w1.t);
  recorder.record('measure', options.t0 ?? w0.t, [w0, ...inWindow, w1]);
  // With a background GPU sampler the window holds each device's readings plus this thread's
  // counter ticks; the reading count that matters is the GPU's (the sparsest device).
  const samplesInWindow = !recorder.sampling
    ? null
    : sampler?.background && probe
      ? Math.min(
          ...probe.devices.map(
            (i) => inWindow.filter((k) => k.gpus.some((g) => g.index === i)).length,
          ),
        )
      : inWindow.length;
  return {
    outcome,
    w0,
    w1,
    inWindow,
    readings: [...new Set([runStart, w0, ...ticks, w1, runEnd])].sort((a, b) => a.t - b.t),
    durationS: Math.max(0, (w1.t - w0.t) / 1000),
    samplesInWindow,
  };
}
