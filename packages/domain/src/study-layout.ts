import { z } from 'zod';
import { RunFailureTypeSchema } from './manifest';
import { ResidualCheckSchema, RunDeviceSchema, RunSlurmSchema } from './result';

/**
 * The study directory's layout: the one place that names every file a study directory holds and
 * gives each JSON file its schema. The runner, the worker, the report and the CLI build paths only
 * through `STUDY_FILES` and `runFiles`, and read files only through these schemas, so no package
 * guesses another's file names.
 *
 * ```
 * <study dir>/
 *   study.json               StoredStudySchema   the resolved plan (what resume runs)
 *   study.source.yaml|json   —                   the study file as the user wrote it
 *   manifest.json            ManifestSchema      an index rebuilt from the records; never the source of truth
 *   cli.json                 CliStateSchema      what the CLI needs to resume (relative-path base)
 *   skipped.json             SkippedFileSchema   configs the plan rejected, with reasons
 *   llem.log                 —                   the CLI's log (JSON lines, every runner appends)
 *   summary.csv, summary_by_config.csv, pareto.csv, report.html    the report
 *   runs/
 *     <key>.record.json      RunRecordSchema     the run's state: status, attempts, owner, times, error
 *     <key>.claim-<n>        RunClaimSchema      generation n of the run's claim (created exclusively)
 *     <key>.task.json        WorkerTaskSchema    what the runner hands the worker
 *     <key>.json             (result)            the result; published once, never overwritten
 *     <key>.error.json       WorkerErrorReportSchema  why the worker failed
 *     <key>.log              —                   the worker's stdout and stderr
 *     <key>.timeseries.csv   —                   sampler timeseries (power, memory, clocks…)
 *     <key>.requests.jsonl   —                   one line per measured request (openai)
 *     <key>.server.log       —                   a managed server's stdout and stderr
 *     <key>.metrics.jsonl    —                   a managed server's scraped /metrics
 *   slurm/                                       (llem run --executor slurm)
 *     submission-<n>.json    SlurmSubmissionSchema    submission n: its job id, the runs of each array task
 *     submission-<n>.sbatch  —                   the batch script every task of submission n runs
 *     submission-<n>_<job>_<task>.log  —         an array task's stdout and stderr (sbatch --output)
 * ```
 *
 * Paths here are relative to the study directory and use `/`; `@llem/study`'s `StudyDirectory`
 * resolves them. Pure: this module names files, it never touches them.
 */

/** Files at the top of a study directory. */
export const STUDY_FILES = {
  /** The resolved plan (`StoredStudySchema`): everything `--resume` needs. */
  study: 'study.json',
  /** The manifest (`ManifestSchema`): an index of the records, rebuilt whenever it is missing. */
  manifest: 'manifest.json',
  /** The CLI's state for resume (`CliStateSchema`). */
  cliState: 'cli.json',
  /** Configs the plan rejected (`SkippedFileSchema`). */
  skipped: 'skipped.json',
  /** The CLI's log file. */
  log: 'llem.log',
  /** Per-run files live here. */
  runsDir: 'runs',
  /** Who holds which GPU (and exclusive group) right now: `<resource>~<holder>` files. */
  resourcesDir: 'resources',
  /** Slurm submissions (`slurmSubmissionFiles`) live here. */
  slurmDir: 'slurm',
  summary: 'summary.csv',
  summaryByConfig: 'summary_by_config.csv',
  pareto: 'pareto.csv',
  report: 'report.html',
} as const;

/** The copy of the study file as written: `study.source.yaml` or `study.source.json`. */
export function studySourceFile(format: 'yaml' | 'json'): string {
  return `study.source.${format}`;
}

/** The per-run files of one run, relative to the study directory. */
export interface RunFiles {
  /** The run's state (`RunRecordSchema`), rewritten atomically by the run's owner. */
  record: string;
  /** The result JSON; published once with a no-clobber link, never overwritten. */
  result: string;
  /** What a failing worker writes (`WorkerErrorReportSchema`). */
  error: string;
  /** The task the runner hands the worker (`WorkerTaskSchema`). */
  task: string;
  /** The worker's stdout and stderr. */
  log: string;
  /** The sampler timeseries, CSV. */
  timeseries: string;
  /** Per-request records, JSON lines. */
  requests: string;
  /** A managed server's stdout and stderr. */
  serverLog: string;
  /** A managed server's scraped metrics, JSON lines. */
  metrics: string;
}

/**
 * A run key is one path segment of letters, digits, `_` and `-` (no `.`, so a key never reads
 * as another key's file: `x.record` would). llem's keys are `<configHash>_c<cycle>`
 * (`<configHash>_<copy>_c<cycle>` for copies).
 */
export const RUN_KEY_PATTERN = /^[A-Za-z0-9_-]{1,200}$/;

/** True when `key` can name a run's files. */
export function isValidRunKey(key: string): boolean {
  return RUN_KEY_PATTERN.test(key);
}

/**
 * Every file of one run, relative to the study directory.
 *
 * @example
 * runFiles('fc4e8e2bd1a03c55_c0').result; // 'runs/fc4e8e2bd1a03c55_c0.json'
 */
export function runFiles(key: string): RunFiles {
  if (!isValidRunKey(key)) {
    throw new TypeError(
      `run key ${JSON.stringify(key)} cannot name a file: use letters, digits, "_" and "-"`,
    );
  }
  const base = `${STUDY_FILES.runsDir}/${key}`;
  return {
    record: `${base}.record.json`,
    result: `${base}.json`,
    error: `${base}.error.json`,
    task: `${base}.task.json`,
    log: `${base}.log`,
    timeseries: `${base}.timeseries.csv`,
    requests: `${base}.requests.jsonl`,
    serverLog: `${base}.server.log`,
    metrics: `${base}.metrics.jsonl`,
  };
}

/**
 * Generation `generation` (1, 2, …) of a run's claim. A claim is created exclusively; a stale one
 * is superseded by creating the next generation, never by deleting it, so exactly one of several
 * runners racing for a run wins. The highest existing generation is the current claim.
 */
export function runClaimFile(key: string, generation: number): string {
  if (!Number.isInteger(generation) || generation < 1) {
    throw new TypeError(`claim generation must be an integer ≥ 1, got ${generation}`);
  }
  runFiles(key); // validates the key
  return `${STUDY_FILES.runsDir}/${key}.claim-${generation}`;
}

/**
 * The key of the run a file in `runs/` belongs to, and which of its files it is: `record`,
 * `result`, `claim` (with its generation)…; `null` for a name that is no run file.
 *
 * @example
 * runFileOf('abc_c0.claim-2'); // { key: 'abc_c0', kind: 'claim', generation: 2 }
 */
export function runFileOf(
  name: string,
):
  | { key: string; kind: keyof RunFiles }
  | { key: string; kind: 'claim'; generation: number }
  | null {
  const claim = /^([A-Za-z0-9_-]+)\.claim-(\d+)$/.exec(name);
  if (claim) return { key: claim[1] as string, kind: 'claim', generation: Number(claim[2]) };
  const dot = name.indexOf('.');
  if (dot <= 0) return null;
  const key = name.slice(0, dot);
  if (!isValidRunKey(key)) return null;
  const files = runFiles(key);
  for (const [kind, path] of Object.entries(files) as [keyof RunFiles, string][]) {
    if (path === `${STUDY_FILES.runsDir}/${name}`) return { key, kind };
  }
  return null;
}

/**
 * A GPU or an exclusive group as a resource a run holds: `gpu-<UUID>` (unique across hosts), or
 * `gpu-<host>-<index>` when the UUID is unknown, `group-<name>`; always a safe file name.
 */
export function resourceName(
  resource: { gpu: { index: number; uuid: string | null }; host: string } | { group: string },
): string {
  const safe = (text: string) => text.replace(/[^A-Za-z0-9_-]+/g, '_').slice(0, 120);
  if ('group' in resource) return `group-${safe(resource.group)}`;
  return resource.gpu.uuid
    ? `gpu-${safe(resource.gpu.uuid)}`
    : `gpu-${safe(resource.host)}-${resource.gpu.index}`;
}

/**
 * The file saying `holder` holds `resource` (`resources/<resource>~<holder>`): created before
 * the holder looks for other holders, removed when it lets go.
 */
export function resourceHoldFile(resource: string, holder: string): string {
  return `${STUDY_FILES.resourcesDir}/${resource}~${holder}`;
}

/**
 * A result file set aside because resume found it unusable (`<key>.json.damaged-<stamp>`), or a
 * second result that lost a publish race (`<key>.json.conflict-<stamp>`). Never deleted: nothing
 * measured is lost.
 */
export function runAsideFile(key: string, kind: 'damaged' | 'conflict', stamp: string): string {
  return `${runFiles(key).result}.${kind}-${stamp}`;
}

/** The files of Slurm submission `n`, relative to the study directory. */
export interface SlurmSubmissionFiles {
  /** `SlurmSubmissionSchema`: the job id and which runs each array task does. */
  submission: string;
  /** The batch script sbatch was given; every array task of the submission runs it. */
  script: string;
  /**
   * sbatch's `--output` pattern for the tasks' stdout and stderr (`%A`: the array job id,
   * `%a`: the task id); `slurmTaskLogFile` names one task's file.
   */
  logPattern: string;
}

/**
 * The files of Slurm submission `n` (1, 2, …). Each `llem run --executor slurm` (and each resume
 * with it) makes one submission per array job it submits, numbered in order; a number is taken
 * by creating its submission file exclusively, so two resumes at once never share one.
 *
 * @example
 * slurmSubmissionFiles(1).script; // 'slurm/submission-1.sbatch'
 */
export function slurmSubmissionFiles(n: number): SlurmSubmissionFiles {
  if (!Number.isInteger(n) || n < 1) {
    throw new TypeError(`a Slurm submission number is an integer ≥ 1, got ${n}`);
  }
  const base = `${STUDY_FILES.slurmDir}/submission-${n}`;
  return { submission: `${base}.json`, script: `${base}.sbatch`, logPattern: `${base}_%A_%a.log` };
}

/** The log of one array task of submission `n`: its stdout and stderr, as sbatch wrote them. */
export function slurmTaskLogFile(n: number, arrayJobId: string, taskId: number | string): string {
  return slurmSubmissionFiles(n).logPattern.replace('%A', arrayJobId).replace('%a', String(taskId));
}

/** The submission number a file name in `slurm/` names (`submission-3.json` → 3), else `null`. */
export function slurmSubmissionNumber(fileName: string): number | null {
  const match = /^submission-([1-9][0-9]*)\.json$/.exec(fileName);
  return match ? Number(match[1]) : null;
}

const isoTimestamp = z.iso.datetime({ offset: true });
const hash16 = z.string().regex(/^[0-9a-f]{16}$/, 'expected 16 lowercase hex characters');

/** The process that owns a claim or a record: enough to tell whether it is still alive. */
export const RunOwnerSchema = z
  .object({
    /** `os.hostname()` of the runner. */
    host: z.string().min(1),
    pid: z.int().positive(),
    /** Random per runner process: two runners never share one, even with a reused pid. */
    runnerId: z.string().min(1),
    /** The host's boot id (Linux): a claim from before a reboot is stale whatever its pid. */
    bootId: z.string().min(1).optional(),
    /** When the owner process started (Linux: clock ticks since boot): tells a reused pid. */
    processStart: z.string().min(1).optional(),
    /** Present when the runner runs inside a Slurm job. */
    slurm: RunSlurmSchema.extend({
      /**
       * `SLURM_RESTART_COUNT` (0 when unset): a requeued job keeps its job id, so this tells
       * its incarnations apart (a claim of an earlier one is stale).
       */
      restartCount: z.int().nonnegative().optional(),
    })
      .strict()
      .optional(),
  })
  .strict();
export type RunOwner = z.infer<typeof RunOwnerSchema>;

export const RunRecordStatusSchema = z.enum(['pending', 'running', 'completed', 'failed']);
export type RunRecordStatus = z.infer<typeof RunRecordStatusSchema>;

export const RUN_RECORD_SCHEMA_VERSION = 1 as const;

/**
 * `runs/<key>.record.json`: one run's state, the source of truth for resume and status (the
 * manifest is rebuilt from these). Written atomically (temp file + rename) by the run's owner.
 * A run with no record file is pending.
 */
export const RunRecordSchema = z
  .object({
    schemaVersion: z.literal(RUN_RECORD_SCHEMA_VERSION),
    key: z.string().regex(RUN_KEY_PATTERN),
    configHash: hash16,
    cycle: z.int().nonnegative(),
    copy: z.int().nonnegative(),
    label: z.string(),
    status: RunRecordStatusSchema,
    /** How many times the run has been dispatched. */
    attempts: z.int().nonnegative(),
    /** Who ran (or runs) the latest attempt; `null` before the first. */
    owner: RunOwnerSchema.nullable(),
    startedAt: isoTimestamp.nullable(),
    endedAt: isoTimestamp.nullable(),
    /** Why the latest attempt failed (or was interrupted); `type` from `RUN_FAILURE_TYPES`. */
    error: z
      .object({
        type: RunFailureTypeSchema,
        message: z.string(),
        code: z.string().min(1).optional(),
      })
      .strict()
      .nullable(),
    /** Relative to the study directory; set once completed. */
    resultFile: z.string().nullable(),
    /** The GPUs the latest attempt was given, when the study assigns devices. */
    devices: z.array(RunDeviceSchema).optional(),
    updatedAt: isoTimestamp,
  })
  .strict();
export type RunRecord = z.infer<typeof RunRecordSchema>;

export const RUN_CLAIM_SCHEMA_VERSION = 1 as const;

/**
 * `runs/<key>.claim-<n>`: a runner's claim on a run. Created exclusively (`link()`), so of
 * several runners exactly one holds a generation. The owner touches its mtime as a heartbeat
 * and rewrites it with `releasedAt` when done. A claim is live until released, or until its
 * owner is gone (same host: pid dead; Slurm: job ended) or its heartbeat is too old.
 */
export const RunClaimSchema = z
  .object({
    schemaVersion: z.literal(RUN_CLAIM_SCHEMA_VERSION),
    key: z.string().regex(RUN_KEY_PATTERN),
    generation: z.int().positive(),
    owner: RunOwnerSchema,
    claimedAt: isoTimestamp,
    /** Set by the owner when it is done with the run (whatever the outcome). */
    releasedAt: isoTimestamp.nullable(),
  })
  .strict();
export type RunClaim = z.infer<typeof RunClaimSchema>;

export const RESOURCE_HOLD_SCHEMA_VERSION = 1 as const;

/**
 * `resources/<resource>~<holder>`: a runner holds a GPU (or an exclusive group) for one run.
 * Created exclusively, then the holder looks for other live holders of the resource and, if
 * there is one, removes its own file and tries again later: of runners racing for a GPU at most
 * one keeps it. Removed when the run ends; one whose owner is gone is stale and removed by anyone.
 */
export const ResourceHoldSchema = z
  .object({
    schemaVersion: z.literal(RESOURCE_HOLD_SCHEMA_VERSION),
    resource: z.string().min(1),
    holder: z.string().min(1),
    owner: RunOwnerSchema,
    /** The run the resource is held for. */
    key: z.string().regex(RUN_KEY_PATTERN),
    heldAt: isoTimestamp,
  })
  .strict();
export type ResourceHold = z.infer<typeof ResourceHoldSchema>;
export const SLURM_SUBMISSION_SCHEMA_VERSION = 1 as const;

/**
 * `slurm/submission-<n>.json`: one Slurm job array of a study. Written by the submitter only:
 * first (exclusively) with the runs of each array task and `jobId: null`, then again once sbatch
 * answered (the job id, or why it failed). Status reads it to say `running (Slurm job N)` while
 * the job's tasks are queued; each array task reads its runs from it.
 */
export const SlurmSubmissionSchema = z
  .object({
    schemaVersion: z.literal(SLURM_SUBMISSION_SCHEMA_VERSION),
    submission: z.int().positive(),
    createdAt: isoTimestamp,
    /** Who submitted it (host and pid of the llem that ran sbatch). */
    submittedBy: z.object({ host: z.string().min(1), pid: z.int().positive() }).strict(),
    /** `--job-name`: names the study. */
    jobName: z.string().min(1),
    /** GPUs each array task asks for (`--gres=gpu:N`; 0: none). */
    gpusPerTask: z.int().nonnegative(),
    /** sbatch's arguments as run, the batch script last. */
    sbatchArgs: z.array(z.string()),
    /**
     * Array task `i` does `tasks[i]`, in order. `attempts` is what the run's record said at
     * submission: a failed run is retried only while its record still says so, so two
     * submissions of one failed run retry it once.
     */
    tasks: z
      .array(
        z
          .array(
            z
              .object({ key: z.string().regex(RUN_KEY_PATTERN), attempts: z.int().nonnegative() })
              .strict(),
          )
          .min(1),
      )
      .min(1),
    /** The array job id sbatch printed; `null` until it answered (or when it failed). */
    jobId: z.string().min(1).nullable(),
    submittedAt: isoTimestamp.nullable(),
    /** Why sbatch failed, when it did. */
    error: z.string().nullable(),
  })
  .strict();
export type SlurmSubmission = z.infer<typeof SlurmSubmissionSchema>;

/** The plan as stored in `study.json` (the parts the runner needs; configs kept as written). */
export const StoredPlanSchema = z
  .object({
    name: z.string(),
    designHash: hash16,
    execution: z.record(z.string(), z.unknown()),
    configs: z.array(
      z
        .object({
          index: z.int().nonnegative(),
          label: z.string(),
          configHash: hash16,
          config: z.unknown(),
        })
        .loose(),
    ),
    runs: z.array(
      z
        .object({
          key: z.string().regex(RUN_KEY_PATTERN),
          configIndex: z.int().nonnegative(),
          configHash: hash16,
          copy: z.int().nonnegative(),
          cycle: z.int().nonnegative(),
          ordinal: z.int().nonnegative(),
        })
        .loose(),
    ),
  })
  .loose();

/** `study.json`: the resolved plan, written once when the study starts (and by a forced resume). */
export const StoredStudySchema = z
  .object({
    schemaVersion: z.literal(1),
    toolVersion: z.string(),
    createdAt: isoTimestamp,
    plan: StoredPlanSchema,
  })
  .loose();
export type StoredStudyFile = z.infer<typeof StoredStudySchema>;

/** `cli.json`: where the CLI resolves relative paths on resume. */
export const CliStateSchema = z
  .object({
    /** Absolute: the study file's directory (relative model, dataset and command paths). */
    baseDir: z.string().min(1),
  })
  .loose();
export type CliState = z.infer<typeof CliStateSchema>;

/** `skipped.json`: every config the plan rejected and why (field path + message). */
export const SkippedFileSchema = z.array(
  z
    .object({
      label: z.string(),
      reasons: z.array(
        z
          .object({
            path: z.string(),
            message: z.string(),
            allowed: z.array(z.string()).optional(),
          })
          .strict(),
      ),
    })
    .strict(),
);
export type SkippedFile = z.infer<typeof SkippedFileSchema>;

/** `runs/<key>.error.json`: why a worker failed. */
export const WorkerErrorReportSchema = z
  .object({
    error: z
      .object({
        /** One of `RUN_FAILURE_TYPES` (`engine`, `config`, `measurement`, `server`, `crash`). */
        type: z.string().min(1),
        message: z.string(),
        stack: z.string().nullable(),
        /** The error's own code, when it had one (`MODEL_NOT_FOUND`…). */
        code: z.string().optional(),
      })
      .strict(),
  })
  .strict();
export type WorkerErrorReportFile = z.infer<typeof WorkerErrorReportSchema>;

/** Absolute paths of a run's files, as handed to the worker. */
export const RunFilePathsSchema = z
  .object({
    result: z.string(),
    error: z.string(),
    log: z.string(),
    timeseries: z.string(),
    requests: z.string(),
    serverLog: z.string(),
    metrics: z.string(),
  })
  .strict();

/** `runs/<key>.task.json`: what the runner hands the worker (paths absolute). */
export const WorkerTaskSchema = z
  .object({
    key: z.string().regex(RUN_KEY_PATTERN),
    configHash: z.string(),
    cycle: z.int().nonnegative(),
    copy: z.int().nonnegative(),
    config: z.unknown(),
    studyDir: z.string(),
    resultFile: z.string(),
    timeseriesFile: z.string(),
    files: RunFilePathsSchema,
    residualCheck: ResidualCheckSchema,
    toolVersion: z.string(),
    attempt: z.int().positive(),
    /** The GPUs the run was given (many-GPU studies); absent when the study assigns none. */
    devices: z.array(RunDeviceSchema).optional(),
    /** True when other runs of the study may run at the same time on this host. */
    parallel: z.boolean().optional(),
    /** The Slurm job the runner runs in, when it runs in one (copied into the result). */
    slurm: RunSlurmSchema.optional(),
  })
  .loose();
