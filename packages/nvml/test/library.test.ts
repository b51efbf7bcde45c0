import { existsSync } from 'node:fs';
import { h100Profile } from '@llem/fake-nvml';
import { afterEach, describe, expect, it } from 'vitest';
import { Nvml, NvmlError, NvmlLibraryError, nvmlLibraryCandidates } from '../src/index';
import { getNvmlApi } from '../src/internal/api';
import { LAYOUT, loadBindings } from '../src/internal/bindings';
import { FULL, LEGACY, useScenario } from './support';

afterEach(() => {
  expect(getNvmlApi({ library: FULL }).referenceCount).toBe(0);
});

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

describe('finding the library', () => {
  it('tries the option path alone when given', () => {
    expect(
      nvmlLibraryCandidates({ library: '/x/libnvidia-ml.so.1', env: { LLEM_NVML_LIBRARY: '/y' } }),
    ).toEqual(['/x/libnvidia-ml.so.1']);
  });

  it('tries LLEM_NVML_LIBRARY alone when set', () => {
    expect(nvmlLibraryCandidates({ env: { LLEM_NVML_LIBRARY: '/y/lib.so' } })).toEqual([
      '/y/lib.so',
    ]);
  });

  it('searches the sonames, then the usual driver directories', () => {
    const paths = nvmlLibraryCandidates({ env: {} });
    expect(paths.slice(0, 2)).toEqual(['libnvidia-ml.so.1', 'libnvidia-ml.so']);
    for (const p of [
      '/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1',
      '/usr/lib64/libnvidia-ml.so.1',
      '/usr/local/nvidia/lib64/libnvidia-ml.so.1',
      '/usr/lib/wsl/lib/libnvidia-ml.so.1',
    ]) {
      expect(paths).toContain(p);
    }
  });

  it('loads the library named by LLEM_NVML_LIBRARY', () => {
    useScenario({ devices: [h100Profile()] });
    const nvml = Nvml.open({ env: { LLEM_NVML_LIBRARY: FULL } });
    expect(nvml.libraryPath).toBe(FULL);
    expect(nvml.device(0).name()).toBe('NVIDIA H100 80GB HBM3');
    nvml.close();
  });

  it('throws NvmlLibraryError listing the path it tried', () => {
    const error = thrown(() => Nvml.open({ library: '/nonexistent/libnvidia-ml.so.1' }));
    expect(error).toBeInstanceOf(NvmlLibraryError);
    expect(error).toMatchObject({
      name: 'NvmlLibraryError',
      code: 'NVML_LIBRARY_NOT_FOUND',
      triedPaths: ['/nonexistent/libnvidia-ml.so.1'],
    });
    expect((error as Error).message).toContain('/nonexistent/libnvidia-ml.so.1');
    expect((error as Error).message).toContain('LLEM_NVML_LIBRARY');
    // One short line for people, naming the one path asked for and why it did not load.
    expect((error as NvmlLibraryError).summary).toBe(
      'libnvidia-ml could not be loaded from /nonexistent/libnvidia-ml.so.1 (cannot open shared object file: No such file or directory)',
    );
  });

  it('summarises many tried paths in one line without listing them', () => {
    const missing = (path: string) => ({
      path,
      reason: 'cannot open shared object file: No such file or directory',
    });
    const none = new NvmlLibraryError(nvmlLibraryCandidates({ env: {} }).map(missing));
    expect(none.summary).toBe(
      `no NVIDIA driver found (libnvidia-ml.so.1 is in none of the ${none.triedPaths.length} usual places)`,
    );
    expect(none.summary).not.toContain('\n');
    // A library that is there but does not load is what the line names.
    const broken = new NvmlLibraryError([
      missing('libnvidia-ml.so.1'),
      { path: '/usr/lib64/libnvidia-ml.so.1', reason: 'wrong ELF class: ELFCLASS32' },
      missing('/usr/lib/libnvidia-ml.so.1'),
    ]);
    expect(broken.summary).toBe(
      'libnvidia-ml could not be loaded: /usr/lib64/libnvidia-ml.so.1: wrong ELF class: ELFCLASS32 (tried 3 paths)',
    );
    expect(broken.attempts).toHaveLength(3);
  });

  it.skipIf(
    existsSync('/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1') ||
      existsSync('/usr/lib64/libnvidia-ml.so.1'),
  )('lists every default path when no driver is installed', () => {
    const error = thrown(() => Nvml.open({ env: {} })) as NvmlLibraryError;
    expect(error).toBeInstanceOf(NvmlLibraryError);
    expect(error.triedPaths).toEqual(nvmlLibraryCandidates({ env: {} }));
    for (const p of error.triedPaths) expect(error.message).toContain(p);
  });

  it('a file that is not a shared library is reported, not crashed on', () => {
    const error = thrown(() => Nvml.open({ library: new URL(import.meta.url).pathname }));
    expect(error).toBeInstanceOf(NvmlLibraryError);
  });
});

describe('lazy binding and missing symbols', () => {
  it('binds nothing until a function is used, and a missing symbol answers NOT_SUPPORTED', () => {
    const bindings = loadBindings({ library: LEGACY });
    expect(bindings.symbol('deviceGetMemoryInfoV2')).toBeNull();
    expect(bindings.fn('deviceGetMemoryInfoV2')(null, new Uint8Array(40))).toBe(3);
    expect(bindings.symbol('deviceGetTotalEnergyConsumption')).toBeNull();
    expect(bindings.symbol('deviceGetFieldValues')).toBeNull();
    expect(bindings.symbol('init')).toBe('nvmlInit');
    expect(bindings.symbol('deviceGetComputeRunningProcessesV2')).toBe(
      'nvmlDeviceGetComputeRunningProcesses_v2',
    );
    expect(bindings.symbol('deviceGetClockEventReasons')).toBe(
      'nvmlDeviceGetCurrentClocksThrottleReasons',
    );
    expect(bindings.errorString(15)).toBe('GPU is lost');
  });

  it('binds the newest variant the full library exports', () => {
    const bindings = loadBindings({ library: FULL });
    expect(bindings.symbol('init')).toBe('nvmlInit_v2');
    expect(bindings.symbol('deviceGetCount')).toBe('nvmlDeviceGetCount_v2');
    expect(bindings.symbol('deviceGetComputeRunningProcessesV2')).toBe(
      'nvmlDeviceGetComputeRunningProcesses_v3',
    );
    expect(bindings.symbol('systemGetCudaDriverVersion')).toBe('nvmlSystemGetCudaDriverVersion_v2');
  });

  it('uses the nvml.h struct layouts', () => {
    expect(LAYOUT.memoryV1).toEqual({ size: 24, offsets: { total: 0, free: 8, used: 16 } });
    expect(LAYOUT.memoryV2).toEqual({
      size: 40,
      offsets: { version: 0, total: 8, reserved: 16, free: 24, used: 32 },
    });
    expect(LAYOUT.fieldValue).toEqual({
      size: 40,
      offsets: {
        fieldId: 0,
        scopeId: 4,
        timestamp: 8,
        latencyUsec: 16,
        valueType: 24,
        nvmlReturn: 28,
        value: 32,
      },
    });
    expect(LAYOUT.processInfoV1.size).toBe(16);
    expect(LAYOUT.processInfoV2).toEqual({
      size: 24,
      offsets: { pid: 0, usedGpuMemory: 8, gpuInstanceId: 16, computeInstanceId: 20 },
    });
    expect(LAYOUT.utilization).toEqual({ size: 8, offsets: { gpu: 0, memory: 4 } });
  });
});

describe('init and shutdown', () => {
  it('reference-counts nested sessions: one nvmlInit, one nvmlShutdown', () => {
    const { trace } = useScenario({ devices: [h100Profile()] });
    const outer = Nvml.open({ library: FULL });
    const inner = Nvml.open({ library: FULL });
    expect(outer.referenceCount).toBe(2);
    inner.close();
    inner.close(); // idempotent: must not release the outer session's reference
    expect(outer.referenceCount).toBe(1);
    expect(outer.device(0).temperatureC()).toBe(34);
    outer.close();
    expect(outer.referenceCount).toBe(0);
    expect(trace()).toEqual([
      'nvmlInit_v2',
      'nvmlDeviceGetHandleByIndex_v2',
      'nvmlDeviceGetTemperature',
      'nvmlShutdown',
    ]);
  });

  it('re-reads the scenario after a full shutdown', () => {
    useScenario({ devices: [h100Profile({ temperatureC: 40 })] });
    const first = Nvml.open({ library: FULL });
    expect(first.device(0).temperatureC()).toBe(40);
    first.close();
    useScenario({ devices: [h100Profile({ temperatureC: 80 })] });
    const second = Nvml.open({ library: FULL });
    expect(second.device(0).temperatureC()).toBe(80);
    second.close();
  });

  it('a failing nvmlInit throws a typed NvmlError and takes no reference', () => {
    const { trace } = useScenario({ initError: 'DRIVER_NOT_LOADED', devices: [h100Profile()] });
    const error = thrown(() => Nvml.open({ library: FULL }));
    expect(error).toBeInstanceOf(NvmlError);
    expect(error).toMatchObject({
      code: 'DRIVER_NOT_LOADED',
      returnCode: 9,
      functionName: 'nvmlInit_v2',
    });
    expect((error as Error).message).toContain('Driver Not Loaded');
    expect(trace()).toEqual(['nvmlInit_v2']);
  });

  it('a closed session refuses new work with UNINITIALIZED', () => {
    useScenario({ devices: [h100Profile()] });
    const nvml = Nvml.open({ library: FULL });
    nvml.close();
    expect(nvml.isClosed).toBe(true);
    expect(thrown(() => nvml.deviceCount())).toMatchObject({ code: 'UNINITIALIZED' });
  });

  it('a failing nvmlShutdown surfaces as NvmlError and still releases the reference', () => {
    useScenario({ devices: [h100Profile()], errors: { nvmlShutdown: 'UNKNOWN' } });
    const nvml = Nvml.open({ library: FULL });
    expect(thrown(() => nvml.close())).toMatchObject({
      code: 'UNKNOWN',
      functionName: 'nvmlShutdown',
    });
    expect(nvml.referenceCount).toBe(0);
  });
});
