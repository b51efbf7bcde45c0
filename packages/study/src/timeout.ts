import type { SlurmSettings } from '@llem/domain';

/** The execution fields the runner reads (snake_case, as in the study file). */
export interface ExecutionSettings {
  cycles?: number;
  experiment_gap_s?: number | null;
  cycle_gap_s?: number | null;
  timeout_s?: number | null;
  residual_memory_threshold_mb?: number | null;
  /** GPUs the study may use (NVML indices or UUIDs): runs go in parallel on disjoint sets. */
  devices?: ReadonlyArray<number | string> | null;
  /** GPUs each run is given from `devices` (default 1; see `StudyRunner`'s `devicesPerRun`). */
  devices_per_run?: number | null;
  /** How `submitSlurmStudy` submits the study (`execution.slurm`). */
  slurm?: SlurmSettings | null;
}

/** A run's timeout when neither `execution.timeout_s` nor the runner's `timeoutS` gives one. */
export const DEFAULT_RUN_TIMEOUT_S = 3600;

/**
 * A run's timeout in seconds: `execution.timeout_s` when set, else what `timeoutS(config)` says
 * (llem derives it from the workload: `@llem/measure`'s `runTimeoutS`), else one hour.
 *
 * @example
 * runTimeout({ timeout_s: 600 }, config, () => 120); // 600
 */
export function runTimeout<Config>(
  execution: ExecutionSettings,
  config: Config,
  timeoutS?: (config: Config) => number,
): number {
  if (typeof execution.timeout_s === 'number' && execution.timeout_s > 0)
    return execution.timeout_s;
  const derived = timeoutS?.(config);
  return typeof derived === 'number' && derived > 0 ? derived : DEFAULT_RUN_TIMEOUT_S;
}
