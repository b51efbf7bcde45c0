import { readFileSync } from 'node:fs';
import type { PhaseEnergy } from '@llem/domain';
import { describe, expect, it } from 'vitest';
import { parseCsv, renderConfigTable, writeStudyReport } from '../src/index';
import { buildStudyDir } from './fixture-study';

const phases = (prefillJ: number, decodeJ: number): PhaseEnergy => ({
  kind: 'attribution',
  method: 'request-phase-time-share',
  weightedBy: 'power-samples',
  prefillJ,
  decodeJ,
  otherJ: 1,
  prefillS: 2,
  decodeS: 18,
  inputTokens: 2048,
  decodedTokens: 608,
  energyPerInputTokenJ: prefillJ / 2048,
  energyPerOutputTokenJ: decodeJ / 608,
  unavailableReason: null,
});

describe('prefill vs decode in the report', () => {
  it('adds the attributed J per input and per output token where runs have them, and nothing elsewhere', async () => {
    const dir = buildStudyDir({
      configs: [
        {
          label: 'llamacpp',
          runs: [
            { cycle: 0, phaseEnergy: phases(204.8, 121.6) },
            { cycle: 1, phaseEnergy: phases(409.6, 182.4) },
          ],
        },
        { label: 'older', runs: [{ cycle: 0 }, { cycle: 1 }] },
      ],
    });
    const report = await writeStudyReport(dir);
    const [header, first] = parseCsv(readFileSync(report.files.summary, 'utf8'));
    const cell = (name: string) => first![header!.indexOf(name)];
    expect(cell('prefill_energy_j')).toBe('204.8');
    expect(cell('decode_energy_j')).toBe('121.6');
    expect(Number(cell('prefill_j_per_input_token'))).toBeCloseTo(0.1, 12);
    expect(Number(cell('decode_j_per_output_token'))).toBeCloseTo(0.2, 12);
    const [llamacpp, older] = report.summaries;
    expect(llamacpp!.metrics.prefillEnergyPerInputTokenJ.mean).toBeCloseTo(0.15, 12);
    expect(llamacpp!.metrics.decodeEnergyPerOutputTokenJ.mean).toBeCloseTo(0.25, 12);
    expect(older!.metrics.prefillEnergyPerInputTokenJ.n).toBe(0);
    expect(renderConfigTable(report.summaries)).toContain(
      'Prefill energy per input token (attributed) (J/token)',
    );
    const byConfig = readFileSync(report.files.summaryByConfig, 'utf8');
    expect(byConfig.match(/prefillEnergyPerInputTokenJ/g)).toHaveLength(1);
  });
});
