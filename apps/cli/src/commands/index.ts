import type { CommandModule } from 'yargs';
import type { CliContext, GlobalArgs } from '../context';
import { gpuCommand } from './gpu';

/**
 * Every top-level command. Each file under `commands/` exports a factory that takes the
 * CliContext and returns a yargs CommandModule; add one line here per command.
 */
// biome-ignore lint/suspicious/noExplicitAny: yargs command modules vary in their argument types
export type CommandFactory = (ctx: CliContext) => CommandModule<GlobalArgs, any>;

export const commandFactories: CommandFactory[] = [gpuCommand];
