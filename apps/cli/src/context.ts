import type winston from 'winston';
import type { Argv, CommandModule } from 'yargs';

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
  /**
   * How the user started llem, for commands printed in messages ("Resume with: <invocation> run
   * --resume …"): `llem` on the PATH, `pnpm llem` from the repository, `node apps/cli/dist/bin.js`.
   */
  invocation: string;
}

/** The arguments a command's builder declares, as yargs infers them (no casts). */
export type BuilderArgs<B> = B extends (y: Argv<GlobalArgs>) => Argv<infer U> ? U : never;

export interface GlobalArgs {
  verbose: number;
  quiet: boolean;
}

/**
 * A yargs command whose argument types come from its builder (no casts, no hand-kept interface):
 * the handler's `args` are what the builder declares, camelCased.
 *
 * @example
 * defineCommand({ command: 'gpu', describe: '…', builder: (y) => y.option('json', { type: 'boolean', default: false }), handler: (args) => args.json });
 */
export function defineCommand<U>(
  module: CommandModule<GlobalArgs, U> & { builder: (y: Argv<GlobalArgs>) => Argv<U> },
): CommandModule<GlobalArgs, U> {
  return module;
}
