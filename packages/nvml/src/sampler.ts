import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import {
  MessageChannel,
  type MessagePort,
  receiveMessageOnPort,
  Worker,
} from 'node:worker_threads';
import { NvmlError } from './errors';
import type { NvmlApi } from './internal/api';
import { loadBindings } from './internal/bindings';
import {
  CLOCK_OFFSET_BYTE,
  CONTROL_BYTES,
  clockOffsetMs,
  RECORD_LENGTH,
  RECORD_READINGS,
  RECORD_T,
  type SamplerWorkerData,
  STATE,
  State,
  type WorkerMessage,
} from './internal/sampler-protocol';
import { NvmlDevice } from './nvml';
import { GPU_READINGS, type GpuDevice, type GpuReadings, readGpu } from './readings';

/**
 * One sampler reading: every row of `GPU_READINGS` (`powerW`, `memoryUsedMiB`, …, the raw
 * `clockEventReasons` mask), each `null` when the GPU could not report it, and the time.
 */
export interface PowerSample extends GpuReadings {
  /** Monotonic time of the reading in ms (the sampler's clock; `performance.now()` by default). */
  t: number;
}

/** Timer functions the sampler schedules with; replace them in tests. */
export interface SamplerTimers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Where the sampling loop runs. */
export type SamplerThread = 'main' | 'worker';

export interface PowerSamplerOptions {
  /** What to read, usually `nvml.device(i)`. */
  source: GpuDevice;
  /** Milliseconds between samples. Default `100`; must be ≥ 1. */
  intervalMs?: number | undefined;
  /**
   * `'worker'`: a `worker_threads` Worker opens its own NVML session on the same library and
   * device, and sleeps in `Atomics.wait` between samples, so a busy caller thread neither delays
   * samples nor pays for the loop's wake-ups. `'main'`: a timer loop on the caller's thread.
   * Default: `'worker'` when `source` is an {@link NvmlDevice} and neither `clock` nor `timers` is
   * given, else `'main'` (a custom source cannot move to another thread).
   */
  thread?: SamplerThread | undefined;
  /**
   * Worker mode only: the libnvidia-ml the worker loads. Default: the library `source` was opened
   * from. start() throws {@link NvmlLibraryError} when it cannot be loaded.
   */
  library?: string | undefined;
  /** Monotonic clock in ms. Default `performance.now`. Main-thread mode only. */
  clock?: (() => number) | undefined;
  /**
   * Default: Node's `setTimeout`/`clearTimeout` (unref'd, so a sampler never keeps Node alive).
   * Main-thread mode only.
   */
  timers?: SamplerTimers | undefined;
  /**
   * Called with each sample (keep it cheap). In worker mode it runs on the caller's thread as
   * batches arrive, about every 100 ms, and for the rest of the samples inside stop().
   */
  onSample?: ((sample: PowerSample) => void) | undefined;
}

/** How long start() waits for the worker to load NVML before giving up. */
const WORKER_START_TIMEOUT_MS = 30_000;
/** How long stop() waits for the worker's closing sample (a driver call stuck on a lost GPU). */
const WORKER_STOP_TIMEOUT_MS = 5_000;

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
 * Takes every reading of `GPU_READINGS` (power, memory, temperature, utilisation, SM clock,
 * clock-event reasons) at a fixed interval. Scheduling is drift-corrected: sample k is aimed at `start + k × interval`, so timer
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
  /** Where the sampling loop runs (the resolved `thread` option). */
  readonly thread: SamplerThread;
  private readonly source: GpuDevice;
  private readonly library: string | undefined;
  private readonly clock: () => number;
  private readonly timers: SamplerTimers;
  private readonly onSample: ((sample: PowerSample) => void) | undefined;
  private samples: PowerSample[] = [];
  private timer: unknown = undefined;
  private running = false;
  private startedAt = 0;
  private slot = 0;
  private worker: WorkerRun | undefined;

  constructor(options: PowerSamplerOptions) {
    const intervalMs = options.intervalMs ?? 100;
    if (!Number.isFinite(intervalMs) || intervalMs < 1) {
      throw new RangeError(`PowerSampler: intervalMs must be a number ≥ 1, got ${intervalMs}`);
    }
    const injected = options.clock !== undefined || options.timers !== undefined;
    const thread =
      options.thread ?? (options.source instanceof NvmlDevice && !injected ? 'worker' : 'main');
    if (thread !== 'main' && thread !== 'worker') {
      throw new RangeError(
        `PowerSampler: thread must be 'main' or 'worker', got ${String(thread)}`,
      );
    }
    if (thread === 'worker' && !(options.source instanceof NvmlDevice)) {
      throw new TypeError(
        "PowerSampler: thread 'worker' needs an NvmlDevice source (nvml.device(i)); a custom source cannot move to another thread, use thread 'main'",
      );
    }
    if (thread === 'worker' && injected) {
      throw new TypeError(
        "PowerSampler: clock and timers apply to thread 'main' only; the worker sleeps with Atomics.wait on performance.now()",
      );
    }
    this.intervalMs = intervalMs;
    this.thread = thread;
    this.source = options.source;
    this.library = options.library;
    this.clock = options.clock ?? (() => performance.now());
    this.timers = options.timers ?? nodeTimers;
    this.onSample = options.onSample;
  }

  /** True between start() and stop(). */
  get isRunning(): boolean {
    return this.running;
  }

  /**
   * Samples taken so far (the live array; do not mutate). In worker mode it holds what the
   * worker has posted, up to about a second behind.
   */
  get collected(): readonly PowerSample[] {
    if (this.worker) this.drain(this.worker);
    return this.samples;
  }

  /**
   * Take the first sample now and keep sampling until stop(). Starting twice is an error.
   * In worker mode it returns once the worker has NVML open and took the first sample (tens of
   * ms); it throws {@link NvmlLibraryError} or {@link NvmlError} when the worker cannot open the
   * library or the device.
   */
  start(): void {
    if (this.running) throw new Error('PowerSampler: already running');
    this.samples = [];
    if (this.thread === 'worker') {
      this.worker = this.startWorker();
      this.running = true;
      return;
    }
    this.running = true;
    this.startedAt = this.clock();
    this.slot = 0;
    this.tick();
  }

  /** Stop sampling, take one last sample, and return every sample in time order. */
  stop(): PowerSample[] {
    if (!this.running) return this.samples;
    this.running = false;
    if (this.worker) {
      const run = this.worker;
      this.worker = undefined;
      this.stopWorker(run);
      return this.samples;
    }
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timer = undefined;
    // A final reading closes the window, so integration covers the whole run.
    this.record();
    return this.samples;
  }

  /** Take one sample now on the caller's thread (also usable without start()). */
  sampleNow(): PowerSample {
    const t = this.clock();
    return { t, ...readGpu(this.source) };
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

  private startWorker(): WorkerRun {
    const device = this.source as NvmlDevice;
    const library = this.library ?? libraryOf(device);
    // Loading here first turns a bad path into a synchronous NvmlLibraryError on the caller's
    // thread; the library stays loaded, so the worker's own load is a cheap dlopen.
    loadBindings({ library });
    const control = new SharedArrayBuffer(CONTROL_BYTES);
    const state = new Int32Array(control, 0, 4);
    const { port1, port2 } = new MessageChannel();
    const data: SamplerWorkerData = {
      library,
      deviceIndex: device.index,
      intervalMs: this.intervalMs,
      // About a second of samples per message, or ~100 ms when someone listens for each sample.
      batchSize: Math.max(1, Math.ceil((this.onSample ? 100 : 1000) / this.intervalMs)),
      control,
      port: port2,
    };
    const worker = new Worker(workerBootstrap(), {
      eval: true,
      workerData: data,
      transferList: [port2],
      // The caller's flags (--inspect, a loader) have no business in the sampler thread.
      execArgv: [],
    });
    const run: WorkerRun = { worker, port: port1, state, offsetMs: 0, error: null };
    // An unexpected crash must not become an uncaught error; stop() reports what arrived.
    worker.on('error', (error) => {
      run.error = error;
    });
    worker.unref();
    port1.unref();

    const deadline = performance.now() + WORKER_START_TIMEOUT_MS;
    while (Atomics.load(state, STATE) === State.booting) {
      const left = deadline - performance.now();
      if (left <= 0) break;
      Atomics.wait(state, STATE, State.booting, left);
    }
    const reached = Atomics.load(state, STATE);
    if (reached === State.booting || reached === State.failed) {
      // Tell a late starter to exit without sampling, then free the thread.
      Atomics.store(state, STATE, State.stopping);
      const failure = receiveMessageOnPort(port1)?.message as WorkerMessage | undefined;
      void worker.terminate();
      port1.close();
      if (failure?.type === 'failed') throw rebuildError(failure);
      throw new Error(
        `PowerSampler: the sampler worker did not start within ${WORKER_START_TIMEOUT_MS / 1000} s`,
      );
    }
    // Worker timestamps are on its own performance.now() origin; this converts them to ours.
    run.offsetMs = clockOffsetMs() - new Float64Array(control, CLOCK_OFFSET_BYTE, 1)[0]!;
    if (this.onSample) {
      port1.on('message', (message: WorkerMessage) => this.accept(run, message));
      port1.unref();
    }
    return run;
  }

  private stopWorker(run: WorkerRun): void {
    const { state } = run;
    if (Atomics.compareExchange(state, STATE, State.running, State.stopping) === State.running) {
      Atomics.notify(state, STATE);
      // The worker takes its closing sample, posts the rest and closes NVML: well under a
      // millisecond on a healthy driver.
      const deadline = performance.now() + WORKER_STOP_TIMEOUT_MS;
      while (Atomics.load(state, STATE) === State.stopping) {
        const left = deadline - performance.now();
        if (left <= 0) break;
        Atomics.wait(state, STATE, State.stopping, left);
      }
    }
    const finished = Atomics.load(state, STATE) === State.done;
    try {
      this.drain(run);
    } finally {
      run.port.close();
      if (!finished) void run.worker.terminate();
    }
  }

  private drain(run: WorkerRun): void {
    for (let m = receiveMessageOnPort(run.port); m; m = receiveMessageOnPort(run.port)) {
      this.accept(run, m.message as WorkerMessage);
    }
  }

  private accept(run: WorkerRun, message: WorkerMessage): void {
    if (message.type !== 'batch') return;
    const { count, records } = message;
    const first = this.samples.length;
    for (let i = 0; i < count; i++) {
      const r = i * RECORD_LENGTH;
      const sample = { t: records[r + RECORD_T]! + run.offsetMs } as PowerSample;
      for (let k = 0; k < GPU_READINGS.length; k++) {
        sample[GPU_READINGS[k]!.key] = orNull(records[r + RECORD_READINGS + k]!);
      }
      this.samples.push(sample);
    }
    // Every sample is stored before a throwing onSample can interrupt the batch.
    if (this.onSample) {
      for (let i = first; i < this.samples.length; i++) this.onSample(this.samples[i]!);
    }
  }
}

/** One started worker: the thread, its message port, the shared state word, its clock offset. */
interface WorkerRun {
  worker: Worker;
  port: MessagePort;
  state: Int32Array;
  offsetMs: number;
  error: Error | null;
}

function orNull(value: number): number | null {
  return Number.isNaN(value) ? null : value;
}

/** The library an NvmlDevice was opened from. */
function libraryOf(device: NvmlDevice): string {
  // NvmlDevice keeps its session private; the sampler is the one in-package reader of the path.
  return (device as unknown as { api: NvmlApi }).api.bindings.path;
}

function rebuildError(failure: Extract<WorkerMessage, { type: 'failed' }>): Error {
  let error: Error;
  // An NVML failure carries the function and its return code across the thread boundary.
  if (failure.functionName !== undefined && failure.returnCode !== undefined) {
    error = new NvmlError(failure.functionName, failure.returnCode ?? 999, '');
  } else {
    error = new Error();
    error.name = failure.name;
  }
  // The worker's message as it was, so it reads the same as a failure on the caller's thread.
  error.message = failure.message;
  return error;
}

/**
 * The worker's start-up script. Built (dist), the entry is `internal/sampler-worker.js` next to
 * this module. From source (tests, `tsx`), the entry is the `.ts` file, loaded through tsx's
 * CommonJS require hook: Node 20 does not apply `--import` loaders to worker threads, while a
 * require hook registered inside the worker does. Either way a failure to load the entry is
 * reported through the state word, so start() never waits out its timeout on a broken install.
 */
function workerBootstrap(): string {
  const here = import.meta.url;
  let load: string;
  if (here.endsWith('.ts')) {
    const tsx = createRequire(here).resolve('tsx/cjs/api');
    const entry = fileURLToPath(new URL('./internal/sampler-worker.ts', here));
    load = `require(${JSON.stringify(tsx)}).register(); require(${JSON.stringify(entry)});`;
  } else {
    const entry = new URL('./internal/sampler-worker.js', here);
    if (!existsSync(entry)) {
      throw new Error(
        `PowerSampler: the sampler worker is missing (${fileURLToPath(entry)}); reinstall @llem/nvml or use thread 'main'`,
      );
    }
    load = `import(${JSON.stringify(entry.href)}).catch(fail);`;
  }
  return `
    const { workerData } = require('node:worker_threads');
    const fail = (e) => {
      const state = new Int32Array(workerData.control, 0, 4);
      // Posted before the state changes, so start() finds the message once it sees 'failed'.
      workerData.port.postMessage({ type: 'failed', name: (e && e.name) || 'Error', message: String((e && e.message) || e) });
      if (Atomics.compareExchange(state, ${STATE}, ${State.booting}, ${State.failed}) === ${State.booting}) Atomics.notify(state, ${STATE});
    };
    try { ${load} } catch (e) { fail(e); }
  `;
}
