export type {
  CheckOptions,
  PersistenceCheckOptions,
  PersistenceObservation,
  ResidualCheckAllOptions,
  ResidualCheckOptions,
  ResidualObservation,
} from './checks';
export { checkGpuMemoryResidual, checkGpuMemoryResidualAll, checkPersistenceMode } from './checks';
export type { ClockEventReason } from './clock-reasons';
export {
  CLOCK_EVENT_REASON_BITS,
  decodeClockEventReasons,
  THROTTLE_REASONS,
} from './clock-reasons';
export type { NvmlErrorCode, NvmlLibraryAttempt } from './errors';
export { NVML_RETURN_CODES, NvmlError, NvmlLibraryError, nvmlErrorCode } from './errors';
export { nvmlLibraryCandidates } from './internal/bindings';
export type {
  NvmlClockEvents,
  NvmlClocks,
  NvmlMemoryInfo,
  NvmlOpenOptions,
  NvmlProcess,
  NvmlUtilization,
} from './nvml';
export { bytesToMiB, formatCudaVersion, MIB, Nvml, NvmlDevice } from './nvml';
export type { DeviceCall, GpuDevice, GpuReading, GpuReadingKey, GpuReadings } from './readings';
export { GPU_READINGS, readGpu } from './readings';
export type { PowerSample, PowerSamplerOptions, SamplerThread, SamplerTimers } from './sampler';
export { PowerSampler } from './sampler';
