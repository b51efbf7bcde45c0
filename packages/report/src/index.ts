export type { ConfigSummary, MetricSummary } from './aggregate';
export {
  aggregateRuns,
  aggregateStudy,
  SMALL_SAMPLE_CYCLES,
  smallSampleNote,
  summariseValues,
} from './aggregate';
export type { ConfigComparison, MetricComparison, StudyComparison } from './compare';
export { compareConfigs, compareStudies, compareSummaries, findConfig } from './compare';
export type { RunCsvColumn } from './csv';
export {
  CONFIG_CSV_COLUMNS,
  configCsv,
  OPTIONAL_RUN_CSV_COLUMNS,
  PARETO_CSV_COLUMNS,
  paretoCsv,
  parseCsv,
  RUN_CSV_COLUMNS,
  RUN_CSV_TABLE,
  runsCsv,
  toCsv,
} from './csv';
export type { ReportErrorCode } from './errors';
export { ReportError } from './errors';
export { escapeHtml, formatInterval, formatNumber } from './format';
export type { ReportHtmlInput, RunTrace } from './html';
export { describeEnvironment, renderReportHtml } from './html';
export type { InputChange, InputVariant } from './inputs';
export { describeInputChange, inputChanges } from './inputs';
export type { ConfigInfo, LoadedStudy, LoadStudyOptions, RunRecord, SkippedConfig } from './load';
export { describeStudyStatus, loadStudy, readManifest } from './load';
export type { Direction, MetricDefinition, MetricId } from './metrics';
export {
  FIGURE_WARNINGS,
  getMetric,
  isMetricId,
  METRIC_IDS,
  METRICS,
  metricsFor,
  readGoodputShare,
  readSteadyStateEnergyPerOutputTokenJ,
  warningsAffecting,
} from './metrics';
export type { ParetoAxis, ParetoPoint, ParetoResult } from './pareto';
export {
  DEFAULT_PARETO_AXES,
  paretoFrontier,
  paretoIndices,
  parseParetoAxis,
} from './pareto';
export type {
  GgufMemoryInput,
  MemoryEstimate,
  PlanEstimate,
  PlanView,
  RenderPlanOptions,
} from './plan';
export {
  estimateGgufMemory,
  estimatePlanDuration,
  formatDuration,
  formatSkipReason,
  planParallelism,
  planServerCommands,
  planToJson,
  renderPlan,
} from './plan';
export type { RunRequests } from './requests';
export { readRunRequests } from './requests';
export type { RunServerMetrics, ServerMetricPoint } from './server-metrics';
export { MAIN_SERVER_METRICS, readRunServerMetrics, serverMetricPoints } from './server-metrics';
export type { BootstrapOptions, ConfidenceInterval, RandomSource } from './stats';
export {
  bootstrapMeanCI,
  bootstrapRatioCI,
  DEFAULT_BOOTSTRAP_SEED,
  DEFAULT_RESAMPLES,
  quantileSorted,
} from './stats';
export type { StudyListing } from './studies';
export { listStudies } from './studies';
export type { Column, TextOptions } from './text';
export {
  formatTable,
  metricCatalogue,
  renderComparison,
  renderConfigTable,
  renderStudyList,
  TABLE_METRICS,
} from './text';
export type { TimeseriesSample } from './timeseries';
export { normaliseSamples, readTimeseries } from './timeseries';
export type { StudyReport, WriteStudyReportOptions } from './write';
export { writeStudyReport } from './write';
