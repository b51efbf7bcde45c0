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
export type {
  CommandEngineConfig,
  CommandEngineOptions,
  CommandSection,
  ProgramLatency,
  ProgramReport,
} from './command/index';
export { CommandEngineError, createCommandEngine, killAllProcessGroups } from './command/index';
