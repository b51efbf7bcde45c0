import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { h100Profile } from '@llem/fake-nvml';
import { describe, expect, it } from 'vitest';
import { GPU_READINGS, type GpuDevice, Nvml, PowerSampler, readGpu } from '../src/index';
import { RECORD_LENGTH, RECORD_READINGS } from '../src/internal/sampler-protocol';
import { FULL, useScenario } from './support';

describe('GPU_READINGS', () => {
  it('names each reading once, with a unit and a distinct snake_case column', () => {
    const keys = GPU_READINGS.map((r) => r.key);
    const columns = GPU_READINGS.map((r) => r.column);
    expect(new Set(keys).size).toBe(keys.length);
    expect(new Set(columns).size).toBe(columns.length);
    for (const r of GPU_READINGS) {
      expect(r.column).toMatch(/^[a-z][a-z0-9_]*$/);
      expect(r.unit.length).toBeGreaterThan(0);
    }
    expect(keys).toEqual([
      'powerW',
      'memoryUsedMiB',
      'memoryTotalMiB',
      'temperatureC',
      'utilizationGpuPct',
      'smClockMHz',
      'clockEventReasons',
    ]);
  });

  it("lays out the worker's flat record: the time, then one value per reading", () => {
    expect(RECORD_READINGS).toBe(1);
    expect(RECORD_LENGTH).toBe(1 + GPU_READINGS.length);
  });
});

describe('readGpu', () => {
  const device = (): GpuDevice & { calls: string[] } => {
    const calls: string[] = [];
    const log =
      <T>(name: string, value: T) =>
      () => {
        calls.push(name);
        return value;
      };
    return {
      calls,
      instantPowerW: log('instantPowerW', 250.5),
      memoryInfo: log('memoryInfo', {
        totalBytes: 80 * 2 ** 30,
        usedBytes: 3 * 2 ** 20,
        freeBytes: 0,
        reservedBytes: null,
        totalMiB: 81920,
        usedMiB: 3,
        freeMiB: 0,
        version: 2 as const,
      }),
      temperatureC: log('temperatureC', 61),
      utilization: log('utilization', { gpuPct: 97, memoryPct: 40 }),
      smClockMHz: log('smClockMHz', 1755),
      clockEventReasonsMask: log('clockEventReasonsMask', 0x4),
    };
  };

  it('takes every reading, calling each device method once (memoryInfo feeds two)', () => {
    const d = device();
    expect(readGpu(d)).toEqual({
      powerW: 250.5,
      memoryUsedMiB: 3,
      memoryTotalMiB: 81920,
      temperatureC: 61,
      utilizationGpuPct: 97,
      smClockMHz: 1755,
      clockEventReasons: 0x4,
    });
    expect(d.calls).toEqual([
      'instantPowerW',
      'memoryInfo',
      'temperatureC',
      'utilization',
      'smClockMHz',
      'clockEventReasonsMask',
    ]);
  });

  it('gives null for a reading whose method throws, and keeps the others', () => {
    const d = device();
    d.temperatureC = () => {
      throw new Error('driver hiccup');
    };
    d.memoryInfo = () => null;
    expect(readGpu(d)).toMatchObject({
      powerW: 250.5,
      memoryUsedMiB: null,
      memoryTotalMiB: null,
      temperatureC: null,
      smClockMHz: 1755,
    });
  });

  it('reads one memory struct per sample from a real NVML device, on both sampler threads', () => {
    const { trace } = useScenario({ devices: [h100Profile()] });
    const nvml = Nvml.open({ library: FULL });
    try {
      const before = trace().length;
      const sample = new PowerSampler({ source: nvml.device(0), thread: 'main' }).sampleNow();
      const calls = trace().slice(before);
      expect(calls.filter((c) => c.startsWith('nvmlDeviceGetMemoryInfo'))).toHaveLength(1);
      expect(sample).toMatchObject({ memoryUsedMiB: 1, memoryTotalMiB: 81559 });
    } finally {
      nvml.close();
    }
  });
});

describe('@llem/nvml/readings', () => {
  it('loads without koffi, for code that handles samples on a machine without the binding', () => {
    // A fresh process whose resolve hook throws on any import of koffi: the readings entry
    // must still load and read a hand-made device.
    const dir = mkdtempSync(join(tmpdir(), 'llem-no-koffi-'));
    writeFileSync(
      join(dir, 'hooks.mjs'),
      `export async function resolve(specifier, context, next) {
        if (/(^|\\/)koffi(\\/|$)/.test(specifier)) throw new Error('koffi was imported: ' + specifier);
        return next(specifier, context);
      }`,
    );
    writeFileSync(
      join(dir, 'register.mjs'),
      `import { register } from 'node:module'; register(${JSON.stringify(pathToFileURL(join(dir, 'hooks.mjs')).href)});`,
    );
    const run = (code: string) =>
      execFileSync(
        process.execPath,
        [
          '--import',
          'tsx',
          '--import',
          join(dir, 'register.mjs'),
          '--conditions',
          '@llem/source',
          '--input-type=module',
          '-e',
          code,
        ],
        {
          cwd: fileURLToPath(new URL('..', import.meta.url)),
          encoding: 'utf8',
          timeout: 30_000,
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
    const out = run(`const r = await import('@llem/nvml/readings');
      const d = { instantPowerW: () => 1, memoryInfo: () => null, temperatureC: () => 2, utilization: () => null, smClockMHz: () => 3, clockEventReasonsMask: () => 0x4 };
      console.log(JSON.stringify({ columns: r.GPU_READINGS.map((x) => x.column), sample: r.readGpu(d), reasons: r.decodeClockEventReasons(0x4) }));`);
    expect(JSON.parse(out.trim().split('\n').at(-1) ?? '{}')).toEqual({
      columns: GPU_READINGS.map((r) => r.column),
      sample: {
        powerW: 1,
        memoryUsedMiB: null,
        memoryTotalMiB: null,
        temperatureC: 2,
        utilizationGpuPct: null,
        smClockMHz: 3,
        clockEventReasons: 0x4,
      },
      reasons: ['swPowerCap'],
    });
    // The hook does work: the package's main entry loads koffi and fails.
    expect(() => run(`await import('@llem/nvml');`)).toThrow(/koffi was imported/);
  });
});
