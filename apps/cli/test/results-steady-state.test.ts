import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
// The fixture builders are test tooling of @llem/report; reach them by path.
import { openaiStudy, standardStudy } from '../../../packages/report/test/fixture-study';
import { runLlem } from './support/llem';

function run(argv: string[]) {
  return runLlem(argv, { env: {}, cwd: '/', stdoutTTY: false });
}

describe('steady-state energy and goodput in the CLI (openai runs)', () => {
  it('results show: table columns, --csv rows and --json statistics', async () => {
    const dir = openaiStudy();
    const table = await run(['results', 'show', dir]);
    expect(table.code).toBe(0);
    // The answer comes first; then the per-config table, whose header starts with `#  config`.
    const header = table.stdout.split('\n').find((l) => l.startsWith('#  config'))!;
    expect(header).toContain('Steady-state energy per output token (J/token)');
    expect(header).toContain('Goodput share (fraction)');
    // concurrency=8: steady-state 0.4/0.5/0.6 J/token → mean 0.5; goodput 0.75/0.875/1 → 0.875.
    expect(table.stdout).toMatch(/concurrency=8\s+3\/0\s+0\.5 \([^)]*\)\s+0\.5 \(/);

    const csv = await run(['results', 'show', dir, '--csv']);
    const lines = csv.stdout.trimEnd().split('\n');
    // 3 configs × 9 metrics + steady-state and goodput rows for the 2 openai configs only.
    expect(lines).toHaveLength(1 + 3 * 9 + 2 * 2);
    expect(lines.filter((l) => l.includes(',goodputShare,'))).toHaveLength(2);
    expect(lines.filter((l) => l.includes(',llamacpp,') && /steadyState|goodput/.test(l))).toEqual(
      [],
    );

    const j = JSON.parse((await run(['results', 'show', dir, '--json'])).stdout);
    const [a, b, l] = j.configs;
    expect(a.metrics.steadyStateEnergyPerOutputTokenJ).toMatchObject({ n: 3, min: 0.4, max: 0.6 });
    expect(a.metrics.steadyStateEnergyPerOutputTokenJ.mean).toBeCloseTo(0.5, 12);
    expect(b.metrics.steadyStateEnergyPerOutputTokenJ.values).toEqual([0.3, 0.35]);
    expect(b.metrics.goodputShare.mean).toBeCloseTo(0.625, 12);
    // Not measured is null, never 0.
    expect(l.metrics.goodputShare).toMatchObject({ n: 0, mean: null });
    expect(j.metrics.map((m: { id: string }) => m.id)).toContain('goodputShare');
  });

  it('takes them as Pareto axes in results show and report', async () => {
    const dir = openaiStudy();
    const shown = await run([
      'results',
      'show',
      dir,
      '--json',
      '--pareto-x',
      'steadyStateEnergyPerOutputTokenJ',
      '--pareto-y',
      'goodputShare',
    ]);
    expect(shown.code).toBe(0);
    const pareto = JSON.parse(shown.stdout).pareto;
    expect(pareto.x).toEqual({ metric: 'steadyStateEnergyPerOutputTokenJ', direction: 'min' });
    expect(pareto.y).toEqual({ metric: 'goodputShare', direction: 'max' });
    expect(pareto.points.map((p: { label: string }) => p.label).sort()).toEqual([
      'concurrency=16',
      'concurrency=8',
    ]);
    const report = await run([
      'report',
      dir,
      '--pareto-x',
      'steadyStateEnergyPerOutputTokenJ',
      '--pareto-y',
      'goodputShare:max',
    ]);
    expect(report.code).toBe(0);
    const csv = readFileSync(join(dir, 'pareto.csv'), 'utf8');
    expect(csv).toContain('steadyStateEnergyPerOutputTokenJ,min,0.5,goodputShare,max,0.875,true');
    const summary = readFileSync(join(dir, 'summary.csv'), 'utf8').split('\n')[0]!;
    expect(summary.endsWith(',steady_state_energy_per_output_token_j,goodput_share')).toBe(true);
    const html = readFileSync(join(dir, 'report.html'), 'utf8');
    expect(html).toContain('data-metric="steadyStateEnergyPerOutputTokenJ"');
  });

  it('results compare shows the ratio of steady-state energy and goodput', async () => {
    const dir = openaiStudy();
    const { code, stdout } = await run(['results', 'compare', '1', '2', '--in', dir]);
    expect(code).toBe(0);
    expect(stdout).toMatch(
      /Steady-state energy per output token \(J\/token\)\s+0\.5 \(n=3\)\s+0\.325 \(n=2\)\s+0\.65×/,
    );
    expect(stdout).toMatch(
      /Goodput share \(fraction\)\s+0\.875 \(n=3\)\s+0\.625 \(n=3\)\s+0\.714×/,
    );
  });

  it('a llamacpp-only study shows neither metric anywhere', async () => {
    const dir = standardStudy();
    const table = await run(['results', 'show', dir]);
    expect(table.stdout).not.toMatch(/steady-state|goodput/i);
    const compare = await run(['results', 'compare', '1', '2', '--in', dir]);
    expect(compare.stdout).not.toMatch(/steady-state|goodput/i);
    const csv = await run(['results', 'show', dir, '--csv']);
    expect(csv.stdout.trimEnd().split('\n')).toHaveLength(1 + 4 * 9);
  });
});
