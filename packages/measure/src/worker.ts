/**
 * `@llem/measure/worker`: the llem worker module. `@llem/study`'s runner forks it once per
 * scheduled run; it measures that one experiment with `measureRun` and hands the `RunResult`
 * back through `defineWorker`'s result file. The timeseries goes beside it as CSV, and one JSON
 * line per measured request as `<key>.requests.jsonl`.
 *
 * Its stderr is the run's log file in the study directory (the runner redirects it), so the
 * worker logs there; the level follows `LLEM_LOG_LEVEL` (default `info`).
 */
import { existsSync, renameSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename } from 'node:path';
import type { ExperimentConfig, RunResult } from '@llem/domain';
import { createEngine } from '@llem/engines';
import type { Logger } from '@llem/resilience';
import { defineWorker, type WorkerContext, type WorkerTask } from '@llem/study/worker';
import { type MeasureDeps, measureRun } from './harness';
import { writeRequestRecords } from './requests';

const LEVELS = ['error', 'warn', 'info', 'debug'] as const;

/** A logger that writes plain lines to this child's stderr, which the runner sends to a file. */
export function stderrLogger(level: string = process.env.LLEM_LOG_LEVEL ?? 'info'): Logger {
  const max = Math.max(0, LEVELS.indexOf(level as (typeof LEVELS)[number]));
  const at =
    (lvl: (typeof LEVELS)[number]) =>
    (message: string): undefined => {
      if (LEVELS.indexOf(lvl) <= (max < 0 ? 2 : max))
        process.stderr.write(`${new Date().toISOString()} ${lvl}: ${message}\n`);
      return undefined;
    };
  return { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug') };
}

/**
 * Measure one task. Exposed for tests and for library users who fork their own workers.
 *
 * @example
 * defineWorker((task, context) => measureTask(task, context));
 */
export async function measureTask(
  task: WorkerTask<ExperimentConfig>,
  context: Pick<WorkerContext, 'signal' | 'registerChild'> &
    Partial<Pick<WorkerContext, 'progress' | 'spawnGroup'>>,
  deps: MeasureDeps<ExperimentConfig> = {},
): Promise<RunResult> {
  const logger = deps.logger ?? stderrLogger();
  logger.info(
    `run ${task.key} (cycle ${task.cycle + 1}, attempt ${task.attempt}): ${task.config.engine} ${task.config.model}`,
  );
  const { result, timeseriesCsv, requests, serverMetrics } = await measureRun(
    {
      runId: task.key,
      configHash: task.configHash,
      cycle: task.cycle,
      config: task.config,
      residualCheck: task.residualCheck,
      llemVersion: task.toolVersion,
      devices: task.devices,
      sharedHost: task.parallel,
      slurm: task.slurm,
      // The study layout names it (`runs/<key>.server.log`); the runner hands the path over.
      serverLogFile: task.files.serverLog,
    },
    {
      logger,
      signal: context.signal,
      ...(context.progress ? { progress: context.progress } : {}),
      // A managed server runs in a process group registered with the worker: the runner kills
      // it even if this process is SIGKILLed.
      ...(context.spawnGroup ? { spawnServer: context.spawnGroup } : {}),
      // A `command` program is registered with the worker too, so the runner can kill its
      // group even if this process is SIGKILLed.
      createEngine: (config, ctx) =>
        createEngine(config, ctx, {
          command: {
            onProcessGroup: (pgid) => context.registerChild(pgid),
            // The run's GPUs win over anything the config sets.
            ...(process.env.CUDA_VISIBLE_DEVICES !== undefined && task.devices
              ? { env: { CUDA_VISIBLE_DEVICES: process.env.CUDA_VISIBLE_DEVICES } }
              : {}),
          },
        }),
      ...deps,
    },
  );
  // The study layout names them (`runs/<key>.timeseries.csv`, `.requests.jsonl`); the runner
  // hands the paths over. A result already published (another owner of this run got there
  // first) keeps its own files: this attempt's go beside them, as its result will.
  const lost = existsSync(task.resultFile);
  const place = (file: string): string =>
    lost
      ? `${file}.conflict-${new Date().toISOString().replace(/[-:.]/g, '')}-${process.pid}`
      : file;
  const csvFile = place(task.files.timeseries);
  const tmp = `${csvFile}.${hostname()}.${process.pid}.tmp`;
  writeFileSync(tmp, timeseriesCsv);
  renameSync(tmp, csvFile);
  result.extra.timeseriesFile = basename(csvFile);
  const requestsFile = place(task.files.requests);
  writeRequestRecords(requestsFile, requests);
  result.extra.requestsFile = basename(requestsFile);
  // The study layout names it (`runs/<key>.metrics.jsonl`): a managed server's scrapes.
  if (serverMetrics !== null && result.server?.metrics) {
    const metricsFile = place(task.files.metrics);
    const tmpMetrics = `${metricsFile}.${hostname()}.${process.pid}.tmp`;
    writeFileSync(tmpMetrics, serverMetrics.map((line) => `${JSON.stringify(line)}\n`).join(''));
    renameSync(tmpMetrics, metricsFile);
    result.server.metrics.file = basename(metricsFile);
  }
  if (lost) {
    logger.warn(
      `run ${task.key}: another runner published this run's result first; this attempt's files are kept beside it as conflict files`,
    );
  }
  logger.info(
    `run ${task.key}: ${result.tokens.output ?? '?'} output tokens in ${result.window.durationS.toFixed(2)} s, energy ${result.energy.totalJ === null ? 'not measured' : `${result.energy.totalJ.toFixed(2)} J (${result.energy.method})`}`,
  );
  return result;
}

/** The worker itself; started by `defineWorker` when `LLEM_TASK_FILE` is set. */
export const llemWorker = defineWorker<ExperimentConfig, RunResult>((task, context) =>
  measureTask(task, context),
);
