export { main, buildCli } from './main';
export { ExitCode, exitCodeFor } from './errors';
export { createCliLogger, levelFromVerbosity } from './logger';
