import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  type ChannelReading,
  channelEnergy,
  type EnergyChannel,
  trapezoidJ,
} from '../src/energy/channel';
import { probeRapl } from '../src/energy/rapl';

function gpu(counterRangeJ: number | null = null): EnergyChannel {
  return {
    kind: 'gpu',
    index: 0,
    counterMethod: 'nvml-counter',
    readCounterJ: () => null,
    counterRangeJ,
    readPowerW: () => null,
    maxPlausibleW: 3000,
  };
}
/** Readings every 100 ms at a constant power, with the counter from `counter(i)`. */
function readings(
  n: number,
  watts: number,
  counter: (i: number) => number | null,
): ChannelReading[] {
  return Array.from({ length: n }, (_, i) => ({
    t: i * 100,
    counterJ: [counter(i)],
    powerW: [watts],
  }));
}

describe('NVML energy per channel', () => {
  it('uses the counter delta when it is sane', () => {
    // 250 W for 0.9 s: the counter advances 25 J per 100 ms.
    const e = channelEnergy(
      gpu(),
      0,
      readings(10, 250, (i) => 1000 + 25 * i),
    );
    expect(e).toMatchObject({
      method: 'nvml-counter',
      totalJ: 225,
      counterDiscarded: false,
      note: null,
    });
  });

  it('counter read only at the edges and every 1 s: the delta of those reads, nulls skipped', () => {
    // 250 W for 2.5 s, ticks every 100 ms, the counter read at 0, 1000, 2000 and 2500 ms.
    const rs = Array.from({ length: 26 }, (_, i) => ({
      t: i * 100,
      counterJ: [i % 10 === 0 || i === 25 ? 25 * i : null],
      powerW: [250],
    }));
    expect(channelEnergy(gpu(), 0, rs)).toMatchObject({
      method: 'nvml-counter',
      totalJ: 625,
      counterDiscarded: false,
    });
    // A reset between two sparse reads (2000 → 2500 ms) is still seen.
    const reset = rs.map((r, i) => (i === 25 ? { ...r, counterJ: [3] } : r));
    const e = channelEnergy(gpu(), 0, reset);
    expect(e).toMatchObject({ method: 'nvml-power-integral', counterDiscarded: true });
    expect(e.totalJ).toBeCloseTo(625, 9);
    // An edge without a counter read cannot give a window delta: the integral is used.
    const noEnd = rs.map((r, i) => (i === 25 ? { ...r, counterJ: [null] } : r));
    expect(channelEnergy(gpu(), 0, noEnd).method).toBe('nvml-power-integral');
  });

  it('falls back to the power integral when the counter is not supported', () => {
    const e = channelEnergy(
      gpu(),
      0,
      readings(10, 250, () => null),
    );
    expect(e.method).toBe('nvml-power-integral');
    expect(e.totalJ).toBeCloseTo(225, 9);
    expect(e.note).toMatch(/not supported/);
    expect(e.counterDiscarded).toBe(false);
  });

  it('detects a counter reset (it went backwards) and falls back instead of reporting garbage', () => {
    const e = channelEnergy(
      gpu(),
      0,
      readings(10, 250, (i) => (i < 5 ? 5000 + 25 * i : 25 * (i - 5))),
    );
    expect(e.method).toBe('nvml-power-integral');
    expect(e.totalJ).toBeCloseTo(225, 9);
    expect(e.counterDiscarded).toBe(true);
    expect(e.note).toMatch(/backwards/);
  });

  it('rejects an implausible jump (wrap seen as a huge delta)', () => {
    const e = channelEnergy(
      gpu(),
      0,
      readings(10, 250, (i) => (i < 5 ? 25 * i : 1e9 + 25 * i)),
    );
    expect(e.method).toBe('nvml-power-integral');
    expect(e.note).toMatch(/implausible/);
  });

  it('is null with a reason when neither counter nor enough power samples exist', () => {
    const e = channelEnergy(gpu(), 0, [
      { t: 0, counterJ: [null], powerW: [null] },
      { t: 100, counterJ: [null], powerW: [200] },
    ]);
    expect(e).toMatchObject({ method: 'none', totalJ: null });
    expect(e.note).toMatch(/only 1 power sample/);
  });

  it('integrates trapezoids', () => {
    // 0→100 W over 1 s then 100 W for 1 s: 50 + 100 J
    expect(
      trapezoidJ([
        { t: 0, w: 0 },
        { t: 1000, w: 100 },
        { t: 2000, w: 100 },
      ]),
    ).toBe(150);
  });
});

describe('RAPL with a fake sysfs tree', () => {
  function tree(
    domains: Record<string, { name: string; energy?: string; range?: string }>,
  ): string {
    const root = mkdtempSync(join(tmpdir(), 'llem-powercap-'));
    for (const [dir, d] of Object.entries(domains)) {
      mkdirSync(join(root, dir));
      writeFileSync(join(root, dir, 'name'), `${d.name}\n`);
      if (d.energy !== undefined) writeFileSync(join(root, dir, 'energy_uj'), `${d.energy}\n`);
      if (d.range !== undefined)
        writeFileSync(join(root, dir, 'max_energy_range_uj'), `${d.range}\n`);
    }
    return root;
  }

  it('finds package domains, skips subdomains, reads energy in joules', () => {
    const root = tree({
      'intel-rapl:0': { name: 'package-0', energy: '1000000', range: '262143328850' },
      'intel-rapl:0:0': { name: 'core', energy: '5' },
      'intel-rapl:1': { name: 'package-1', energy: '2500000', range: '262143328850' },
      'intel-rapl:2': { name: 'psys', energy: '1' },
    });
    const rapl = probeRapl(root);
    if (!rapl.available) throw new Error(rapl.reason);
    expect(rapl.channels.map((c) => c.index)).toEqual([0, 1]);
    expect(rapl.channels[0]?.readCounterJ()).toBe(1);
    expect(rapl.channels[1]?.readCounterJ()).toBe(2.5);
    expect(rapl.channels[0]?.counterRangeJ).toBeCloseTo(262143.32885, 5);
  });

  it('handles a counter wrap through max_energy_range_uj', () => {
    const root = tree({
      'intel-rapl:0': { name: 'package-0', energy: '999000000', range: '1000000000' },
    });
    const rapl = probeRapl(root);
    if (!rapl.available) throw new Error(rapl.reason);
    const ch = rapl.channels[0] as EnergyChannel;
    const file = join(root, 'intel-rapl:0', 'energy_uj');
    const seq = ['999000000', '999500000', '000200000', '000700000']; // wraps at 1000 J
    const rs: ChannelReading[] = seq.map((v, i) => {
      writeFileSync(file, v);
      return { t: i * 100, counterJ: [ch.readCounterJ()], powerW: [null] };
    });
    // 0.5 + (0.5 + 0.2) + 0.5 = 1.7 J
    const e = channelEnergy(ch, 0, rs);
    expect(e.method).toBe('rapl');
    expect(e.totalJ).toBeCloseTo(1.7, 9);
  });

  it('says why when RAPL is missing or unreadable (never a silent 0)', () => {
    expect(probeRapl(join(tmpdir(), 'no-such-powercap-xyz'))).toMatchObject({
      available: false,
      reason: expect.stringMatching(/does not exist/),
    });
    const root = tree({ 'intel-rapl:0': { name: 'package-0' } });
    expect(probeRapl(root)).toMatchObject({
      available: false,
      reason: expect.stringMatching(/energy_uj is not readable/),
    });
    expect(probeRapl(tree({}))).toMatchObject({
      available: false,
      reason: expect.stringMatching(/no intel-rapl package/),
    });
  });
});
