import { readFileSync } from 'node:fs';
import type { FileIdentity } from '@llem/domain';
import { describe, expect, it } from 'vitest';
import { describeInputChange, inputChanges, loadStudy, writeStudyReport } from '../src/index';
import { buildStudyDir } from './fixture-study';

const file = (sha: string, path = '/models/m.gguf'): FileIdentity => ({
  path,
  sizeBytes: 4_920_000_000,
  modifiedAt: '2026-03-01T12:00:00.000Z',
  sha256: sha.repeat(64).slice(0, 64),
  coverage: 'sampled',
});
const dataset = file('d', '/data/p.jsonl');

describe('inputChanges', () => {
  it('finds a config whose model file changed between cycles and names the runs per version', async () => {
    const study = await loadStudy(
      buildStudyDir({
        configs: [
          {
            label: 'threads=2',
            runs: [
              { cycle: 0, inputs: { model: file('a'), dataset } },
              { cycle: 1, inputs: { model: file('a'), dataset } },
              { cycle: 2, inputs: { model: file('b'), dataset } },
            ],
          },
          {
            label: 'threads=4',
            runs: [0, 1, 2].map((cycle) => ({ cycle, inputs: { model: file('a'), dataset } })),
          },
        ],
      }),
    );
    const changes = inputChanges(study.runs);
    expect(changes).toHaveLength(1);
    const [change] = changes;
    const keys = study.runs.filter((r) => r.label === 'threads=2').map((r) => r.key);
    expect(change).toMatchObject({
      label: 'threads=2',
      input: 'model',
      variants: [
        { sha256: 'a'.repeat(64), runs: [keys[0], keys[1]] },
        { sha256: 'b'.repeat(64), runs: [keys[2]] },
      ],
    });
    const line = describeInputChange(change!);
    expect(line).toContain('threads=2');
    expect(line).toContain('2 different model files');
    expect(line).toContain(`sampled fingerprint ${'a'.repeat(12)}…`);
    expect(line).toContain(`runs ${keys[0]}, ${keys[1]}`);
    expect(line).toContain(`run ${keys[2]}`);
  });

  it('a changed dataset is found too; failed runs, older results without inputs and nulls are ignored', async () => {
    const study = await loadStudy(
      buildStudyDir({
        configs: [
          {
            label: 'c',
            runs: [
              { cycle: 0, inputs: { model: null, dataset } },
              { cycle: 1, inputs: { model: null, dataset: file('e', '/data/p.jsonl') } },
              { cycle: 2 },
              {
                cycle: 3,
                status: 'failed',
                error: { type: 'crash', message: 'x' },
              },
            ],
          },
        ],
      }),
    );
    expect(inputChanges(study.runs).map((c) => [c.label, c.input, c.variants.length])).toEqual([
      ['c', 'dataset', 2],
    ]);
  });

  it('the same bytes everywhere, or no identities at all: nothing to say', async () => {
    const same = await loadStudy(
      buildStudyDir({
        configs: [
          {
            label: 'x',
            runs: [0, 1].map((cycle) => ({ cycle, inputs: { model: file('a'), dataset } })),
          },
        ],
      }),
    );
    expect(inputChanges(same.runs)).toEqual([]);
    const none = await loadStudy(
      buildStudyDir({ configs: [{ label: 'y', runs: [{ cycle: 0 }, { cycle: 1 }] }] }),
    );
    expect(inputChanges(none.runs)).toEqual([]);
  });

  it('report.html lists the change among the warnings', async () => {
    const dir = buildStudyDir({
      configs: [
        {
          label: 'b=64',
          runs: [
            { cycle: 0, inputs: { model: file('a'), dataset: null } },
            { cycle: 1, inputs: { model: file('f'), dataset: null } },
          ],
        },
      ],
    });
    const html = readFileSync((await writeStudyReport(dir)).files.report, 'utf8');
    const item = html.match(/<li class="input-changed">[\s\S]*?<\/li>/)?.[0] ?? '';
    expect(item).toContain('<b>input changed</b>');
    expect(item).toContain('b=64');
    expect(item).toContain('2 different model files');
  });
});
