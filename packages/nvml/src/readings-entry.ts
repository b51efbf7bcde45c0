// `@llem/nvml/readings`: the GPU readings table and clock-event decoding, without koffi or NVML,
// for code that handles samples (timeseries files, warnings) but must load on any machine.
export type { ClockEventReason } from './clock-reasons';
export {
  CLOCK_EVENT_REASON_BITS,
  decodeClockEventReasons,
  THROTTLE_REASONS,
} from './clock-reasons';
export type { NvmlMemoryInfo, NvmlUtilization } from './nvml';
export type { DeviceCall, GpuDevice, GpuReading, GpuReadingKey, GpuReadings } from './readings';
export { GPU_READINGS, readGpu } from './readings';
