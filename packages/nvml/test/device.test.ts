import { a100Profile, h100Profile, preVoltaProfile } from '@llem/fake-nvml';
import { afterEach, describe, expect, it } from 'vitest';
import { Nvml, NvmlError } from '../src/index';
import { getNvmlApi } from '../src/internal/api';
import { FULL, LEGACY, MiB, useScenario } from './support';

const open: Nvml[] = [];
function openNvml(library = FULL): Nvml {
  const nvml = Nvml.open({ library });
  open.push(nvml);
  return nvml;
}

afterEach(() => {
  for (const nvml of open.splice(0)) nvml.close();
  // NVML is process-global: a leaked reference would keep the next scenario from loading.
  expect(getNvmlApi({ library: FULL }).referenceCount).toBe(0);
});

describe('system queries', () => {
  it('reads driver, NVML and CUDA versions and the device count', () => {
    useScenario({
      driverVersion: '535.183.01',
      nvmlVersion: '12.535.183.01',
      cudaDriverVersion: 12020,
      devices: [h100Profile(), a100Profile()],
    });
    const nvml = openNvml();
    expect(nvml.driverVersion()).toBe('535.183.01');
    expect(nvml.nvmlVersion()).toBe('12.535.183.01');
    expect(nvml.cudaDriverVersion()).toBe('12.2');
    expect(nvml.cudaDriverVersionNumber()).toBe(12020);
    expect(nvml.deviceCount()).toBe(2);
    expect(nvml.devices().map((d) => d.name())).toEqual([
      'NVIDIA H100 80GB HBM3',
      'NVIDIA A100-SXM4-40GB',
    ]);
    expect(nvml.libraryPath).toBe(FULL);
  });

  it('returns null for a version the driver cannot report', () => {
    useScenario({
      devices: [h100Profile()],
      errors: {
        nvmlSystemGetDriverVersion: 'UNKNOWN',
        nvmlSystemGetCudaDriverVersion_v2: 'NOT_SUPPORTED',
      },
    });
    const nvml = openNvml();
    expect(nvml.driverVersion()).toBeNull();
    expect(nvml.cudaDriverVersion()).toBeNull();
    expect(nvml.nvmlVersion()).toBe('12.550.54.15');
  });

  it('throws an NvmlError for a device index NVML does not know', () => {
    useScenario({ devices: [h100Profile()] });
    const nvml = openNvml();
    const error = (() => {
      try {
        nvml.device(3);
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(NvmlError);
    expect(error).toMatchObject({
      name: 'NvmlError',
      code: 'INVALID_ARGUMENT',
      returnCode: 2,
      functionName: 'nvmlDeviceGetHandleByIndex_v2',
    });
    expect((error as Error).message).toContain('Invalid Argument');
  });
});

describe('device readings decode the structs exactly', () => {
  it('reads every value of an H100-like device', () => {
    const profile = h100Profile({
      memoryUsedBytes: 1234 * MiB + 5,
      memoryReservedBytes: 544 * MiB,
      clockEventReasons: 0x4 | 0x40,
      processes: [
        { pid: 4242, usedBytes: 500 * MiB },
        { pid: 77, usedBytes: 2 ** 40 + 3 },
      ],
    });
    useScenario({ devices: [profile] });
    const gpu = openNvml().device(0);
    expect(gpu.index).toBe(0);
    expect(gpu.name()).toBe('NVIDIA H100 80GB HBM3');
    expect(gpu.uuid()).toBe(profile.uuid);
    expect(gpu.memoryInfo()).toEqual({
      totalBytes: 81559 * MiB,
      usedBytes: 1234 * MiB + 5,
      freeBytes: 81559 * MiB - 1234 * MiB - 5 - 544 * MiB,
      reservedBytes: 544 * MiB,
      totalMiB: 81559,
      usedMiB: (1234 * MiB + 5) / MiB,
      freeMiB: (81559 * MiB - 1234 * MiB - 5 - 544 * MiB) / MiB,
      version: 2,
    });
    expect(gpu.memoryUsedBytes()).toBe(1234 * MiB + 5);
    expect(gpu.powerUsageW()).toBe(71.234);
    expect(gpu.instantPowerW()).toBe(72.5);
    expect(gpu.enforcedPowerLimitW()).toBe(700);
    expect(gpu.temperatureC()).toBe(34);
    expect(gpu.utilization()).toEqual({ gpuPct: 0, memoryPct: 0 });
    expect(gpu.persistenceMode()).toBe(true);
    expect(gpu.clocks()).toEqual({ smMHz: 1980, memoryMHz: 2619 });
    expect(gpu.smClockMHz()).toBe(1980);
    expect(gpu.clockEventReasons()).toEqual({
      mask: 0x44,
      reasons: ['swPowerCap', 'hwThermalSlowdown'],
    });
    expect(gpu.computeProcesses()).toEqual([
      { pid: 4242, usedBytes: 500 * MiB },
      { pid: 77, usedBytes: 2 ** 40 + 3 },
    ]);
    const energy = gpu.totalEnergyMj();
    expect(energy).toBeGreaterThanOrEqual(9_876_543_210);
    expect(gpu.lastError).toBeNull();
  });

  it('reads utilisation, persistence off and the other fields of an A100-like device', () => {
    useScenario({
      devices: [a100Profile({ utilGpuPct: 87, utilMemoryPct: 41, persistenceMode: false })],
    });
    const gpu = openNvml().device(0);
    expect(gpu.utilization()).toEqual({ gpuPct: 87, memoryPct: 41 });
    expect(gpu.persistenceMode()).toBe(false);
    expect(gpu.enforcedPowerLimitW()).toBe(400);
    expect(gpu.memoryInfo()?.totalMiB).toBe(40960);
  });

  it('advances the energy counter with real time at the configured power', async () => {
    useScenario({ devices: [h100Profile({ instantPowerMw: 300_000, energyMj: 1_000 })] });
    const gpu = openNvml().device(0);
    const t0 = performance.now();
    const e0 = gpu.totalEnergyMj()!;
    await new Promise((r) => setTimeout(r, 60));
    const e1 = gpu.totalEnergyMj()!;
    const seconds = (performance.now() - t0) / 1000;
    expect(e0).toBeGreaterThanOrEqual(1_000);
    // 300 W for `seconds` = 300_000 mW × s mJ; allow timer slop on a busy machine.
    expect(e1 - e0).toBeGreaterThan(300_000 * 0.05 * 0.8);
    expect(e1 - e0).toBeLessThanOrEqual(300_000 * seconds * 1.05 + 1);
  });

  it('reads many processes through the INSUFFICIENT_SIZE protocol', () => {
    const processes = Array.from({ length: 21 }, (_, i) => ({ pid: 1000 + i, usedBytes: i * MiB }));
    useScenario({ devices: [h100Profile({ processes })] });
    expect(openNvml().device(0).computeProcesses()).toEqual(processes);
  });

  it('reports memory NVML cannot attribute to a process as null', () => {
    const processes = [
      { pid: 1, usedBytes: null },
      { pid: 2, usedBytes: 5 * MiB },
    ];
    useScenario({ devices: [h100Profile({ processes })] });
    expect(openNvml().device(0).computeProcesses()).toEqual(processes);
  });

  it('reports an empty process list as []', () => {
    useScenario({ devices: [h100Profile()] });
    expect(openNvml().device(0).computeProcesses()).toEqual([]);
  });

  it('reads a second device independently of the first', () => {
    useScenario({ devices: [h100Profile(), a100Profile({ temperatureC: 61 })] });
    const nvml = openNvml();
    expect(nvml.device(1).temperatureC()).toBe(61);
    expect(nvml.device(0).temperatureC()).toBe(34);
    expect(nvml.device(1)).toBe(nvml.device(1));
  });
});

describe('unsupported readings are null, never 0', () => {
  it('pre-Volta: no energy counter, instant power falls back to the averaged reading', () => {
    const { trace } = useScenario({ devices: [preVoltaProfile()] });
    const gpu = openNvml().device(0);
    expect(gpu.totalEnergyMj()).toBeNull();
    expect(gpu.lastError).toMatchObject({ code: 'NOT_SUPPORTED', returnCode: 3 });
    expect(gpu.lastError?.message).toContain('Not Supported');
    expect(gpu.instantPowerW()).toBe(25);
    expect(gpu.instantPowerW()).toBe(25);
    // The field is tried once; later reads go straight to nvmlDeviceGetPowerUsage.
    expect(trace().filter((f) => f === 'nvmlDeviceGetFieldValues')).toHaveLength(1);
    expect(trace().filter((f) => f === 'nvmlDeviceGetPowerUsage')).toHaveLength(2);
    expect(gpu.persistenceMode()).toBe(false);
  });

  it.each([
    ['NOT_SUPPORTED', 3, 'Not Supported'],
    ['GPU_IS_LOST', 15, 'GPU is lost'],
    ['UNKNOWN', 999, 'Unknown Error'],
    ['NO_PERMISSION', 4, 'Insufficient Permissions'],
  ] as const)('%s → null with a typed lastError', (code, returnCode, text) => {
    const fns = [
      'nvmlDeviceGetName',
      'nvmlDeviceGetUUID',
      'nvmlDeviceGetMemoryInfo_v2',
      'nvmlDeviceGetPowerUsage',
      'nvmlDeviceGetTotalEnergyConsumption',
      'nvmlDeviceGetTemperature',
      'nvmlDeviceGetUtilizationRates',
      'nvmlDeviceGetPersistenceMode',
      'nvmlDeviceGetEnforcedPowerLimit',
      'nvmlDeviceGetClockInfo',
      'nvmlDeviceGetCurrentClocksEventReasons',
      'nvmlDeviceGetComputeRunningProcesses_v3',
    ];
    useScenario({
      devices: [h100Profile()],
      errors: Object.fromEntries(fns.map((f) => [f, code])),
    });
    const gpu = openNvml().device(0);
    const reads: Array<[string, () => unknown]> = [
      ['nvmlDeviceGetName', () => gpu.name()],
      ['nvmlDeviceGetUUID', () => gpu.uuid()],
      ['nvmlDeviceGetPowerUsage', () => gpu.powerUsageW()],
      ['nvmlDeviceGetTotalEnergyConsumption', () => gpu.totalEnergyMj()],
      ['nvmlDeviceGetTemperature', () => gpu.temperatureC()],
      ['nvmlDeviceGetUtilizationRates', () => gpu.utilization()],
      ['nvmlDeviceGetPersistenceMode', () => gpu.persistenceMode()],
      ['nvmlDeviceGetEnforcedPowerLimit', () => gpu.enforcedPowerLimitW()],
      ['nvmlDeviceGetClockInfo', () => gpu.smClockMHz()],
      ['nvmlDeviceGetCurrentClocksEventReasons', () => gpu.clockEventReasons()],
      ['nvmlDeviceGetComputeRunningProcesses_v3', () => gpu.computeProcesses()],
    ];
    if (code !== 'NOT_SUPPORTED') {
      // NOT_SUPPORTED on the v2 memory call means "use v1", so it is not an error there.
      reads.push(['nvmlDeviceGetMemoryInfo_v2', () => gpu.memoryInfo()]);
    }
    for (const [fn, read] of reads) {
      expect(read(), fn).toBeNull();
      expect(gpu.lastError, fn).toBeInstanceOf(NvmlError);
      expect(gpu.lastError, fn).toMatchObject({ code, returnCode, functionName: fn });
      expect(gpu.lastError?.message, fn).toContain(text);
    }
    expect(gpu.clocks()).toEqual({ smMHz: null, memoryMHz: null });
    // The instant-power field is still readable: one failing function never breaks another.
    expect(gpu.instantPowerW()).toBe(72.5);
    expect(gpu.lastError).toBeNull();
  });

  it('a failing field-values call is an error, not a silent fallback', () => {
    useScenario({ devices: [h100Profile()], errors: { nvmlDeviceGetFieldValues: 'GPU_IS_LOST' } });
    const gpu = openNvml().device(0);
    expect(gpu.instantPowerW()).toBeNull();
    expect(gpu.lastError?.code).toBe('GPU_IS_LOST');
  });

  it('an error on one device leaves the other readable', () => {
    useScenario({
      devices: [
        h100Profile({ errors: { nvmlDeviceGetTemperature: 'GPU_IS_LOST' } }),
        a100Profile(),
      ],
    });
    const nvml = openNvml();
    expect(nvml.device(0).temperatureC()).toBeNull();
    expect(nvml.device(1).temperatureC()).toBe(29);
  });

  it('falls back to the v1 memory struct when v2 reports a version mismatch', () => {
    useScenario({
      devices: [h100Profile({ memoryUsedBytes: 600 * MiB })],
      errors: { nvmlDeviceGetMemoryInfo_v2: 'ARGUMENT_VERSION_MISMATCH' },
    });
    const info = openNvml().device(0).memoryInfo();
    expect(info).toMatchObject({ version: 1, usedBytes: 600 * MiB, reservedBytes: null });
    expect(info?.freeBytes).toBe(81559 * MiB - 600 * MiB);
  });

  it('maps an unlisted return code to UNKNOWN and keeps the number', () => {
    useScenario({
      devices: [h100Profile()],
      errors: { nvmlDeviceGetTemperature: '4321' as never },
    });
    const gpu = openNvml().device(0);
    expect(gpu.temperatureC()).toBeNull();
    expect(gpu.lastError).toMatchObject({ code: 'UNKNOWN', returnCode: 4321 });
  });

  it('UNINITIALIZED: readings after the last close are null', () => {
    useScenario({ devices: [h100Profile()] });
    const nvml = Nvml.open({ library: FULL });
    const gpu = nvml.device(0);
    nvml.close();
    expect(gpu.temperatureC()).toBeNull();
    expect(gpu.lastError).toMatchObject({ code: 'UNINITIALIZED', returnCode: 1 });
    expect(gpu.lastError?.message).toContain('Uninitialized');
    expect(() => nvml.device(0)).toThrow(NvmlError);
  });
});

describe('old drivers (missing symbols, legacy build)', () => {
  it('binds the older variants and degrades what has none', () => {
    const { trace } = useScenario({
      cudaDriverVersion: 11080,
      devices: [
        h100Profile({
          memoryUsedBytes: 700 * MiB,
          clockEventReasons: 0x8,
          processes: [{ pid: 9, usedBytes: 3 * MiB }],
        }),
      ],
    });
    const nvml = openNvml(LEGACY);
    expect(nvml.cudaDriverVersion()).toBe('11.8');
    expect(nvml.deviceCount()).toBe(1);
    const gpu = nvml.device(0);
    expect(gpu.memoryInfo()).toMatchObject({
      version: 1,
      usedBytes: 700 * MiB,
      reservedBytes: null,
    });
    // No field values in this driver: instant power is the averaged reading.
    expect(gpu.instantPowerW()).toBe(71.234);
    // No energy counter symbol at all: null with NOT_SUPPORTED naming the missing symbol.
    expect(gpu.totalEnergyMj()).toBeNull();
    expect(gpu.lastError?.code).toBe('NOT_SUPPORTED');
    expect(gpu.lastError?.message).toContain('does not export nvmlDeviceGetTotalEnergyConsumption');
    expect(gpu.clockEventReasons()).toEqual({ mask: 0x8, reasons: ['hwSlowdown'] });
    expect(gpu.computeProcesses()).toEqual([{ pid: 9, usedBytes: 3 * MiB }]);
    nvml.close();
    open.splice(open.indexOf(nvml), 1);
    expect(trace()).toEqual([
      'nvmlInit',
      'nvmlSystemGetCudaDriverVersion',
      'nvmlDeviceGetCount',
      'nvmlDeviceGetHandleByIndex',
      'nvmlDeviceGetMemoryInfo',
      'nvmlDeviceGetPowerUsage',
      'nvmlDeviceGetCurrentClocksThrottleReasons',
      'nvmlDeviceGetComputeRunningProcesses_v2',
      'nvmlShutdown',
    ]);
  });

  it('uses the newest variants when the driver has them', () => {
    const { trace } = useScenario({ devices: [h100Profile()] });
    const nvml = openNvml();
    const gpu = nvml.device(0);
    gpu.memoryInfo();
    gpu.instantPowerW();
    gpu.clockEventReasons();
    gpu.computeProcesses();
    nvml.cudaDriverVersion();
    expect(trace()).toEqual([
      'nvmlInit_v2',
      'nvmlDeviceGetHandleByIndex_v2',
      'nvmlDeviceGetMemoryInfo_v2',
      'nvmlDeviceGetFieldValues',
      'nvmlDeviceGetCurrentClocksEventReasons',
      'nvmlDeviceGetComputeRunningProcesses_v3',
      'nvmlSystemGetCudaDriverVersion_v2',
    ]);
  });
});
