import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  loadStudy,
  parseCsv,
  ReportError,
  RUN_CSV_COLUMNS,
  renderConfigTable,
  resolveEnergyPrices,
  writeStudyReport,
} from '../src/index';
import { buildStudyDir } from './fixture-study';

/** Two configs, two cycles each, J/token known. */
const spec = (report?: Record<string, unknown>) => ({
  name: 'priced',
  ...(report ? { report } : {}),
  configs: [
    {
      label: 'a',
      runs: [
        { cycle: 0, energyPerTokenJ: 0.36 },
        { cycle: 1, energyPerTokenJ: 0.72 },
      ],
    },
    {
      label: 'b',
      runs: [
        { cycle: 0, energyPerTokenJ: 1.8 },
        { cycle: 1, energyPerTokenJ: null },
      ],
    },
  ],
});

function csv(file: string): Record<string, string>[] {
  const [header, ...rows] = parseCsv(readFileSync(file, 'utf8'));
  return rows.map((r) => Object.fromEntries(header!.map((h, i) => [h, r[i] ?? ''])));
}

describe('carbon and cost per 1M output tokens', () => {
  it('come from the study file’s report section (stored in study.json) into every file', async () => {
    const dir = buildStudyDir(
      spec({ carbon_g_per_kwh: 360, price_per_kwh: 0.36, currency: 'EUR' }),
    );
    expect((await loadStudy(dir)).reportSettings).toEqual({
      carbon_g_per_kwh: 360,
      price_per_kwh: 0.36,
      currency: 'EUR',
    });
    const report = await writeStudyReport(dir, { seed: 1 });
    expect(report.prices).toEqual({ carbonGPerKwh: 360, pricePerKwh: 0.36, currency: 'EUR' });

    // summary.csv: J/token × 10⁶ tokens ÷ 3.6·10⁶ J/kWh × 360 g/kWh = J/token × 100; cost × 0.1.
    const runs = csv(report.files.summary);
    expect(runs.map((r) => r.gco2e_per_1m_output_tokens)).toEqual(['36', '180', '72', '']);
    const cost = runs.map((r) => r.cost_per_1m_output_tokens);
    expect(cost.slice(0, 3).map(Number)).toEqual(
      [0.036, 0.18, 0.072].map((v) => expect.closeTo(v, 12)),
    );
    expect(cost[3]).toBe('');
    expect(runs.map((r) => r.currency)).toEqual(['EUR', 'EUR', 'EUR', '']);

    // summary_by_config.csv: the interval is the energy's interval × the same factor.
    const byConfig = csv(report.files.summaryByConfig).filter((r) => r.config_label === 'a');
    const row = (metric: string) => byConfig.find((r) => r.metric === metric)!;
    const energy = row('energyPerOutputTokenJ');
    const carbon = row('carbonPer1MOutputTokensG');
    const costRow = row('costPer1MOutputTokens');
    expect(carbon.unit).toBe('gCO2e');
    expect(costRow.unit).toBe('EUR');
    expect(Number(carbon.mean)).toBeCloseTo(54, 9);
    expect(Number(carbon.ci95_low)).toBeCloseTo(Number(energy.ci95_low) * 100, 9);
    expect(Number(carbon.ci95_high)).toBeCloseTo(Number(energy.ci95_high) * 100, 9);
    expect(Number(costRow.mean)).toBeCloseTo(0.054, 12);

    // The terminal table and report.html name them with the currency and say where they come from.
    const table = renderConfigTable(report.summaries, { prices: report.prices });
    expect(table).toContain('Carbon per 1M output tokens (gCO2e)');
    expect(table).toContain('Cost per 1M output tokens (EUR)');
    expect(table).toContain('Carbon at 360 gCO2e/kWh; cost at 0.36 EUR/kWh');
    const html = readFileSync(report.files.report, 'utf8');
    expect(html).toContain('Cost per 1M output tokens (EUR)');
    expect(html).toContain('EUR / 1M output tokens');
  });

  it('flags override the file field by field', async () => {
    const dir = buildStudyDir(spec({ carbon_g_per_kwh: 360 }));
    const report = await writeStudyReport(dir, {
      prices: { carbon_g_per_kwh: 36, price_per_kwh: 0.1, currency: 'USD' },
    });
    expect(report.prices).toEqual({ carbonGPerKwh: 36, pricePerKwh: 0.1, currency: 'USD' });
    expect(csv(report.files.summary)[0]!.gco2e_per_1m_output_tokens).toBe('3.6');
  });

  it('are absent without an intensity or a price: no invented default', async () => {
    const report = await writeStudyReport(buildStudyDir(spec()));
    expect(report.prices).toBeNull();
    expect(parseCsv(readFileSync(report.files.summary, 'utf8'))[0]).toEqual([...RUN_CSV_COLUMNS]);
    expect(readFileSync(report.files.summaryByConfig, 'utf8')).not.toContain('carbon');
    expect(renderConfigTable(report.summaries)).not.toContain('Carbon');
  });

  it('a price needs its currency; bad values name the flag or the field', () => {
    const invalid = (study: Record<string, unknown> | null, flags: Record<string, unknown>) => {
      try {
        resolveEnergyPrices(study as never, flags);
      } catch (error) {
        expect(error).toBeInstanceOf(ReportError);
        expect((error as ReportError).code).toBe('INVALID_OPTION');
        return (error as Error).message;
      }
      throw new Error('expected an error');
    };
    expect(invalid(null, { price_per_kwh: 0.3 })).toBe(
      'a price per kWh needs its currency: add --currency (e.g. --currency EUR) or report.currency in the study file; llem invents none',
    );
    expect(invalid(null, { carbon_g_per_kwh: -5 })).toContain('--carbon-g-per-kwh: ');
    expect(invalid({ carbon_g_per_kwh: -5 }, {})).toContain(
      'report.carbon_g_per_kwh (in the study file): ',
    );
    // The currency from the file, the price from the flag: fine.
    expect(resolveEnergyPrices({ currency: 'EUR' }, { price_per_kwh: 0.3 })).toEqual({
      carbonGPerKwh: null,
      pricePerKwh: 0.3,
      currency: 'EUR',
    });
    expect(resolveEnergyPrices(null, {})).toBeNull();
  });
});
