import type { ExecutionSettings } from './timeout';

/**
 * The parts of `@llem/domain`'s `StudyPlan` the runner reads. Structural on purpose: a library
 * user can hand-build a plan for a worker of their own without the llem config schema.
 */
export interface RunnerPlan<Config = unknown> {
  name: string;
  /** 16 lowercase hex characters: the study design hash. */
  designHash: string;
  execution: ExecutionSettings;
  configs: ReadonlyArray<{ index: number; label: string; configHash: string; config: Config }>;
  /** Every scheduled run, in the order to run them. */
  runs: ReadonlyArray<{
    key: string;
    configIndex: number;
    configHash: string;
    copy: number;
    cycle: number;
    ordinal: number;
  }>;
}

/** The content of `study.json`. */
export interface StoredStudy<Config = unknown> {
  schemaVersion: 1;
  toolVersion: string;
  createdAt: string;
  plan: RunnerPlan<Config>;
}
