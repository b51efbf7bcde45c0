export type { ArrivalOptions, Random } from './arrivals';
export { arrivalSchedule, interArrivalGenerator, seededRandom } from './arrivals';
export type {
  OpenAIConfig,
  OpenAIDecoder,
  OpenAIEngineConfig,
  ResolvedOpenAIConfig,
} from './config';
export { resolveOpenAIConfig } from './config';
export type { OpenAIEngineOptions, StartupRetryOptions } from './engine';
export { createOpenAIEngine } from './engine';
export type { OpenAIEngineErrorCode } from './errors';
export { OpenAIEngineError } from './errors';
export type { Goodput, SteadyStateResult, SteadyStateWindow } from './metrics';
export { goodput, steadyStateWindow } from './metrics';
export type { RequestErrorType } from './stream';
