// What the sampler's caller thread and its worker thread share: the control words they signal
// each other through, and the flat record a sample travels in (laid out from the readings table).
// No koffi, no NVML: both sides import this file.
import type { MessagePort } from 'node:worker_threads';
import { GPU_READINGS } from '../readings';

/** Index of the state word in the control `Int32Array`. */
export const STATE = 0;

/** The worker's life, one state word that both threads change with Atomics. */
export const State = {
  /** The worker is loading NVML; start() waits on this. */
  booting: 0,
  /** Sampling; the worker sleeps in `Atomics.wait` on this value between samples. */
  running: 1,
  /** stop() asked for the end; the worker takes its closing sample and posts what it holds. */
  stopping: 2,
  /** Every sample is posted and NVML is closed; stop() waits on this. */
  done: 3,
  /** The worker could not open NVML or the device; its error was posted first. */
  failed: 4,
} as const;

/** Bytes of the control buffer: four int32 words, then one float64 at {@link CLOCK_OFFSET_BYTE}. */
export const CONTROL_BYTES = 24;
/** Where the worker writes `performance.now() − hrtime` in ms, its clock's offset (float64). */
export const CLOCK_OFFSET_BYTE = 16;

/**
 * A sample travels as float64s: its time at {@link RECORD_T}, then one value per row of
 * `GPU_READINGS`, in table order, from {@link RECORD_READINGS}. `NaN` stands for `null` (NVML
 * never reports NaN, and a typed array has no null).
 */
export const RECORD_T = 0;
export const RECORD_READINGS = 1;
export const RECORD_LENGTH = RECORD_READINGS + GPU_READINGS.length;

/** What start() hands the worker. */
export interface SamplerWorkerData {
  library: string;
  deviceIndex: number;
  intervalMs: number;
  /** Samples per posted batch. */
  batchSize: number;
  control: SharedArrayBuffer;
  port: MessagePort;
}

/** A batch of samples: `count` records of {@link RECORD_LENGTH} float64s. */
export interface BatchMessage {
  type: 'batch';
  count: number;
  records: Float64Array;
}

/** Why the worker could not start, enough to rebuild the error on the caller's side. */
export interface FailureMessage {
  type: 'failed';
  name: string;
  message: string;
  functionName?: string | undefined;
  returnCode?: number | undefined;
}

export type WorkerMessage = BatchMessage | FailureMessage;

/**
 * `performance.now()` minus the monotonic clock (`process.hrtime`) in ms. Every thread has its own
 * `performance.now()` origin, but `hrtime` is one clock for the whole process, so the difference
 * of two threads' offsets converts one thread's timestamps into the other's.
 */
export function clockOffsetMs(): number {
  // The smallest of a few pairs: the one least stretched by an interruption between the reads.
  let best = Number.POSITIVE_INFINITY;
  let offset = 0;
  for (let i = 0; i < 5; i++) {
    const a = performance.now();
    const h = Number(process.hrtime.bigint()) / 1e6;
    const b = performance.now();
    if (b - a < best) {
      best = b - a;
      offset = (a + b) / 2 - h;
    }
  }
  return offset;
}
