import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadStudy, readRunRequests, writeStudyReport } from '../src/index';
import { buildStudyDir, fixtureRequests } from './fixture-study';

describe('per-request records in the report', () => {
  it('plots TTFT and E2E of every request over the window, failures marked, and defines ITL and TPOT', async () => {
    const dir = buildStudyDir({
      configs: [
        {
          label: 'openai c=4',
          runs: [
            { cycle: 0, tpotP50Ms: 20.5, requests: fixtureRequests(40, true), timeseries: false },
            { cycle: 1, tpotP50Ms: 21, timeseries: false },
          ],
        },
      ],
    });
    const { files } = await writeStudyReport(dir);
    const html = readFileSync(files.report, 'utf8');
    // One panel: the run with a requests file (the other has neither file).
    const panels = html.match(/<div class="trace" data-run="[^"]+">/g) ?? [];
    expect(panels).toHaveLength(1);
    const figure = html.slice(html.indexOf('<figure class="requests">'));
    const chart = figure.slice(0, figure.indexOf('</figure>'));
    expect(chart).toContain('Request sent, time in measurement window (s)');
    // 39 successful requests: a TTFT and an E2E dot each; the failure a cross at its E2E.
    expect(chart.match(/<circle/g)).toHaveLength(39 * 2);
    expect(chart).toContain('failed (E2E)');
    expect(html).toMatch(
      /ITL \(inter-token latency\): the gaps between successive chunks that carry tokens, as vLLM's benchmark defines it/,
    );
    expect(html).toMatch(/TPOT \(time per output token\): \(E2E − TTFT\) \/ \(output tokens − 1\)/);
    expect(html).toContain('TPOT p50 (ms)');
  });

  it('summary.csv gains TPOT columns only when a run has TPOT (older studies keep their file)', async () => {
    const old = buildStudyDir({ configs: [{ label: 'a', runs: [{ cycle: 0 }] }] });
    const header = (dir: string) =>
      readFileSync(join(dir, 'summary.csv'), 'utf8').split('\n')[0]!.split(',');
    await writeStudyReport(old);
    expect(header(old)).not.toContain('tpot_p50_ms');
    const fresh = buildStudyDir({ configs: [{ label: 'a', runs: [{ cycle: 0, tpotP50Ms: 12 }] }] });
    await writeStudyReport(fresh);
    expect(header(fresh).slice(-2)).toEqual(['tpot_p50_ms', 'tpot_p95_ms']);
    const row = readFileSync(join(fresh, 'summary.csv'), 'utf8').split('\n')[1]!.split(',');
    expect(row.slice(-2)).toEqual(['12', String(12 * 1.2)]);
  });

  it('readRunRequests: null without a file; bad lines left out and reported', async () => {
    const dir = buildStudyDir({
      configs: [{ label: 'a', runs: [{ cycle: 0, requests: fixtureRequests(3) }, { cycle: 1 }] }],
    });
    const study = await loadStudy(dir);
    const [withFile, without] = study.runs;
    const read = await readRunRequests(withFile!);
    expect(read?.records.map((r) => r.id)).toEqual([0, 1, 2]);
    expect(without!.requestsFile).toBeNull();
    expect(await readRunRequests(without!)).toBeNull();
    writeFileSync(read!.file, `${readFileSync(read!.file, 'utf8')}{"id":"x"}\n`);
    const warnings: string[] = [];
    await writeStudyReport(dir, {
      logger: { error() {}, warn: (m: string) => warnings.push(m), info() {}, debug() {} },
    });
    expect(warnings).toEqual([
      expect.stringMatching(
        /requests\.jsonl: 1 line\(s\) are not request records and were left out \(line 4: id: /,
      ),
    ]);
  });
});
