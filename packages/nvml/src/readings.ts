// The GPU readings a sampler takes, as one table. Everything that handles a sample derives from
// it: the sampler (both threads), the worker thread's flat record, `@llem/measure`'s per-sample
// record and its timeseries CSV. Adding a reading is one row here, plus the NvmlDevice method it
// calls (nvml.ts) and that method's binding (internal/bindings.ts).
//
// No koffi and no NVML here (types only), so `@llem/nvml/readings` loads on a machine where the
// native binding cannot.
import type { NvmlMemoryInfo, NvmlUtilization } from './nvml';

/**
 * What the readings are taken from: the reading methods of {@link NvmlDevice}, which implements
 * it. A test or another driver can provide its own. Each method returns `null` for a value the
 * device cannot report.
 */
export interface GpuDevice {
  instantPowerW(): number | null;
  memoryInfo(): NvmlMemoryInfo | null;
  temperatureC(): number | null;
  utilization(): NvmlUtilization | null;
  smClockMHz(): number | null;
  clockEventReasonsMask(): number | null;
}

/**
 * Calls a {@link GpuDevice} method at most once per sample (`memoryInfo` feeds two readings) and
 * returns its result.
 */
export type DeviceCall = <M extends keyof GpuDevice>(method: M) => ReturnType<GpuDevice[M]>;

/** One row of {@link GPU_READINGS}. */
export interface GpuReading<K extends string = string> {
  /** Field name in a sample (camelCase, unit suffix). */
  readonly key: K;
  /** Unit of the value, for people and charts. */
  readonly unit: string;
  /** Column name in the timeseries CSV (snake_case). */
  readonly column: string;
  readonly description: string;
  /** Take the value from this sample's device calls; `null` when unreadable. */
  readonly read: (call: DeviceCall) => number | null;
}

/**
 * Every GPU reading a sample holds, in CSV column order. A value is a number or `null` (the
 * device could not report it), never a made-up 0.
 *
 * @example
 * GPU_READINGS.map((r) => `${r.column} (${r.unit})`); // ['power_w (W)', 'memory_used_mib (MiB)', …]
 */
export const GPU_READINGS = [
  {
    key: 'powerW',
    unit: 'W',
    column: 'power_w',
    description: 'Instantaneous board power (the averaged reading where unsupported)',
    read: (call) => call('instantPowerW'),
  },
  {
    key: 'memoryUsedMiB',
    unit: 'MiB',
    column: 'memory_used_mib',
    description: 'Device memory in use (v2 API: without driver-reserved memory)',
    read: (call) => call('memoryInfo')?.usedMiB ?? null,
  },
  {
    key: 'memoryTotalMiB',
    unit: 'MiB',
    column: 'memory_total_mib',
    description: 'Device memory in total',
    read: (call) => call('memoryInfo')?.totalMiB ?? null,
  },
  {
    key: 'temperatureC',
    unit: '°C',
    column: 'temperature_c',
    description: 'GPU core temperature',
    read: (call) => call('temperatureC'),
  },
  {
    key: 'utilizationGpuPct',
    unit: '%',
    column: 'utilization_gpu_pct',
    description: 'Share of the last sample period a kernel was running',
    read: (call) => call('utilization')?.gpuPct ?? null,
  },
  {
    key: 'smClockMHz',
    unit: 'MHz',
    column: 'sm_clock_mhz',
    description: 'Current SM clock',
    read: (call) => call('smClockMHz'),
  },
  {
    key: 'clockEventReasons',
    unit: 'bitmask',
    column: 'clock_event_reasons',
    description: 'Clock-event (throttle) reason bits; decodeClockEventReasons(mask) names them',
    read: (call) => call('clockEventReasonsMask'),
  },
] as const satisfies readonly GpuReading[];

/** The name of one reading: `powerW`, `memoryUsedMiB`, … */
export type GpuReadingKey = (typeof GPU_READINGS)[number]['key'];

/** One value per reading of {@link GPU_READINGS}. */
export type GpuReadings = { [K in GpuReadingKey]: number | null };

/**
 * Take every reading of {@link GPU_READINGS} from a device once. A reading whose method throws
 * is `null`, like one the device refuses, so a sampler never dies of one bad value.
 *
 * @example
 * const readings = readGpu(nvml.device(0)); // { powerW: 72.5, memoryUsedMiB: 1, … }
 */
export function readGpu(device: GpuDevice): GpuReadings {
  const call = deviceCall(device);
  const out = {} as GpuReadings;
  for (const reading of GPU_READINGS) out[reading.key] = safeRead(reading, call);
  return out;
}

/** A {@link DeviceCall} over `device` that remembers each method's result for one sample. */
export function deviceCall(device: GpuDevice): DeviceCall {
  const seen: { [M in keyof GpuDevice]?: ReturnType<GpuDevice[M]> } = {};
  return (method) => {
    if (!(method in seen)) seen[method] = device[method]() as never;
    return seen[method] as ReturnType<GpuDevice[typeof method]>;
  };
}

/** One reading's value, `null` when its read throws. */
export function safeRead(reading: GpuReading, call: DeviceCall): number | null {
  try {
    return reading.read(call);
  } catch {
    return null;
  }
}
