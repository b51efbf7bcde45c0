// The worker-thread side of PowerSampler (`thread: 'worker'`). It opens its own NVML session
// through the same bindings module as the caller, then sleeps in Atomics.wait between samples:
// no event loop, no timers, no per-tick objects beyond the readings themselves. Samples are
// written as flat float64 records and posted in batches; the caller drains them synchronously.
//
// No `import.meta` and no top-level await here: from source this file runs as CommonJS through
// tsx's require hook (see workerBootstrap in ../sampler.ts), from dist as ESM.
import { workerData } from 'node:worker_threads';
import { NvmlError } from '../errors';
import { Nvml, type NvmlDevice } from '../nvml';
import { deviceCall, GPU_READINGS, safeRead } from '../readings';
import {
  type BatchMessage,
  CLOCK_OFFSET_BYTE,
  clockOffsetMs,
  type FailureMessage,
  RECORD_LENGTH,
  RECORD_READINGS,
  RECORD_T,
  type SamplerWorkerData,
  STATE,
  State,
} from './sampler-protocol';

const NULL = Number.NaN;

function run(data: SamplerWorkerData): void {
  const control = new Int32Array(data.control, 0, 4);
  new Float64Array(data.control, CLOCK_OFFSET_BYTE, 1)[0] = clockOffsetMs();
  const { port, intervalMs, batchSize } = data;

  let nvml: Nvml;
  let device: NvmlDevice;
  try {
    nvml = Nvml.open({ library: data.library });
    try {
      device = nvml.device(data.deviceIndex);
    } catch (error) {
      nvml.close();
      throw error;
    }
  } catch (error) {
    port.postMessage(failure(error));
    Atomics.store(control, STATE, State.failed);
    Atomics.notify(control, STATE);
    port.close();
    return;
  }

  let records = new Float64Array(batchSize * RECORD_LENGTH);
  let count = 0;
  const flush = () => {
    if (count === 0) return;
    const message: BatchMessage = { type: 'batch', count, records };
    port.postMessage(message, [records.buffer]);
    records = new Float64Array(batchSize * RECORD_LENGTH);
    count = 0;
  };
  /** Take one sample; returns its time. */
  const record = (): number => {
    const base = count * RECORD_LENGTH;
    const t = performance.now();
    records[base + RECORD_T] = t;
    const call = deviceCall(device);
    for (let i = 0; i < GPU_READINGS.length; i++) {
      records[base + RECORD_READINGS + i] = safeRead(GPU_READINGS[i]!, call) ?? NULL;
    }
    if (++count === batchSize) flush();
    return t;
  };

  // start() is blocked waiting for this; from here on the caller may ask us to stop at any time.
  if (Atomics.compareExchange(control, STATE, State.booting, State.running) !== State.booting) {
    finish(nvml, port, control);
    return;
  }
  try {
    // The grid is anchored at the first sample's own time, so sample k never precedes
    // first.t + k × interval, even when this thread was preempted right after start.
    const startedAt = record();
    Atomics.notify(control, STATE);
    let slot = 0;
    for (;;) {
      // Drift-corrected like the main-thread loop: slot k is due at start + k × interval, and
      // slots missed during a stall are skipped, not bunched.
      const now = performance.now();
      slot = Math.max(slot + 1, Math.floor((now - startedAt) / intervalMs) + 1);
      const due = startedAt + slot * intervalMs;
      // Atomics.wait takes fractional ms and returns early only when stop() notifies; a spurious
      // early return just waits out the rest.
      let remaining = due - now;
      while (remaining > 0 && Atomics.load(control, STATE) === State.running) {
        Atomics.wait(control, STATE, State.running, remaining);
        remaining = due - performance.now();
      }
      if (Atomics.load(control, STATE) !== State.running) break;
      record();
    }
    // The closing reading, so the samples cover the whole window up to stop().
    record();
  } finally {
    flush();
    finish(nvml, port, control);
  }
}

function finish(nvml: Nvml, port: SamplerWorkerData['port'], control: Int32Array): void {
  try {
    nvml.close();
  } catch {
    // A failing nvmlShutdown (driver gone) must not keep stop() waiting.
  }
  port.close();
  Atomics.store(control, STATE, State.done);
  Atomics.notify(control, STATE);
}

function failure(error: unknown): FailureMessage {
  if (error instanceof NvmlError) {
    return {
      type: 'failed',
      name: error.name,
      message: error.message,
      functionName: error.functionName,
      returnCode: error.returnCode,
    };
  }
  if (error instanceof Error) return { type: 'failed', name: error.name, message: error.message };
  return { type: 'failed', name: 'Error', message: String(error) };
}

run(workerData as SamplerWorkerData);
