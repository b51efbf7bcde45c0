export type {
  BaselineConfig,
  BuiltinModelName,
  CommandConfig,
  CommandExperimentConfig,
  DatasetConfig,
  DecoderConfig,
  DecoderPreset,
  EnergyConfig,
  EngineName,
  ExperimentConfig,
  ExperimentConfigInput,
  KvCacheType,
  LlamaCppConfig,
  LlamaCppExperimentConfig,
  OpenaiConfig,
  OpenaiExperimentConfig,
  PartialExperimentInput,
  ServerConfig,
  SyntheticDataset,
  WarmupConfig,
} from './config';
export {
  BaselineSchema,
  BUILTIN_MODELS,
  BUILTIN_TINY_MODEL,
  CommandSchema,
  DatasetSchema,
  DECODER_PRESETS,
  DecoderSchema,
  ENERGY_BACKENDS,
  ENGINE_NAMES,
  EnergySchema,
  ExperimentConfigSchema,
  fillPort,
  formatCommandLine,
  isBuiltinModel,
  KV_CACHE_TYPES,
  LlamaCppSchema,
  OpenaiSchema,
  PartialExperimentSchema,
  PORT_TEMPLATE,
  ServerMetricsSchema,
  ServerReadySchema,
  ServerSchema,
  SloSchema,
  SyntheticDatasetSchema,
  serverCommandLine,
  usesPortTemplate,
  WarmupSchema,
} from './config';
export type { ConfigErrorCode, ConfigErrorOptions, ConfigIssue } from './errors';
export { CONFIG_ERROR_CODES, ConfigError, formatConfigIssues } from './errors';
export {
  canonicalJson,
  configHash,
  designHashFromConfigHashes,
  HASH_EXCLUDED_FIELDS,
  hashParsedConfig,
  measurementConfigHash,
  studyDesignHash,
} from './hash';
export { studyJsonSchema } from './json-schema';
export type {
  Manifest,
  ManifestCounts,
  ManifestEntry,
  ManifestEntryStatus,
  ManifestError,
  ManifestStatus,
  RunFailureType,
} from './manifest';
export {
  countManifestEntries,
  MANIFEST_SCHEMA_VERSION,
  ManifestCountsSchema,
  ManifestEntrySchema,
  ManifestEntryStatusSchema,
  ManifestErrorSchema,
  ManifestSchema,
  ManifestStatusSchema,
  RUN_FAILURE_TYPES,
  RunFailureTypeSchema,
} from './manifest';
export type { ParseStudyOptions, StudyFormat } from './parse';
export { formatFromFileName, parseStudyText } from './parse';
export type {
  PlannedConfig,
  PlannedConfigOf,
  PlanOf,
  PlanOptions,
  ScheduledRun,
  SkippedConfig,
  StudyPlan,
} from './plan';
export { deepMerge, devicesPerRun, orderRuns, planGrid, planStudy, runKey } from './plan';
export { QUICKSTART_FILE, quickstartStudy } from './quickstart';
export { mulberry32, seededShuffle } from './random';
export type { InvalidRequestLine, MeasuredRequest, ServerTimingsRecord } from './requests';
export { parseRequestRecords, RequestRecordSchema, ServerTimingsSchema } from './requests';
export type {
  DeviceEnergy,
  EnergyDeviceKind,
  EnergyMethod,
  FileIdentity,
  KnownWarningCode,
  LatencyStats,
  PrometheusType,
  ResidualCheck,
  RunDevice,
  RunEnergy,
  RunEnvironment,
  RunInputs,
  RunLatency,
  RunResult,
  RunResultCheck,
  RunServer,
  RunWarning,
  ServerExit,
  ServerMetricSummary,
} from './result';
export {
  checkRunResult,
  DeviceEnergySchema,
  EnergyDeviceKindSchema,
  EnergyMethodSchema,
  EnvironmentSchema,
  FileIdentitySchema,
  FlopsMethodSchema,
  GpuInfoSchema,
  LatencyStatsSchema,
  PROMETHEUS_TYPES,
  PrometheusTypeSchema,
  RESULT_WARNING_CODES,
  ResidualCheckSchema,
  RUN_RESULT_SCHEMA_VERSION,
  RUN_RESULT_SCHEMAS,
  RunEnergySchema,
  RunFlopsSchema,
  RunInputsSchema,
  RunLatencySchema,
  RunMemorySchema,
  RunResultSchema,
  RunServerSchema,
  RunThroughputSchema,
  RunTokensSchema,
  RunWarningSchema,
  RunWindowSchema,
  ServerExitSchema,
  ServerMetricSummarySchema,
  TokenCountSourceSchema,
} from './result';
export type { InvalidMetricsLine, ServerMetricsScrape } from './server-metrics';
export { parseServerMetrics, ServerMetricsScrapeSchema, seriesKey } from './server-metrics';
export { coefficientOfVariation, mean, sampleStd } from './stats';
export type { ExecutionConfig, RunOrder, StudyFileInput } from './study';
export { ExecutionSchema, RUN_ORDERS, StudyFileSchema, SweepSchema } from './study';
export type {
  CliState,
  RunClaim,
  RunFiles,
  RunOwner,
  RunRecord,
  RunRecordStatus,
  SkippedFile,
  StoredStudyFile,
  WorkerErrorReportFile,
} from './study-layout';
export {
  CliStateSchema,
  isValidRunKey,
  RUN_CLAIM_SCHEMA_VERSION,
  RUN_KEY_PATTERN,
  RUN_RECORD_SCHEMA_VERSION,
  RunClaimSchema,
  RunFilePathsSchema,
  RunOwnerSchema,
  RunRecordSchema,
  RunRecordStatusSchema,
  runAsideFile,
  runClaimFile,
  runFiles,
  SkippedFileSchema,
  STUDY_FILES,
  StoredPlanSchema,
  StoredStudySchema,
  studySourceFile,
  WorkerErrorReportSchema,
  WorkerTaskSchema,
} from './study-layout';
export { didYouMean, levenshtein } from './suggest';
export type { ParsedExperimentConfig } from './validate';
export { parseExperimentConfig } from './validate';
