import { type RunResult, readDispatchSummary } from '@llem/domain';
import type { ConfigSummary } from './aggregate';
import type { LoadedStudy, RunRecord } from './load';
import { metricsFor, readGoodputShare, readSteadyStateEnergyPerOutputTokenJ } from './metrics';
import type { ParetoResult } from './pareto';

type Cell = string | number | boolean | null | undefined;

/** RFC 4180 quoting: only when needed, doubling inner quotes. Numbers keep full precision. */
export function csvCell(value: Cell): string {
  if (value === null || value === undefined) return '';
  const text =
    typeof value === 'number' ? (Number.isFinite(value) ? String(value) : '') : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** Join rows into CSV text with a trailing newline. */
export function toCsv(header: readonly string[], rows: readonly (readonly Cell[])[]): string {
  return [header, ...rows].map((r) => r.map(csvCell).join(',')).join('\n') + '\n';
}

/** One column of `summary.csv`: its name and how a run's cell is read. */
export interface RunCsvColumn {
  name: string;
  read: (run: RunRecord, studyDir: string) => Cell;
}

const result =
  (read: (r: RunResult) => Cell) =>
  (run: RunRecord): Cell =>
    run.result ? read(run.result) : null;

/**
 * Columns of `summary.csv`, one row per scheduled run (failed and unfinished runs included), each
 * with how it is read: adding a column is one line here. The order is part of the contract: new
 * columns are only ever appended. `cycle` is 0-based, as in run keys and results.
 */
export const RUN_CSV_TABLE: readonly RunCsvColumn[] = [
  { name: 'run_key', read: (run) => run.key },
  { name: 'config_hash', read: (run) => run.configHash },
  { name: 'config_label', read: (run) => run.label },
  { name: 'cycle', read: (run) => run.cycle },
  { name: 'copy', read: (run) => run.copy },
  { name: 'status', read: (run) => run.status },
  { name: 'error_type', read: (run) => run.error?.type },
  { name: 'error_message', read: (run) => run.error?.message },
  { name: 'started_at', read: (run) => run.startedAt },
  { name: 'ended_at', read: (run) => run.endedAt },
  { name: 'duration_s', read: result((r) => r.window.durationS) },
  { name: 'engine', read: result((r) => r.engine) },
  { name: 'model', read: result((r) => r.model) },
  { name: 'energy_method', read: result((r) => r.energy.method) },
  { name: 'input_tokens', read: result((r) => r.tokens.input) },
  { name: 'output_tokens', read: result((r) => r.tokens.output) },
  { name: 'energy_per_output_token_j', read: result((r) => r.energyPerOutputTokenJ) },
  { name: 'output_tokens_per_s', read: result((r) => r.throughput.outputTokensPerS) },
  { name: 'total_tokens_per_s', read: result((r) => r.throughput.totalTokensPerS) },
  { name: 'ttft_p50_ms', read: result((r) => r.latency.ttftMs?.p50) },
  { name: 'ttft_p95_ms', read: result((r) => r.latency.ttftMs?.p95) },
  { name: 'itl_p50_ms', read: result((r) => r.latency.itlMs?.p50) },
  { name: 'itl_p95_ms', read: result((r) => r.latency.itlMs?.p95) },
  { name: 'e2e_p50_ms', read: result((r) => r.latency.e2eMs?.p50) },
  { name: 'total_energy_j', read: result((r) => r.energy.totalJ) },
  { name: 'adjusted_energy_j', read: result((r) => r.energy.adjustedJ) },
  { name: 'gpu_peak_mib', read: result((r) => r.memory.gpuPeakUsedMiB) },
  { name: 'rss_peak_mib', read: result((r) => r.memory.rssPeakMiB) },
  { name: 'warnings', read: result((r) => r.warnings.map((w) => w.code).join(';')) },
  {
    name: 'result_file',
    read: (run, studyDir) =>
      run.resultFile?.startsWith(`${studyDir}/`)
        ? run.resultFile.slice(studyDir.length + 1)
        : run.resultFile,
  },
];

/** The names of `RUN_CSV_TABLE`, in order: `summary.csv`'s fixed header. */
export const RUN_CSV_COLUMNS: readonly string[] = RUN_CSV_TABLE.map((c) => c.name);

/**
 * Columns appended to `summary.csv` (after {@link RUN_CSV_COLUMNS}, in this order) only when some
 * run of the study has a value, so a study without openai steady-state or goodput figures keeps
 * the exact file it always had. An empty cell is "not measured", never 0.
 */
export const OPTIONAL_RUN_CSV_COLUMNS = [
  {
    name: 'steady_state_energy_per_output_token_j',
    read: readSteadyStateEnergyPerOutputTokenJ,
  },
  { name: 'goodput_share', read: readGoodputShare },
  { name: 'tpot_p50_ms', read: (r: RunResult) => r.latency.tpotMs?.p50 ?? null },
  { name: 'tpot_p95_ms', read: (r: RunResult) => r.latency.tpotMs?.p95 ?? null },
  // Open loop: latency from the scheduled send time and how the schedule was kept.
  {
    name: 'ttft_from_scheduled_p50_ms',
    read: (r: RunResult) => r.latency.ttftFromScheduledMs?.p50 ?? null,
  },
  {
    name: 'ttft_from_scheduled_p95_ms',
    read: (r: RunResult) => r.latency.ttftFromScheduledMs?.p95 ?? null,
  },
  {
    name: 'e2e_from_scheduled_p50_ms',
    read: (r: RunResult) => r.latency.e2eFromScheduledMs?.p50 ?? null,
  },
  {
    name: 'client_lag_p99_ms',
    read: (r: RunResult) => readDispatchSummary(r.extra)?.clientLagMs?.p99 ?? null,
  },
  {
    name: 'connection_wait_p99_ms',
    read: (r: RunResult) => readDispatchSummary(r.extra)?.connectionWaitMs?.p99 ?? null,
  },
  {
    name: 'target_rate',
    read: (r: RunResult) => readDispatchSummary(r.extra)?.targetRate ?? null,
  },
  {
    name: 'achieved_send_rate',
    read: (r: RunResult) => readDispatchSummary(r.extra)?.achievedSendRate ?? null,
  },
] as const;

/**
 * `summary.csv`: one row per run with its status, error and headline figures.
 *
 * @example
 * await writeFile(join(dir, 'summary.csv'), runsCsv(study));
 */
export function runsCsv(study: LoadedStudy): string {
  const extra = OPTIONAL_RUN_CSV_COLUMNS.filter((c) =>
    study.runs.some((run) => run.result !== null && c.read(run.result) !== null),
  );
  return toCsv(
    [...RUN_CSV_COLUMNS, ...extra.map((c) => c.name)],
    study.runs.map((run) => [
      ...RUN_CSV_TABLE.map((c) => c.read(run, study.dir)),
      ...extra.map((c) => (run.result ? c.read(run.result) : null)),
    ]),
  );
}

/**
 * Columns of `summary_by_config.csv`: long format, one row per config × metric, so adding a
 * metric adds rows, never columns. An optional metric (steady-state energy, goodput) gets rows
 * only for the configs that measured it.
 */
export const CONFIG_CSV_COLUMNS = [
  'config_hash',
  'config_label',
  'runs',
  'completed',
  'failed',
  'metric',
  'unit',
  'n',
  'mean',
  'std',
  'cv',
  'ci95_low',
  'ci95_high',
  'min',
  'max',
] as const;

/**
 * `summary_by_config.csv`: per config and metric, mean, std, CV and the bootstrap 95% CI.
 *
 * @example
 * await writeFile(join(dir, 'summary_by_config.csv'), configCsv(aggregateStudy(study)));
 */
export function configCsv(summaries: readonly ConfigSummary[]): string {
  const rows: Cell[][] = [];
  const defs = metricsFor(summaries);
  for (const s of summaries) {
    for (const def of defs) {
      const m = s.metrics[def.id];
      // No rows of empty statistics for a config the engine gave no such figure.
      if (def.optional && m.n === 0) continue;
      rows.push([
        s.configHash,
        s.label,
        s.runs,
        s.completed,
        s.failed,
        def.id,
        def.unit,
        m.n,
        m.mean,
        m.std,
        m.cv,
        m.ci?.low,
        m.ci?.high,
        m.min,
        m.max,
      ]);
    }
  }
  return toCsv(CONFIG_CSV_COLUMNS, rows);
}

export const PARETO_CSV_COLUMNS = [
  'config_hash',
  'config_label',
  'x_metric',
  'x_direction',
  'x',
  'y_metric',
  'y_direction',
  'y',
  'on_frontier',
] as const;

/** `pareto.csv`: each config's point and whether it is on the frontier. */
export function paretoCsv(pareto: ParetoResult): string {
  return toCsv(
    PARETO_CSV_COLUMNS,
    pareto.points.map((p) => [
      p.configHash,
      p.label,
      pareto.x.metric,
      pareto.x.direction,
      p.x,
      pareto.y.metric,
      pareto.y.direction,
      p.y,
      p.onFrontier,
    ]),
  );
}

/** Parse CSV text (RFC 4180, quoted fields) into rows of strings. Used to read timeseries. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += c;
  }
  if (field !== '' || row.length) {
    row.push(field);
    rows.push(row);
  }
  return rows.filter((r) => !(r.length === 1 && r[0] === ''));
}
