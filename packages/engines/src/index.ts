export type {
  CommandEngineConfig,
  CommandEngineOptions,
  CommandSection,
  ProgramLatency,
  ProgramReport,
} from './command/index';
export { CommandEngineError, createCommandEngine, killAllProcessGroups } from './command/index';
export type { CreateEngineOptions, EngineSelectingConfig } from './create';
export { createEngine } from './create';
export type {
  Engine,
  EngineContext,
  EngineInfo,
  EngineName,
  EngineRequest,
  RequestRecord,
  RunHooks,
  ServerTimings,
  TokenCountSource,
  WorkloadOutcome,
} from './engine';
export type {
  DecoderSection,
  GgufModelMetadata,
  KvCacheType,
  LlamaCppEngineConfig,
  LlamaCppEngineErrorCode,
  LlamaCppEngineOptions,
  LlamaCppSection,
} from './llamacpp/index';
export {
  createLlamaCppEngine,
  KV_CACHE_TYPES,
  LlamaCppEngineError,
  readGgufMetadata,
  resolveDecoder,
  resolveLlamaCppSettings,
} from './llamacpp/index';
export type {
  ArrivalOptions,
  Goodput,
  OpenAIConfig,
  OpenAIDecoder,
  OpenAIEngineConfig,
  OpenAIEngineErrorCode,
  OpenAIEngineOptions,
  OpenAIServerCheck,
  Random,
  RequestErrorType,
  ResolvedOpenAIConfig,
  ServerProblem,
  ServerTimingsSummary,
  StartupRetryOptions,
  SteadyStateResult,
  SteadyStateWindow,
} from './openai/index';
export {
  arrivalSchedule,
  checkOpenAIServer,
  createOpenAIEngine,
  goodput,
  interArrivalGenerator,
  MAX_CONNECTION_RETRIES,
  OpenAIEngineError,
  resolveOpenAIConfig,
  seededRandom,
  serverTimingsSummary,
  steadyStateWindow,
} from './openai/index';
export type { BuiltinModelName, EnsureTinyModelOptions, TinyModelSpec } from './tiny/index';
export {
  BUILTIN_MODELS,
  defaultModelCacheDir,
  ensureTinyModel,
  isBuiltinModel,
  microModelSpec,
  tinyModelFileName,
  tinyModelSpec,
  tinyModelVersion,
} from './tiny/index';
