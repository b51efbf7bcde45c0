import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type ExperimentConfig, type SlurmSettings, STUDY_FILES } from '@llem/domain';
import { llemRunnerOptions } from '@llem/measure';
import { loadStudy } from '@llem/report';
import {
  DEFAULT_OUTPUT_DIR,
  type SignalSource,
  type SlurmSubmitResult,
  type StudyState,
  type StudySummary,
  slurmLiveness,
  submitSlurmStudy,
  waitForStudy,
} from '@llem/study';
import type { Argv } from 'yargs';
import type { CliContext } from '../../context';
import { ExitCode, UsageError } from '../../errors';
import { addFileTransport } from '../../logger';
import { cliVersion } from '../../version';
import { writeReport, writeStudyFiles } from '../run';
import type { RunSetup } from './preflight';
import { printSummary, summariseStudy } from './summary';

/**
 * `llem run --executor slurm`: the study is submitted to Slurm as job arrays instead of run here.
 * The submission and task logic is `@llem/study`'s (`submitSlurmStudy`, `runSlurmTask`,
 * `waitForStudy`); this file wires the flags and prints.
 */

export const EXECUTORS = ['local', 'slurm'] as const;
export type Executor = (typeof EXECUTORS)[number];

/** The `llem run` arguments this file adds. */
export interface SlurmRunArgs {
  executor: Executor;
  wait: boolean;
  partition?: string | undefined;
  account?: string | undefined;
  qos?: string | undefined;
  timeLimit?: number | undefined;
  maxParallel?: number | undefined;
  runsPerTask?: number | undefined;
  sbatchArg?: string[] | undefined;
}

/** Flags that override `execution.slurm`: flag → the field it overrides. */
const SETTING_FLAGS = [
  { flag: 'partition', key: 'partition', field: 'partition' },
  { flag: 'account', key: 'account', field: 'account' },
  { flag: 'qos', key: 'qos', field: 'qos' },
  { flag: 'time-limit', key: 'timeLimit', field: 'time_limit_s' },
  { flag: 'max-parallel', key: 'maxParallel', field: 'max_parallel' },
  { flag: 'runs-per-task', key: 'runsPerTask', field: 'runs_per_task' },
  { flag: 'sbatch-arg', key: 'sbatchArg', field: 'sbatch_args' },
] as const;

const GROUP = 'Slurm (with --executor slurm; each overrides execution.slurm):';

/**
 * Add `--executor`, `--wait` and the `execution.slurm` override flags to `llem run`, with a
 * check: the Slurm flags need `--executor slurm`, numbers are whole and positive.
 */
export function slurmRunOptions<T>(y: Argv<T>) {
  return y
    .option('executor', {
      choices: EXECUTORS,
      default: 'local' as Executor,
      describe: 'Where the runs go: here (local), or a Slurm job array (slurm)',
    })
    .option('wait', {
      type: 'boolean',
      default: false,
      describe: 'With --executor slurm: follow the runs until they end, then write the report',
    })
    .option('partition', { type: 'string', group: GROUP, describe: 'sbatch --partition' })
    .option('account', { type: 'string', group: GROUP, describe: 'sbatch --account' })
    .option('qos', { type: 'string', group: GROUP, describe: 'sbatch --qos' })
    .option('time-limit', {
      type: 'number',
      group: GROUP,
      describe: 'Time limit per run, seconds (execution.slurm.time_limit_s)',
    })
    .option('max-parallel', {
      type: 'number',
      group: GROUP,
      describe: 'At most this many array tasks at once',
    })
    .option('runs-per-task', {
      type: 'number',
      group: GROUP,
      describe: 'Runs each array task does (default 1)',
    })
    .option('sbatch-arg', {
      type: 'string',
      array: true,
      group: GROUP,
      describe: 'An extra sbatch argument (repeat it), e.g. --sbatch-arg=--mem=64G',
    })
    .check((argv) => {
      const args = argv as unknown as SlurmRunArgs & { dryRun?: boolean };
      const given = SETTING_FLAGS.filter(({ key }) => args[key] !== undefined);
      if (args.executor !== 'slurm') {
        const named = [...given.map(({ flag }) => `--${flag}`), ...(args.wait ? ['--wait'] : [])];
        if (named.length > 0) {
          throw new UsageError(`${named.join(', ')}: only with --executor slurm`);
        }
      }
      for (const { flag, key } of given) {
        const value = args[key];
        if (typeof value === 'number' && !(Number.isInteger(value) && value >= 1)) {
          throw new UsageError(`--${flag}: must be a whole number ≥ 1 (got ${value})`);
        }
        if (typeof value === 'string' && value.trim() === '') {
          throw new UsageError(`--${flag}: must not be empty`);
        }
      }
      return true;
    });
}

/** The `llem run` arguments a Slurm submission reads besides its own. */
export interface SlurmRunOptions extends SlurmRunArgs {
  output?: string | undefined;
  force: boolean;
  json: boolean;
  quiet: boolean;
}

/**
 * The program each array task runs: this llem's `slurm-task` command (the built bin, or the
 * source under tsx in tests), with the Node that runs this llem.
 */
export function slurmTaskCommand(
  studyDir: string,
  submission: number,
  fromSource = import.meta.url.endsWith('.ts'),
): string[] {
  const tail = ['slurm-task', studyDir, '--submission', String(submission)];
  if (fromSource) {
    const require = createRequire(import.meta.url);
    const tsx = pathToFileURL(require.resolve('tsx')).href;
    const bin = fileURLToPath(new URL('../../bin.ts', import.meta.url));
    return [process.execPath, '--import', tsx, '--conditions', '@llem/source', bin, ...tail];
  }
  const bin = fileURLToPath(new URL('./bin.js', import.meta.url));
  if (!existsSync(bin)) {
    throw new UsageError(`the llem CLI is not built (${bin} is missing); run pnpm build first`);
  }
  return [process.execPath, bin, ...tail];
}

/** `execution.slurm` fields the command line sets. */
function settingsFromFlags(args: SlurmRunArgs): Partial<SlurmSettings> {
  return {
    partition: args.partition,
    account: args.account,
    qos: args.qos,
    time_limit_s: args.timeLimit,
    max_parallel: args.maxParallel,
    runs_per_task: args.runsPerTask,
    sbatch_args: args.sbatchArg,
  };
}

/**
 * Submit the study (new, or what a resume leaves) as Slurm job arrays; print the job and how to
 * follow it (`--json`: `{ studyDir, jobIds }`), or with `--wait` follow the runs from their
 * records and then write the summary and report as a local run does.
 */
export async function runWithSlurm(
  setup: RunSetup,
  args: SlurmRunOptions,
  ctx: CliContext,
  signals: SignalSource = process,
): Promise<void> {
  const { plan, baseDir } = setup;
  const liveness = slurmLiveness({ env: ctx.env });
  const { devicesPerRun, timeoutS, verifyResult } = llemRunnerOptions({
    cwd: baseDir,
    logger: ctx.logger,
  });
  const common = {
    devicesPerRun,
    timeoutS,
    verifyResult,
    logger: ctx.logger,
    toolVersion: cliVersion,
    taskCommand: ({ studyDir, submission }: { studyDir: string; submission: number }) =>
      slurmTaskCommand(studyDir, submission),
    settings: settingsFromFlags(args),
    env: ctx.env,
    cwd: baseDir,
    liveness,
    onStudyReady: (event: { studyDir: string; resumed: boolean }) => {
      addFileTransport(ctx.logger, join(event.studyDir, STUDY_FILES.log));
      if (!event.resumed) writeStudyFiles(event.studyDir, setup, ctx);
    },
  };
  let submitted: SlurmSubmitResult;
  if (setup.resumeDir) {
    submitted = await submitSlurmStudy<ExperimentConfig>({
      ...common,
      resume: setup.resumeDir,
      force: args.force,
      ...(plan ? { plan } : {}),
    });
  } else {
    if (!plan) throw new UsageError('name a study file, or --resume STUDY_DIR');
    submitted = await submitSlurmStudy<ExperimentConfig>({
      ...common,
      plan,
      outputDir: resolve(ctx.cwd, args.output ?? DEFAULT_OUTPUT_DIR),
    });
  }
  const dir = relative(ctx.cwd, submitted.studyDir) || '.';
  if (!args.wait) {
    if (args.json) {
      ctx.stdout.write(
        `${JSON.stringify({ studyDir: submitted.studyDir, jobIds: submitted.jobIds }, null, 2)}\n`,
      );
      return;
    }
    printSubmitted(ctx, submitted, dir);
    return;
  }
  if (!args.quiet) printSubmitted(ctx, submitted, dir, ctx.stderr);
  await followAndReport(ctx, submitted, args, liveness, signals);
}

function printSubmitted(
  ctx: CliContext,
  s: SlurmSubmitResult,
  dir: string,
  stream: NodeJS.WritableStream = ctx.stdout,
): void {
  const out = (line = '') => stream.write(`${line}\n`);
  const { completed, running, queued } = s.left;
  const others = [
    completed ? `${completed} completed` : '',
    running ? `${running} running` : '',
    queued ? `${queued} already queued` : '',
  ]
    .filter(Boolean)
    .join(', ');
  if (s.jobIds.length === 0) {
    out(`Nothing to submit in ${dir}${others ? ` (${others})` : ''}.`);
    return;
  }
  const tasks = s.submissions.reduce((n, sub) => n + sub.tasks.length, 0);
  out(
    `Submitted ${s.runs} runs to Slurm as job ${s.jobIds.join(', ')} (${tasks} array task${tasks === 1 ? '' : 's'})${others ? `; ${others}` : ''}.`,
  );
  out(`Study: ${dir}`);
  out(`Follow it:  ${ctx.invocation} results show ${dir}    (or: squeue -j ${s.jobIds.join(',')})`);
  out(
    `Afterwards: ${ctx.invocation} run --resume ${dir} --executor slurm   submits what did not complete`,
  );
}

/** Follow the runs from their records, then the summary and report as a local run writes. */
async function followAndReport(
  ctx: CliContext,
  submitted: SlurmSubmitResult,
  args: SlurmRunOptions,
  liveness: ReturnType<typeof slurmLiveness>,
  signals: SignalSource,
): Promise<void> {
  const started = performance.now();
  const stop = new AbortController();
  const onSigint = () => {
    if (!args.quiet) {
      ctx.stderr.write('\nStopped following; the Slurm jobs go on (scancel them to stop them).\n');
    }
    stop.abort();
  };
  signals.on('SIGINT', onSigint);
  let state: StudyState;
  try {
    state = await waitForStudy(submitted.studyDir, {
      liveness,
      signal: stop.signal,
      onProgress: (s) => {
        if (!args.quiet && !args.json) ctx.stderr.write(`${progressLine(s)}\n`);
      },
    });
  } finally {
    signals.off('SIGINT', onSigint);
  }
  const summary: StudySummary = {
    status: state.status,
    studyDir: submitted.studyDir,
    counts: state.counts,
    durationMs: performance.now() - started,
  };
  const study = await writeReport(summary, ctx);
  const result = summariseStudy(summary, study ?? (await loadStudy(submitted.studyDir)));
  const dir = relative(ctx.cwd, submitted.studyDir) || '.';
  if (args.json) {
    ctx.stdout.write(`${JSON.stringify({ ...result, jobIds: submitted.jobIds }, null, 2)}\n`);
  } else {
    printSummary(ctx, result, ctx.cwd);
  }
  if (stop.signal.aborted) {
    ctx.exitCode = ExitCode.interrupted;
  } else if (summary.status === 'interrupted') {
    ctx.stderr.write(
      `Some runs did not complete (cancelled, time limit, preempted). Resubmit them with: ${ctx.invocation} run --resume ${dir} --executor slurm\n`,
    );
    ctx.exitCode = ExitCode.interrupted;
  } else if (summary.counts.failed > 0) {
    ctx.exitCode = ExitCode.failure;
  }
}

/** `[Slurm job 812] 12/100 completed, 1 failed, 4 running, 83 queued` */
export function progressLine(state: StudyState): string {
  const c = state.counts;
  const jobs = [
    ...new Set(state.owners.flatMap((o) => (o.slurm ? [o.slurm.arrayJobId ?? o.slurm.jobId] : []))),
  ];
  const queued = state.runs.filter((r) => r.queuedIn !== null).length;
  const waiting = c.pending - queued;
  const parts = [
    `${c.completed}/${c.total} completed`,
    c.failed ? `${c.failed} failed` : '',
    c.running ? `${c.running} running` : '',
    queued ? `${queued} queued` : '',
    waiting > 0 ? `${waiting} not submitted` : '',
  ].filter(Boolean);
  return `[${jobs.length > 0 ? `Slurm job ${jobs.join(', ')}` : state.status}] ${parts.join(', ')}`;
}
