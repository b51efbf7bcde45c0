import type { CommandModule } from 'yargs';
import type { CliContext, GlobalArgs } from '../context';
import { configCommand } from './config';
import { doctorCommand } from './doctor';
import { gpuCommand } from './gpu';
import { reportCommand } from './report';
import { resultsCommand } from './results';
import { runCommand } from './run';
import { slurmTaskCommand } from './slurm-task';

/**
 * Every top-level command. Each file under `commands/` exports a factory that takes the
 * CliContext and returns a yargs CommandModule; add one line here per command.
 */
// biome-ignore lint/suspicious/noExplicitAny: yargs command modules vary in their argument types
export type CommandFactory = (ctx: CliContext) => CommandModule<GlobalArgs, any>;

export const commandFactories: CommandFactory[] = [
  configCommand,
  gpuCommand,
  runCommand,
  reportCommand,
  resultsCommand,
  doctorCommand,
  slurmTaskCommand,
];
