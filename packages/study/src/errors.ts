import { LlemError } from '@llem/resilience';

/** Every code `@llem/study` throws. */
export type StudyErrorCode = 'STUDY' | 'STUDY_DESIGN_CHANGED' | 'STUDY_DEVICES' | 'SLURM';

/**
 * The few error classes `@llem/study` throws. Each has a `name` the CLI maps to an exit code
 * (`apps/cli/src/errors.ts`), a string-literal `code`, and an optional `cause`.
 */

/** A runtime problem with the study directory or the worker module (exit 1, no stack). */
export class StudyError extends LlemError<'STUDY'> {
  override readonly name = 'StudyError';
  readonly code = 'STUDY' as const;
  readonly source = 'study' as const;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * `--resume` was asked to continue a study whose design changed since it started (a different
 * study design hash). Mixing results of two designs in one study would be silently wrong, so the
 * runner refuses unless `force` is set. The CLI maps this name to exit 2.
 */
export class StudyDesignChangedError extends LlemError<'STUDY_DESIGN_CHANGED'> {
  override readonly name = 'StudyDesignChangedError';
  readonly code = 'STUDY_DESIGN_CHANGED' as const;
  readonly source = 'study' as const;
  readonly studyDir: string;
  readonly expectedHash: string;
  readonly actualHash: string;

  /** What changed, e.g. `3 runs added, 2 removed (cycles 2 → 4)`; `null` when not known. */
  readonly changes: string | null;

  constructor(studyDir: string, expectedHash: string, actualHash: string, changes?: string) {
    const what =
      expectedHash === actualHash
        ? `the study in ${studyDir} was started with design hash ${expectedHash} and the study ` +
          `given now has the same configurations, but its scheduled runs changed`
        : `the study in ${studyDir} was started with design hash ${expectedHash}, but the study ` +
          `given now has design hash ${actualHash}: the configurations changed`;
    super(
      `${what}${changes ? ` (${changes})` : ''}. Start a new study, or pass --force to resume ` +
        `with the new design: new runs are added, runs no longer scheduled are dropped unless ` +
        `they completed (completed results are always kept).`,
    );
    this.changes = changes ?? null;
    this.studyDir = studyDir;
    this.expectedHash = expectedHash;
    this.actualHash = actualHash;
  }
}

/**
 * `execution.devices` names a GPU this machine does not have (an index NVML does not see, a UUID
 * no GPU has), or names UUIDs where NVML cannot be opened. A mistake in the study file: the CLI
 * maps this name to exit 2.
 */
export class StudyDevicesError extends LlemError<'STUDY_DEVICES'> {
  override readonly name = 'StudyDevicesError';
  readonly code = 'STUDY_DEVICES' as const;
  readonly source = 'study' as const;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * A Slurm command failed (sbatch refused the job: an unknown partition, account or QOS; Slurm is
 * not installed or unreachable), or a Slurm array task was started with a submission or task id
 * its study does not have. The message says which and what Slurm said (the CLI exits 1).
 */
export class SlurmError extends LlemError<'SLURM'> {
  override readonly name = 'SlurmError';
  readonly code = 'SLURM' as const;
  readonly source = 'study' as const;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
