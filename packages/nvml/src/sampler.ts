import type { ClockEventReason } from './clock-reasons';
import { decodeClockEventReasons } from './clock-reasons';
import type { NvmlDevice } from './nvml';

/** One sampler reading. Every value is null when the GPU could not report it. */
export interface PowerSample {
  /** Monotonic time of the reading in ms (the sampler's clock; `performance.now()` by default). */
  t: number;
  /** Instantaneous board power in W (falls back to the averaged reading where unsupported). */
  powerW: number | null;
  memoryUsedBytes: number | null;
  memoryTotalBytes: number | null;
  temperatureC: number | null;
  utilizationGpuPct: number | null;
  smClockMHz: number | null;
  /** Decoded clock-event (throttle) reasons. */
  clockEventReasons: readonly ClockEventReason[] | null;
}

/** The readings a sampler takes; an {@link NvmlDevice} provides them. */
export type SampleSource = Pick<
  NvmlDevice,
  | 'instantPowerW'
  | 'memoryInfo'
  | 'temperatureC'
  | 'utilization'
  | 'smClockMHz'
  | 'clockEventReasonsMask'
>;

/** Timer functions the sampler schedules with; replace them in tests. */
export interface SamplerTimers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface PowerSamplerOptions {
  /** What to read, usually `nvml.device(i)`. */
  source: SampleSource;
  /** Milliseconds between samples. Default `100`; must be ≥ 1. */
  intervalMs?: number | undefined;
  /** Monotonic clock in ms. Default `performance.now`. */
  clock?: (() => number) | undefined;
  /** Default: Node's `setTimeout`/`clearTimeout` (unref'd, so a sampler never keeps Node alive). */
  timers?: SamplerTimers | undefined;
  /** Called with each sample as it is taken (keep it cheap). */
  onSample?: ((sample: PowerSample) => void) | undefined;
}

const nodeTimers: SamplerTimers = {
  setTimeout(callback, ms) {
    const handle = setTimeout(callback, ms);
    handle.unref();
    return handle;
  },
  clearTimeout(handle) {
    clearTimeout(handle as ReturnType<typeof setTimeout>);
  },
};

/**
 * Samples power, memory, temperature, utilisation, SM clock and clock-event reasons at a fixed
 * interval. Scheduling is drift-corrected: sample k is aimed at `start + k × interval`, so timer
 * lateness does not accumulate; when the process stalls past whole intervals the missed slots are
 * skipped, not bunched. Each sample carries the monotonic time it was taken.
 *
 * @example
 * const sampler = new PowerSampler({ source: nvml.device(0), intervalMs: 100 });
 * sampler.start();
 * await runWorkload();
 * const samples = sampler.stop();
 */
export class PowerSampler {
  readonly intervalMs: number;
  private readonly source: SampleSource;
  private readonly clock: () => number;
  private readonly timers: SamplerTimers;
  private readonly onSample: ((sample: PowerSample) => void) | undefined;
  private samples: PowerSample[] = [];
  private timer: unknown = undefined;
  private running = false;
  private startedAt = 0;
  private slot = 0;

  constructor(options: PowerSamplerOptions) {
    const intervalMs = options.intervalMs ?? 100;
    if (!Number.isFinite(intervalMs) || intervalMs < 1) {
      throw new RangeError(`PowerSampler: intervalMs must be a number ≥ 1, got ${intervalMs}`);
    }
    this.intervalMs = intervalMs;
    this.source = options.source;
    this.clock = options.clock ?? (() => performance.now());
    this.timers = options.timers ?? nodeTimers;
    this.onSample = options.onSample;
  }

  /** True between start() and stop(). */
  get isRunning(): boolean {
    return this.running;
  }

  /** Samples taken so far (the live array; do not mutate). */
  get collected(): readonly PowerSample[] {
    return this.samples;
  }

  /** Take the first sample now and keep sampling until stop(). Starting twice is an error. */
  start(): void {
    if (this.running) throw new Error('PowerSampler: already running');
    this.running = true;
    this.samples = [];
    this.startedAt = this.clock();
    this.slot = 0;
    this.tick();
  }

  /** Stop sampling, take one last sample, and return every sample in time order. */
  stop(): PowerSample[] {
    if (!this.running) return this.samples;
    this.running = false;
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timer = undefined;
    // A final reading closes the window, so integration covers the whole run.
    this.record();
    return this.samples;
  }

  /** Take one sample now (also usable without start()). */
  sampleNow(): PowerSample {
    const s = this.source;
    const t = this.clock();
    const memory = s.memoryInfo();
    const util = s.utilization();
    const mask = s.clockEventReasonsMask();
    return {
      t,
      powerW: s.instantPowerW(),
      memoryUsedBytes: memory ? memory.usedBytes : null,
      memoryTotalBytes: memory ? memory.totalBytes : null,
      temperatureC: s.temperatureC(),
      utilizationGpuPct: util ? util.gpuPct : null,
      smClockMHz: s.smClockMHz(),
      clockEventReasons: mask === null ? null : decodeClockEventReasons(mask),
    };
  }

  private record(): void {
    const sample = this.sampleNow();
    this.samples.push(sample);
    this.onSample?.(sample);
  }

  private readonly tick = (): void => {
    if (!this.running) return;
    this.timer = undefined;
    try {
      this.record();
    } finally {
      // Keep the schedule even if onSample threw; the error still surfaces to the caller.
      this.schedule();
    }
  };

  private schedule(): void {
    if (!this.running) return;
    const now = this.clock();
    // Next slot strictly in the future, counted from the start so error never accumulates.
    this.slot = Math.max(this.slot + 1, Math.floor((now - this.startedAt) / this.intervalMs) + 1);
    const due = this.startedAt + this.slot * this.intervalMs;
    // Node timers work in whole milliseconds on a cached loop clock; rounding up keeps a
    // sample from firing before its slot, which would show up as jitter.
    this.timer = this.timers.setTimeout(this.tick, Math.max(0, Math.ceil(due - now)));
  }
}
