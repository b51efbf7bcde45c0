import { type ConfigSummary, SMALL_SAMPLE_CYCLES, smallSampleNote } from './aggregate';
import type { AnswerCandidate, Estimate, SloCheck, StudyAnswer } from './answer';
import type { ConfigComparison, MetricComparison } from './compare';
import { formatNumber } from './format';
import {
  FIGURE_WARNINGS,
  getMetric,
  METRICS,
  type MetricId,
  metricUnit,
  warningsAffecting,
} from './metrics';
import type { ParetoResult } from './pareto';
import { describePrices, type EnergyPrices } from './prices';
import type { StudyListing } from './studies';
import type { SweepCurve } from './sweep';

/**
 * Plain-text tables for terminals and pipes. Output is deterministic (no widths from the
 * terminal, no colour unless asked), so scripts can rely on it; `color` only adds bold headers.
 */

export interface TextOptions {
  /** Bold the header row with ANSI escapes (TTY only). Default false. */
  color?: boolean;
}

export interface Column {
  header: string;
  align?: 'left' | 'right';
}

/**
 * Align rows under headers with two spaces between columns.
 *
 * @example
 * formatTable([{ header: 'a' }, { header: 'n', align: 'right' }], [['x', '1']]);
 */
export function formatTable(
  columns: readonly Column[],
  rows: readonly (readonly string[])[],
  options: TextOptions = {},
): string {
  const widths = columns.map((c, i) =>
    Math.max([...c.header].length, ...rows.map((r) => [...(r[i] ?? '')].length)),
  );
  const line = (cells: readonly string[]) =>
    columns
      .map((c, i) => {
        const text = cells[i] ?? '';
        const pad = ' '.repeat(widths[i]! - [...text].length);
        return c.align === 'right' ? pad + text : text + pad;
      })
      .join('  ')
      .trimEnd();
  const header = line(columns.map((c) => c.header));
  const rule = widths.map((w) => '─'.repeat(w)).join('  ');
  return (
    [options.color ? `\u001b[1m${header}\u001b[22m` : header, rule, ...rows.map(line)].join('\n') +
    '\n'
  );
}

/**
 * The metrics a terminal table shows by default: the headline figures, when measured (so the
 * openai-only steady-state and goodput columns appear only for studies that have them).
 */
export const TABLE_METRICS: readonly MetricId[] = [
  'energyPerOutputTokenJ',
  'carbonPer1MOutputTokensG',
  'costPer1MOutputTokens',
  'steadyStateEnergyPerOutputTokenJ',
  'outputTokensPerS',
  'goodputShare',
  'ttftP50Ms',
  'ttftP95Ms',
  'ttftFromScheduledP50Ms',
  'itlP50Ms',
  'itlP95Ms',
  'tpotP50Ms',
  'prefillEnergyPerInputTokenJ',
  'decodeEnergyPerOutputTokenJ',
  'totalEnergyJ',
  'gpuPeakMemoryMiB',
  'rssPeakMiB',
];

/** Marks a value that a warning on one of the config's runs affects (footnoted under the table). */
const WARNED = ' !';

const cell = (s: ConfigSummary, id: MetricId): string => {
  const m = s.metrics[id];
  if (m.mean === null) return '—';
  const value = m.ci
    ? `${formatNumber(m.mean)} (${formatNumber(m.ci.low)}–${formatNumber(m.ci.high)})`
    : formatNumber(m.mean);
  return warningsAffecting(id, Object.keys(s.warningRuns)).length > 0 ? value + WARNED : value;
};

/**
 * One line per config and warning that affects a shown figure: which figures, in how many runs,
 * and what it means for them.
 */
function warningNotes(summaries: readonly ConfigSummary[], shown: readonly MetricId[]): string[] {
  const notes: string[] = [];
  summaries.forEach((s, i) => {
    for (const [code, runs] of Object.entries(s.warningRuns)) {
      const figures = shown.filter((id) => warningsAffecting(id, [code]).length > 0);
      if (figures.length === 0) continue;
      const meaning = FIGURE_WARNINGS[code as keyof typeof FIGURE_WARNINGS] ?? '';
      notes.push(
        `${WARNED.trim()} ${code} in ${runs} of ${s.completed} run${s.completed === 1 ? '' : 's'} of config ${i + 1} (${s.label}), next to ${figures.map((id) => getMetric(id).label).join(', ')}${meaning ? `: ${meaning}` : ''}.`,
      );
    }
  });
  return notes;
}

/**
 * The per-config table: mean and bootstrap 95% CI per metric; `*` marks the Pareto frontier.
 * Metrics no config measured are left out (and listed under the table).
 *
 * @example
 * process.stdout.write(renderConfigTable(summaries, { pareto }));
 */
export function renderConfigTable(
  summaries: readonly ConfigSummary[],
  options: TextOptions & {
    pareto?: ParetoResult;
    metrics?: readonly MetricId[];
    /** Drop trailing metric columns until the table fits (a terminal's width). Default: no limit. */
    maxWidth?: number;
    /** The prices behind the carbon and cost columns (named under the table). */
    prices?: EnergyPrices | null;
  } = {},
): string {
  const wanted = options.metrics ?? TABLE_METRICS;
  const measured = wanted.filter((id) => summaries.some((s) => s.metrics[id].n > 0));
  // An optional metric (openai steady state, goodput) is not "missing" from a study that never
  // had it: naming it would only be noise for llamacpp users.
  const missing = wanted.filter((id) => !measured.includes(id) && !getMetric(id).optional);
  let shown = measured;
  let table = configTableText(summaries, shown, options);
  while (options.maxWidth && shown.length > 1 && widest(table) > options.maxWidth) {
    shown = shown.slice(0, -1);
    table = configTableText(summaries, shown, options);
  }
  const hidden = measured.slice(shown.length);
  let text = table;
  const frontier = options.pareto?.points.some((p) => p.onFrontier);
  text += 'Mean over completed cycles (bootstrap 95% CI).';
  if (options.prices) text += `\n${describePrices(options.prices)}`;
  const caution = smallSampleNote(summaries);
  if (caution) text += `\n${caution}`;
  for (const note of warningNotes(summaries, shown)) text += `\n${note}`;
  if (frontier && options.pareto) {
    text += `\n* = Pareto frontier (${getMetric(options.pareto.x.metric).label} ${options.pareto.x.direction} vs ${getMetric(options.pareto.y.metric).label} ${options.pareto.y.direction}).`;
  }
  text += '\n';
  if (hidden.length) {
    text += `Not shown (terminal too narrow): ${hidden.map((id) => getMetric(id).label).join(', ')}; see --csv or --json.\n`;
  }
  if (summaries.length > 0 && summaries.every((s) => s.completed === 0)) {
    // Nothing is "not measurable" here: no run completed, so there is nothing to summarise yet.
    text +=
      'No completed run: nothing to summarise. Failed runs and their errors are in summary.csv and report.html.\n';
  } else if (missing.length) {
    text += `Not measured: ${missing.map((id) => getMetric(id).label).join(', ')}.\n`;
  }
  return text;
}

/** SGR colour codes (ESC [ n m), which take no width on a terminal. */
const SGR = new RegExp(`${String.fromCharCode(27)}\\[\\d+m`, 'g');

const widest = (text: string): number =>
  Math.max(...text.split('\n').map((l) => [...l.replace(SGR, '')].length));

function configTableText(
  summaries: readonly ConfigSummary[],
  shown: readonly MetricId[],
  options: TextOptions & { pareto?: ParetoResult; prices?: EnergyPrices | null },
): string {
  const frontier = new Set(
    options.pareto?.points.filter((p) => p.onFrontier).map((p) => p.configHash) ?? [],
  );
  const columns: Column[] = [
    { header: '#', align: 'right' },
    { header: 'config' },
    { header: 'ok/failed', align: 'right' },
    ...shown.map((id) => ({
      header: `${getMetric(id).label} (${metricUnit(id, options.prices)})`,
      align: 'right' as const,
    })),
  ];
  const rows = summaries.map((s, i) => [
    String(i + 1),
    `${frontier.has(s.configHash) ? '* ' : ''}${s.label}`,
    `${s.completed}/${s.failed}`,
    ...shown.map((id) => cell(s, id)),
  ]);
  return formatTable(columns, rows, options);
}

const verdictText = (m: MetricComparison): string => {
  if (m.verdict === 'better' || m.verdict === 'worse') return `B ${m.verdict}`;
  if (m.verdict === 'too-few-cycles') return `no verdict (n<${SMALL_SAMPLE_CYCLES})`;
  return m.verdict;
};

const ratioText = (m: MetricComparison): string =>
  m.ratio === null ? '—' : `${formatNumber(m.ratio, 3)}×`;
const ciText = (m: MetricComparison): string =>
  m.ci ? `${formatNumber(m.ci.low, 3)}–${formatNumber(m.ci.high, 3)}` : '—';

/**
 * One comparison as a table: A, B, the ratio B/A, its 95% CI and a verdict for B.
 *
 * @example
 * process.stdout.write(renderComparison(compareConfigs(study, '1', '2')));
 */
export function renderComparison(comparison: ConfigComparison, options: TextOptions = {}): string {
  const head = `A: ${comparison.a.label} (${comparison.a.configHash})  ${comparison.a.study}\nB: ${comparison.b.label} (${comparison.b.configHash})  ${comparison.b.study}\n`;
  const rows = comparison.metrics
    .filter((m) => m.a.n > 0 || m.b.n > 0)
    .map((m) => {
      const def = getMetric(m.metric);
      return [
        `${def.label} (${def.unit})`,
        `${formatNumber(m.a.mean)} (n=${m.a.n})`,
        `${formatNumber(m.b.mean)} (n=${m.b.n})`,
        ratioText(m),
        ciText(m),
        verdictText(m),
      ];
    });
  const table = formatTable(
    [
      { header: 'metric' },
      { header: 'A', align: 'right' },
      { header: 'B', align: 'right' },
      { header: 'B/A', align: 'right' },
      { header: '95% CI of B/A', align: 'right' },
      { header: 'verdict' },
    ],
    rows,
    options,
  );
  // 2–4 cycles a side give an optimistic interval: no verdict, and say why beside the table.
  const few = comparison.metrics.filter((m) => m.verdict === 'too-few-cycles');
  const caution = few.length
    ? `Fewer than ${SMALL_SAMPLE_CYCLES} cycles on a side (n=${Math.min(...few.map((m) => Math.min(m.a.n, m.b.n)))}): the intervals are optimistic, so no better/worse verdict is given; run at least ${SMALL_SAMPLE_CYCLES} cycles (execution.cycles) for one.\n`
    : '';
  return `${head}${table}${caution}`;
}

/**
 * Studies under a results folder with status and counts.
 *
 * @example
 * process.stdout.write(renderStudyList(await listStudies('results')));
 */
export function renderStudyList(
  studies: readonly StudyListing[],
  options: TextOptions = {},
): string {
  if (studies.length === 0) return 'No studies found.\n';
  return formatTable(
    [
      { header: 'study' },
      { header: 'status' },
      { header: 'completed', align: 'right' },
      { header: 'failed', align: 'right' },
      { header: 'pending', align: 'right' },
      { header: 'created' },
      { header: 'directory' },
    ],
    studies.map((s) => [
      s.name,
      s.statusText,
      s.counts ? String(s.counts.completed) : '—',
      s.counts ? String(s.counts.failed) : '—',
      s.counts ? String(s.counts.pending + s.counts.running) : '—',
      s.createdAt ?? '—',
      s.problem ? `${s.dir} (${s.problem})` : s.dir,
    ]),
    options,
  );
}

/** The full metric list for `--json` consumers: id, label, unit, direction. */
export function metricCatalogue(): {
  id: MetricId;
  label: string;
  unit: string;
  direction: string;
}[] {
  return METRICS.map(({ id, label, unit, direction }) => ({ id, label, unit, direction }));
}

const estimateText = (e: Estimate, unit: string): string =>
  `${formatNumber(e.mean)} ${unit} (${e.ci ? `95% CI ${formatNumber(e.ci.low)}–${formatNumber(e.ci.high)}, ` : ''}${e.n} cycle${e.n === 1 ? '' : 's'})`;

const checkText = (k: SloCheck): string => {
  if (k.value === null) return `${k.label} not measured (target ${formatNumber(k.targetMs)} ms)`;
  const v = `${k.label} ${formatNumber(k.value.mean)} ms`;
  if (k.met === false)
    return `${v} misses ${formatNumber(k.targetMs)} ms by ${formatNumber(k.excessMs)} ms (+${formatNumber(((k.ratio ?? 1) - 1) * 100, 3)}%)`;
  const marginal =
    k.marginal && k.value.ci
      ? ` (marginal: its 95% CI reaches ${formatNumber(k.value.ci.high)} ms)`
      : '';
  return `${v} ≤ ${formatNumber(k.targetMs)} ms${marginal}`;
};

/** The answer's headline figures for one candidate: J/token, and carbon and cost when priced. */
function candidateFigures(c: AnswerCandidate, prices: StudyAnswer['prices']): string {
  const parts = [
    c.energyPerOutputTokenJ
      ? estimateText(c.energyPerOutputTokenJ, 'J/token')
      : 'J/token not measured',
  ];
  if (c.carbonGPer1MOutputTokens)
    parts.push(`${formatNumber(c.carbonGPer1MOutputTokens.mean)} gCO2e/1M tokens`);
  if (c.costPer1MOutputTokens)
    parts.push(`${formatNumber(c.costPer1MOutputTokens.mean)} ${prices?.currency ?? ''}/1M tokens`);
  return parts.join(' · ');
}

const vsBestText = (c: AnswerCandidate): string =>
  c.vsBest
    ? `${formatNumber(c.vsBest.ratio, 3)}× the best's J/token${c.vsBest.ci ? ` (95% CI ${formatNumber(c.vsBest.ci.low, 3)}–${formatNumber(c.vsBest.ci.high, 3)})` : ' (one cycle: no interval)'}`
    : '';

/**
 * The answer as text for a terminal: the winner with its interval and checks, the runner-up and
 * any tie; or which target is missed by how much. Ends with how "meets" is judged.
 *
 * @example
 * process.stdout.write(renderAnswer(answerStudy(study)));
 */
export function renderAnswer(answer: StudyAnswer): string {
  const lines: string[] = [];
  const warned = (c: AnswerCandidate) =>
    c.warnings.length ? ` [! ${c.warnings.join(', ')}: latencies partly the client's]` : '';
  const checks = (c: AnswerCandidate) =>
    c.checks.length ? `    ${c.checks.map(checkText).join('; ')}` : null;
  const unjudged = answer.candidates.filter((c) => c.meets === null);
  switch (answer.status) {
    case 'no-results':
      lines.push('The answer: no completed run yet, so no configuration to name.');
      break;
    case 'no-energy': {
      const meeting = answer.candidates.filter((c) => c.meets === true && !c.overSaturated);
      lines.push(
        'The answer: energy per token was measured for no configuration, so none can be named the cheapest.',
      );
      // Without any SLO every configuration "meets" them: naming them all says nothing.
      if (meeting.length && !answer.noSlo)
        lines.push(`  Meeting their SLOs: ${meeting.map((c) => c.label).join(', ')}.`);
      break;
    }
    case 'met': {
      const best = answer.best as AnswerCandidate;
      lines.push(
        answer.noSlo
          ? 'The answer (no SLO set in openai.slo, so the lowest J/token overall):'
          : 'The answer (lowest J/token that meets its SLOs):',
      );
      lines.push(`  * ${best.label}: ${candidateFigures(best, answer.prices)}${warned(best)}`);
      const bestChecks = checks(best);
      if (bestChecks) lines.push(bestChecks);
      const runnerUp = answer.runnerUp;
      if (runnerUp) {
        lines.push(
          `  runner-up: ${runnerUp.label}: ${candidateFigures(runnerUp, answer.prices)}, ${vsBestText(runnerUp)}${warned(runnerUp)}`,
        );
      } else {
        lines.push('  runner-up: none (no other configuration meets its SLOs).');
      }
      if (answer.tiedWithBest.length > 0) {
        lines.push(
          `  tied with the best within the intervals: ${answer.tiedWithBest.map((c) => `${c.label} (${vsBestText(c)})`).join('; ')}. The data do not separate them: choose on another figure (throughput, latency) or run more cycles.`,
        );
      } else if (runnerUp && runnerUp.vsBest?.tied === null) {
        lines.push(
          '  With one cycle there is no interval: the ranking is not backed by one (execution.cycles ≥ 2).',
        );
      }
      break;
    }
    case 'none-met': {
      lines.push('The answer: no configuration meets its SLOs.');
      const closest = answer.closest;
      if (closest) {
        lines.push(
          `  closest: ${closest.label}: ${closest.checks
            .filter((k) => k.met === false)
            .map(checkText)
            .join('; ')}${warned(closest)}`,
        );
      }
      for (const t of answer.bestPerTarget) {
        lines.push(
          `  best ${t.label} reached: ${formatNumber(t.valueMs)} ms by ${t.candidate}, ${formatNumber(t.excessMs)} ms over its ${formatNumber(t.targetMs)} ms target (+${formatNumber((t.ratio - 1) * 100, 3)}%)`,
        );
      }
      break;
    }
  }
  if (unjudged.length > 0 && answer.status !== 'no-results') {
    lines.push(
      `  Not judged (a target not measured): ${unjudged
        .map(
          (c) =>
            `${c.label} (${c.checks
              .filter((k) => k.met === null)
              .map((k) => k.label)
              .join(', ')})`,
        )
        .join('; ')}.`,
    );
  }
  if (answer.status !== 'no-results' && !answer.noSlo)
    lines.push(`How "meets" is judged: ${answer.rule}`);
  return `${lines.join('\n')}\n`;
}

/**
 * Load sweeps as text (`llem results show`): one row per configuration and load point, means over
 * cycles, an over-saturated point marked `!`, then why each sweep stopped raising the rate. Empty
 * without a sweep.
 *
 * @example
 * process.stdout.write(renderSweepTable(sweepCurves(study.runs)));
 */
export function renderSweepTable(curves: readonly SweepCurve[], options: TextOptions = {}): string {
  if (curves.length === 0) return '';
  const columns: Column[] = [
    { header: 'config' },
    { header: 'point', align: 'right' },
    { header: 'kind' },
    { header: 'target req/s', align: 'right' },
    { header: 'achieved req/s', align: 'right' },
    { header: 'J/token', align: 'right' },
    { header: 'TTFT p50 (ms)', align: 'right' },
    { header: 'TPOT p50 (ms)', align: 'right' },
    { header: 'cycles', align: 'right' },
  ];
  const rows = curves.flatMap((c) =>
    c.points.map((p) => [
      c.label,
      String(p.index),
      p.overSaturated ? `${p.kind} !` : p.kind,
      formatNumber(p.targetRate),
      formatNumber(p.achievedRequestRate),
      formatNumber(p.energyPerOutputTokenJ),
      formatNumber(p.ttftP50Ms),
      formatNumber(p.tpotP50Ms),
      String(p.cycles),
    ]),
  );
  const notes = [
    ...(curves.some((c) => c.points.some((p) => p.overSaturated))
      ? ['! over-saturated: TTFT and requests in flight climbed while the point ran.']
      : []),
    ...curves.flatMap((c) => c.stopReasons.map((r) => `${c.label}: ${r}`)),
  ];
  return `Load sweep (means over cycles; TTFT from the scheduled send time in open loop):\n${formatTable(columns, rows, options)}${notes.map((n) => `${n}\n`).join('')}\n`;
}
