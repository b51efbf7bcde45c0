import { mkdtempSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  aggregateStudy,
  compareConfigs,
  compareStudies,
  formatTable,
  listStudies,
  loadStudy,
  paretoFrontier,
  renderComparison,
  renderConfigTable,
  renderStudyList,
} from '../src/index';
import { buildStudyDir, fakeHash, standardStudy } from './fixture-study';

describe('compare', () => {
  it('compares two configs of a study: ratio of means with a CI, and no verdict from 3 cycles', async () => {
    const study = await loadStudy(standardStudy());
    const c = compareConfigs(study, 'batch_size=64,threads=1', '3', { seed: 2 });
    expect(c.a.label).toBe('batch_size=64,threads=1');
    expect(c.b.label).toBe('batch_size=64,threads=2');
    const tps = c.metrics.find((m) => m.metric === 'outputTokensPerS')!;
    // means 21 and 30
    expect(tps.ratio).toBeCloseTo(30 / 21, 12);
    // A in [20,22], B in [29,31] → every resampled ratio lies in [29/22, 31/20]
    expect(tps.ci!.low).toBeGreaterThanOrEqual(29 / 22);
    expect(tps.ci!.high).toBeLessThanOrEqual(31 / 20);
    // 3 cycles a side: the interval is optimistic, so no better/worse verdict (and no "similar").
    expect(tps.verdict).toBe('too-few-cycles');
    const ept = c.metrics.find((m) => m.metric === 'energyPerOutputTokenJ')!;
    expect(ept.ratio).toBeCloseTo(0.31 / 0.85, 12);
    expect(ept.verdict).toBe('too-few-cycles');
    for (const m of c.metrics) expect(['too-few-cycles', 'unknown']).toContain(m.verdict);
  });

  it('gives better/worse/similar from 5 cycles a side, by each metric’s direction', async () => {
    const cycles = [0, 1, 2, 3, 4];
    const study = await loadStudy(
      buildStudyDir({
        configs: [
          {
            label: 'a',
            runs: cycles.map((c) => ({
              cycle: c,
              tokensPerS: 20 + (c % 3),
              energyPerTokenJ: 0.8 + c / 100,
              ttftP50Ms: 100 + c,
            })),
          },
          {
            label: 'b',
            runs: cycles.map((c) => ({
              cycle: c,
              tokensPerS: 30 + (c % 3),
              energyPerTokenJ: 0.3 + c / 100,
              ttftP50Ms: 100 + ((c + 2) % 5),
            })),
          },
        ],
      }),
    );
    const c = compareConfigs(study, 'a', 'b', { seed: 2 });
    const verdictOf = (id: string) => c.metrics.find((m) => m.metric === id)!.verdict;
    expect(verdictOf('outputTokensPerS')).toBe('better');
    expect(verdictOf('energyPerOutputTokenJ')).toBe('better'); // lower J/token is better
    expect(verdictOf('ttftP50Ms')).toBe('similar'); // same values, another order
    const reversed = compareConfigs(study, 'b', 'a', { seed: 2 });
    expect(reversed.metrics.find((m) => m.metric === 'outputTokensPerS')!.verdict).toBe('worse');
    const text = renderComparison(c);
    expect(text).toMatch(
      /Output tokens\/s \(tokens\/s\)\s+20\.8 \(n=5\)\s+30\.8 \(n=5\)\s+\S+×\s+\S+\s+B better/,
    );
    expect(text).not.toContain('Fewer than 5 cycles');
  });

  it('selects configs by hash prefix and explains what is allowed when nothing matches', async () => {
    const study = await loadStudy(standardStudy());
    const hash = fakeHash('batch_size=256,threads=2');
    const c = compareConfigs(study, hash.slice(0, 6), '1');
    expect(c.a.configHash).toBe(hash);
    expect(() => compareConfigs(study, 'nope', '1')).toThrow(
      /config "nope" not found in .* \(give a label, a config hash prefix or a number; allowed: 1\. batch_size=64,threads=1/,
    );
  });

  it('pairs two studies by config hash and reports a similar result as similar', async () => {
    const mk = (name: string, scale: number) =>
      buildStudyDir({
        name,
        configs: [
          {
            label: 'x',
            runs: [0, 1, 2, 3, 4].map((c) => ({ cycle: c, tokensPerS: (10 + c) * scale })),
          },
          { label: `only-${name}`, runs: [{ cycle: 0 }] },
        ],
      });
    const a = await loadStudy(mk('a', 1));
    const b = await loadStudy(mk('b', 1));
    const cmp = compareStudies(a, b);
    expect(cmp.pairs).toHaveLength(1);
    expect(cmp.onlyInA).toEqual(['only-a']);
    expect(cmp.onlyInB).toEqual(['only-b']);
    const tps = cmp.pairs[0]!.metrics.find((m) => m.metric === 'outputTokensPerS')!;
    expect(tps.ratio).toBe(1);
    expect(tps.verdict).toBe('similar');
    const faster = compareStudies(a, await loadStudy(mk('c', 2)));
    expect(
      faster.pairs[0]!.metrics.find((m) => m.metric === 'outputTokensPerS')!.ratio,
    ).toBeCloseTo(2, 12);
  });

  it('refuses studies with nothing in common, saying how to compare configs instead', async () => {
    const a = await loadStudy(
      buildStudyDir({
        configs: [
          { label: 'a1', runs: [{ cycle: 0 }] },
          { label: 'a2', runs: [{ cycle: 0 }] },
        ],
      }),
    );
    const b = await loadStudy(
      buildStudyDir({
        configs: [
          { label: 'b1', runs: [{ cycle: 0 }] },
          { label: 'b2', runs: [{ cycle: 0 }] },
        ],
      }),
    );
    expect(() => compareStudies(a, b)).toThrow(/share no config .* --in STUDY_DIR/);
  });
});

describe('listStudies', () => {
  it('lists study dirs with status and counts, oldest first, and flags a corrupt manifest', async () => {
    const parent = mkdtempSync(join(tmpdir(), 'llem-list-'));
    standardStudy(parent);
    buildStudyDir({
      parent,
      name: 'halfway',
      status: 'interrupted',
      configs: [{ label: 'a', runs: [{ cycle: 0 }, { cycle: 1, status: 'pending' }] }],
    });
    await mkdir(join(parent, 'broken_20260101T000000Z'));
    writeFileSync(join(parent, 'broken_20260101T000000Z', 'manifest.json'), '{ nope');
    await mkdir(join(parent, 'not-a-study'));
    const list = await listStudies(parent);
    expect(list.map((s) => [s.name, s.status])).toEqual([
      ['broken_20260101T000000Z', 'invalid'],
      ['batch-vs-threads', 'completed'],
      ['halfway', 'interrupted'],
    ]);
    expect(list[1]!.counts).toEqual({
      total: 12,
      pending: 0,
      running: 0,
      completed: 11,
      failed: 1,
    });
    expect(list[0]!.problem).toMatch(/manifest\.json \(.*JSON/);
    const text = renderStudyList(list);
    expect(text.split('\n')[0]).toMatch(
      /^study\s+status\s+completed\s+failed\s+pending\s+created\s+directory$/,
    );
    expect(text).toMatch(/batch-vs-threads\s+completed\s+11\s+1\s+0/);
    expect(await listStudies(join(parent, 'missing'))).toEqual([]);
  });
});

describe('text tables', () => {
  it('aligns columns, right-aligning numbers, with no trailing spaces', () => {
    const t = formatTable(
      [{ header: 'name' }, { header: 'n', align: 'right' }],
      [
        ['a', '1'],
        ['long name', '100'],
      ],
    );
    expect(t).toBe('name         n\n─────────  ───\na            1\nlong name  100\n');
  });

  it('renders the per-config table with CIs, frontier marks and unmeasured metrics named', async () => {
    const summaries = aggregateStudy(await loadStudy(standardStudy()), { seed: 1 });
    const text = renderConfigTable(summaries, { pareto: paretoFrontier(summaries) });
    const lines = text.split('\n');
    expect(lines[0]).toContain('Energy per output token (J/token)');
    expect(lines.find((l) => l.includes('* batch_size=64,threads=2'))).toMatch(
      /3\/0\s+0\.31 \(0\.3\d*–0\.3\d*\)/,
    );
    expect(lines.find((l) => l.includes('batch_size=256,threads=1'))).toContain('2/1');
    expect(text).toContain('* = Pareto frontier');
    expect(text).not.toContain('\u001b[');
    expect(renderConfigTable(summaries, { color: true })).toContain('\u001b[1m');
  });

  it('a study where no run completed says so, instead of calling every metric unmeasurable', async () => {
    const dir = buildStudyDir({
      configs: [
        {
          label: 'oom',
          runs: [0, 1].map((cycle) => ({
            cycle,
            status: 'failed' as const,
            error: { type: 'crash', message: 'CUDA error: out of memory' },
          })),
        },
      ],
    });
    const text = renderConfigTable(aggregateStudy(await loadStudy(dir)));
    expect(text).toContain('No completed run: nothing to summarise.');
    expect(text).not.toContain('Not measured');
  });

  it('fits a width by dropping trailing metrics, and names them', async () => {
    const summaries = aggregateStudy(await loadStudy(standardStudy()));
    const full = renderConfigTable(summaries);
    const narrow = renderConfigTable(summaries, { maxWidth: 120 });
    const tableLines = narrow.split('\n').slice(0, 2 + summaries.length);
    expect(Math.max(...tableLines.map((l) => [...l].length))).toBeLessThanOrEqual(120);
    expect(narrow).toContain('Energy per output token (J/token)');
    expect(narrow).toMatch(/Not shown \(terminal too narrow\): .*Peak RSS; see --csv or --json\./);
    expect(full).not.toContain('Not shown');
  });

  it('renders a comparison with ratio, CI and verdict', async () => {
    const study = await loadStudy(standardStudy());
    const text = renderComparison(compareConfigs(study, '1', '3'));
    expect(text).toMatch(/^A: batch_size=64,threads=1 \([0-9a-f]{16}\)/);
    expect(text).toMatch(
      /Output tokens\/s \(tokens\/s\)\s+21 \(n=3\)\s+30 \(n=3\)\s+1\.43×\s+1\.\d+–1\.\d+\s+no verdict \(n<5\)/,
    );
    expect(text).toContain(
      'Fewer than 5 cycles on a side (n=3): the intervals are optimistic, so no better/worse verdict is given; run at least 5 cycles (execution.cycles) for one.',
    );
    expect(text).not.toMatch(/B (better|worse)$/m);
  });
});
