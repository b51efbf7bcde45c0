import { GPU_READINGS, type GpuReadings } from '@llem/nvml/readings';

export interface Sampler<T> {
  /** Stops the timer and returns every tick in time order. */
  stop(): T[];
  /** The ticks so far (a copy). */
  ticks(): T[];
}

export interface SamplerOptions {
  intervalMs: number;
  /** Monotonic clock in ms. Default `performance.now`. */
  now?: () => number;
}

/**
 * Call `read` every `intervalMs` until stopped. Each timeout is aimed at the next multiple of the
 * interval from the start, so lateness does not accumulate into drift over a long run. `read`
 * errors are swallowed for that tick: a sampler must never kill a measurement.
 *
 * @example
 * const s = startSampler((t) => ({ t, w: probe.powerW(0) }), { intervalMs: 100 });
 * // ... workload ...
 * const ticks = s.stop();
 */
export function startSampler<T>(read: (t: number) => T, options: SamplerOptions): Sampler<T> {
  const now = options.now ?? (() => performance.now());
  const interval = Math.max(1, options.intervalMs);
  const out: T[] = [];
  const t0 = now();
  let n = 0;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const tick = () => {
    if (stopped) return;
    try {
      out.push(read(now()));
    } catch {
      // A failed read is a missing sample, nothing worse.
    }
    n++;
    const next = t0 + n * interval;
    timer = setTimeout(tick, Math.max(0, next - now()));
  };
  tick();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
      return out.slice();
    },
    ticks: () => out.slice(),
  };
}

/** The timeseries CSV's columns: the row's place, every GPU reading (`GPU_READINGS`), energy. */
const CSV_COLUMNS = [
  'window',
  't_ms',
  'device',
  ...GPU_READINGS.map((r) => r.column),
  'energy_j',
] as const;

export interface TimeseriesRow {
  /** `baseline` or `measure`, so both phases can share one file. */
  window: string;
  /** ms since the window start. */
  tMs: number;
  /** e.g. `gpu0`, `cpu-package0`. */
  device: string;
  /** The GPU readings of this row; none for a counter-only or CPU row. */
  sample: Partial<GpuReadings>;
  /** Cumulative energy counter at this tick (J), where there is one. */
  energyJ: number | null;
}

/** The sampler timeseries as CSV: one row per device per tick, empty cells for unknown values. */
export function timeseriesCsv(rows: readonly TimeseriesRow[]): string {
  const cell = (v: number | null | undefined) =>
    v === null || v === undefined ? '' : Number.isInteger(v) ? String(v) : v.toFixed(3);
  const lines = [CSV_COLUMNS.join(',')];
  for (const r of rows) {
    lines.push(
      [
        r.window,
        cell(r.tMs),
        r.device,
        ...GPU_READINGS.map((reading) => cell(r.sample[reading.key])),
        cell(r.energyJ),
      ].join(','),
    );
  }
  return `${lines.join('\n')}\n`;
}
