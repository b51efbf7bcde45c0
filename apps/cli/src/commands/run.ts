import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  CliStateSchema,
  checkRunResult,
  type ExperimentConfig,
  formatFromFileName,
  type ManifestEntry,
  parseStudyText,
  planStudy,
  QUICKSTART_FILE,
  quickstartStudy,
  type SkippedFile,
  STUDY_FILES,
  type StudyPlan,
  studySourceFile,
} from '@llem/domain';
import { missingInputFiles } from '@llem/measure';
import {
  describeInputChange,
  describeStudyStatus,
  FIGURE_WARNINGS,
  formatSkipReason,
  inputChanges,
  type LoadedStudy,
  loadStudy,
  planToJson,
  renderPlan,
  writeStudyReport,
} from '@llem/report';
import {
  handleSigint,
  type SignalSource,
  STUDY_EVENT_NAMES,
  StudyDirectory,
  type StudyEvents,
  StudyRunner,
  type StudySummary,
} from '@llem/study';
import type { CommandModule } from 'yargs';
import type { CliContext, GlobalArgs } from '../context';
import { planMemoryEstimates } from '../dry-run';
import { ExitCode, UsageError } from '../errors';
import { addFileTransport } from '../logger';
import { createProgressDisplay, listenForEnter } from '../progress';
import { cliVersion } from '../version';

interface RunArgs extends GlobalArgs {
  file?: string;
  output: string;
  resume?: string;
  force: boolean;
  json: boolean;
  dryRun: boolean;
}

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

/**
 * Plain-line progress on stderr: one line per run start/finish and gap, the seam the progress
 * bar replaces.
 */
export function plainProgress(ctx: CliContext): ProgressSink {
  const write = (line: string) => ctx.stderr.write(`${line}\n`);
  return (event) => {
    switch (event.type) {
      case 'study-started':
        write(
          `${event.resumed ? 'Resuming' : 'Running'} ${event.studyName}: ${event.toRun} of ${event.total} runs to do → ${event.studyDir}`,
        );
        break;
      case 'run-started':
        write(
          `[${event.index}/${event.total}] ${event.label || event.configHash} (cycle ${event.cycle})…`,
        );
        break;
      case 'run-progress':
        write(`    ${event.message}`);
        break;
      case 'run-finished': {
        const eta =
          event.eta.remainingMs === null
            ? ''
            : `, about ${Math.ceil(event.eta.remainingMs / 1000)} s left`;
        const why = event.error
          ? `: ${event.error.type}: ${event.error.message.split('\n')[0]}`
          : '';
        write(
          `[${event.index}/${event.total}] ${event.status} in ${(event.durationMs / 1000).toFixed(1)} s${why}${eta}`,
        );
        break;
      }
      default:
        break;
    }
  };
}

/** The worker module and the Node flags to fork it with: built dist in production, source in tests. */
export function workerModuleFor(fromSource = import.meta.url.endsWith('.ts')): {
  workerModule: string;
  execArgv: string[];
} {
  const require = createRequire(import.meta.url);
  const measureDir = dirname(require.resolve('@llem/measure/package.json'));
  if (fromSource) {
    const tsx = pathToFileURL(require.resolve('tsx')).href;
    return {
      workerModule: join(measureDir, 'src', 'worker.ts'),
      execArgv: ['--import', tsx, '--conditions', '@llem/source'],
    };
  }
  const built = join(measureDir, 'dist', 'worker.js');
  if (!existsSync(built))
    throw new UsageError(
      `the llem worker is not built (${built} is missing); run pnpm build first`,
    );
  return { workerModule: built, execArgv: [] };
}

interface StudyFileRead {
  plan: StudyPlan;
  baseDir: string;
  /** The file as written and its format, copied into the study directory. */
  text: string;
  format: 'yaml' | 'json';
}

function readStudyFile(file: string, cwd: string): StudyFileRead {
  const path = resolve(cwd, file);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UsageError(
      code === 'ENOENT'
        ? `study file ${file} does not exist`
        : `cannot read study file ${file}: ${(error as Error).message}`,
    );
  }
  const format = formatFromFileName(file);
  return {
    plan: planStudy(parseStudyText(text, { file, format }), { file }),
    baseDir: dirname(path),
    text,
    format,
  };
}

/** A figure the study could not measure on this machine, and why. */
export interface NotMeasurable {
  figure: string;
  reason: string;
}

export interface RunSummaryJson {
  studyDir: string;
  status: StudySummary['status'];
  /** The status in words: `running (Slurm job 812)` when other runners still hold runs. */
  statusText: string;
  counts: StudySummary['counts'];
  durationMs: number;
  notMeasurable: NotMeasurable[];
  runs: Array<{
    key: string;
    label: string;
    cycle: number;
    status: ManifestEntry['status'];
    error: ManifestEntry['error'];
    outputTokensPerS: number | null;
    energyJ: number | null;
    energyPerOutputTokenJ: number | null;
    energyMethod: string | null;
    warnings: string[];
  }>;
}

/**
 * Say plainly what the study measured and what it could not, from the study as the validating
 * loader reads it (records, results checked against their schema).
 */
export function summariseStudy(summary: StudySummary, study: LoadedStudy): RunSummaryJson {
  const results = new Map(
    study.runs.flatMap((r) => (r.result ? [[r.key, r.result] as const] : [])),
  );
  const notMeasurable: NotMeasurable[] = [];
  const seen = new Set<string>();
  const add = (figure: string, reason: string) => {
    if (seen.has(`${figure}\0${reason}`)) return;
    seen.add(`${figure}\0${reason}`);
    notMeasurable.push({ figure, reason });
  };
  for (const r of results.values()) {
    if (r.energy.totalJ === null)
      add('energy (J, J/token)', r.energy.unavailableReason ?? 'no energy source on this machine');
    if (r.memory.gpuPeakUsedMiB === null)
      add(
        'peak GPU memory',
        r.environment.gpus.length === 0
          ? 'no GPU visible through NVML'
          : 'NVML could not read memory',
      );
    if (r.memory.rssPeakMiB === null)
      add(
        'peak RSS',
        r.engine === 'command'
          ? 'a command program runs in its own process, whose memory llem does not see'
          : 'not readable on this OS',
      );
    if (r.latency.ttftMs === null) add('TTFT / ITL', 'the engine reported no per-token timing');
    if (r.flops.method === 'none') add('FLOPs estimate', 'the model parameter count is unknown');
  }
  return {
    studyDir: summary.studyDir,
    status: summary.status,
    statusText: summary.status === 'running' ? describeStudyStatus(study) : summary.status,
    counts: summary.counts,
    durationMs: summary.durationMs,
    notMeasurable,
    runs: study.runs.map((e) => {
      const r = results.get(e.key);
      return {
        key: e.key,
        label: e.label,
        cycle: e.cycle,
        status: e.status,
        error: e.error,
        outputTokensPerS: r?.throughput.outputTokensPerS ?? null,
        energyJ: r?.energy.totalJ ?? null,
        energyPerOutputTokenJ: r?.energyPerOutputTokenJ ?? null,
        energyMethod: r?.energy.method ?? null,
        warnings: r?.warnings.map((w) => w.code) ?? [],
      };
    }),
  };
}

type MissingInputConfig = Parameters<typeof missingInputFiles>[0];

/** Lines of a failed run's stderr tail shown in the summary (the manifest keeps them all). */
const FAILED_TAIL_LINES = 5;

const fmt = (v: number | null, digits: number) => (v === null ? '—' : v.toFixed(digits));

function printSummary(ctx: CliContext, s: RunSummaryJson, cwd: string): void {
  const out = (line = '') => ctx.stdout.write(`${line}\n`);
  const c = s.counts;
  out(
    `Study ${s.statusText}: ${c.completed} completed, ${c.failed} failed, ${c.running > 0 ? `${c.running} running, ` : ''}${c.pending} not run, of ${c.total} (${(s.durationMs / 1000).toFixed(0)} s)`,
  );
  out(`Results: ${relative(cwd, s.studyDir) || '.'}`);
  out();
  const rows = s.runs.map((r) => [
    r.label || r.key,
    String(r.cycle + 1),
    r.status,
    fmt(r.outputTokensPerS, 1),
    fmt(r.energyJ, 2),
    fmt(r.energyPerOutputTokenJ, 4),
  ]);
  const head = ['config', 'cycle', 'status', 'tok/s', 'energy J', 'J/token'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => cell.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  out(line(head));
  for (const r of rows) out(line(r));
  const failed = s.runs.filter((r) => r.status === 'failed' && r.error);
  if (failed.length > 0) {
    out();
    out('Failed runs:');
    for (const r of failed) {
      // The first line says what failed; a command's stderr tail follows it (last lines only).
      const [first, ...rest] = (r.error?.message ?? '').split('\n');
      const what = `${r.error?.type}${r.error?.code ? ` (${r.error.code})` : ''}`;
      out(`  ${r.label || r.key} (cycle ${r.cycle + 1}): ${what}: ${first}`);
      const tail = rest.filter((l) => l.trim() !== '').slice(-FAILED_TAIL_LINES);
      for (const line of tail) out(`      ${line}`);
    }
  }
  // Stopped by Ctrl-C (or a runner that died): not failures, they run again on resume.
  const stopped = s.runs.filter((r) => r.status !== 'failed' && r.error?.type === 'interrupted');
  if (stopped.length > 0) {
    out();
    out(`Stopped before the end (${stopped.length}), will run again on resume:`);
    for (const r of stopped) out(`  ${r.label || r.key} (cycle ${r.cycle + 1})`);
  }
  const warned = new Map<string, number>();
  for (const r of s.runs)
    for (const code of r.warnings) warned.set(code, (warned.get(code) ?? 0) + 1);
  // energy-unavailable is the block below; the rest are about the quality of a measurement.
  warned.delete('energy-unavailable');
  if (warned.size > 0) {
    out();
    out(
      `Measurement warnings (details in each result and report.html): ${[...warned].map(([code, n]) => `${code} (${n} ${n === 1 ? 'run' : 'runs'})`).join(', ')}`,
    );
    // Warnings that make some figures unreliable say which and why (marked in results show).
    for (const code of warned.keys()) {
      const meaning = FIGURE_WARNINGS[code as keyof typeof FIGURE_WARNINGS];
      if (meaning) out(`  ${code}: ${meaning}; llem results show marks the figures it affects.`);
    }
  }
  if (s.notMeasurable.length > 0) {
    out();
    out('Not measurable on this machine:');
    for (const n of s.notMeasurable) out(`  ${n.figure}: ${n.reason}`);
  }
}

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
    builder: (y) =>
      y
        .positional('file', { type: 'string', describe: 'Study file (YAML or JSON)' })
        .option('output', {
          alias: 'o',
          type: 'string',
          default: './results',
          describe: 'Where study directories are created',
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
        }) as never,
    handler: async (args) => {
      const file = args.file;
      if (args.force && !args.resume)
        throw new UsageError('--force only applies with --resume STUDY_DIR');
      let plan: StudyPlan | undefined;
      let baseDir = ctx.cwd;
      let source: StudyFileRead | undefined;
      if (file) {
        source = readStudyFile(file, ctx.cwd);
        ({ plan, baseDir } = source);
      } else if (!args.resume) plan = planStudy(quickstartStudy, { file: QUICKSTART_FILE });
      if (args.dryRun) {
        if (!plan) throw new UsageError('--dry-run needs a study file (or no --resume)');
        // Every run with label and hash, skipped configs with reasons, an estimated duration and,
        // for .gguf models, memory from their metadata against free device memory.
        const memory = await planMemoryEstimates(plan, {
          env: ctx.env,
          baseDir,
          logger: ctx.logger,
        });
        ctx.stdout.write(
          args.json
            ? `${JSON.stringify({ file: file ?? QUICKSTART_FILE, ...planToJson(plan, { memory }) }, null, 2)}\n`
            : `${file ?? QUICKSTART_FILE}: ${renderPlan(plan, { memory, color: Boolean(ctx.stdout.isTTY) })}`,
        );
        return;
      }
      let resumeDir: string | undefined;
      if (args.resume) {
        resumeDir = resolve(ctx.cwd, args.resume);
        if (!new StudyDirectory(resumeDir).isStudy())
          throw new UsageError(
            `--resume ${args.resume}: no ${STUDY_FILES.study} or ${STUDY_FILES.manifest} there; name a study directory made by llem run`,
          );
        if (!file) {
          try {
            baseDir = CliStateSchema.parse(
              JSON.parse(readFileSync(join(resumeDir, STUDY_FILES.cliState), 'utf8')),
            ).baseDir;
          } catch {
            // Studies started by a library user have no CLI state: resolve against the cwd.
          }
        }
      }

      // Missing model or dataset files are a mistake in the study, not a run failure: say so
      // before a study directory exists, with where each path was looked for.
      if (plan) {
        const missing = new Map<string, { text: string; labels: string[] }>();
        for (const c of plan.configs) {
          for (const m of missingInputFiles(c.config as unknown as MissingInputConfig, baseDir)) {
            const key = `${m.field}\0${m.resolved}`;
            const entry = missing.get(key);
            if (entry) entry.labels.push(c.label);
            else
              missing.set(key, {
                text: `${m.field}: ${m.value} does not exist (looked for ${m.resolved})`,
                labels: [c.label],
              });
          }
        }
        if (missing.size > 0) {
          const lines = [...missing.values()].map(
            ({ text, labels }) =>
              `  ${text}${plan.configs.length > 1 ? ` [${labels.length === plan.configs.length ? 'every config' : labels.join(', ')}]` : ''}`,
          );
          throw new UsageError(
            `${file ?? QUICKSTART_FILE}: input files not found (relative paths resolve from the study file's folder, ${baseDir}):\n${lines.join('\n')}`,
          );
        }
      }

      const { workerModule, execArgv } = workerModuleFor();
      const common = {
        workerModule,
        execArgv,
        env: ctx.env,
        // The worker's working directory: relative dataset and command paths resolve against
        // the study file's directory, as documented for the config.
        cwd: baseDir,
        logger: ctx.logger,
        toolVersion: cliVersion,
        // Many GPUs: a config's own devices_per_run, else the study's (the runner's default).
        devicesPerRun: (config: ExperimentConfig) => config.devices_per_run,
        // Runs against a server llem did not start would measure each other's load.
        exclusiveGroup: (config: ExperimentConfig) =>
          config.engine === 'openai' ? 'openai runs against an external server' : null,
        // On resume, a result that is not what the llem that wrote it writes is measured again.
        verifyResult: (value: unknown) => {
          const check = checkRunResult(value);
          return check.status === 'invalid'
            ? { ok: false as const, reason: `does not match the result schema (${check.reason})` }
            : { ok: true as const };
        },
      };
      const runner = resumeDir
        ? new StudyRunner({
            ...common,
            resume: resumeDir,
            force: args.force,
            ...(plan ? { plan } : {}),
          })
        : new StudyRunner({
            ...common,
            plan: plan as StudyPlan,
            outputDir: resolve(ctx.cwd, args.output),
          });

      const quiet = args.json || args.quiet;
      const sink = quiet ? () => undefined : (options.progress ?? createProgressDisplay)(ctx);
      for (const type of STUDY_EVENT_NAMES)
        runner.on(type, (event: StudyEvents[typeof type]) =>
          sink({ type, ...event } as ProgressEvent),
        );
      runner.on('study-started', (event) => {
        addFileTransport(ctx.logger, join(event.studyDir, STUDY_FILES.log));
        if (!event.resumed) {
          writeFileSync(
            join(event.studyDir, STUDY_FILES.cliState),
            `${JSON.stringify({ baseDir }, null, 2)}\n`,
          );
          // The study file as the user wrote it, beside the resolved plan (study.json).
          if (source) {
            writeFileSync(join(event.studyDir, studySourceFile(source.format)), source.text);
          }
          // Said now, not only in the report: a typo in a sweep value must not pass unnoticed.
          for (const s of plan?.skipped ?? [])
            ctx.logger.warn(
              `skipped config ${s.label}: ${s.reasons.map(formatSkipReason).join('; ')}`,
            );
          // The report lists configs the plan rejected; the manifest only knows runs.
          const skipped: SkippedFile = (plan?.skipped ?? []).map((s) => ({
            label: s.label,
            reasons: s.reasons,
          }));
          writeFileSync(
            join(event.studyDir, STUDY_FILES.skipped),
            `${JSON.stringify(skipped, null, 2)}\n`,
          );
        }
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
              ? '\nStopping: the current run is ended cleanly and runs again on resume… (Ctrl-C again to kill it now)\n'
              : '\nKilling the current run now.\n',
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
      let study: LoadedStudy | undefined;
      try {
        // summary.csv, summary_by_config.csv, pareto.csv and report.html; logs "report: <path>".
        const report = await writeStudyReport(summary.studyDir, { logger: ctx.logger });
        study = report.study;
        // A model or dataset file replaced between runs (usually across a resume) keeps the
        // config hash: say so now, not only in the report.
        for (const change of inputChanges(report.study.runs))
          ctx.logger.warn(describeInputChange(change));
      } catch (error) {
        // The measurements are safe on disk; a report problem must not fail the study.
        ctx.logger.warn(
          `could not build the report (${error instanceof Error ? error.message : String(error)}); retry with: llem report ${relative(ctx.cwd, summary.studyDir) || '.'}`,
        );
      }
      const result = summariseStudy(summary, study ?? (await loadStudy(summary.studyDir)));
      if (args.json) ctx.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      else printSummary(ctx, result, ctx.cwd);
      if (summary.status === 'interrupted') {
        ctx.stderr.write(
          `Interrupted. Resume with: llem run --resume ${relative(ctx.cwd, summary.studyDir) || '.'}\n`,
        );
        ctx.exitCode = ExitCode.interrupted;
      } else if (summary.counts.failed > 0) {
        ctx.exitCode = ExitCode.failure;
      }
    },
  };
}
