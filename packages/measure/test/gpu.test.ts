import {
  CLOCK_EVENT_REASON_BITS,
  type ClockEventReason,
  decodeClockEventReasons,
  THROTTLE_REASONS,
} from '@llem/nvml';
import { GPU_READINGS } from '@llem/nvml/readings';
import { describe, expect, it } from 'vitest';
import { THROTTLE_MASK, THROTTLE_REASON_BITS, throttleReasonNames } from '../src/gpu';
import { timeseriesCsv } from '../src/sampler';

describe("throttle reasons agree with @llem/nvml's decoding", () => {
  it("THROTTLE_REASON_BITS is nvml's CLOCK_EVENT_REASON_BITS restricted to THROTTLE_REASONS", () => {
    const fromNvml = Object.fromEntries(
      Object.entries(CLOCK_EVENT_REASON_BITS).filter(([name]) =>
        THROTTLE_REASONS.has(name as ClockEventReason),
      ),
    );
    expect(THROTTLE_REASON_BITS).toEqual(fromNvml);
    expect(THROTTLE_MASK).toBe(0x4 | 0x8 | 0x20 | 0x40 | 0x80);
  });

  it('throttleReasonNames equals the throttle reasons nvml decodes, for every known mask', () => {
    const all = Object.values(CLOCK_EVENT_REASON_BITS).reduce((a, b) => a | b, 0);
    for (let mask = 0; mask <= all; mask++)
      expect(throttleReasonNames(mask)).toEqual(
        decodeClockEventReasons(mask).filter((r) => THROTTLE_REASONS.has(r)),
      );
    expect(throttleReasonNames(0x25)).toEqual(['swPowerCap', 'swThermalSlowdown']);
  });
});

describe('the timeseries CSV follows the GPU readings table', () => {
  it('has one column per reading, in table order, and writes each reading in its own column', () => {
    const sample = Object.fromEntries(GPU_READINGS.map((r, i) => [r.key, i + 0.25]));
    const csv = timeseriesCsv([
      { window: 'measure', tMs: 5, device: 'gpu0', sample, energyJ: 12 },
      { window: 'measure', tMs: 5, device: 'cpu-package0', sample: {}, energyJ: 3 },
    ]);
    const [header = '', gpu = '', cpu = ''] = csv.trimEnd().split('\n');
    const columns = header.split(',');
    expect(columns).toEqual([
      'window',
      't_ms',
      'device',
      ...GPU_READINGS.map((r) => r.column),
      'energy_j',
    ]);
    const cells = gpu.split(',');
    GPU_READINGS.forEach((r, i) => {
      expect(cells[columns.indexOf(r.column)]).toBe((i + 0.25).toFixed(3));
    });
    expect(cells.at(-1)).toBe('12');
    // A row without readings leaves every reading's cell empty.
    expect(cpu).toBe(`measure,5,cpu-package0,${','.repeat(GPU_READINGS.length)}3`);
  });
});
