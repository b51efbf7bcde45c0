import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { h100Profile } from '@llem/fake-nvml';
import { describe, expect, it } from 'vitest';
import { Nvml, NvmlLibraryError, type PowerSample, PowerSampler } from '../src/index';
import { getNvmlApi } from '../src/internal/api';
import { FULL, useScenario } from './support';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Each sample after the first lies in its own interval slot counted from the first one. */
function expectOnGrid(samples: readonly PowerSample[], intervalMs: number): void {
  const t0 = samples[0]!.t;
  let previous = 0;
  for (let i = 1; i < samples.length; i++) {
    expect(samples[i]!.t).toBeGreaterThan(samples[i - 1]!.t);
    // The schedule is anchored at the first sample's time; 0.01 ms absorbs the float rounding
    // of the clock conversion.
    const slot = Math.floor((samples[i]!.t - t0 + 0.01) / intervalMs);
    if (i < samples.length - 1) {
      expect(slot).toBeGreaterThan(previous);
      previous = slot;
    }
  }
}

describe('PowerSampler thread selection', () => {
  it('defaults to the worker for an NvmlDevice, to the main thread otherwise', () => {
    useScenario({ devices: [h100Profile()] });
    const nvml = Nvml.open({ library: FULL });
    try {
      const device = nvml.device(0);
      expect(new PowerSampler({ source: device }).thread).toBe('worker');
      expect(new PowerSampler({ source: device, clock: () => 0 }).thread).toBe('main');
      expect(new PowerSampler({ source: device, thread: 'main' }).thread).toBe('main');
      const custom = {
        instantPowerW: () => 1,
        memoryInfo: () => null,
        temperatureC: () => null,
        utilization: () => null,
        smClockMHz: () => null,
        clockEventReasonsMask: () => null,
      };
      expect(new PowerSampler({ source: custom }).thread).toBe('main');
      expect(() => new PowerSampler({ source: custom, thread: 'worker' })).toThrow(
        "PowerSampler: thread 'worker' needs an NvmlDevice source",
      );
      expect(() => new PowerSampler({ source: device, thread: 'worker', clock: () => 0 })).toThrow(
        "PowerSampler: clock and timers apply to thread 'main' only",
      );
      expect(
        () => new PowerSampler({ source: device, thread: 'other' as unknown as 'main' }),
      ).toThrow("PowerSampler: thread must be 'main' or 'worker', got other");
    } finally {
      nvml.close();
    }
  });
});

describe('PowerSampler in a worker thread (fake NVML, real FFI)', () => {
  it('returns the device values on the caller’s clock, on the interval grid', async () => {
    useScenario({ devices: [h100Profile({ clockEventReasons: 0x1 | 0x20 })] });
    const nvml = Nvml.open({ library: FULL });
    try {
      const sampler = new PowerSampler({ source: nvml.device(0), intervalMs: 10 });
      const before = performance.now();
      sampler.start();
      const started = performance.now();
      expect(sampler.isRunning).toBe(true);
      await sleep(150);
      const stopping = performance.now();
      const samples = sampler.stop();
      const after = performance.now();
      expect(sampler.isRunning).toBe(false);

      // Timestamps are converted to this thread's performance.now(): the first sample is taken
      // while start() waits for the worker, the last one inside stop().
      expect(samples[0]!.t).toBeGreaterThanOrEqual(before);
      expect(samples[0]!.t).toBeLessThanOrEqual(started);
      expect(samples.at(-1)!.t).toBeGreaterThanOrEqual(stopping);
      expect(samples.at(-1)!.t).toBeLessThanOrEqual(after);
      // Lenient on a loaded machine (stalls skip slots), strict on bunching.
      expect(samples.length).toBeGreaterThanOrEqual(3);
      // At most the first sample, one per slot due before stop() returned, and the closing one.
      expect(samples.length).toBeLessThanOrEqual(Math.floor((after - before) / 10) + 2);
      expectOnGrid(samples, 10);
      for (const s of samples) {
        expect(s).toEqual({
          t: s.t,
          powerW: 72.5,
          memoryUsedMiB: 1,
          memoryTotalMiB: 81559,
          temperatureC: 34,
          utilizationGpuPct: 0,
          smClockMHz: 1980,
          clockEventReasons: 0x1 | 0x20, // gpuIdle, swThermalSlowdown
        });
      }
    } finally {
      nvml.close();
    }
  });

  it('reports a reading the device refuses as null and keeps the others', async () => {
    useScenario({
      devices: [h100Profile({ errors: { nvmlDeviceGetTemperature: 'GPU_IS_LOST' } })],
      errors: { nvmlDeviceGetCurrentClocksEventReasons: 'NOT_SUPPORTED' },
    });
    const nvml = Nvml.open({ library: FULL });
    try {
      const sampler = new PowerSampler({ source: nvml.device(0), intervalMs: 5 });
      sampler.start();
      await sleep(30);
      const samples = sampler.stop();
      expect(samples.length).toBeGreaterThanOrEqual(2);
      for (const s of samples) {
        expect(s).toMatchObject({ powerW: 72.5, temperatureC: null, clockEventReasons: null });
      }
    } finally {
      nvml.close();
    }
  });

  it('records nulls, not a crash, when NVML fails mid-run, and stop() still returns', async () => {
    useScenario({ devices: [h100Profile()] });
    const nvml = Nvml.open({ library: FULL });
    const raw = getNvmlApi({ library: FULL }).bindings;
    try {
      const sampler = new PowerSampler({ source: nvml.device(0), intervalMs: 5 });
      sampler.start();
      await sleep(30);
      const beforeFailure = sampler.collected.length;
      // Drop NVML's process-wide initialisation under both sessions (the caller's and the
      // worker's): every call now returns UNINITIALIZED, as after a driver unload.
      expect(raw.fn('shutdown')()).toBe(0);
      expect(raw.fn('shutdown')()).toBe(0);
      await sleep(40);
      const samples = sampler.stop();
      expect(samples[0]!.powerW).toBe(72.5);
      expect(samples.length).toBeGreaterThan(beforeFailure + 1);
      expect(samples.at(-1)).toEqual({
        t: samples.at(-1)!.t,
        powerW: null,
        memoryUsedMiB: null,
        memoryTotalMiB: null,
        temperatureC: null,
        utilizationGpuPct: null,
        smClockMHz: null,
        clockEventReasons: null,
      });
      expectOnGrid(samples, 5);
    } finally {
      // Give back the caller's reference the forced shutdown took, so close() balances.
      expect(raw.fn('init')()).toBe(0);
      nvml.close();
    }
  });

  it('stop() wakes a sleeping worker at once and gets its closing sample', () => {
    useScenario({ devices: [h100Profile()] });
    const nvml = Nvml.open({ library: FULL });
    try {
      const sampler = new PowerSampler({ source: nvml.device(0), intervalMs: 3_600_000 });
      sampler.start();
      const t = performance.now();
      const samples = sampler.stop();
      // Without the notify the worker would sleep an hour and stop() would give up after 5 s
      // without the closing sample.
      expect(performance.now() - t).toBeLessThan(4000);
      expect(samples).toHaveLength(2);
      expect(samples[1]!.t).toBeGreaterThanOrEqual(t);
    } finally {
      nvml.close();
    }
  });

  it('throws NvmlLibraryError from start() when the worker’s library cannot load', () => {
    useScenario({ devices: [h100Profile()] });
    const nvml = Nvml.open({ library: FULL });
    try {
      const sampler = new PowerSampler({
        source: nvml.device(0),
        library: '/nonexistent/libnvidia-ml.so.1',
      });
      let caught: unknown;
      try {
        sampler.start();
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(NvmlLibraryError);
      expect((caught as NvmlLibraryError).triedPaths).toEqual(['/nonexistent/libnvidia-ml.so.1']);
      expect(sampler.isRunning).toBe(false);
      expect(sampler.stop()).toEqual([]);
    } finally {
      nvml.close();
    }
  });

  it('throws the worker’s NvmlError from start() when the device cannot be opened there', () => {
    useScenario({ devices: [h100Profile()] });
    const nvml = Nvml.open({ library: FULL });
    try {
      const device = nvml.device(0);
      // A device object whose index the library does not have (as after a GPU was removed).
      const gone = Object.assign(Object.create(Object.getPrototypeOf(device)), device, {
        index: 7,
      });
      const sampler = new PowerSampler({ source: gone });
      expect(() => sampler.start()).toThrow(
        /nvmlDeviceGetHandleByIndex_v2 failed: .*INVALID_ARGUMENT/,
      );
      expect(sampler.isRunning).toBe(false);
    } finally {
      nvml.close();
    }
  });

  it('starts and stops twice, each run with its own samples; onSample sees every one', async () => {
    useScenario({ devices: [h100Profile()] });
    const nvml = Nvml.open({ library: FULL });
    try {
      const seen: PowerSample[] = [];
      const sampler = new PowerSampler({
        source: nvml.device(0),
        intervalMs: 5,
        onSample: (s) => seen.push(s),
      });
      sampler.start();
      expect(() => sampler.start()).toThrow('PowerSampler: already running');
      await sleep(40);
      const first = sampler.stop();
      expect(sampler.stop()).toBe(first); // stopping again changes nothing
      const firstCopy = [...first];
      sampler.start();
      await sleep(40);
      const second = sampler.stop();
      expect(first).toEqual(firstCopy);
      expect(second.length).toBeGreaterThanOrEqual(2);
      expect(second[0]!.t).toBeGreaterThan(first.at(-1)!.t);
      expect(seen).toEqual([...first, ...second]);
      expect(seen[0]).toBe(first[0]);
    } finally {
      nvml.close();
    }
  });

  it('never keeps Node alive: a process that forgets a running sampler still exits', () => {
    useScenario({ devices: [h100Profile()] });
    const index = fileURLToPath(new URL('../src/index.ts', import.meta.url));
    const script = join(mkdtempSync(join(tmpdir(), 'llem-sampler-')), 'forgotten.ts');
    writeFileSync(
      script,
      [
        `import { Nvml, PowerSampler } from ${JSON.stringify(index)};`,
        `const nvml = Nvml.open({ library: ${JSON.stringify(FULL)} });`,
        'const sampler = new PowerSampler({ source: nvml.device(0), intervalMs: 10 });',
        'sampler.start();',
        "console.log('started', sampler.thread, sampler.isRunning);",
      ].join('\n'),
    );
    const child = spawnSync(
      process.execPath,
      ['--import', 'tsx', '--conditions', '@llem/source', script],
      {
        cwd: fileURLToPath(new URL('..', import.meta.url)),
        encoding: 'utf8',
        timeout: 15_000,
      },
    );
    expect(child.stderr).toBe('');
    expect(child.stdout.trim()).toBe('started worker true');
    // Killed by the timeout instead would leave status null and signal SIGTERM.
    expect(child.signal).toBeNull();
    expect(child.status).toBe(0);
  });
});
