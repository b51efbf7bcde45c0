import type winston from 'winston';

/** What every command handler receives besides its parsed arguments. */
export interface CliContext {
  logger: winston.Logger;
  /** Where results go (stdout in production; a buffer in tests). */
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  /** Where progress and human chatter go (stderr in production). */
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Set by a handler to the exit code it wants; 0 when left alone. */
  exitCode: number;
}

export interface GlobalArgs {
  verbose: number;
  quiet: boolean;
}
