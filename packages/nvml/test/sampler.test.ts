import { h100Profile } from '@llem/fake-nvml';
import { describe, expect, it } from 'vitest';
import { type GpuDevice, Nvml, PowerSampler, type SamplerTimers } from '../src/index';
import { FULL, MiB, useScenario } from './support';

/** A manual clock and timer queue: time moves only when the test says so. */
function manualTime() {
  let now = 1000;
  let seq = 0;
  const pending = new Map<number, { due: number; fn: () => void }>();
  const delays: number[] = [];
  const timers: SamplerTimers = {
    setTimeout(fn, ms) {
      delays.push(ms);
      pending.set(++seq, { due: now + ms, fn });
      return seq;
    },
    clearTimeout(handle) {
      pending.delete(handle as number);
    },
  };
  /** Advance to `to`, firing due timers, each `lateBy` ms after its due time. */
  const advance = (to: number, lateBy = 0) => {
    for (;;) {
      const next = [...pending.entries()].sort((a, b) => a[1].due - b[1].due)[0];
      if (!next || next[1].due + lateBy > to) break;
      pending.delete(next[0]);
      now = next[1].due + lateBy;
      next[1].fn();
    }
    now = to;
  };
  const jump = (ms: number) => {
    now += ms;
  };
  return { clock: () => now, timers, advance, jump, delays, pending };
}

function scriptedSource(): GpuDevice & { reads: number } {
  const source = {
    reads: 0,
    instantPowerW: () => {
      source.reads++;
      return 100 + source.reads;
    },
    memoryInfo: () => ({
      totalBytes: 80 * 1024 * MiB,
      usedBytes: 2 * MiB,
      freeBytes: 0,
      reservedBytes: null,
      totalMiB: 81920,
      usedMiB: 2,
      freeMiB: 0,
      version: 2 as const,
    }),
    temperatureC: () => 40,
    utilization: () => ({ gpuPct: 50, memoryPct: 10 }),
    smClockMHz: () => 1800,
    clockEventReasonsMask: () => 0x4,
  };
  return source;
}

describe('PowerSampler with an injected clock', () => {
  it('samples at start, every interval, and once more at stop', () => {
    const time = manualTime();
    const sampler = new PowerSampler({ source: scriptedSource(), intervalMs: 10, ...time });
    sampler.start();
    time.advance(1045);
    const samples = sampler.stop();
    expect(samples.map((s) => s.t)).toEqual([1000, 1010, 1020, 1030, 1040, 1045]);
    expect(samples[1]).toEqual({
      t: 1010,
      powerW: 102,
      memoryUsedMiB: 2,
      memoryTotalMiB: 81920,
      temperatureC: 40,
      utilizationGpuPct: 50,
      smClockMHz: 1800,
      clockEventReasons: 0x4, // swPowerCap
    });
    expect(time.pending.size).toBe(0);
    expect(sampler.isRunning).toBe(false);
  });

  it('corrects drift: late timers do not push later samples back', () => {
    const time = manualTime();
    const sampler = new PowerSampler({ source: scriptedSource(), intervalMs: 10, ...time });
    sampler.start();
    time.advance(1100, 3); // every timer fires 3 ms late
    sampler.stop();
    const ts = sampler.collected.map((s) => s.t);
    // Aimed at 1010, 1020, …: each fires at +3, but the schedule stays anchored to the start.
    expect(ts.slice(0, 5)).toEqual([1000, 1013, 1023, 1033, 1043]);
    expect(time.delays.slice(1, 4)).toEqual([7, 7, 7]);
  });

  it('skips slots missed during a stall instead of bunching them', () => {
    const time = manualTime();
    const source = scriptedSource();
    const read = source.instantPowerW;
    // The second reading blocks the thread for 45 ms (a slow driver call, a GC pause).
    source.instantPowerW = () => {
      const value = read();
      if (source.reads === 2) time.jump(45);
      return value;
    };
    const sampler = new PowerSampler({
      source,
      intervalMs: 10,
      clock: time.clock,
      timers: time.timers,
    });
    sampler.start();
    time.advance(1085);
    sampler.stop();
    // 1020…1050 were missed while blocked; sampling resumes on the grid at 1060.
    expect(sampler.collected.map((s) => s.t)).toEqual([1000, 1010, 1060, 1070, 1080, 1085]);
  });

  it('records nulls from the source as nulls', () => {
    const time = manualTime();
    const source: GpuDevice = {
      instantPowerW: () => null,
      memoryInfo: () => null,
      temperatureC: () => null,
      utilization: () => null,
      smClockMHz: () => null,
      clockEventReasonsMask: () => null,
    };
    const sampler = new PowerSampler({ source, ...time });
    sampler.start();
    expect(sampler.stop()[0]).toEqual({
      t: 1000,
      powerW: null,
      memoryUsedMiB: null,
      memoryTotalMiB: null,
      temperatureC: null,
      utilizationGpuPct: null,
      smClockMHz: null,
      clockEventReasons: null,
    });
  });

  it('calls onSample, refuses a double start, and restarts cleanly', () => {
    const time = manualTime();
    const seen: number[] = [];
    const sampler = new PowerSampler({
      source: scriptedSource(),
      intervalMs: 5,
      onSample: (s) => seen.push(s.t),
      ...time,
    });
    sampler.start();
    expect(() => sampler.start()).toThrow('PowerSampler: already running');
    time.advance(1010);
    expect(sampler.stop()).toHaveLength(4);
    expect(sampler.stop()).toHaveLength(4); // stopping again changes nothing
    expect(seen).toEqual([1000, 1005, 1010, 1010]);
    sampler.start();
    expect(sampler.stop()).toHaveLength(2);
  });

  it('keeps its schedule when onSample throws', () => {
    const time = manualTime();
    let calls = 0;
    const sampler = new PowerSampler({
      source: scriptedSource(),
      intervalMs: 10,
      onSample: () => {
        calls++;
        if (calls === 2) throw new Error('consumer bug');
      },
      ...time,
    });
    sampler.start();
    expect(() => time.advance(1010)).toThrow('consumer bug');
    time.advance(1030);
    expect(sampler.stop().map((s) => s.t)).toEqual([1000, 1010, 1020, 1030, 1030]);
  });

  it.each([0, -5, Number.NaN, 0.5])('rejects intervalMs %s with an exact message', (intervalMs) => {
    expect(() => new PowerSampler({ source: scriptedSource(), intervalMs })).toThrow(
      `PowerSampler: intervalMs must be a number ≥ 1, got ${intervalMs}`,
    );
  });
});

describe('PowerSampler on the fake NVML (real timers, real FFI)', () => {
  it('takes samples with monotonic timestamps and the device values', async () => {
    useScenario({ devices: [h100Profile({ clockEventReasons: 0x1 | 0x20 })] });
    const nvml = Nvml.open({ library: FULL });
    try {
      const sampler = new PowerSampler({ source: nvml.device(0), intervalMs: 10 });
      sampler.start();
      await new Promise((r) => setTimeout(r, 80));
      const samples = sampler.stop();
      expect(samples.length).toBeGreaterThanOrEqual(4);
      for (let i = 1; i < samples.length; i++) {
        expect(samples[i]!.t).toBeGreaterThan(samples[i - 1]!.t);
      }
      expect(samples[0]).toMatchObject({
        powerW: 72.5,
        memoryUsedMiB: 1,
        memoryTotalMiB: 81559,
        temperatureC: 34,
        utilizationGpuPct: 0,
        smClockMHz: 1980,
        clockEventReasons: 0x1 | 0x20, // gpuIdle, swThermalSlowdown
      });
    } finally {
      nvml.close();
    }
  });
});
