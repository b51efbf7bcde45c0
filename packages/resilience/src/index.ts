export type { Logger } from './logger';
export { noopLogger } from './logger';
