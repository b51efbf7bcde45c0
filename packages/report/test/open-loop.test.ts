import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  aggregateStudy,
  loadStudy,
  parseCsv,
  RUN_CSV_COLUMNS,
  renderConfigTable,
  warningsAffecting,
  writeStudyReport,
} from '../src/index';
import { fakeHash, openLoopStudy } from './fixture-study';

const SLOW = fakeHash('rate=5000');

describe('open-loop runs: latency from the schedule and the client-saturated warning', () => {
  it('counts, per config, the runs that carry each warning, and reads the open-loop metrics', async () => {
    const [kept, saturated] = aggregateStudy(await loadStudy(openLoopStudy()));
    expect(kept!.warningRuns).toEqual({});
    expect(saturated!.warningRuns).toEqual({ 'client-saturated': 2 });
    expect(saturated!.metrics.ttftFromScheduledP50Ms.values).toEqual([95, 900, 1100]);
    expect(saturated!.metrics.clientLagP99Ms.values).toEqual([2, 800, 950]);
    expect(kept!.metrics.clientLagP99Ms.values).toEqual([0.4, 0.4, 0.4]);
  });

  it('the client-saturated warning affects the latencies timed by the client, not the ones from the schedule', () => {
    for (const id of ['ttftP50Ms', 'ttftP95Ms', 'itlP50Ms', 'itlP95Ms', 'tpotP50Ms'] as const) {
      expect(warningsAffecting(id, ['client-saturated', 'throttling'])).toEqual([
        'client-saturated',
      ]);
    }
    for (const id of ['ttftFromScheduledP50Ms', 'energyPerOutputTokenJ'] as const) {
      expect(warningsAffecting(id, ['client-saturated'])).toEqual([]);
    }
  });

  it('the terminal table marks the affected latencies of the saturated config and says why', async () => {
    const text = renderConfigTable(aggregateStudy(await loadStudy(openLoopStudy())));
    const lines = text.split('\n');
    const header = lines[0]!;
    expect(header).toContain('TTFT from schedule p50 (ms)');
    const row = (label: string) => lines.find((l) => l.includes(label))!;
    // `!` after every latency figure of rate=5000, none after rate=100's.
    expect(row('rate=5000')).toMatch(/^2\s+rate=5000\s+3\/0 .* 90 \(90–90\) ! .* 30 \(30–30\) ! /);
    expect(row('rate=100').includes('!')).toBe(false);
    expect(text).toMatch(
      /^! client-saturated in 2 of 3 runs of config 2 \(rate=5000\), next to TTFT p50, TTFT p95, ITL p50, ITL p95: the client could not keep its arrival schedule/m,
    );
  });

  it('summary.csv gains the open-loop columns; report.html marks the latencies beside their values', async () => {
    const { files } = await writeStudyReport(openLoopStudy());
    const [header, ...rows] = parseCsv(readFileSync(files.summary, 'utf8'));
    expect(header!.slice(RUN_CSV_COLUMNS.length)).toEqual([
      'ttft_from_scheduled_p50_ms',
      'ttft_from_scheduled_p95_ms',
      'e2e_from_scheduled_p50_ms',
      'client_lag_p99_ms',
      'connection_wait_p99_ms',
      'target_rate',
      'achieved_send_rate',
    ]);
    const cell = (key: string, col: string) =>
      rows.find((r) => r[0] === key)![header!.indexOf(col)];
    expect(cell(`${SLOW}_c1`, 'ttft_from_scheduled_p50_ms')).toBe('900');
    expect(cell(`${SLOW}_c1`, 'client_lag_p99_ms')).toBe('800');
    expect(cell(`${SLOW}_c1`, 'achieved_send_rate')).toBe('60');
    expect(cell(`${SLOW}_c1`, 'warnings')).toBe('client-saturated');

    const html = readFileSync(files.report, 'utf8');
    const configTable = html.slice(
      html.indexOf('id="config-table"'),
      html.indexOf('</table>', html.indexOf('id="config-table"')),
    );
    const slowRow = configTable.slice(configTable.indexOf('rate=5000'));
    expect(slowRow.slice(0, slowRow.indexOf('</tr>'))).toContain(
      '⚠ client-saturated (2/3 runs)</span>',
    );
    const keptRow = configTable.slice(configTable.indexOf('rate=100<'));
    expect(keptRow.slice(0, keptRow.indexOf('</tr>'))).not.toContain('client-saturated');
    // In the run table only the two saturated runs are marked, next to their TTFT and ITL.
    const runTable = html.slice(html.indexOf('id="run-table"'));
    const runRow = (key: string) => {
      const at = runTable.indexOf(key);
      return runTable.slice(at, runTable.indexOf('</tr>', at));
    };
    expect(runRow(`${SLOW}_c1`).match(/⚠ client-saturated<\/span>/g)).toHaveLength(2);
    expect(runRow(`${SLOW}_c0`)).not.toContain('⚠');
    // Above the latency charts: which runs, and what it means.
    expect(html).toMatch(
      /id="latency-warning-client-saturated">⚠ <code>client-saturated<\/code> in 2 runs \(rate=5000 cycle 1, rate=5000 cycle 2\): the client could not keep/,
    );
  });
});
