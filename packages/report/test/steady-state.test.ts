import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  aggregateStudy,
  CONFIG_CSV_COLUMNS,
  compareConfigs,
  loadStudy,
  METRICS,
  paretoFrontier,
  parseCsv,
  parseParetoAxis,
  RUN_CSV_COLUMNS,
  renderConfigTable,
  writeStudyReport,
} from '../src/index';
import { configBarCharts } from '../src/internal/charts';
import { fakeHash, openaiStudy, standardStudy } from './fixture-study';

const A = fakeHash('concurrency=8');
const B = fakeHash('concurrency=16');
const L = fakeHash('llamacpp');
const BASE_METRICS = METRICS.filter((m) => !m.optional).length;

describe('steady-state energy and goodput metrics', () => {
  it('reads them from extra, null (never 0) when a run has none', async () => {
    const study = await loadStudy(openaiStudy());
    const [a, b, l] = aggregateStudy(study);
    expect(a!.metrics.steadyStateEnergyPerOutputTokenJ.values).toEqual([0.4, 0.5, 0.6]);
    expect(a!.metrics.goodputShare.values).toEqual([0.75, 0.875, 1]);
    // The too-short window is left out, not counted as 0.
    expect(b!.metrics.steadyStateEnergyPerOutputTokenJ.values).toEqual([0.3, 0.35]);
    expect(l!.metrics.steadyStateEnergyPerOutputTokenJ).toMatchObject({ n: 0, mean: null });
    expect(l!.metrics.goodputShare).toMatchObject({ n: 0, mean: null });
  });

  it('adds the per-run columns to summary.csv, empty where not measured', async () => {
    const { files } = await writeStudyReport(openaiStudy());
    const [header, ...rows] = parseCsv(readFileSync(files.summary, 'utf8'));
    expect(header).toEqual([
      ...RUN_CSV_COLUMNS,
      'steady_state_energy_per_output_token_j',
      'goodput_share',
    ]);
    const cell = (key: string, col: string) =>
      rows.find((r) => r[0] === key)![header!.indexOf(col)];
    expect(cell(`${A}_c1`, 'steady_state_energy_per_output_token_j')).toBe('0.5');
    expect(cell(`${A}_c1`, 'goodput_share')).toBe('0.875');
    expect(cell(`${B}_c1`, 'steady_state_energy_per_output_token_j')).toBe('');
    expect(cell(`${B}_c1`, 'goodput_share')).toBe('0.625');
    expect(cell(`${L}_c0`, 'steady_state_energy_per_output_token_j')).toBe('');
    expect(cell(`${L}_c0`, 'goodput_share')).toBe('');
    // The full-window figure is still there, unchanged.
    expect(cell(`${A}_c1`, 'energy_per_output_token_j')).toBe('0.5');
  });

  it('aggregates them per config only where measured, with hand-computed statistics', async () => {
    const { files } = await writeStudyReport(openaiStudy(), { seed: 3 });
    const [header, ...rows] = parseCsv(readFileSync(files.summaryByConfig, 'utf8'));
    expect(header).toEqual([...CONFIG_CSV_COLUMNS]);
    // 3 configs × the 9 base metrics, plus 2 optional metrics for each openai config only.
    expect(BASE_METRICS).toBe(9);
    expect(rows).toHaveLength(3 * 9 + 2 * 2);
    const row = (hash: string, metric: string) => {
      const r = rows.find((x) => x[0] === hash && x[5] === metric);
      if (!r) return undefined;
      return (name: string) =>
        r[CONFIG_CSV_COLUMNS.indexOf(name as (typeof CONFIG_CSV_COLUMNS)[number])]!;
    };
    expect(row(L, 'steadyStateEnergyPerOutputTokenJ')).toBeUndefined();
    expect(row(L, 'goodputShare')).toBeUndefined();

    const aE = row(A, 'steadyStateEnergyPerOutputTokenJ')!;
    expect(aE('unit')).toBe('J/token');
    expect(aE('n')).toBe('3');
    expect(Number(aE('mean'))).toBeCloseTo(0.5, 12);
    expect(Number(aE('std'))).toBeCloseTo(0.1, 12);
    expect(Number(aE('cv'))).toBeCloseTo(0.2, 12);
    expect(Number(aE('ci95_low'))).toBeGreaterThanOrEqual(0.4);
    expect(Number(aE('ci95_high'))).toBeLessThanOrEqual(0.6);
    expect([aE('min'), aE('max')]).toEqual(['0.4', '0.6']);

    const bE = row(B, 'steadyStateEnergyPerOutputTokenJ')!;
    expect(bE('n')).toBe('2');
    expect(Number(bE('mean'))).toBeCloseTo(0.325, 12);
    expect(Number(bE('std'))).toBeCloseTo(0.05 / Math.SQRT2, 12);
    expect(Number(bE('cv'))).toBeCloseTo(0.05 / Math.SQRT2 / 0.325, 12);

    const aG = row(A, 'goodputShare')!;
    expect(aG('unit')).toBe('fraction');
    expect(Number(aG('mean'))).toBeCloseTo(0.875, 12);
    expect(Number(aG('std'))).toBeCloseTo(0.125, 12);
    expect(Number(aG('cv'))).toBeCloseTo(1 / 7, 12);
    const bG = row(B, 'goodputShare')!;
    expect(bG('n')).toBe('3');
    expect(Number(bG('mean'))).toBeCloseTo(0.625, 12);
    expect(Number(bG('cv'))).toBeCloseTo(0.2, 12);
  });

  it('shows them in report.html tables and charts', async () => {
    const { files } = await writeStudyReport(openaiStudy());
    const html = readFileSync(files.report, 'utf8');
    const configTable = html.slice(html.indexOf('id="config-table"'));
    expect(configTable).toContain('Steady-state energy per output token (J/token)');
    expect(configTable).toContain('Goodput share (fraction)');
    const runTable = html.slice(html.indexOf('id="run-table"'));
    expect(runTable).toContain('<th>Steady-state energy per output token (J/token)</th>');
    expect(runTable).toContain('<th>Goodput share (fraction)</th>');
    expect(html).toContain('data-metric="steadyStateEnergyPerOutputTokenJ"');
    expect(html).toContain('data-metric="goodputShare"');
    const study = await loadStudy(openaiStudy());
    const chart = configBarCharts(aggregateStudy(study)).find(
      (c) => c.metric === 'steadyStateEnergyPerOutputTokenJ',
    )!;
    // Bars for the two openai configs only.
    expect(chart.svg).toContain('concurrency=8');
    expect(chart.svg).toContain('concurrency=16');
    expect(chart.svg).not.toContain('llamacpp');
  });

  it('is selectable as a Pareto axis', async () => {
    const summaries = aggregateStudy(await loadStudy(openaiStudy()));
    const pareto = paretoFrontier(summaries, [
      parseParetoAxis('steadyStateEnergyPerOutputTokenJ'),
      parseParetoAxis('goodputShare'),
    ]);
    expect(pareto.x).toEqual({ metric: 'steadyStateEnergyPerOutputTokenJ', direction: 'min' });
    expect(pareto.y).toEqual({ metric: 'goodputShare', direction: 'max' });
    // B spends less per token, A meets the SLOs more often: both on the frontier.
    const points = pareto.points.map((p) => [p.label, p.x, p.y, p.onFrontier]);
    expect(points).toHaveLength(2);
    expect(points).toContainEqual(['concurrency=8', 0.5, 0.875, true]);
    expect(points).toContainEqual(['concurrency=16', expect.closeTo(0.325, 12), 0.625, true]);
    expect(pareto.excluded.map((e) => e.label)).toEqual(['llamacpp']);
  });

  it('appears in the terminal table and in comparisons', async () => {
    const study = await loadStudy(openaiStudy());
    const text = renderConfigTable(aggregateStudy(study));
    expect(text).toContain('Steady-state energy per output token');
    expect(text).toContain('Goodput share');
    const cmp = compareConfigs(study, 'concurrency=8', 'concurrency=16');
    const e = cmp.metrics.find((m) => m.metric === 'steadyStateEnergyPerOutputTokenJ')!;
    expect(e.a).toEqual({ n: 3, mean: expect.closeTo(0.5, 12) });
    expect(e.b).toEqual({ n: 2, mean: expect.closeTo(0.325, 12) });
    expect(e.ratio).toBeCloseTo(0.65, 12);
    const g = cmp.metrics.find((m) => m.metric === 'goodputShare')!;
    expect(g.ratio).toBeCloseTo(0.625 / 0.875, 12);
    expect(g.direction).toBe('max');
    // Against a config without them, the row stays (A measured it) with B's side empty.
    const vsL = compareConfigs(study, 'concurrency=8', 'llamacpp');
    expect(vsL.metrics.find((m) => m.metric === 'goodputShare')).toMatchObject({
      b: { n: 0, mean: null },
      ratio: null,
    });
  });
});

describe('a study without openai runs keeps its files as they were', () => {
  it('summary.csv and summary_by_config.csv have the old header and row counts', async () => {
    const { files } = await writeStudyReport(standardStudy(), { seed: 5 });
    const summary = parseCsv(readFileSync(files.summary, 'utf8'));
    expect(summary[0]).toEqual([...RUN_CSV_COLUMNS]);
    expect(summary[0]).toHaveLength(30);
    expect(summary.every((r) => r.length === 30)).toBe(true);
    const [header, ...rows] = parseCsv(readFileSync(files.summaryByConfig, 'utf8'));
    expect(header).toEqual([...CONFIG_CSV_COLUMNS]);
    expect(rows).toHaveLength(4 * 9);
    expect(new Set(rows.map((r) => r[5]))).toEqual(
      new Set(METRICS.filter((m) => !m.optional).map((m) => m.id)),
    );
  });

  it('report.html, the terminal table and comparisons have no steady-state or goodput', async () => {
    const dir = standardStudy();
    const html = readFileSync((await writeStudyReport(dir)).files.report, 'utf8');
    expect(html).not.toMatch(/steady-state|goodput/i);
    const study = await loadStudy(dir);
    const text = renderConfigTable(aggregateStudy(study));
    expect(text).not.toMatch(/steady-state|goodput/i);
    const cmp = compareConfigs(study, '1', '2');
    expect(cmp.metrics.map((m) => m.metric)).toEqual(
      METRICS.filter((m) => !m.optional).map((m) => m.id),
    );
  });
});
