import { randomBytes } from 'node:crypto';
import { rename, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { STUDY_FILES } from '@llem/domain';
import { type Logger, noopLogger } from '@llem/resilience';
import { aggregateStudy, type ConfigSummary } from './aggregate';
import { configCsv, paretoCsv, runsCsv } from './csv';
import { type RunTrace, renderReportHtml } from './html';
import { requestsChart, serverMetricsChart, traceChart } from './internal/charts';
import { type LoadedStudy, loadStudy } from './load';
import { getMetric } from './metrics';
import { DEFAULT_PARETO_AXES, type ParetoAxis, type ParetoResult, paretoFrontier } from './pareto';
import { readRunRequests } from './requests';
import { readRunServerMetrics, serverMetricPoints } from './server-metrics';
import { readTimeseries } from './timeseries';

export interface WriteStudyReportOptions {
  logger?: Logger;
  /** Axes of the Pareto frontier. Default: energy per output token (min) vs tokens/s (max). */
  paretoAxes?: readonly [ParetoAxis, ParetoAxis];
  /** Bootstrap seed (results are identical for the same seed). */
  seed?: number;
  /** Bootstrap resamples. Default 2000. */
  resamples?: number;
  /** At most this many runs get a power/temperature and request trace in the report. Default 60. */
  maxTraces?: number;
  /** Clock for the "generated at" line (tests pin it). */
  now?: () => Date;
}

export interface StudyReport {
  study: LoadedStudy;
  summaries: ConfigSummary[];
  pareto: ParetoResult;
  /**
   * Why the frontier is not what was asked for: the default axes fell back to TTFT vs tokens/s
   * (no energy measured), or the requested axes have no config with both values (an empty
   * `pareto.csv`). `null` otherwise. The same text is above the plot in `report.html`.
   */
  paretoNote: string | null;
  /** Absolute paths of the files written. */
  files: {
    summary: string;
    summaryByConfig: string;
    pareto: string;
    report: string;
  };
}

/**
 * When energy was not measured (a CPU box without readable RAPL), energy per token is unknown for
 * every config; the most useful trade-off left is latency against throughput.
 */
const FALLBACK_AXES: readonly [ParetoAxis, ParetoAxis] = [
  { metric: 'ttftP50Ms' },
  { metric: 'outputTokensPerS' },
];

async function writeAtomic(file: string, text: string): Promise<void> {
  // A reader (a browser tab refreshing, `llem results show`) never sees half a file.
  // Host, pid and a random tag: unique also on a filesystem several hosts share.
  const tmp = `${file}.${hostname()}.${process.pid}.${randomBytes(3).toString('hex')}.tmp`;
  await writeFile(tmp, text);
  await rename(tmp, file);
}

async function collectTraces(study: LoadedStudy, max: number, logger: Logger): Promise<RunTrace[]> {
  const traces: RunTrace[] = [];
  for (const run of study.runs) {
    if (traces.length >= max) break;
    const svg = run.timeseriesFile ? traceChart(await readTimeseries(run.timeseriesFile)) : null;
    const requests = run.result ? await readRunRequests(run) : null;
    if (requests && requests.invalid.length > 0) {
      const first = requests.invalid[0]!;
      logger.warn(
        `${requests.file}: ${requests.invalid.length} line(s) are not request records and were left out (line ${first.line}: ${first.message})`,
      );
    }
    const requestsSvg = requests ? requestsChart(requests.records) : null;
    const metrics = run.result ? await readRunServerMetrics(run) : null;
    if (metrics && metrics.invalid.length > 0)
      logger.warn(
        `${metrics.file}: ${metrics.invalid.length} line(s) are not metric scrapes and were left out (line ${metrics.invalid[0]!.line}: ${metrics.invalid[0]!.message})`,
      );
    const serverSvg = metrics ? serverMetricsChart(serverMetricPoints(metrics.scrapes)) : null;
    if (!svg && !requestsSvg && !serverSvg) continue;
    traces.push({
      key: run.key,
      label: run.label,
      cycle: run.cycle,
      svg: svg ?? '',
      ...(serverSvg ? { serverSvg } : {}),
      ...(requestsSvg ? { requestsSvg } : {}),
    });
  }
  return traces;
}

/**
 * (Re)build a study's summaries and report from what is on disk: `summary.csv` (one row per
 * run), `summary_by_config.csv` (per-config statistics), `pareto.csv` and `report.html`. Safe to
 * call on a running or interrupted study; it reports what has finished. `llem run` calls it at
 * the end of a study and `llem report` on demand.
 *
 * @example
 * import { writeStudyReport } from '@llem/report';
 * const { files } = await writeStudyReport('results/quickstart_20260101T000000Z', { logger });
 * console.log(files.report);
 */
export async function writeStudyReport(
  studyDir: string,
  options: WriteStudyReportOptions = {},
): Promise<StudyReport> {
  const logger = options.logger ?? noopLogger;
  const study = await loadStudy(studyDir, { logger });
  const summaries = aggregateStudy(study, {
    ...(options.seed !== undefined ? { seed: options.seed } : {}),
    ...(options.resamples !== undefined ? { resamples: options.resamples } : {}),
  });
  const requested = options.paretoAxes ?? DEFAULT_PARETO_AXES;
  let pareto = paretoFrontier(summaries, requested);
  let paretoNote: string | null = null;
  if (pareto.points.length === 0 && !options.paretoAxes && summaries.length > 0) {
    const fallback = paretoFrontier(summaries, FALLBACK_AXES);
    if (fallback.points.length > 0) {
      paretoNote = `${getMetric(requested[0].metric).label} was not measured for any config (no energy source on this machine?), so the frontier shows ${getMetric(FALLBACK_AXES[0].metric).label} against ${getMetric(FALLBACK_AXES[1].metric).label} instead.`;
      pareto = fallback;
    }
  }
  if (pareto.points.length === 0 && options.paretoAxes && summaries.length > 0) {
    paretoNote = `No config has both ${getMetric(requested[0].metric).label} and ${getMetric(requested[1].metric).label}, so the frontier is empty.`;
  }
  const traces = await collectTraces(study, options.maxTraces ?? 60, logger);
  const files = {
    summary: join(study.dir, STUDY_FILES.summary),
    summaryByConfig: join(study.dir, STUDY_FILES.summaryByConfig),
    pareto: join(study.dir, STUDY_FILES.pareto),
    report: join(study.dir, STUDY_FILES.report),
  };
  await writeAtomic(files.summary, runsCsv(study));
  await writeAtomic(files.summaryByConfig, configCsv(summaries));
  await writeAtomic(files.pareto, paretoCsv(pareto));
  await writeAtomic(
    files.report,
    renderReportHtml({
      study,
      summaries,
      pareto,
      paretoNote,
      traces,
      generatedAt: (options.now?.() ?? new Date()).toISOString(),
    }),
  );
  logger.info(`report: ${files.report}`);
  logger.debug(
    `summary: ${files.summary}, ${files.summaryByConfig}, ${files.pareto} (${summaries.length} configs, ${study.runs.length} runs)`,
  );
  return { study, summaries, pareto, paretoNote, files };
}
