export type {
  BuildWorkloadOptions,
  DatasetConfig,
  DatasetSource,
  DatasetSummary,
  StudyDataset,
  SyntheticDataset,
  Workload,
} from './dataset';
export {
  buildRequests,
  buildWarmupRequests,
  buildWorkload,
  checkDatasets,
  datasetSize,
  estimateTokens,
  loadDataset,
  summariseDataset,
  summariseSource,
  syntheticPrompts,
  warmupSeed,
} from './dataset';
export type { ChannelEnergy, ChannelReading, EnergyChannel } from './energy/channel';
export { channelEnergy, readChannels, trapezoidJ } from './energy/channel';
export type {
  ChannelIntervalEnergy,
  CounterLimits,
  CounterPoint,
  IntervalEnergy,
  PowerPoint,
} from './energy/interval';
export {
  channelEnergyInInterval,
  counterEnergyInInterval,
  MIN_COUNTER_READS_INSIDE,
  powerEnergyInInterval,
} from './energy/interval';
export type { RaplProbe } from './energy/rapl';
export { DEFAULT_POWERCAP_ROOT, probeRapl } from './energy/rapl';
export { peakRssMiB, snapshotEnvironment } from './environment';
export type { MeasurementErrorCode } from './errors';
export { MeasurementError } from './errors';
export type {
  BackgroundGpuSampler,
  GpuProbe,
  GpuSample,
  GpuSampleAt,
  GpuStaticInfo,
} from './gpu';
export { THROTTLE_MASK, THROTTLE_REASON_BITS, throttleReasonNames } from './gpu';
export type {
  GpuProbeOutcome,
  HarnessConfig,
  MeasureDeps,
  MeasureInput,
  MeasureOutput,
} from './harness';
export { DEFAULT_COUNTER_INTERVAL_MS, measureRun } from './harness';
export type { MissingInput } from './inputs';
export {
  FULL_HASH_LIMIT_BYTES,
  fileIdentity,
  identifyInputs,
  missingInputFiles,
  SAMPLE_SLICE_BYTES,
} from './inputs';
export type { LatencySamples, Throughput } from './metrics';
export {
  baselineAdjusted,
  chunkGapsMs,
  computeLatency,
  computeThroughput,
  energyPerOutputToken,
  estimateFlops,
  latencySamples,
  requestTpotMs,
} from './metrics';
export { openNvmlGpuProbe } from './nvml-probe';
export type { PhaseEnergyInput, PhaseRequest } from './phases';
export { phaseEnergy } from './phases';
export { measuredRequests, writeRequestRecords } from './requests';
export type { Sampler, SamplerOptions, TimeseriesRow } from './sampler';
export { startSampler, timeseriesCsv } from './sampler';
export type { TimedScrape } from './server-metrics';
export { metricsFileLines, summariseServerMetrics } from './server-metrics';
export { latencyStats } from './stats';
export type {
  SteadyStateEnergy,
  SteadyStateEnergyInput,
  SteadyStateSpan,
} from './steady-state';
export { MIN_STEADY_STATE_SAMPLES, steadyStateEnergy, steadyStateSpan } from './steady-state';
export type { LlemRunnerOptions } from './study-options';
export { llemRunnerOptions } from './study-options';
export type { DatasetSize, TimeoutContext } from './timeout';
export {
  runTimeoutS,
  TIMEOUT_DEFAULT_PROMPTS,
  TIMEOUT_FLOOR_S,
  TIMEOUT_PER_TOKEN_S,
} from './timeout';
export type { WarmupConfig, WarmupOutcome } from './warmup';
export { runWarmup, warmupRequestCount } from './warmup';
export type { WarningInputs, WarningThresholds } from './warnings';
export {
  clientSaturationWarning,
  DEFAULT_WARNING_THRESHOLDS,
  measurementWarnings,
} from './warnings';
