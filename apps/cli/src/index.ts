export { ExitCode, exitCodeFor } from './errors';
export { createCliLogger, levelFromVerbosity } from './logger';
export { buildCli, main } from './main';
