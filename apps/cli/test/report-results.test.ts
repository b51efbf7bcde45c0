import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
// The fixture builder is test tooling of @llem/report; reach it by path.
import { buildStudyDir, standardStudy } from '../../../packages/report/test/fixture-study';
import { runLlem } from './support/llem';

function run(argv: string[], options: { cwd?: string; tty?: boolean } = {}) {
  return runLlem(argv, { env: {}, cwd: options.cwd ?? '/', stdoutTTY: options.tty ?? false });
}

describe('llem report', () => {
  it('rebuilds summary CSVs and report.html and prints their paths on stdout', async () => {
    const dir = standardStudy();
    const { code, stdout, stderr } = await run(['report', dir]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toBe(
      [
        `report: ${join(dir, 'report.html')}`,
        `summary: ${join(dir, 'summary.csv')}`,
        `per config: ${join(dir, 'summary_by_config.csv')}`,
        `pareto: ${join(dir, 'pareto.csv')}`,
        '',
      ].join('\n'),
    );
    expect(readFileSync(join(dir, 'report.html'), 'utf8')).toContain('<svg');
  });

  it('takes other Pareto axes and rejects a bad one with exit 2 and the allowed values', async () => {
    const dir = standardStudy();
    const ok = await run([
      'report',
      dir,
      '--pareto-x',
      'ttftP95Ms',
      '--pareto-y',
      'itlP50Ms:min',
      '--json',
    ]);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout).frontier.length).toBeGreaterThan(0);
    expect(readFileSync(join(dir, 'pareto.csv'), 'utf8')).toContain('ttftP95Ms,min');
    const bad = await run(['report', dir, '--pareto-x', 'watts', '--pareto-y', 'itlP50Ms']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(
      /llem: pareto axis "watts": unknown metric "watts" \(allowed: energyPerOutputTokenJ, outputTokensPerS, /,
    );
    expect(bad.stderr).not.toMatch(/at .*\.ts:\d+/);
  });

  it('says on stderr why the frontier is not the one asked for (no energy measured)', async () => {
    const dir = buildStudyDir({
      gpu: false,
      configs: ['t=1', 't=2'].map((label) => ({
        label,
        runs: [0, 1].map((cycle) => ({ cycle, energyPerTokenJ: null, timeseries: false })),
      })),
    });
    const fallback = await run(['report', dir]);
    expect(fallback.code).toBe(0);
    expect(fallback.stderr).toMatch(
      /^note: Energy per output token was not measured for any config .*TTFT p50 .*instead\.\n$/,
    );
    const asked = await run([
      'report',
      dir,
      '--pareto-x',
      'energyPerOutputTokenJ',
      '--pareto-y',
      'outputTokensPerS',
      '--json',
    ]);
    expect(asked.code).toBe(0);
    expect(JSON.parse(asked.stdout).paretoNote).toMatch(/so the frontier is empty/);
  });

  it('names the directory when it is not a study (exit 2, no stack)', async () => {
    const missing = await run(['report', '/nonexistent/study']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe('llem: /nonexistent/study: no such study directory\n');
    const notStudy = await run(['report', tmpdir()]);
    expect(notStudy.code).toBe(2);
    expect(notStudy.stderr).toMatch(
      /is not a study directory: it has no study\.json or manifest\.json/,
    );
  });
});

describe('llem results list', () => {
  it('lists studies with status and counts; --json is stable', async () => {
    const parent = mkdtempSync(join(tmpdir(), 'llem-results-'));
    standardStudy(parent);
    buildStudyDir({
      parent,
      name: 'second',
      status: 'interrupted',
      configs: [{ label: 'a', runs: [{ cycle: 0 }, { cycle: 1, status: 'pending' }] }],
    });
    const text = await run(['results', 'list', parent]);
    expect(text.code).toBe(0);
    const lines = text.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[2]).toMatch(
      /^batch-vs-threads\s+completed\s+11\s+1\s+0\s+2026-03-01T12:00:00.000Z\s+\//,
    );
    expect(lines[3]).toMatch(/^second\s+interrupted\s+1\s+0\s+1\s/);
    const j = await run(['results', 'list', parent, '--json']);
    const parsed = JSON.parse(j.stdout);
    expect(parsed.studies.map((s: { name: string; status: string }) => [s.name, s.status])).toEqual(
      [
        ['batch-vs-threads', 'completed'],
        ['second', 'interrupted'],
      ],
    );
  });

  it('defaults to ./results relative to the working directory and explains a missing one', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'llem-cwd-'));
    const missing = await run(['results', 'list'], { cwd });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('./results: no such directory');
    standardStudy(join(cwd, 'results'));
    const found = await run(['results', 'list'], { cwd });
    expect(found.stdout).toContain('batch-vs-threads');
  });
});

describe('llem results show', () => {
  it('prints the per-config table, plain on a pipe and bold headers on a TTY', async () => {
    const dir = standardStudy();
    const pipe = await run(['results', 'show', dir]);
    expect(pipe.code).toBe(0);
    expect(pipe.stdout).not.toContain('\u001b[');
    expect(pipe.stdout.split('\n')[0]).toMatch(
      /^batch-vs-threads \(completed; design [0-9a-f]{16}\): 11 completed, 1 failed, 0 not run, 1 skipped configs$/,
    );
    expect(pipe.stdout).toMatch(/\* batch_size=64,threads=2\s+3\/0\s+0\.31 \(/);
    expect(pipe.stdout).toContain('Mean over completed cycles (bootstrap 95% CI).');
    expect(pipe.stdout).toContain(
      'Intervals from only 2–3 completed cycles (every config) are optimistic',
    );
    const tty = await run(['results', 'show', dir], { tty: true });
    expect(tty.stdout).toContain('\u001b[1m');
  });

  it('--json gives every metric with mean, std, cv and ci per config', async () => {
    const dir = standardStudy();
    const { stdout, code } = await run(['results', 'show', dir, '--json']);
    expect(code).toBe(0);
    const j = JSON.parse(stdout);
    expect(j.study.counts).toEqual({ total: 12, pending: 0, running: 0, completed: 11, failed: 1 });
    expect(j.configs).toHaveLength(4);
    const first = j.configs[0];
    expect(first.metrics.outputTokensPerS).toMatchObject({ n: 3, mean: 21, min: 20, max: 22 });
    expect(first.metrics.outputTokensPerS.std).toBeCloseTo(1, 12);
    expect(j.pareto.points.filter((p: { onFrontier: boolean }) => p.onFrontier)).toHaveLength(2);
    expect(j.smallSampleNote).toMatch(/^Intervals from only 2–3 completed cycles/);
    // Same output twice: stable for scripts.
    expect((await run(['results', 'show', dir, '--json'])).stdout).toBe(stdout);
  });

  it('warns when a config measured different model files across its runs (text and --json)', async () => {
    const model = (c: string) => ({
      path: '/models/m.gguf',
      sizeBytes: 1000,
      modifiedAt: '2026-03-01T12:00:00.000Z',
      sha256: c.repeat(64),
      coverage: 'full' as const,
    });
    const dir = buildStudyDir({
      configs: [
        {
          label: 'q4',
          runs: [
            { cycle: 0, inputs: { model: model('a'), dataset: null } },
            { cycle: 1, inputs: { model: model('b'), dataset: null } },
          ],
        },
      ],
    });
    const text = await run(['results', 'show', dir]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(
      /\nWarning: config q4 \([0-9a-f]{16}\): its runs read 2 different model files: sha256 a{12}… \(\/models\/m\.gguf, 1000 bytes; run \S+\); sha256 b{12}…/,
    );
    const j = JSON.parse((await run(['results', 'show', dir, '--json'])).stdout);
    expect(j.inputChanges).toMatchObject([{ label: 'q4', input: 'model' }]);
    expect(j.inputChanges[0].variants).toHaveLength(2);
    const clean = JSON.parse((await run(['results', 'show', standardStudy(), '--json'])).stdout);
    expect(clean.inputChanges).toEqual([]);
  });

  it('--csv prints summary_by_config.csv; --json and --csv together are refused', async () => {
    const dir = standardStudy();
    const { stdout } = await run(['results', 'show', dir, '--csv']);
    expect(stdout.split('\n')[0]).toBe(
      'config_hash,config_label,runs,completed,failed,metric,unit,n,mean,std,cv,ci95_low,ci95_high,min,max',
    );
    expect(stdout.trimEnd().split('\n')).toHaveLength(1 + 4 * 9);
    const both = await run(['results', 'show', dir, '--csv', '--json']);
    expect(both.code).toBe(2);
  });
});

describe('the answer and the carbon and cost flags', () => {
  const sloStudy = (report?: Record<string, unknown>) =>
    buildStudyDir({
      name: 'slo',
      ...(report ? { report } : {}),
      configs: [
        { label: 'cheap-but-slow', ttft: 900, epts: [0.3, 0.31] },
        { label: 'fits', ttft: 300, epts: [0.5, 0.52] },
        { label: 'dear', ttft: 200, epts: [0.9, 0.92] },
      ].map(({ label, ttft, epts }) => ({
        label,
        runs: epts.map((ept, cycle) => ({
          cycle,
          energyPerTokenJ: ept,
          slo: {
            slo: { ttft_ms: 500, percentile: 95 },
            ttftMs: { p50: ttft / 2, p95: ttft, p99: ttft },
          },
        })),
      })),
    });

  it('results show names the lowest J/token meeting the SLOs, the runner-up, and --json carries it', async () => {
    const dir = sloStudy();
    const text = await run(['results', 'show', dir]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(
      'The answer (lowest J/token that meets its SLOs):\n  * fits: 0.51 J/token (95% CI 0.5–0.52, 2 cycles)',
    );
    expect(text.stdout).toContain('    TTFT p95 300 ms ≤ 500 ms');
    expect(text.stdout).toContain('  runner-up: dear: 0.91 J/token');
    const j = JSON.parse((await run(['results', 'show', dir, '--json'])).stdout);
    expect(j.answer.status).toBe('met');
    expect(j.answer.best.label).toBe('fits');
    expect(j.answer.runnerUp.label).toBe('dear');
    expect(j.answer.candidates[0]).toMatchObject({ label: 'cheap-but-slow', meets: false });
    expect(j.prices).toBeNull();
  });

  it('carbon and cost: from the study file, overridden by the flags, on report and results show', async () => {
    const dir = sloStudy({ carbon_g_per_kwh: 360 });
    const fromFile = await run(['results', 'show', dir]);
    expect(fromFile.stdout).toContain('Carbon per 1M output tokens (gCO2e)');
    expect(fromFile.stdout).not.toContain('Cost per 1M');
    const flags = await run([
      'results',
      'show',
      dir,
      '--carbon-g-per-kwh',
      '36',
      '--price-per-kwh',
      '0.36',
      '--currency',
      'EUR',
    ]);
    expect(flags.code).toBe(0);
    // The winner's 0.51 J/token: × 10 g at 36 gCO2e/kWh, × 0.1 EUR at 0.36 EUR/kWh per 1M tokens.
    expect(flags.stdout).toContain(
      'fits: 0.51 J/token (95% CI 0.5–0.52, 2 cycles) · 5.1 gCO2e/1M tokens · 0.051 EUR/1M tokens',
    );
    expect(flags.stdout).toContain('Cost per 1M output tokens (EUR)');
    const report = await run([
      'report',
      dir,
      '--price_per_kwh',
      '0.2',
      '--currency',
      'USD',
      '--json',
    ]);
    expect(report.code).toBe(0);
    expect(JSON.parse(report.stdout).prices).toEqual({
      carbonGPerKwh: 360,
      pricePerKwh: 0.2,
      currency: 'USD',
    });
    expect(readFileSync(join(dir, 'summary.csv'), 'utf8').split('\n')[0]).toMatch(
      /,gco2e_per_1m_output_tokens,cost_per_1m_output_tokens,currency$/,
    );
  });

  it('refuses a price without a currency, or a non-number, with exit 2 and no stack', async () => {
    const dir = sloStudy();
    const noCurrency = await run(['results', 'show', dir, '--price-per-kwh', '0.3']);
    expect(noCurrency.code).toBe(2);
    expect(noCurrency.stderr).toContain('a price per kWh needs its currency: add --currency');
    expect(noCurrency.stderr).not.toMatch(/at .*\.ts:\d+/);
    const notANumber = await run(['report', dir, '--carbon-g-per-kwh', 'lots']);
    expect(notANumber.code).toBe(2);
    expect(notANumber.stderr).toContain('--carbon-g-per-kwh: expected a number');
  });
});

describe('llem results compare', () => {
  it('compares two configs of one study with --in', async () => {
    const dir = standardStudy();
    const { code, stdout } = await run(['results', 'compare', '1', '3', '--in', dir]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^A: batch_size=64,threads=1 /);
    // 3 cycles a side: the ratio and its interval, but no better/worse verdict.
    expect(stdout).toMatch(
      /Output tokens\/s \(tokens\/s\)\s+21 \(n=3\)\s+30 \(n=3\)\s+1\.43×\s+\S+\s+no verdict \(n<5\)/,
    );
    expect(stdout).not.toMatch(/B (better|worse)$/m);
    expect(stdout).toContain('ratio of the means; 95% CI by bootstrap');
    expect(stdout).toContain(
      'Fewer than 5 cycles on a side (n=3): the intervals are optimistic, so no better/worse verdict is given; run at least 5 cycles (execution.cycles) for one.',
    );
    const j = JSON.parse(
      (await run(['results', 'compare', '1', '3', '--in', dir, '--json'])).stdout,
    );
    const tps = j.comparisons[0].metrics.find(
      (m: { metric: string }) => m.metric === 'outputTokensPerS',
    );
    expect(tps.ratio).toBeCloseTo(30 / 21, 12);
    expect(tps.ci.low).toBeLessThan(tps.ratio);
    expect(tps.verdict).toBe('too-few-cycles');
  });

  it('compares two studies config by config', async () => {
    const cycles = [0, 1, 2, 3, 4];
    const a = buildStudyDir({
      name: 'a',
      configs: [{ label: 'x', runs: cycles.map((c) => ({ cycle: c, tokensPerS: 10 + c })) }],
    });
    const b = buildStudyDir({
      name: 'b',
      configs: [{ label: 'x', runs: cycles.map((c) => ({ cycle: c, tokensPerS: 20 + c })) }],
    });
    const { code, stdout } = await run(['results', 'compare', a, b, '--json']);
    expect(code).toBe(0);
    const tps = JSON.parse(stdout).comparisons[0].metrics.find(
      (m: { metric: string }) => m.metric === 'outputTokensPerS',
    );
    expect(tps.ratio).toBeCloseTo(22 / 12, 12);
    expect(tps.verdict).toBe('better');
  });

  it('explains a wrong config or a missing study (exit 2)', async () => {
    const dir = standardStudy();
    const badConfig = await run(['results', 'compare', '1', 'nope', '--in', dir]);
    expect(badConfig.code).toBe(2);
    expect(badConfig.stderr).toMatch(
      /config "nope" not found .*allowed: 1\. batch_size=64,threads=1/,
    );
    const badDir = await run(['results', 'compare', '1', '2']);
    expect(badDir.code).toBe(2);
    expect(badDir.stderr).toContain(
      '1: no such study directory (to compare two configs of one study, add --in STUDY_DIR)',
    );
  });
});

describe('help', () => {
  it('lists report, results and doctor', async () => {
    const { stdout } = await run(['--help']);
    expect(stdout).toMatch(/llem report <study-dir>/);
    expect(stdout).toMatch(/llem results\s+List, show and compare/);
    expect(stdout).toMatch(/llem doctor/);
  });

  it('a mistyped flag gets the flag that was probably meant (exit 2)', async () => {
    const dry = await run(['run', '--dryrun']);
    expect(dry.code).toBe(2);
    // (after the command's help, which yargs prints on a usage failure)
    expect(dry.stderr.endsWith('llem: Unknown argument: dryrun (did you mean --dry-run?)\n')).toBe(
      true,
    );
    const two = await run(['report', 'x', '--paretox', 'a', '--jsn']);
    expect(two.code).toBe(2);
    expect(
      two.stderr.endsWith(
        'llem: Unknown arguments: paretox, jsn (paretox: did you mean --pareto-x?; jsn: did you mean --json?)\n',
      ),
    ).toBe(true);
    const none = await run(['run', '--bogusflag']);
    expect(none.stderr.endsWith('\nllem: Unknown argument: bogusflag\n')).toBe(true);
  });

  it('a bare `llem results` or `llem config` names its subcommands (exit 2)', async () => {
    const results = await run(['results']);
    expect(results.code).toBe(2);
    expect(results.stderr).toMatch(/llem: Name a results command: list, show or compare\.\n$/);
    const config = await run(['config']);
    expect(config.code).toBe(2);
    expect(config.stderr).toMatch(/llem: Name a config command: validate, show or schema\.\n$/);
  });
});
