export type {
  CommandEngineErrorCode,
  CommandEngineOptions,
  ProgramLatency,
  ProgramReport,
} from './command/index';
export { CommandEngineError, createCommandEngine, killAllProcessGroups } from './command/index';
export type { CreateEngineOptions } from './create';
export { createEngine } from './create';
export type {
  Engine,
  EngineContext,
  EngineInfo,
  EngineRequest,
  EngineTokenizer,
  LoadPoint,
  RequestRecord,
  RunHooks,
  RunOptions,
  ServerTimings,
  TokenCountSource,
  TokenizerProbe,
  WorkloadOutcome,
} from './engine';
export type {
  GgufModelMetadata,
  LlamaCppEngineErrorCode,
  LlamaCppEngineOptions,
} from './llamacpp/index';
export { createLlamaCppEngine, LlamaCppEngineError, readGgufMetadata } from './llamacpp/index';
export type {
  ArrivalOptions,
  ClientLimit,
  ClientLimitOptions,
  ClientLimitStep,
  DispatchOptions,
  DispatchReport,
  DispatchStats,
  DispatchTicket,
  Goodput,
  OpenAIConfig,
  OpenAIDecoder,
  OpenAIEngineConfig,
  OpenAIEngineErrorCode,
  OpenAIEngineOptions,
  OpenAILoadMode,
  OpenAIServerCheck,
  OpenAISweepMode,
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
  dispatch,
  dispatchStats,
  goodput,
  interArrivalGenerator,
  MAX_CONNECTION_RETRIES,
  measureClientLimit,
  OpenAIEngineError,
  resolveOpenAIConfig,
  seededRandom,
  serverTimingsSummary,
  steadyStateWindow,
  waitStats,
} from './openai/index';
export { requestTpotMs } from './request';
export type {
  ManagedServer,
  ManagedServerErrorCode,
  ManagedServerOptions,
  MetricsScrapeOutcome,
  PrometheusSample,
  PrometheusText,
  ServerProcessExit,
  ServerStop,
  SpawnInGroup,
} from './server/index';
export {
  familyOf,
  logTail,
  ManagedServerError,
  parsePrometheusText,
  pickFreePort,
  portIsFree,
  startManagedServer,
} from './server/index';
export type { EnsureTinyModelOptions, TinyModelSpec } from './tiny/index';
export {
  BUILTIN_MODEL_SPECS,
  defaultModelCacheDir,
  ensureTinyModel,
  microModelSpec,
  tinyModelFileName,
  tinyModelSpec,
  tinyModelVersion,
} from './tiny/index';
