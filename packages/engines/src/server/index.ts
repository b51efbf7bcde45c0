export type { ManagedServerErrorCode } from './errors';
export { ManagedServerError } from './errors';
export type {
  ManagedServer,
  ManagedServerOptions,
  MetricsScrapeOutcome,
  ServerProcessExit,
  ServerStop,
  SpawnInGroup,
} from './managed';
export { logTail, startManagedServer } from './managed';
export { pickFreePort, portIsFree } from './port';
export type { PrometheusSample, PrometheusText } from './prometheus';
export { familyOf, parsePrometheusText } from './prometheus';
