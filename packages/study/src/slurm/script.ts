import type { SlurmSettings } from '@llem/domain';

/** Quote one word for a POSIX shell. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** What one array job asks Slurm for. */
export interface SbatchRequest {
  /** `--job-name`. */
  jobName: string;
  /** Array tasks, numbered 0 … tasks − 1. */
  tasks: number;
  /** `--output`: where each task's stdout and stderr go (`%A`, `%a` patterns). */
  logPattern: string;
  /** `--gres=gpu:N`; 0 asks for none. */
  gpusPerTask: number;
  /** `--time`, seconds (rounded up to minutes); `null`: the partition's default. */
  timeLimitS: number | null;
  /** `execution.slurm` with the command line's flags over it. */
  settings: SlurmSettings;
  /** The batch script, last. */
  script: string;
}

/**
 * sbatch's arguments for one array job, in order: llem's own, then the settings', then
 * `sbatch_args` (so they can override a default such as `--time`), then the script.
 *
 * @example
 * sbatchArguments({ jobName: 'llem-s', tasks: 4, logPattern: 'l_%A_%a.log', gpusPerTask: 1,
 *   timeLimitS: 600, settings: { max_parallel: 2 }, script: 's.sbatch' });
 * // ['--parsable', '--job-name=llem-s', '--array=0-3%2', '--output=l_%A_%a.log', '--open-mode=append',
 * //  '--export=ALL', '--ntasks=1', '--gres=gpu:1', '--time=10', 's.sbatch']
 */
export function sbatchArguments(request: SbatchRequest): string[] {
  const { settings } = request;
  const throttle = settings.max_parallel ? `%${settings.max_parallel}` : '';
  const args = [
    '--parsable',
    `--job-name=${request.jobName}`,
    `--array=0-${request.tasks - 1}${throttle}`,
    `--output=${request.logPattern}`,
    // A requeued task appends to its log instead of wiping the first attempt's.
    '--open-mode=append',
    // The submitting environment (LLEM_* included) reaches every task.
    '--export=ALL',
    '--ntasks=1',
  ];
  if (request.gpusPerTask > 0) args.push(`--gres=gpu:${request.gpusPerTask}`);
  if (request.timeLimitS !== null) args.push(`--time=${Math.ceil(request.timeLimitS / 60)}`);
  if (settings.partition) args.push(`--partition=${settings.partition}`);
  if (settings.account) args.push(`--account=${settings.account}`);
  if (settings.qos) args.push(`--qos=${settings.qos}`);
  args.push(...(settings.sbatch_args ?? []), request.script);
  return args;
}

/** What a batch script says about itself and runs. */
export interface BatchScriptInput {
  studyName: string;
  studyDir: string;
  submission: number;
  tasks: number;
  runs: number;
  toolVersion: string;
  /** `execution.slurm.setup`: shell lines run first. */
  setup: readonly string[];
  /** The program each task runs (argv). */
  command: readonly string[];
}

/**
 * The batch script every array task of a submission runs: the setup lines, then the task
 * command (`exec`, so Slurm's signals reach it directly), under `$LLEM_SLURM_PREFIX` when a
 * setup line sets one (e.g. `apptainer exec --nv llem.sif`).
 */
export function batchScript(input: BatchScriptInput): string {
  const lines = [
    '#!/bin/bash',
    `# llem study "${input.studyName.replace(/\n/g, ' ')}": Slurm submission ${input.submission} (${input.tasks} array tasks, ${input.runs} runs).`,
    `# Written by llem ${input.toolVersion}. Each array task claims its runs in the study directory`,
    '# (slurm/submission-N.json says which), measures them and publishes their results. Runs that',
    '# end unfinished (scancel, time limit, preemption) are resubmitted by:',
    `#   llem run --resume ${shellQuote(input.studyDir)} --executor slurm`,
    'set -e',
    ...input.setup,
    `exec \${LLEM_SLURM_PREFIX:-} ${input.command.map(shellQuote).join(' ')}`,
    '',
  ];
  return lines.join('\n');
}

/**
 * The job id `sbatch --parsable` printed (`812` or `812;cluster`), or `null` when it printed
 * none.
 */
export function parseSbatchJobId(stdout: string): string | null {
  const first = stdout.trim().split('\n').pop()?.trim() ?? '';
  const id = first.split(';')[0] ?? '';
  return /^[0-9]+$/.test(id) ? id : null;
}
