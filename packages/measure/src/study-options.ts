import { checkRunResult, type ExperimentConfig } from '@llem/domain';
import { type Logger, noopLogger } from '@llem/resilience';
import { type DatasetSize, runTimeoutS } from './timeout';

/** What `llemRunnerOptions` gives a `@llem/study` `StudyRunner` for llem's own configs. */
export interface LlemRunnerOptions {
  devicesPerRun: (config: ExperimentConfig) => number | undefined;
  exclusiveGroup: (config: ExperimentConfig) => string | null;
  runDevices: (config: ExperimentConfig) => number[];
  timeoutS: (config: ExperimentConfig) => number;
  verifyResult: (value: unknown) => { ok: true } | { ok: false; reason: string };
}

/**
 * The llem-specific parts of a `StudyRunner` for llem's experiment configs (the runner itself is
 * generic): how many GPUs a run takes (`devices_per_run`), which runs never overlap (`openai`
 * against a server llem did not start: they would measure each other's load; a run with a
 * `server` section starts its own and may run beside others on its own GPUs), which GPUs the
 * residual check looks at (`energy.devices`), the derived run timeout (`runTimeoutS`, dataset
 * files resolved against `cwd`), and the result check on resume (`checkRunResult`).
 *
 * @example
 * new StudyRunner({ plan, workerModule, cwd, ...llemRunnerOptions({ cwd, logger }) });
 */
export function llemRunnerOptions(options: { cwd: string; logger?: Logger }): LlemRunnerOptions {
  const logger = options.logger ?? noopLogger;
  // Each dataset file is read (and warned about) once per study.
  const datasetSizes = new Map<string, DatasetSize | null>();
  return {
    devicesPerRun: (config) => config.devices_per_run,
    // A run with a managed server has its own server on its own GPUs: it may run beside others.
    exclusiveGroup: (config) =>
      config.engine === 'openai' && config.server === undefined
        ? 'openai runs against an external server'
        : null,
    runDevices: (config) => config.energy.devices,
    timeoutS: (config) => runTimeoutS({}, config, { cwd: options.cwd, logger, datasetSizes }),
    verifyResult: (value) => {
      const check = checkRunResult(value);
      return check.status === 'invalid'
        ? { ok: false, reason: `does not match the result schema (${check.reason})` }
        : { ok: true };
    },
  };
}
