import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ConfigSummary } from '../src/aggregate';
import {
  aggregateStudy,
  CONFIG_CSV_COLUMNS,
  loadStudy,
  paretoFrontier,
  paretoIndices,
  parseCsv,
  parseParetoAxis,
  RUN_CSV_COLUMNS,
  SMALL_SAMPLE_CYCLES,
  smallSampleNote,
  writeStudyReport,
} from '../src/index';
import { buildStudyDir, fakeHash, standardStudy } from './fixture-study';

describe('aggregation across cycles', () => {
  it('computes mean, std and CV per config by hand, leaving failed runs out', async () => {
    const study = await loadStudy(standardStudy());
    const summaries = aggregateStudy(study, { seed: 1 });
    expect(summaries.map((s) => s.label)).toEqual([
      'batch_size=64,threads=1',
      'batch_size=256,threads=1',
      'batch_size=64,threads=2',
      'batch_size=256,threads=2',
    ]);
    const a = summaries[0]!;
    // tokens/s 20, 22, 21: mean 21, s = 1, CV = 1/21
    expect(a.metrics.outputTokensPerS.mean).toBeCloseTo(21, 12);
    expect(a.metrics.outputTokensPerS.std).toBeCloseTo(1, 12);
    expect(a.metrics.outputTokensPerS.cv).toBeCloseTo(1 / 21, 12);
    // J/token 0.9, 0.8, 0.85: mean 0.85, s = 0.05
    expect(a.metrics.energyPerOutputTokenJ.mean).toBeCloseTo(0.85, 12);
    expect(a.metrics.energyPerOutputTokenJ.std).toBeCloseTo(0.05, 12);
    // total energy = J/token × 640 output tokens
    expect(a.metrics.totalEnergyJ.mean).toBeCloseTo(0.85 * 640, 9);
    // ttft p95 = 1.8 × p50 in the fixture: mean of 360, 378, 342 = 360
    expect(a.metrics.ttftP95Ms.mean).toBeCloseTo(360, 9);

    const b = summaries[1]!; // cycle 2 failed
    expect(b.completed).toBe(2);
    expect(b.failed).toBe(1);
    expect(b.metrics.outputTokensPerS.n).toBe(2);
    expect(b.metrics.outputTokensPerS.values).toEqual([40, 42]);
    expect(b.metrics.outputTokensPerS.mean).toBe(41);
    expect(b.metrics.outputTokensPerS.std).toBeCloseTo(Math.SQRT2, 12);
    // two values → the bootstrap 95% interval is exactly [min, max]
    expect(b.metrics.outputTokensPerS.ci).toEqual({ low: 40, high: 42 });
  });

  it('gives a bootstrap CI that is seeded, deterministic and inside the data range', async () => {
    const study = await loadStudy(standardStudy());
    const one = aggregateStudy(study, { seed: 9 });
    const two = aggregateStudy(study, { seed: 9 });
    const ci = one[0]!.metrics.outputTokensPerS.ci!;
    expect(two[0]!.metrics.outputTokensPerS.ci).toEqual(ci);
    expect(ci.low).toBeGreaterThanOrEqual(20);
    expect(ci.high).toBeLessThanOrEqual(22);
    expect(ci.low).toBeLessThan(21);
    expect(ci.high).toBeGreaterThan(21);
  });

  it('does not change one config’s interval when another config is added', async () => {
    const spec = (extra: boolean) => ({
      configs: [
        { label: 'a', runs: [0, 1, 2, 3].map((c) => ({ cycle: c, tokensPerS: 10 + c * c })) },
        ...(extra ? [{ label: 'b', runs: [{ cycle: 0, tokensPerS: 5 }] }] : []),
      ],
    });
    const one = aggregateStudy(await loadStudy(buildStudyDir(spec(false))));
    const two = aggregateStudy(await loadStudy(buildStudyDir(spec(true))));
    expect(two[0]!.metrics.outputTokensPerS.ci).toEqual(one[0]!.metrics.outputTokensPerS.ci);
  });

  it('reports unmeasured metrics as null, never 0', async () => {
    const dir = buildStudyDir({
      gpu: false,
      configs: [{ label: 'cpu', runs: [0, 1].map((c) => ({ cycle: c, energyPerTokenJ: null })) }],
    });
    const [s] = aggregateStudy(await loadStudy(dir));
    expect(s!.metrics.energyPerOutputTokenJ).toMatchObject({ n: 0, mean: null, ci: null });
    expect(s!.metrics.gpuPeakMemoryMiB.mean).toBeNull();
    expect(s!.metrics.rssPeakMiB.mean).toBe(512);
  });
});

describe('Pareto frontier', () => {
  it('finds the non-dominated set of a known point set', () => {
    // min x, max y: (1,10) and (2,20) and (0.5, 2) are not dominated; (3,5) by (1,10); (2,15) by (2,20)
    const pts = [
      [1, 10],
      [2, 20],
      [3, 5],
      [2, 15],
      [0.5, 2],
    ] as const;
    expect(paretoIndices(pts, ['min', 'max'])).toEqual([0, 1, 4]);
    // max x, max y: only (3,5)? no: (2,20) has higher y → frontier {(2,20),(3,5)}
    expect(paretoIndices(pts, ['max', 'max'])).toEqual([1, 2]);
    // identical points are both kept
    expect(
      paretoIndices(
        [
          [1, 1],
          [1, 1],
        ],
        ['min', 'min'],
      ),
    ).toEqual([0, 1]);
  });

  it('defaults to energy/token (min) vs tokens/s (max) over config means', async () => {
    const summaries = aggregateStudy(await loadStudy(standardStudy()));
    const pareto = paretoFrontier(summaries);
    expect(pareto.x).toEqual({ metric: 'energyPerOutputTokenJ', direction: 'min' });
    expect(pareto.y).toEqual({ metric: 'outputTokensPerS', direction: 'max' });
    expect(pareto.points.filter((p) => p.onFrontier).map((p) => p.label)).toEqual([
      'batch_size=256,threads=1',
      'batch_size=64,threads=2',
    ]);
    // Each point carries the interval of both means, for the plot's whiskers.
    for (const point of pareto.points) {
      const s = summaries.find((c) => c.configHash === point.configHash)!;
      expect(point.xInterval).toEqual(s.metrics.energyPerOutputTokenJ.ci);
      expect(point.yInterval).toEqual(s.metrics.outputTokensPerS.ci);
      expect(point.xInterval).not.toBeNull();
      expect(point.xInterval!.low).toBeLessThanOrEqual(point.x);
      expect(point.xInterval!.high).toBeGreaterThanOrEqual(point.x);
    }
  });

  it('accepts other axis pairs with a direction, and rejects unknown ones clearly', async () => {
    const summaries = aggregateStudy(await loadStudy(standardStudy()));
    const pareto = paretoFrontier(summaries, [
      parseParetoAxis('ttftP50Ms'),
      parseParetoAxis('itlP50Ms:min'),
    ]);
    // means: ttft 200/155/121/140, itl 49/24.5/33/40 → (155,24.5) and (121,33) are the frontier
    expect(pareto.points.filter((p) => p.onFrontier).map((p) => p.label)).toEqual([
      'batch_size=256,threads=1',
      'batch_size=64,threads=2',
    ]);
    expect(() => parseParetoAxis('joules')).toThrow(
      /unknown metric "joules" \(allowed: energyPerOutputTokenJ, /,
    );
    expect(() => parseParetoAxis('ttftP50Ms:up')).toThrow(
      /unknown direction "up" \(allowed: min, max\)/,
    );
  });
});

describe('summary files', () => {
  it('writes summary.csv with one row per run (failed included, with its error)', async () => {
    const dir = standardStudy();
    const { files } = await writeStudyReport(dir);
    const rows = parseCsv(readFileSync(files.summary, 'utf8'));
    expect(rows[0]).toEqual([...RUN_CSV_COLUMNS]);
    expect(rows).toHaveLength(1 + 12);
    const col = (name: string) => RUN_CSV_COLUMNS.indexOf(name as (typeof RUN_CSV_COLUMNS)[number]);
    const failed = rows.filter((r) => r[col('status')] === 'failed');
    expect(failed).toHaveLength(1);
    expect(failed[0]![col('error_type')]).toBe('timeout');
    expect(failed[0]![col('error_message')]).toBe('no result after 600 s; SIGTERM then SIGKILL');
    expect(failed[0]![col('output_tokens_per_s')]).toBe('');
    const first = rows[1]!;
    expect(first[col('run_key')]).toBe(`${fakeHash('batch_size=64,threads=1')}_c0`);
    // labels contain commas: quoted, and they round-trip
    expect(first[col('config_label')]).toBe('batch_size=64,threads=1');
    expect(readFileSync(files.summary, 'utf8').split('\n')[1]).toContain(
      '"batch_size=64,threads=1"',
    );
    expect(Number(first[col('energy_per_output_token_j')])).toBe(0.9);
    expect(first[col('result_file')]).toMatch(/^runs\/[0-9a-f]{16}_c0\.json$/);
    const warned = rows.find((r) => r[col('warnings')] === 'throttling');
    expect(warned).toBeDefined();
  });

  it('writes summary_by_config.csv in long format: one row per config × metric', async () => {
    const { files } = await writeStudyReport(standardStudy(), { seed: 5 });
    const [header, ...rows] = parseCsv(readFileSync(files.summaryByConfig, 'utf8'));
    expect(header).toEqual([...CONFIG_CSV_COLUMNS]);
    expect(rows).toHaveLength(4 * 9);
    const row = rows.find(
      (r) => r[0] === fakeHash('batch_size=64,threads=1') && r[5] === 'outputTokensPerS',
    )!;
    const get = (name: string) =>
      row[CONFIG_CSV_COLUMNS.indexOf(name as (typeof CONFIG_CSV_COLUMNS)[number])];
    expect(get('unit')).toBe('tokens/s');
    expect(get('n')).toBe('3');
    expect(Number(get('mean'))).toBeCloseTo(21, 12);
    expect(Number(get('std'))).toBeCloseTo(1, 12);
    expect(Number(get('cv'))).toBeCloseTo(1 / 21, 12);
    expect(Number(get('ci95_low'))).toBeGreaterThanOrEqual(20);
    expect(Number(get('ci95_high'))).toBeLessThanOrEqual(22);
    expect(get('min')).toBe('20');
    expect(get('max')).toBe('22');
    // byte-identical on a rebuild with the same seed
    const again = await writeStudyReport(join(files.summary, '..'), { seed: 5 });
    expect(readFileSync(again.files.summaryByConfig, 'utf8')).toBe(
      readFileSync(files.summaryByConfig, 'utf8'),
    );
  });

  it('names the directory and the missing file when the path is not a study', async () => {
    await expect(writeStudyReport('/nonexistent/dir')).rejects.toThrow(
      '/nonexistent/dir: no such study directory',
    );
    const empty = join(standardStudy(), 'runs');
    await expect(writeStudyReport(empty)).rejects.toThrow(
      /runs is not a study directory: it has no study\.json or manifest\.json/,
    );
  });

  it('keeps a run whose result file is corrupt, flags it and leaves it out of the stats', async () => {
    const dir = buildStudyDir({
      configs: [
        {
          label: 'x',
          runs: [
            { cycle: 0, tokensPerS: 10 },
            { cycle: 1, tokensPerS: 30 },
          ],
        },
      ],
    });
    const { writeFileSync } = await import('node:fs');
    writeFileSync(join(dir, `runs/${fakeHash('x')}_c1.json`), '{"schemaVersion": 1}');
    const study = await loadStudy(dir);
    expect(study.runs[1]!.error?.type).toBe('InvalidResult');
    expect(study.runs[1]!.error?.message).toMatch(/^runs\/[0-9a-f]{16}_c1\.json: /);
    expect(aggregateStudy(study)[0]!.metrics.outputTokensPerS.values).toEqual([10]);
  });
});

describe('smallSampleNote', () => {
  // A config whose intervals rest on `n` values (the metric with an interval decides).
  const config = (n: number) =>
    ({
      completed: n,
      metrics: {
        outputTokensPerS: { n, ci: n >= 2 ? { low: 1, high: 2 } : null },
        gpuPeakMemoryMiB: { n: 0, ci: null },
      },
    }) as unknown as ConfigSummary;

  it('cautions when any config has intervals from 2–4 values, naming the range and how many', () => {
    expect(smallSampleNote([config(2), config(2)])).toMatch(
      /^Intervals from only 2 completed cycles \(every config\) are optimistic \(with 2–3 they are almost always just \[min, max\]\)/,
    );
    expect(smallSampleNote([config(3), config(8), config(4)])).toMatch(
      /^Intervals from only 3–4 completed cycles \(2 of 3 configs\)/,
    );
    expect(smallSampleNote([config(3)])).toMatch(/^Intervals from only 3 completed cycles are/);
  });

  it('says nothing from 5 values on, or without any interval (0–1 values)', () => {
    expect(SMALL_SAMPLE_CYCLES).toBe(5);
    expect(smallSampleNote([config(5), config(12)])).toBeNull();
    expect(smallSampleNote([config(1), config(0)])).toBeNull();
    expect(smallSampleNote([])).toBeNull();
  });

  it('counts the values behind the intervals, not completed runs (an unreadable result does not count)', () => {
    const fiveRunsFourValues = { ...config(4), completed: 5 } as ConfigSummary;
    expect(smallSampleNote([fiveRunsFourValues])).toMatch(/only 4 completed cycles/);
  });
});
