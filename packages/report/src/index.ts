export type { AggregateOptions, ConfigSummary, MetricSummary } from './aggregate';
export {
  aggregateRuns,
  aggregateStudy,
  SMALL_SAMPLE_CYCLES,
  smallSampleNote,
  summariseValues,
} from './aggregate';
export type {
  AnswerCandidate,
  AnswerOptions,
  AnswerPoint,
  Estimate,
  Slo,
  SloCheck,
  SloTarget,
  StudyAnswer,
} from './answer';
export { ANSWER_RULE, answerRuns, answerStudy, pointLabel, SLO_TARGETS, sloOf } from './answer';
export type { ConfigComparison, MetricComparison, StudyComparison } from './compare';
export { compareConfigs, compareStudies, compareSummaries, findConfig } from './compare';
export type { RunCsvColumn } from './csv';
export {
  CONFIG_CSV_COLUMNS,
  configCsv,
  csvRows,
  OPTIONAL_RUN_CSV_COLUMNS,
  PARETO_CSV_COLUMNS,
  POINT_CSV_COLUMNS,
  paretoCsv,
  parseCsv,
  pointAsRun,
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
export type {
  Direction,
  MetricContext,
  MetricDefinition,
  MetricId,
  MetricSource,
} from './metrics';
export {
  FIGURE_WARNINGS,
  getMetric,
  isMetricId,
  METRIC_IDS,
  METRICS,
  metricsFor,
  metricUnit,
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
export type { EnergyPrices } from './prices';
export {
  carbonGPer1MTokens,
  costPer1MTokens,
  describePrices,
  J_PER_KWH,
  resolveEnergyPrices,
} from './prices';
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
export type { SweepCurve, SweepCurvePoint } from './sweep';
export { studySweepCurves, sweepCurves } from './sweep';
export type { Column, TextOptions } from './text';
export {
  formatTable,
  metricCatalogue,
  renderAnswer,
  renderComparison,
  renderConfigTable,
  renderStudyList,
  renderSweepTable,
  TABLE_METRICS,
} from './text';
export type { TimeseriesSample } from './timeseries';
export { normaliseSamples, readTimeseries } from './timeseries';
export type { StudyReport, WriteStudyReportOptions } from './write';
export { writeStudyReport } from './write';
