import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  parseCsv,
  RUN_CSV_COLUMNS,
  renderAnswer,
  renderSweepTable,
  writeStudyReport,
} from '../src/index';
import { buildStudyDir, type FixtureRun, sweepPointFixture } from './fixture-study';

const slo = { ttft_ms: 200 };

/**
 * One cycle of a sweep: synchronous (cheap latency, costly energy), saturation (cheap energy,
 * TTFT far over the target), a rate that meets the TTFT target at 0.4 J/token, and a higher rate
 * that looks even better (0.3 J/token, TTFT met) but was over-saturated.
 */
function sweepRun(cycle: number, jitter: number): FixtureRun {
  const j = (v: number) => v * (1 + jitter);
  return {
    cycle,
    slo: { slo },
    points: [
      sweepPointFixture({ index: 0, kind: 'sync', rate: 2, energyPerTokenJ: j(1), ttftP50Ms: 50 }),
      sweepPointFixture({
        index: 1,
        kind: 'saturation',
        rate: 12,
        energyPerTokenJ: j(0.2),
        ttftP50Ms: 2000,
      }),
      sweepPointFixture({
        index: 2,
        kind: 'rate',
        rate: 5.3,
        targetRate: 5.33,
        energyPerTokenJ: j(0.4),
        ttftP50Ms: 150,
      }),
      sweepPointFixture({
        index: 3,
        kind: 'rate',
        rate: 8.1,
        targetRate: 8.67,
        energyPerTokenJ: j(0.3),
        ttftP50Ms: 190,
        overSaturated: true,
      }),
    ],
    sweep: {
      plannedPoints: 5,
      syncRequestRate: 2,
      saturationRequestRate: 12,
      rates: [5.33, 8.67, 12 - 0.01],
      stoppedAtPoint: 3,
      stopReason:
        'point 3 (8.67 req/s) over-saturated: TTFT rose 300.0 ms per s; the 1 higher rate was not measured',
    },
  };
}

function study() {
  return buildStudyDir({
    gpu: true,
    configs: [
      { label: 'sweep-a', runs: [sweepRun(0, 0), sweepRun(1, 0.02)] },
      {
        label: 'fixed-b',
        runs: [
          {
            cycle: 0,
            energyPerTokenJ: 0.5,
            slo: { slo, ttftMs: { p50: 100, p95: 150, p99: 200 } },
          },
          {
            cycle: 1,
            energyPerTokenJ: 0.51,
            slo: { slo, ttftMs: { p50: 100, p95: 150, p99: 200 } },
          },
        ],
      },
    ],
  });
}

describe('load sweeps in the report', () => {
  it('summary.csv has a row per load point, naming the point; other runs keep one row', async () => {
    const report = await writeStudyReport(study());
    const [header, ...rows] = parseCsv(readFileSync(report.files.summary, 'utf8'));
    expect(header!.slice(0, RUN_CSV_COLUMNS.length)).toEqual(RUN_CSV_COLUMNS);
    expect(header!.slice(-6)).toEqual([
      'point_index',
      'point_kind',
      'point_concurrency',
      'point_target_rate',
      'achieved_request_rate',
      'over_saturated',
    ]);
    const col = (name: string) => header!.indexOf(name);
    // 2 cycles × 4 points, then 2 plain runs.
    expect(rows).toHaveLength(2 * 4 + 2);
    const sweepRows = rows.filter((r) => r[col('config_label')] === 'sweep-a');
    expect(
      sweepRows.map((r) => [r[col('cycle')], r[col('point_index')], r[col('point_kind')]]),
    ).toEqual([
      ['0', '0', 'sync'],
      ['0', '1', 'saturation'],
      ['0', '2', 'rate'],
      ['0', '3', 'rate'],
      ['1', '0', 'sync'],
      ['1', '1', 'saturation'],
      ['1', '2', 'rate'],
      ['1', '3', 'rate'],
    ]);
    const third = sweepRows[2]!;
    // The point's own figures, under the run's identity.
    expect(third[col('run_key')]).toMatch(/_c0$/);
    expect(third[col('energy_per_output_token_j')]).toBe('0.4');
    expect(third[col('ttft_p50_ms')]).toBe('150');
    expect(third[col('point_target_rate')]).toBe('5.33');
    expect(third[col('achieved_request_rate')]).toBe('5.3');
    expect(third[col('over_saturated')]).toBe('false');
    expect(sweepRows[3]![col('over_saturated')]).toBe('true');
    expect(sweepRows[3]![col('warnings')]).toBe('over-saturated');
    expect(sweepRows[0]![col('point_concurrency')]).toBe('1');
    const plain = rows.filter((r) => r[col('config_label')] === 'fixed-b');
    expect(plain).toHaveLength(2);
    expect(plain.every((r) => r[col('point_index')] === '')).toBe(true);
  });

  it('the answer names the configuration and load point; an over-saturated point is never it', async () => {
    const report = await writeStudyReport(study());
    const { answer } = report;
    expect(answer.status).toBe('met');
    expect(answer.best?.configLabel).toBe('sweep-a');
    expect(answer.best?.point).toMatchObject({ index: 2, kind: 'rate' });
    expect(answer.best?.point?.targetRate).toBeCloseTo(5.33, 9);
    expect(answer.best?.label).toBe(
      'sweep-a · load point 2 (rate 5.33 req/s target, 5.30 achieved)',
    );
    expect(answer.best?.energyPerOutputTokenJ?.mean).toBeCloseTo(0.404, 9);
    expect(answer.runnerUp?.label).toBe('fixed-b');
    // Point 3 met the TTFT target at less energy, but its queue was growing.
    const over = answer.candidates.find((c) => c.point?.index === 3)!;
    expect(over).toMatchObject({ meets: true, overSaturated: true });
    expect(over.warnings).toContain('over-saturated');
    // The saturation point misses the TTFT target by 1.8 s.
    const saturation = answer.candidates.find((c) => c.point?.kind === 'saturation')!;
    expect(saturation.meets).toBe(false);
    expect(saturation.checks[0]?.excessMs).toBeCloseTo(1800, 6);
    const text = renderAnswer(answer);
    expect(text).toContain('* sweep-a · load point 2 (rate 5.33 req/s target, 5.30 achieved):');
    expect(text).toContain('runner-up: fixed-b');
  });

  it('a point above where another cycle of the config stopped is never the answer', async () => {
    const point = (index: number, energyPerTokenJ: number, overSaturated = false) =>
      sweepPointFixture({
        index,
        kind: index === 0 ? 'sync' : index === 1 ? 'saturation' : 'rate',
        rate: 2 + index,
        ...(index > 1 ? { targetRate: 2 + index } : {}),
        energyPerTokenJ,
        ttftP50Ms: index === 1 ? 2000 : 100,
        ...(overSaturated ? { overSaturated } : {}),
      });
    const dir = buildStudyDir({
      gpu: true,
      configs: [
        {
          label: 'sweep-a',
          runs: [
            // Cycle 0 stopped at point 2: its queue grew there.
            { cycle: 0, slo: { slo }, points: [point(0, 1), point(1, 0.2), point(2, 0.4, true)] },
            // Cycle 1 got past it (capacity varies) and measured point 3, cheapest of all.
            {
              cycle: 1,
              slo: { slo },
              points: [point(0, 1), point(1, 0.2), point(2, 0.4), point(3, 0.3)],
            },
          ],
        },
      ],
    });
    const { answer } = await writeStudyReport(dir);
    const p3 = answer.candidates.find((c) => c.point?.index === 3)!;
    expect(p3).toMatchObject({ meets: true, overSaturated: true });
    expect(answer.best?.point?.index).toBe(0);
  });

  it('report.html plots J/token, TTFT and TPOT against the achieved request rate per configuration', async () => {
    const report = await writeStudyReport(study());
    expect(report.sweeps).toHaveLength(1);
    const curve = report.sweeps[0]!;
    expect(curve.label).toBe('sweep-a');
    expect(curve.points.map((p) => [p.index, p.cycles, p.overSaturated])).toEqual([
      [0, 2, false],
      [1, 2, false],
      [2, 2, false],
      [3, 2, true],
    ]);
    expect(curve.points[2]!.energyPerOutputTokenJ).toBeCloseTo(0.404, 9);
    expect(curve.stopReasons).toHaveLength(1);
    // `llem results show` prints the same points as a table.
    const table = renderSweepTable(report.sweeps);
    expect(table).toMatch(/^Load sweep \(means over cycles/);
    expect(table).toMatch(/sweep-a\s+3\s+rate !\s+8\.67\s+8\.1\s+0\.303/);
    expect(table).toContain('sweep-a: point 3 (8.67 req/s) over-saturated');
    expect(renderSweepTable([])).toBe('');
    const html = readFileSync(report.files.report, 'utf8');
    expect(html).toContain('<h2>Load sweep</h2>');
    for (const title of ['Energy per output token', 'TTFT p50', 'TPOT p50'])
      expect(html).toContain(`<figure data-sweep="${title}"><svg`);
    expect(html).toContain('Achieved request rate (req/s)');
    expect(html).toContain('⚠ over-saturated');
    expect(html).toContain('point 3 (8.67 req/s) over-saturated');
    // The answer names the load point in the report too.
    expect(html).toContain('sweep-a · load point 2 (rate 5.33 req/s target, 5.30 achieved)');
    // Its table does not say an over-saturated point meets the SLOs (the rule says it never does).
    const overRow = html
      .split('<tr')
      .find((row) => row.includes('sweep-a · load point 3 (rate 8.67 req/s target'));
    expect(overRow).toBeDefined();
    expect(overRow).not.toContain('<td class="text">yes</td>');
    expect(overRow).toContain('<td class="text">no (over-saturated)</td>');
    // A study without a sweep has no such section.
    const plain = await writeStudyReport(
      buildStudyDir({ configs: [{ label: 'x', runs: [{ cycle: 0 }] }] }),
    );
    expect(readFileSync(plain.files.report, 'utf8')).not.toContain('Load sweep');
    expect(plain.sweeps).toEqual([]);
  });
});
