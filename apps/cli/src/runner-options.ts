import { checkRunResult, type ExperimentConfig } from '@llem/domain';
import { workerModuleFor } from './commands/run';
import type { CliContext } from './context';
import { cliVersion } from './version';

/**
 * What every llem runner of a study is told, wherever it runs (this process, a Slurm task):
 * llem's result check for resume, each config's own GPU count, its logger and version. The
 * same choices as `llem run`'s local runner.
 */
export function llemStudyOptions(ctx: CliContext) {
  return {
    logger: ctx.logger,
    toolVersion: cliVersion,
    // Many GPUs: a config's own devices_per_run, else the study's (the runner's default).
    devicesPerRun: (config: ExperimentConfig) => config.devices_per_run,
    // On resume, a result that is not what the llem that wrote it writes is measured again.
    verifyResult: (value: unknown) => {
      const check = checkRunResult(value);
      return check.status === 'invalid'
        ? { ok: false as const, reason: `does not match the result schema (${check.reason})` }
        : { ok: true as const };
    },
  };
}

/** `llemStudyOptions` plus what a runner that forks llem's worker needs. */
export function llemRunnerOptions(ctx: CliContext, baseDir: string) {
  const { workerModule, execArgv } = workerModuleFor();
  return {
    ...llemStudyOptions(ctx),
    workerModule,
    execArgv,
    env: ctx.env,
    // The worker's working directory: relative dataset and command paths resolve against the
    // study file's directory, as documented for the config.
    cwd: baseDir,
    // Runs against a server llem did not start would measure each other's load.
    exclusiveGroup: (config: ExperimentConfig) =>
      config.engine === 'openai' ? 'openai runs against an external server' : null,
  };
}
