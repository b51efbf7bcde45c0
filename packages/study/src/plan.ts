import type { PlanOf } from '@llem/domain';
import type { ExecutionSettings } from './timeout';

/**
 * The plan the runner runs: `@llem/domain`'s `PlanOf` over a config type of your own (llem's
 * `StudyPlan` is one). Build one for a grid of your own with `@llem/domain`'s `planGrid`, which
 * computes the config hashes, design hash, run keys and order.
 */
export type RunnerPlan<Config = unknown> = PlanOf<Config, ExecutionSettings>;

/** The content of `study.json`. */
export interface StoredStudy<Config = unknown> {
  schemaVersion: 1;
  toolVersion: string;
  createdAt: string;
  plan: RunnerPlan<Config>;
}
