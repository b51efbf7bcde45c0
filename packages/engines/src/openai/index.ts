export type { ArrivalOptions, Random } from './arrivals';
export { arrivalSchedule, interArrivalGenerator, seededRandom } from './arrivals';
export type { ClientLimit, ClientLimitOptions, ClientLimitStep } from './client-limit';
export { measureClientLimit } from './client-limit';
export type {
  OpenAIConfig,
  OpenAIDecoder,
  OpenAIEngineConfig,
  ResolvedOpenAIConfig,
} from './config';
export { resolveOpenAIConfig } from './config';
export type {
  DispatchOptions,
  DispatchReport,
  DispatchStats,
  DispatchTicket,
} from './dispatch';
export { dispatch, dispatchStats, waitStats } from './dispatch';
export type { OpenAIEngineOptions, OpenAIServerCheck, StartupRetryOptions } from './engine';
export { checkOpenAIServer, createOpenAIEngine } from './engine';
export type { OpenAIEngineErrorCode } from './errors';
export { OpenAIEngineError } from './errors';
export type {
  Goodput,
  ServerTimingsSummary,
  SteadyStateResult,
  SteadyStateWindow,
} from './metrics';
export { goodput, serverTimingsSummary, steadyStateWindow } from './metrics';
export type { ServerProblem } from './ready';
export type { RequestErrorType } from './stream';
export { MAX_CONNECTION_RETRIES } from './stream';
