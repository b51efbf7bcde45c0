export type {
  Engine,
  EngineContext,
  EngineInfo,
  EngineName,
  EngineRequest,
  RequestRecord,
  RunHooks,
  TokenCountSource,
  WorkloadOutcome,
} from './engine';
