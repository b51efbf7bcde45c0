import { writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { type SkippedFile, STUDY_FILES, studySourceFile } from '@llem/domain';
import { llemRunnerOptions } from '@llem/measure';
import {
  describeInputChange,
  formatSkipReason,
  inputChanges,
  type LoadedStudy,
  loadStudy,
  planToJson,
  renderPlan,
  writeStudyReport,
} from '@llem/report';
import {
  DEFAULT_OUTPUT_DIR,
  handleSigint,
  type SignalSource,
  STUDY_EVENT_NAMES,
  type StudyEvents,
  StudyRunner,
  type StudySummary,
} from '@llem/study';
import type { Argv, CommandModule } from 'yargs';
import type { BuilderArgs, CliContext, GlobalArgs } from '../context';
import { datasetsJson, describeDatasets } from '../datasets';
import { planMemoryEstimates } from '../dry-run';
import { ExitCode, UsageError } from '../errors';
import { addFileTransport } from '../logger';
import { createProgressDisplay, listenForEnter } from '../progress';
import { cliVersion } from '../version';
import { prepareRun, type RunSetup } from './run/preflight';
import { runWithSlurm, slurmRunOptions } from './run/slurm';
import { printSummary, summariseStudy } from './run/summary';
import { workerModuleFor } from './run/worker-module';

export type { NotMeasurable, RunSummaryJson } from './run/summary';
export { summariseStudy } from './run/summary';
export { workerModuleFor } from './run/worker-module';

/** Every runner event as one tagged union: the seam a progress display plugs into. */
export type ProgressEvent = {
  [K in keyof StudyEvents]: { type: K } & StudyEvents[K];
}[keyof StudyEvents];

/**
 * Receives every progress event of a study, in order. A sink with a `stop()` method (a TTY bar
 * holding a timer) is stopped when the study ends.
 */
export type ProgressSink = (event: ProgressEvent) => void;

/** Options tests (and a future progress UI) can inject. */
export interface RunCommandOptions {
  /** Progress display; default: plain lines on stderr (none with --quiet or --json). */
  progress?: (ctx: CliContext) => ProgressSink;
  /** Where SIGINT comes from. Default `process`. */
  signals?: SignalSource;
}

function runBuilder(y: Argv<GlobalArgs>) {
  // --executor, --wait and the execution.slurm flags: run/slurm.ts
  return slurmRunOptions(y)
    .positional('file', { type: 'string', describe: 'Study file (YAML or JSON)' })
    .option('output', {
      alias: 'o',
      type: 'string',
      describe: 'Where study directories are created [default: "./results"]',
    })
    .option('resume', { type: 'string', describe: 'Continue the study in this directory' })
    .option('force', {
      type: 'boolean',
      default: false,
      describe: 'With --resume: accept a changed study file',
    })
    .option('json', {
      type: 'boolean',
      default: false,
      describe: 'Print a final JSON summary (with studyDir) on stdout',
    })
    .option('dry-run', {
      type: 'boolean',
      default: false,
      describe: 'Print the plan and exit',
    })
    .check((a) => {
      // Rules across flags (yargs' implies/conflicts count a boolean's default as given).
      // An empty value (an unset shell variable) would otherwise start a new study.
      if (a.resume !== undefined && a.resume.trim() === '')
        throw new UsageError(
          '--resume needs the study directory (e.g. --resume results/quickstart_20260101T000000Z); it was given an empty value',
        );
      if (a.force && a.resume === undefined)
        throw new UsageError('--force only applies with --resume STUDY_DIR');
      if (a.dryRun && a.resume !== undefined)
        throw new UsageError('--dry-run shows the plan of a study file; it does not resume');
      if (a.output !== undefined && a.resume !== undefined)
        throw new UsageError(
          '--output names where new studies go; a resumed study stays where it is',
        );
      return true;
    });
}

type RunArgs = BuilderArgs<typeof runBuilder>;

/**
 * `llem run [FILE]`: run a study (the built-in quickstart without FILE), or resume one.
 *
 * @example
 * llem run study.yaml --output results --json
 * llem run --resume results/quickstart_20260101T000000Z
 */
export function runCommand(
  ctx: CliContext,
  options: RunCommandOptions = {},
): CommandModule<GlobalArgs, RunArgs> {
  return {
    command: 'run [file]',
    describe: 'Run a study (the built-in quickstart when no FILE is given), or resume one',
    builder: runBuilder,
    handler: async (args) => {
      const setup = await prepareRun(args, ctx);
      if (args.dryRun) return printPlan(setup, args.json, ctx);
      // Slurm: submit job arrays instead of running here (run/slurm.ts).
      if (args.executor === 'slurm') return runWithSlurm(setup, args, ctx, options.signals);
      const runner = createRunner(setup, args, ctx);
      const quiet = args.json || args.quiet;
      const sink = quiet ? () => undefined : (options.progress ?? createProgressDisplay)(ctx);
      for (const type of STUDY_EVENT_NAMES)
        runner.on(type, (event: StudyEvents[typeof type]) =>
          sink({ type, ...event } as ProgressEvent),
        );
      runner.on('study-started', (event) => {
        addFileTransport(ctx.logger, join(event.studyDir, STUDY_FILES.log));
        if (!event.resumed) writeStudyFiles(event.studyDir, setup, ctx);
      });

      // On a terminal, Enter ends the current gap early (the countdown says so).
      const stopEnter = quiet
        ? () => undefined
        : listenForEnter(process.stdin, () => runner.skipGap());
      const stopSigint = handleSigint(runner, {
        ...(options.signals ? { source: options.signals } : {}),
        onInterrupt: (count) => {
          if (quiet && count > 1) return;
          ctx.stderr.write(
            count === 1
              ? '\nStopping: the running run(s) end cleanly and run again on resume… (Ctrl-C again to kill now)\n'
              : '\nKilling the running run(s) now.\n',
          );
        },
      });
      let summary: StudySummary;
      try {
        summary = await runner.run();
      } finally {
        stopSigint();
        stopEnter();
        // A display that holds a timer or the cursor (a TTY bar) says so with `stop`.
        (sink as ProgressSink & { stop?: () => void }).stop?.();
      }
      const study = await writeReport(summary, ctx);
      const result = summariseStudy(summary, study ?? (await loadStudy(summary.studyDir)));
      if (args.json) ctx.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      else printSummary(ctx, result, ctx.cwd);
      const where = relative(ctx.cwd, summary.studyDir) || '.';
      if (summary.status === 'running') {
        // This runner is done; others (another terminal, Slurm tasks) still hold runs.
        ctx.stderr.write(
          `Other runners still work on this study (${result.statusText}). Follow them with: ${ctx.invocation} results show ${where}; join them with: ${ctx.invocation} run --resume ${where}\n`,
        );
      }
      if (summary.status === 'interrupted') {
        ctx.stderr.write(`Interrupted. Resume with: ${ctx.invocation} run --resume ${where}\n`);
        ctx.exitCode = ExitCode.interrupted;
      } else if (summary.counts.failed > 0) {
        ctx.exitCode = ExitCode.failure;
      }
    },
  };
}

/**
 * Every run with label and hash, skipped configs with reasons, an estimated duration and, for
 * .gguf models, memory from their metadata against free device memory.
 */
async function printPlan(setup: RunSetup, json: boolean, ctx: CliContext): Promise<void> {
  const plan = setup.plan;
  if (!plan) throw new UsageError('--dry-run needs a study file');
  const memory = await planMemoryEstimates(plan, {
    env: ctx.env,
    baseDir: setup.baseDir,
    logger: ctx.logger,
  });
  const datasets = setup.datasets;
  // The estimate counts each dataset file's requests (and a trace's span), as read.
  const datasetSize = (config: { label: string }) =>
    datasets.find((d) => d.labels.includes(config.label))?.summary ?? null;
  ctx.stdout.write(
    json
      ? `${JSON.stringify({ file: setup.file, ...planToJson(plan, { memory, datasetSize }), datasets: datasetsJson(datasets) }, null, 2)}\n`
      : `${setup.file}: ${renderPlan(plan, { memory, datasetSize, color: Boolean(ctx.stdout.isTTY) })}${describeDatasets(datasets, plan.configs.length)}`,
  );
}

/** The runner for a new study or a resume, with llem's worker and llem's config rules. */
function createRunner(
  setup: RunSetup,
  args: Pick<RunArgs, 'output' | 'force'>,
  ctx: CliContext,
): StudyRunner<NonNullable<RunSetup['plan']>['configs'][number]['config']> {
  const { workerModule, execArgv } = workerModuleFor();
  const common = {
    workerModule,
    execArgv,
    env: ctx.env,
    // The worker's working directory: relative dataset and command paths resolve against the
    // study file's directory, as documented for the config.
    cwd: setup.baseDir,
    logger: ctx.logger,
    toolVersion: cliVersion,
    ...llemRunnerOptions({ cwd: setup.baseDir, logger: ctx.logger }),
  };
  if (setup.resumeDir) {
    return new StudyRunner({
      ...common,
      resume: setup.resumeDir,
      force: args.force,
      ...(setup.plan ? { plan: setup.plan } : {}),
    });
  }
  if (!setup.plan) throw new UsageError('name a study file, or --resume STUDY_DIR');
  return new StudyRunner({
    ...common,
    plan: setup.plan,
    outputDir: resolve(ctx.cwd, args.output ?? DEFAULT_OUTPUT_DIR),
  });
}

/** What the CLI keeps in a new study directory: resume state, the file as written, skipped configs. */
export function writeStudyFiles(studyDir: string, setup: RunSetup, ctx: CliContext): void {
  writeFileSync(
    join(studyDir, STUDY_FILES.cliState),
    `${JSON.stringify({ baseDir: setup.baseDir }, null, 2)}\n`,
  );
  // The study file as the user wrote it, beside the resolved plan (study.json).
  if (setup.source) {
    writeFileSync(join(studyDir, studySourceFile(setup.source.format)), setup.source.text);
  }
  // Said now, not only in the report: a typo in a sweep value must not pass unnoticed.
  for (const s of setup.plan?.skipped ?? [])
    ctx.logger.warn(`skipped config ${s.label}: ${s.reasons.map(formatSkipReason).join('; ')}`);
  // The report lists configs the plan rejected; the manifest only knows runs.
  const skipped: SkippedFile = (setup.plan?.skipped ?? []).map((s) => ({
    label: s.label,
    reasons: s.reasons,
  }));
  writeFileSync(join(studyDir, STUDY_FILES.skipped), `${JSON.stringify(skipped, null, 2)}\n`);
}

/**
 * summary.csv, summary_by_config.csv, pareto.csv and report.html (logs "report: <path>"), and a
 * warning for a model or dataset file replaced between runs. A report problem never fails the
 * study: the measurements are safe on disk.
 */
export async function writeReport(
  summary: StudySummary,
  ctx: CliContext,
): Promise<LoadedStudy | undefined> {
  try {
    const report = await writeStudyReport(summary.studyDir, { logger: ctx.logger });
    for (const change of inputChanges(report.study.runs))
      ctx.logger.warn(describeInputChange(change));
    return report.study;
  } catch (error) {
    ctx.logger.warn(
      `could not build the report (${error instanceof Error ? error.message : String(error)}); retry with: ${ctx.invocation} report ${relative(ctx.cwd, summary.studyDir) || '.'}`,
    );
    return undefined;
  }
}
