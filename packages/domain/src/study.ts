import { z } from 'zod';
import { PartialExperimentSchema } from './config';
import { checkPath } from './internal/schema-walk';
import { didYouMean } from './suggest';

/** The study file: shared experiment fields at the top level plus the study's own keys. */

export const RUN_ORDERS = ['sequential', 'interleaved', 'shuffled'] as const;
export type RunOrder = (typeof RUN_ORDERS)[number];

/**
 * sbatch options llem sets itself for every submission: `--array` (one task per run or batch),
 * `--output`/`--error` (the task logs live in the study directory), `--parsable` (llem reads the
 * job id), `--job-name` (names the study), `--wrap` (llem writes the batch script), `--gpus*`
 * (each task asks for its runs' GPUs with `--gres=gpu:N`, which a `--gres` in `sbatch_args`
 * replaces: `--gres=gpu:a100:1` for a GPU type, `--gres=none` on a partition without GPUs).
 */
export const SLURM_RESERVED_SBATCH_OPTIONS = [
  '--array',
  '-a',
  '--output',
  '-o',
  '--error',
  '-e',
  '--parsable',
  '--job-name',
  '-J',
  '--wrap',
  '--gpus',
  '-G',
  '--gpus-per-task',
  '--gpus-per-node',
] as const;

/** The option an sbatch argument sets (`--time=10` → `--time`, `-p` → `-p`). */
function sbatchOptionName(arg: string): string {
  if (arg.startsWith('--')) return arg.split('=')[0] as string;
  return arg.slice(0, 2);
}

/** `execution.slurm`: how `llem run --executor slurm` submits the study. Not in any hash. */
export const SlurmSettingsSchema = z
  .strictObject({
    partition: z.string().min(1).optional().describe('sbatch --partition'),
    account: z.string().min(1).optional().describe('sbatch --account'),
    qos: z.string().min(1).optional().describe('sbatch --qos'),
    time_limit_s: z
      .int()
      .min(1)
      .optional()
      .describe(
        "Time limit per run, seconds: each array task's --time is this × its runs (plus gaps). Default: the run timeout (execution.timeout_s, else derived from the workload) plus 5 minutes per task",
      ),
    max_parallel: z
      .int()
      .min(1)
      .optional()
      .describe('At most this many array tasks run at once (the array throttle, --array=…%N)'),
    runs_per_task: z
      .int()
      .min(1)
      .max(1000)
      .optional()
      .describe(
        'Runs each array task does one after another (default 1: one task per run); more per task saves queue waits for short runs',
      ),
    sbatch_args: z
      .array(
        z
          .string()
          .min(1)
          .refine((arg) => !/[\n\r]/.test(arg), 'must be one line')
          .superRefine((arg, ctx) => {
            const name = sbatchOptionName(arg);
            if ((SLURM_RESERVED_SBATCH_OPTIONS as readonly string[]).includes(name)) {
              ctx.addIssue({
                code: 'custom',
                message: `${name} is set by llem for every submission (array, logs, job name, GPUs per task); remove it (GPUs per task: execution.devices_per_run, or a --gres here)`,
              });
            }
          }),
      )
      .optional()
      .describe(
        'Extra sbatch arguments, one per item (e.g. ["--constraint=a100", "--mem=64G"]); they come after llem\'s own, so a --gres here (--gres=gpu:a100:1, or --gres=none without GPUs) replaces llem\'s --gres=gpu:N',
      ),
    setup: z
      .array(z.string())
      .optional()
      .describe(
        'Shell lines run first in each batch script (e.g. "module load cuda"); set LLEM_SLURM_PREFIX to run llem under a wrapper (e.g. "export LLEM_SLURM_PREFIX=\'apptainer exec --nv llem.sif\'")',
      ),
  })
  .describe('Slurm submission settings (llem run --executor slurm)');
export type SlurmSettings = z.output<typeof SlurmSettingsSchema>;

export const ExecutionSchema = z
  .strictObject({
    cycles: z.int().min(1).max(1000).default(1).describe('How many times every config is run'),
    order: z
      .enum(RUN_ORDERS)
      .default('interleaved')
      .describe(
        'sequential: AAA BBB; interleaved: AB AB (spreads drift over all configs); shuffled: a seeded random order per cycle',
      ),
    shuffle_seed: z.int().nonnegative().default(0).describe('Seed for order: shuffled'),
    experiment_gap_s: z.number().min(0).max(86_400).default(0).describe('Pause before each run'),
    cycle_gap_s: z
      .number()
      .min(0)
      .max(86_400)
      .default(0)
      .describe('Extra pause when a new cycle starts'),
    timeout_s: z
      .number()
      .positive()
      .optional()
      .describe('Per-run timeout; when absent the runner derives one from the workload'),
    residual_memory_threshold_mb: z
      .number()
      .min(0)
      .default(100)
      .describe('Warn when a GPU already has more than this much memory in use before a run'),
    devices: z
      .array(z.union([z.int().nonnegative(), z.string().min(1)]))
      .min(1)
      .refine((d) => new Set(d).size === d.length, 'devices must be unique')
      .optional()
      .describe(
        'GPUs (NVML indices or UUIDs) this study may use: runs go in parallel, each on a disjoint set of its own. Absent: one run at a time on energy.devices',
      ),
    devices_per_run: z
      .int()
      .min(1)
      .optional()
      .describe(
        'GPUs each run is given from execution.devices (default 1; a config may set its own)',
      ),
    slurm: SlurmSettingsSchema.optional().describe(
      'How `llem run --executor slurm` submits the study as a Slurm job array (command-line flags override these)',
    ),
  })
  .describe('How the runs are scheduled');
export type ExecutionConfig = z.output<typeof ExecutionSchema>;

const STUDY_KEYS = ['$schema', 'name', 'sweep', 'experiments', 'execution'] as const;

/** Keys of the study file that are the study's own, not shared experiment fields. */
export const STUDY_OWN_KEYS: ReadonlySet<string> = new Set(STUDY_KEYS);

/** Check one dotted sweep key against the config schema: it must name a field. */
const SweepKeySchema = z
  .string()
  .min(1)
  .superRefine((key, ctx) => {
    const segments = key.split('.');
    if (segments.some((s) => s === '')) {
      ctx.addIssue({ code: 'custom', message: 'empty segment in dotted key' });
      return;
    }
    if (STUDY_OWN_KEYS.has(segments[0] as string)) {
      ctx.addIssue({
        code: 'custom',
        message: `${segments[0]} is a study setting and cannot be swept`,
      });
      return;
    }
    const check = checkPath(PartialExperimentSchema, segments);
    if (check.ok) return;
    const upTo = segments.slice(0, check.depth + 1).join('.');
    if (check.reason === 'not-a-mapping') {
      ctx.addIssue({
        code: 'custom',
        message: `${segments.slice(0, check.depth).join('.')} is a value, not a section, so ${upTo} does not exist`,
      });
      return;
    }
    const suggestion = didYouMean(segments[check.depth] as string, check.allowed);
    const fix = suggestion ? [...segments.slice(0, check.depth), suggestion].join('.') : undefined;
    ctx.addIssue({
      code: 'custom',
      message: `unknown field ${upTo}${fix ? `; did you mean "${fix}"?` : ''}`,
      params: { allowed: check.allowed },
    });
  });

export const SweepSchema = z
  .record(
    SweepKeySchema,
    z.array(z.unknown()).min(1, 'must list at least one value').describe('Values to sweep over'),
  )
  .superRefine((sweep, ctx) => {
    // Sweeping a section and one of its fields at once is ambiguous.
    const keys = Object.keys(sweep);
    for (const key of keys) {
      for (const other of keys) {
        if (other !== key && other.startsWith(`${key}.`)) {
          ctx.addIssue({
            code: 'custom',
            path: [other],
            message: `overlaps the sweep key ${key}; sweep either the section or its fields`,
          });
        }
      }
    }
  })
  .describe(
    'Cartesian product: each key is a field path (dotted into sections at any depth, e.g. llamacpp.batch_size), each value a list',
  );

/** The whole study file as written (types checked where they stand; defaults applied later). */
export const StudyFileSchema = PartialExperimentSchema.extend({
  $schema: z.string().optional().describe('JSON Schema URL for editors; ignored'),
  name: z
    .string()
    .min(1)
    .max(120)
    .optional()
    .describe('Study name, used in the study directory name (default: the file name)'),
  sweep: SweepSchema.optional(),
  experiments: z
    .array(PartialExperimentSchema)
    .min(1, 'must list at least one experiment (or leave experiments out)')
    .optional()
    .describe('Explicit experiments, each merged over the shared fields at the top level'),
  execution: ExecutionSchema.prefault({}),
}).describe('An llem study: a grid of experiment configs run over cycles');
export type StudyFileInput = z.input<typeof StudyFileSchema>;
