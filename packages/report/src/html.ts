import type { RunResult } from '@llem/domain';
import { type ConfigSummary, smallSampleNote } from './aggregate';
import type { AnswerCandidate, Estimate, SloCheck, StudyAnswer } from './answer';
import { escapeHtml as esc, formatInterval, formatNumber } from './format';
import { describeInputChange, inputChanges } from './inputs';
import { configBarCharts, latencyCharts, paretoChart, sweepCharts } from './internal/charts';
import type { LoadedStudy } from './load';
import {
  FIGURE_WARNINGS,
  getMetric,
  METRICS,
  type MetricContext,
  type MetricId,
  metricUnit,
  warningsAffecting,
} from './metrics';
import type { ParetoResult } from './pareto';
import { describePrices, type EnergyPrices } from './prices';
import type { SweepCurve } from './sweep';

/** A pre-rendered view of one run over its window: power/temperature and its requests. */
export interface RunTrace {
  key: string;
  label: string;
  cycle: number;
  /** Power and temperature charts; `''` when the run has no sampler trace. */
  svg: string;
  /** TTFT and E2E of every request over the window, when the run has per-request records. */
  requestsSvg?: string;
  /** A managed server's main metrics over the window, when it was scraped. */
  serverSvg?: string;
}

export interface ReportHtmlInput {
  study: LoadedStudy;
  summaries: readonly ConfigSummary[];
  pareto: ParetoResult;
  /** Why the Pareto axes differ from the requested ones, if they do. */
  paretoNote?: string | null;
  traces: readonly RunTrace[];
  /** The lowest-J/token configuration that meets its SLOs; the section is left out without it. */
  answer?: StudyAnswer;
  /** The carbon intensity and price behind the carbon and cost figures. */
  prices?: EnergyPrices | null;
  /** Load sweeps (`openai.load: sweep`), per configuration; the section is left out without. */
  sweeps?: readonly SweepCurve[];
  /** ISO timestamp printed in the footer. */
  generatedAt: string;
}

function firstResult(study: LoadedStudy): RunResult | null {
  return study.runs.find((r) => r.result)?.result ?? null;
}

/** Machine, GPU and driver as the first completed run saw them. */
export function describeEnvironment(result: RunResult | null): {
  machine: string;
  gpu: string;
  driver: string;
} {
  if (!result) return { machine: 'unknown (no completed run)', gpu: 'unknown', driver: 'unknown' };
  const e = result.environment;
  const cpu = [e.cpu.model, e.cpu.cores !== null ? `${e.cpu.cores} cores` : null]
    .filter(Boolean)
    .join(', ');
  const os = [e.os.platform, e.os.release, e.os.arch].filter(Boolean).join(' ');
  const gpus = e.gpus.map((g) => `#${g.index} ${g.name ?? 'unknown GPU'}`).join('; ');
  return {
    machine: [cpu || 'unknown CPU', os, `Node ${e.nodeVersion}`].join(' · '),
    gpu: gpus || 'none detected (CPU only)',
    driver:
      [
        e.driverVersion ? `driver ${e.driverVersion}` : null,
        e.cudaVersion ? `CUDA ${e.cudaVersion}` : null,
      ]
        .filter(Boolean)
        .join(', ') || '—',
  };
}

const STYLE = `
:root { color-scheme: light; --fg:#212529; --muted:#6c757d; --line:#dee2e6; --accent:#1c7ed6; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
  margin: 0 auto; max-width: 1200px; padding: 24px; background: #fff; }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 32px 0 8px;
  border-bottom: 1px solid var(--line); padding-bottom: 4px; } h3 { font-size: 14px; margin: 12px 0 4px; }
.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 12px 0; }
.meta dt { color: var(--muted); } .meta dd { margin: 0; font-family: ui-monospace, monospace; }
.counts span { display: inline-block; padding: 2px 10px; border-radius: 12px; margin-right: 6px;
  background: #f1f3f5; } .counts .ok { background: #d3f9d8; } .counts .bad { background: #ffe3e3; }
.counts .skip { background: #fff3bf; }
.grid { display: flex; flex-wrap: wrap; gap: 16px; } .grid figure { margin: 0; }
figure figcaption { color: var(--muted); font-size: 12px; }
.note { color: var(--muted); font-style: italic; }
.note.caution { color: #8a5300; font-style: normal; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: right; white-space: nowrap; }
th:first-child, td:first-child, th.text, td.text { text-align: left; }
th { cursor: pointer; user-select: none; background: #f8f9fa; position: sticky; top: 0; }
th[aria-sort="ascending"]::after { content: " ▲"; } th[aria-sort="descending"]::after { content: " ▼"; }
td .ci { color: var(--muted); font-size: 11px; display: block; }
tr.failed td { color: #c92a2a; } .frontier { color: #d9480f; font-weight: bold; }
td .warn { color: #8a5300; font-size: 11px; display: block; }
.answer { font-size: 15px; padding: 8px 12px; border-left: 4px solid var(--accent); background: #f1f8ff; }
.answer.none { border-color: #c92a2a; background: #fff5f5; }
tr.best td { background: #f1f8ff; } .slo.met { color: #2b8a3e; } .slo.missed { color: #c92a2a; }
.slo.unknown { color: var(--muted); }
.table-wrap { overflow-x: auto; max-height: 70vh; }
ul.warnings li { margin: 4px 0; } ul.warnings .runs { color: var(--muted); font-size: 12px; } code { font-family: ui-monospace, monospace; font-size: 12px; }
select { font: inherit; padding: 2px 4px; }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; }
`;

/** Sorting by header click: numbers by `data-v`, text otherwise; empty cells always last. */
const SCRIPT = `
(function () {
  function key(cell) {
    var v = cell.getAttribute('data-v');
    if (v === null) return cell.textContent.trim().toLowerCase();
    return v === '' ? null : Number(v);
  }
  document.querySelectorAll('table.sortable').forEach(function (table) {
    var heads = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads, function (th, col) {
      th.addEventListener('click', function () {
        var asc = th.getAttribute('aria-sort') !== 'ascending';
        Array.prototype.forEach.call(heads, function (h) { h.removeAttribute('aria-sort'); });
        th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = key(a.cells[col]), y = key(b.cells[col]);
          if (x === null || y === null) return x === y ? 0 : x === null ? 1 : -1;
          var c = x < y ? -1 : x > y ? 1 : 0;
          return asc ? c : -c;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
  var select = document.getElementById('trace-select');
  if (select) {
    var show = function () {
      document.querySelectorAll('.trace').forEach(function (el) {
        el.hidden = el.getAttribute('data-run') !== select.value;
      });
    };
    select.addEventListener('change', show);
    show();
  }
})();
`;

function numCell(v: number | null | undefined, extra = ''): string {
  return `<td data-v="${v ?? ''}">${formatNumber(v)}${extra}</td>`;
}

/**
 * The mark beside a figure that a warning affects: the code, in how many runs, and what it means
 * for the figure on hover (`FIGURE_WARNINGS`). Empty when no warning affects it.
 */
function warnMark(id: MetricId, warningRuns: Readonly<Record<string, number>>, of: number): string {
  return warningsAffecting(id, Object.keys(warningRuns))
    .map(
      (code) =>
        `<span class="warn" title="${esc(FIGURE_WARNINGS[code] ?? '')}">⚠ ${esc(code)}${of > 1 ? ` (${warningRuns[code]}/${of} runs)` : ''}</span>`,
    )
    .join('');
}

function configTable(
  summaries: readonly ConfigSummary[],
  pareto: ParetoResult,
  prices: EnergyPrices | null,
): string {
  const onFrontier = new Set(pareto.points.filter((p) => p.onFrontier).map((p) => p.configHash));
  const metrics = METRICS.filter((m) => summaries.some((s) => s.metrics[m.id].n > 0));
  const head = [
    '<th class="text">Config</th>',
    '<th class="text">Hash</th>',
    '<th>Completed</th>',
    '<th>Failed</th>',
    ...metrics.map(
      (m) =>
        `<th title="mean; 95% bootstrap CI below">${esc(m.label)} (${esc(metricUnit(m.id, prices))})</th>`,
    ),
  ].join('');
  const rows = summaries.map((s) => {
    const cells = metrics.map((m) => {
      const x = s.metrics[m.id];
      return numCell(
        x.mean,
        x.n > 0
          ? `<span class="ci">${formatInterval(x.ci)} · CV ${formatNumber(x.cv, 2)}</span>${warnMark(m.id, s.warningRuns, s.completed)}`
          : '',
      );
    });
    const label = onFrontier.has(s.configHash)
      ? `<span class="frontier" title="on the Pareto frontier">★ ${esc(s.label)}</span>`
      : esc(s.label);
    return `<tr><td class="text">${label}</td><td class="text"><code>${esc(s.configHash)}</code></td>${numCell(s.completed)}${numCell(s.failed)}${cells.join('')}</tr>`;
  });
  return `<div class="table-wrap"><table class="sortable" id="config-table"><thead><tr>${head}</tr></thead><tbody>${rows.join('')}</tbody></table></div>`;
}

function runTable(study: LoadedStudy, context: MetricContext): string {
  const base: MetricId[] = [
    'energyPerOutputTokenJ',
    'outputTokensPerS',
    'ttftP50Ms',
    'itlP50Ms',
    'totalEnergyJ',
  ];
  // Steady-state energy and goodput only when some run has them (openai runs), so a study
  // without them keeps its table as it was.
  const optional = METRICS.filter(
    (m) =>
      m.optional && study.runs.some((r) => r.result !== null && m.read(r.result, context) !== null),
  ).map((m) => m.id);
  const ids = [...base, ...optional];
  const head = [
    '<th class="text">Run</th>',
    '<th class="text">Config</th>',
    '<th>Cycle</th>',
    '<th class="text">Status</th>',
    ...ids.map(
      (id) => `<th>${esc(getMetric(id).label)} (${esc(metricUnit(id, context.prices))})</th>`,
    ),
    '<th class="text">Error / warnings</th>',
  ].join('');
  const rows = study.runs.map((r) => {
    const codes = Object.fromEntries((r.result?.warnings ?? []).map((w) => [w.code, 1]));
    const vals = ids.map((id) => {
      const v = r.result ? getMetric(id).read(r.result, context) : null;
      return numCell(v, v === null ? '' : warnMark(id, codes, 1));
    });
    const note = r.error
      ? `${esc(r.error.type)}: ${esc(r.error.message)}`
      : (r.result?.warnings.map((w) => esc(w.code)).join(', ') ?? '');
    return `<tr class="${r.status === 'failed' || r.error ? 'failed' : ''}"><td class="text"><code>${esc(r.key)}</code></td><td class="text">${esc(r.label)}</td>${numCell(r.cycle + 1)}<td class="text">${esc(r.status)}</td>${vals.join('')}<td class="text">${note}</td></tr>`;
  });
  return `<div class="table-wrap"><table class="sortable" id="run-table"><thead><tr>${head}</tr></thead><tbody>${rows.join('')}</tbody></table></div>`;
}

function warningsList(study: LoadedStudy): string {
  const items: string[] = [];
  for (const s of study.skipped) {
    items.push(`<li><b>skipped config</b> ${esc(s.label)}: ${esc(s.reason)}</li>`);
  }
  for (const change of inputChanges(study.runs)) {
    items.push(
      `<li class="input-changed"><b>input changed</b> ${esc(describeInputChange(change))}</li>`,
    );
  }
  // The same warning on every run is one fact, not N lines: group by kind, code and message, and
  // name the runs it concerns.
  const groups = new Map<string, { head: string; message: string; runs: string[] }>();
  const add = (head: string, message: string, run: string) => {
    const key = `${head}\0${message}`;
    const g = groups.get(key);
    if (g) g.runs.push(run);
    else groups.set(key, { head, message, runs: [run] });
  };
  for (const r of study.runs) {
    const who = `<code>${esc(r.key)}</code> (${esc(r.label)}, cycle ${r.cycle + 1})`;
    if (r.error) {
      add(
        `<b>${r.status === 'failed' ? 'failed' : 'unusable result'}</b> ${esc(r.error.type)}`,
        r.error.message,
        who,
      );
    }
    const warnings = r.result?.warnings ?? [];
    for (const w of warnings) add(`<code>${esc(w.code)}</code>`, w.message, who);
    const reason = r.result?.energy.unavailableReason;
    if (reason && !warnings.some((w) => w.code === 'energy-unavailable')) {
      add('<code>energy</code>', reason, who);
    }
  }
  for (const g of groups.values()) {
    const shown = g.runs.slice(0, 5).join(', ');
    const more = g.runs.length > 5 ? ` and ${g.runs.length - 5} more` : '';
    const runs = g.runs.length === 1 ? shown : `${g.runs.length} runs: ${shown}${more}`;
    items.push(`<li>${g.head}: ${esc(g.message)} <span class="runs">— ${runs}</span></li>`);
  }
  return items.length
    ? `<ul class="warnings" id="warnings">${items.join('')}</ul>`
    : '<p id="warnings">No warnings.</p>';
}

/** Above the latency charts: which runs carry a warning that affects latencies, and what it means. */
function latencyWarningNote(study: LoadedStudy): string {
  const byCode = new Map<string, string[]>();
  for (const r of study.runs) {
    for (const w of r.result?.warnings ?? []) {
      if (warningsAffecting('ttftP50Ms', [w.code]).length === 0) continue;
      byCode.set(w.code, [...(byCode.get(w.code) ?? []), `${r.label} cycle ${r.cycle}`]);
    }
  }
  return [...byCode]
    .map(
      ([code, runs]) =>
        `<p class="note caution" id="latency-warning-${esc(code)}">⚠ <code>${esc(code)}</code> in ${runs.length} run${runs.length === 1 ? '' : 's'} (${esc(runs.slice(0, 5).join(', '))}${runs.length > 5 ? ', …' : ''}): ${esc(FIGURE_WARNINGS[code as keyof typeof FIGURE_WARNINGS] ?? '')}.</p>`,
    )
    .join('\n');
}

const estimateHtml = (e: Estimate | null, unit: string): string =>
  e === null
    ? '—'
    : `${formatNumber(e.mean)} ${esc(unit)} <span class="ci">${e.ci ? `95% CI ${formatInterval(e.ci)}` : 'one cycle: no interval'} · ${e.n} cycle${e.n === 1 ? '' : 's'}</span>`;

function checkHtml(k: SloCheck): string {
  if (k.value === null)
    return `<span class="slo unknown">${esc(k.label)} not measured (≤ ${formatNumber(k.targetMs)} ms)</span>`;
  const value = `${esc(k.label)} ${formatNumber(k.value.mean)} ms`;
  if (k.met === false)
    return `<span class="slo missed">✗ ${value} &gt; ${formatNumber(k.targetMs)} ms (+${formatNumber(k.excessMs)} ms, +${formatNumber(((k.ratio ?? 1) - 1) * 100, 3)}%)</span>`;
  const marginal =
    k.marginal && k.value.ci ? ` — marginal, CI up to ${formatNumber(k.value.ci.high)} ms` : '';
  return `<span class="slo met">✓ ${value} ≤ ${formatNumber(k.targetMs)} ms${marginal}</span>`;
}

function candidateRow(c: AnswerCandidate, answer: StudyAnswer): string {
  const role =
    c === answer.best
      ? '★ best'
      : c === answer.runnerUp
        ? 'runner-up'
        : answer.tiedWithBest.includes(c)
          ? 'tied with best'
          : c === answer.closest
            ? 'closest'
            : '';
  const vs = c.vsBest
    ? `${formatNumber(c.vsBest.ratio, 3)}×${c.vsBest.ci ? ` <span class="ci">95% CI ${formatNumber(c.vsBest.ci.low, 3)}–${formatNumber(c.vsBest.ci.high, 3)}</span>` : ''}`
    : '—';
  const priced = [
    answer.prices?.carbonGPerKwh != null
      ? `<td data-v="${c.carbonGPer1MOutputTokens?.mean ?? ''}">${formatNumber(c.carbonGPer1MOutputTokens?.mean)}</td>`
      : '',
    answer.prices?.pricePerKwh != null
      ? `<td data-v="${c.costPer1MOutputTokens?.mean ?? ''}">${formatNumber(c.costPer1MOutputTokens?.mean)}</td>`
      : '',
  ].join('');
  // An over-saturated point never counts as meeting its SLOs (ANSWER_RULE), whatever its latencies.
  const meets = c.overSaturated
    ? 'no (over-saturated)'
    : c.meets === true
      ? 'yes'
      : c.meets === false
        ? 'no'
        : 'not judged';
  const warn = c.warnings.map((w) => `<span class="warn">⚠ ${esc(w)}</span>`).join('');
  return `<tr class="${c === answer.best ? 'best' : ''}"><td class="text">${esc(role)}</td><td class="text">${esc(c.label)}${warn}</td><td data-v="${c.energyPerOutputTokenJ?.mean ?? ''}">${estimateHtml(c.energyPerOutputTokenJ, 'J/token')}</td>${priced}<td class="text">${esc(meets)}</td><td class="text">${c.checks.map(checkHtml).join('<br>') || '<span class="note">no SLO</span>'}</td><td>${vs}</td></tr>`;
}

/**
 * Load sweeps: J/token, TTFT and TPOT against the achieved request rate per configuration, each
 * point listed with its load, and why a sweep stopped raising the rate. Empty without a sweep.
 */
function sweepSection(curves: readonly SweepCurve[]): string {
  if (curves.length === 0) return '';
  const charts = sweepCharts(curves);
  const rows = curves
    .flatMap((c) =>
      c.points.map(
        (p) =>
          `<tr><td>${esc(c.label)}</td><td>${p.index}</td><td>${esc(p.kind)}${p.overSaturated ? ' <span class="warn" title="the sweep found this point over-saturated: TTFT and requests in flight climbed while it ran">⚠ over-saturated</span>' : ''}</td>${numCell(p.targetRate)}${numCell(p.achievedRequestRate)}${numCell(p.energyPerOutputTokenJ)}${numCell(p.ttftP50Ms)}${numCell(p.tpotP50Ms)}<td>${p.cycles}</td></tr>`,
      ),
    )
    .join('');
  const stops = curves.flatMap((c) =>
    c.stopReasons.map((r) => `<li>${esc(c.label)}: ${esc(r)}</li>`),
  );
  return `<h2>Load sweep</h2>
<section id="sweep">
<p class="note">Each configuration's load points (means over cycles): synchronous (one request at a time), saturation (as many in flight as the cap allows), then open-loop rates spaced between their throughputs. TTFT is counted from the scheduled send time in open loop. A red cross: a point the sweep found over-saturated (TTFT and requests in flight climbed while it ran); the rate stopped rising there.</p>
${charts.length ? `<div class="grid" id="sweep-charts">${charts.map((c) => `<figure data-sweep="${esc(c.title)}">${c.svg}<figcaption>${esc(c.title)} against the achieved request rate</figcaption></figure>`).join('')}</div>` : ''}
<table class="sortable" id="sweep-points"><thead><tr><th>Config</th><th>Point</th><th>Kind</th><th>Target rate (req/s)</th><th>Achieved rate (req/s)</th><th>J/token</th><th>TTFT p50 (ms)</th><th>TPOT p50 (ms)</th><th>Cycles</th></tr></thead><tbody>${rows}</tbody></table>
${stops.length ? `<p class="note">Sweeps that stopped raising the rate:</p><ul id="sweep-stops">${stops.join('')}</ul>` : ''}
</section>`;
}

/** The section the report opens with: the answer, then every candidate with its checks. */
function answerSection(answer: StudyAnswer): string {
  let headline: string;
  const best = answer.best;
  if (answer.status === 'met' && best) {
    const tie = answer.tiedWithBest.length
      ? ` Tied with it within the intervals: ${answer.tiedWithBest.map((c) => `<b>${esc(c.label)}</b>`).join(', ')} — the data do not separate them; choose on another figure or run more cycles.`
      : '';
    const runnerUp = answer.runnerUp
      ? ` Runner-up: <b>${esc(answer.runnerUp.label)}</b>, ${estimateHtml(answer.runnerUp.energyPerOutputTokenJ, 'J/token')}.`
      : ' No other configuration meets its SLOs.';
    headline = `<p class="answer met">${answer.noSlo ? 'No SLO is set (openai.slo), so the lowest J/token overall: ' : 'Lowest J/token that meets its SLOs: '}<b>${esc(best.label)}</b>, ${estimateHtml(best.energyPerOutputTokenJ, 'J/token')}.${runnerUp}${tie}</p>`;
  } else if (answer.status === 'none-met') {
    const closest = answer.closest
      ? ` Closest: <b>${esc(answer.closest.label)}</b>: ${answer.closest.checks
          .filter((k) => k.met === false)
          .map(checkHtml)
          .join(', ')}.`
      : '';
    const perTarget = answer.bestPerTarget
      .map(
        (t) =>
          `best ${esc(t.label)} reached ${formatNumber(t.valueMs)} ms by ${esc(t.candidate)} (+${formatNumber(t.excessMs)} ms over ${formatNumber(t.targetMs)} ms)`,
      )
      .join('; ');
    headline = `<p class="answer none">No configuration meets its SLOs.${closest}${perTarget ? ` Per target: ${perTarget}.` : ''}</p>`;
  } else if (answer.status === 'no-energy') {
    const meeting = answer.noSlo
      ? []
      : answer.candidates.filter((c) => c.meets === true && !c.overSaturated);
    headline = `<p class="answer none">Energy per token was measured for no configuration, so none can be named the cheapest.${meeting.length ? ` Meeting their SLOs: ${meeting.map((c) => `<b>${esc(c.label)}</b>`).join(', ')}.` : ''}</p>`;
  } else {
    return '<p class="note" id="answer">No completed run yet: no answer.</p>';
  }
  const priced = [
    answer.prices?.carbonGPerKwh != null ? '<th>gCO2e / 1M output tokens</th>' : '',
    answer.prices?.pricePerKwh != null
      ? `<th>${esc(answer.prices.currency ?? '')} / 1M output tokens</th>`
      : '',
  ].join('');
  const table = `<div class="table-wrap"><table class="sortable" id="answer-table"><thead><tr><th class="text"></th><th class="text">Configuration</th><th>J per output token</th>${priced}<th class="text">Meets SLOs</th><th class="text">Checks (mean over cycles)</th><th>J/token ÷ best</th></tr></thead><tbody>${answer.candidates.map((c) => candidateRow(c, answer)).join('')}</tbody></table></div>`;
  return `<section id="answer">${headline}${table}<p class="note">${esc(answer.rule)}</p>${answer.prices ? `<p class="note">${esc(describePrices(answer.prices))}</p>` : ''}</section>`;
}

/**
 * Render the whole self-contained `report.html`: inline CSS, inline SVG, a few lines of inline
 * JS for sorting and the trace selector. No external URL anywhere, so it opens offline.
 *
 * @example
 * const html = renderReportHtml({ study, summaries, pareto, traces: [], generatedAt: new Date().toISOString() });
 */
export function renderReportHtml(input: ReportHtmlInput): string {
  const { study, summaries, pareto, traces } = input;
  const m = study.manifest;
  const env = describeEnvironment(firstResult(study));
  const counts = {
    completed: study.runs.filter((r) => r.status === 'completed').length,
    failed: study.runs.filter((r) => r.status === 'failed').length,
    unfinished: study.runs.filter((r) => r.status === 'pending' || r.status === 'running').length,
    skipped: study.skipped.length,
  };
  const caution = smallSampleNote(summaries);
  const prices = input.prices ?? null;
  const bars = configBarCharts(summaries, prices);
  const latency = latencyCharts(study.runs);
  const paretoSection =
    pareto.points.length > 0
      ? `<figure id="pareto">${paretoChart(pareto)}<figcaption>Each dot is a config (mean over cycles); its whiskers are the 95% interval of each mean (none with one cycle). Orange: the Pareto frontier — no other config is better on both axes.${
          pareto.excluded.length
            ? ` Not plotted (a metric not measured): ${pareto.excluded.map((e) => esc(e.label)).join(', ')}.`
            : ''
        }</figcaption></figure>`
      : '<p class="note" id="pareto">No config has both metrics measured; nothing to plot.</p>';
  const traceSection = traces.length
    ? `<p><label>Run: <select id="trace-select">${traces
        .map(
          (t) =>
            `<option value="${esc(t.key)}">${esc(t.label)} · cycle ${t.cycle + 1} · ${esc(t.key)}</option>`,
        )
        .join('')}</select></label></p>${traces
        .map(
          (t) =>
            `<div class="trace" data-run="${esc(t.key)}">${t.svg}${t.serverSvg ? `<figure class="server-metrics">${t.serverSvg}<figcaption>The managed server's own figures from its /metrics, scraped during the window on the power trace's clock (every series is in runs/${esc(t.key)}.metrics.jsonl).</figcaption></figure>` : ''}${t.requestsSvg ? `<figure class="requests">${t.requestsSvg}<figcaption>Each dot is one measured request, at the time it was sent: time to first token and end-to-end latency (from runs/${esc(t.key)}.requests.jsonl).</figcaption></figure>` : ''}</div>`,
        )
        .join('')}`
    : '<p class="note">No timeseries with power or temperature and no per-request records were recorded (no GPU sampler on this machine?).</p>';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>llem report: ${esc(m.studyName)}</title>
<style>${STYLE}</style>
</head>
<body>
<header>
<h1>${esc(m.studyName)}</h1>
<div class="counts"><span class="ok">${counts.completed} completed</span><span class="bad">${counts.failed} failed</span><span class="skip">${counts.skipped} skipped configs</span>${counts.unfinished ? `<span>${counts.unfinished} not run yet</span>` : ''}<span>study ${esc(m.status)}</span></div>
<dl class="meta">
<dt>Design hash</dt><dd>${esc(m.designHash)}</dd>
<dt>Machine</dt><dd>${esc(env.machine)}</dd>
<dt>GPU</dt><dd>${esc(env.gpu)}</dd>
<dt>Driver</dt><dd>${esc(env.driver)}</dd>
<dt>llem version</dt><dd>${esc(m.toolVersion)}</dd>
<dt>Runs</dt><dd>${study.runs.length} scheduled · ${study.configs.length} configs · created ${esc(m.createdAt)}</dd>
</dl>
</header>
<main>
${input.answer ? `<h2>The answer</h2>\n${answerSection(input.answer)}` : ''}
${sweepSection(input.sweeps ?? [])}
<h2>Trade-off: ${esc(getMetric(pareto.x.metric).label)} vs ${esc(getMetric(pareto.y.metric).label)}</h2>
${input.paretoNote ? `<p class="note">${esc(input.paretoNote)}</p>` : ''}
${paretoSection}
<h2>Per-config results</h2>
<p class="note">Mean across completed cycles; grey: bootstrap 95% confidence interval of the mean and the coefficient of variation. Failed runs are not in the statistics. Click a header to sort.</p>
${caution ? `<p class="note caution" id="small-sample">${esc(caution)}</p>` : ''}
${configTable(summaries, pareto, prices)}
<h2>Metrics by config</h2>
${bars.length ? `<div class="grid" id="bars">${bars.map((b) => `<figure data-metric="${b.metric}">${b.svg}</figure>`).join('')}</div>` : '<p class="note">No completed run yet.</p>'}
<h2>Latency distribution</h2>
${latencyWarningNote(study)}
<p class="note" id="latency-definitions">TTFT: from sending a request to its first token. ITL (inter-token latency): the gaps between successive chunks that carry tokens, as vLLM's benchmark defines it — a chunk holding several tokens is one gap, so ITL reads high when a server sends tokens in groups. TPOT (time per output token): (E2E − TTFT) / (output tokens − 1) per request, from the final token count; it stays exact however tokens are grouped.</p>
${latency.length ? `<div class="grid" id="latency">${latency.map((l) => `<figure>${l.svg}</figure>`).join('')}</div>` : '<p class="note">No latency recorded.</p>'}
<h2>Power, temperature, server and requests over the window</h2>
${traceSection}
<h2>Runs</h2>
${runTable(study, { prices })}
<h2>Warnings</h2>
${warningsList(study)}
</main>
<footer>Generated by llem ${esc(m.toolVersion)} at ${esc(input.generatedAt)} from ${esc(study.dir)}. Rebuild with <code>llem report ${esc(study.dir)}</code>.</footer>
<script>${SCRIPT}</script>
</body>
</html>
`;
}
