import { a100Profile, type FakeScenario, h100Profile, preVoltaProfile } from '@llem/fake-nvml';
import { afterEach, describe, expect, it } from 'vitest';
import {
  checkGpuMemoryResidual,
  checkGpuMemoryResidualAll,
  checkPersistenceMode,
  Nvml,
} from '../src/index';
import { getNvmlApi } from '../src/internal/api';
import { FULL, MiB, recordingLogger, useScenario } from './support';

afterEach(() => {
  // Every check must leave NVML un-initialised: this session must be the only reference.
  expect(getNvmlApi({ library: FULL }).referenceCount).toBe(0);
});

const library = FULL;

describe('checkGpuMemoryResidual (seed 000, on the real FFI path)', () => {
  it('clean state: no warning, observation says not exceeded', () => {
    useScenario({ devices: [h100Profile({ memoryUsedBytes: 50 * MiB })] });
    const logger = recordingLogger();
    const seen = checkGpuMemoryResidual({ library, logger });
    expect(seen).toEqual({
      checked: true,
      deviceIndex: 0,
      usedMb: 50,
      totalMb: 81559,
      thresholdMb: 100,
      exceeded: false,
    });
    expect(logger.records).toEqual([]);
  });

  it('residual memory: exactly one warning naming device, MB used, threshold and accuracy', () => {
    useScenario({ devices: [h100Profile({ memoryUsedBytes: 500 * MiB })] });
    const logger = recordingLogger();
    const seen = checkGpuMemoryResidual({ library, logger });
    expect(seen).toMatchObject({ checked: true, usedMb: 500, exceeded: true });
    expect(logger.records).toHaveLength(1);
    const [record] = logger.records;
    expect(record?.level).toBe('warn');
    expect(record?.message).toContain('Residual GPU memory detected on device 0');
    expect(record?.message).toContain('500 MB used');
    expect(record?.message).toContain('threshold: 100 MB');
    expect(record?.message).toContain('measurement accuracy could suffer');
  });

  it('custom threshold: 200 MB warns at 150, not at 250, and not at exactly 200', () => {
    useScenario({ devices: [a100Profile({ memoryUsedBytes: 200 * MiB })] });
    const low = recordingLogger();
    expect(checkGpuMemoryResidual({ library, logger: low, thresholdMb: 150 }).exceeded).toBe(true);
    expect(low.records.map((r) => r.level)).toEqual(['warn']);
    expect(low.records[0]?.message).toContain('threshold: 150 MB');
    const high = recordingLogger();
    expect(checkGpuMemoryResidual({ library, logger: high, thresholdMb: 250 })).toMatchObject({
      exceeded: false,
      thresholdMb: 250,
    });
    expect(high.records).toEqual([]);
    const equal = recordingLogger();
    expect(checkGpuMemoryResidual({ library, logger: equal, thresholdMb: 200 }).exceeded).toBe(
      false,
    );
    expect(equal.records).toEqual([]);
  });

  it('library unavailable: no throw, one debug line, checked false with the reason', () => {
    const logger = recordingLogger();
    const seen = checkGpuMemoryResidual({ library: '/nonexistent/libnvidia-ml.so.1', logger });
    expect(seen).toMatchObject({
      checked: false,
      deviceIndex: 0,
      usedMb: null,
      totalMb: null,
      exceeded: false,
    });
    expect(seen.reason).toContain('/nonexistent/libnvidia-ml.so.1');
    expect(logger.records).toHaveLength(1);
    expect(logger.records[0]?.level).toBe('debug');
  });

  it.each([
    [
      'init fails',
      { initError: 'DRIVER_NOT_LOADED' as const, devices: [h100Profile()] },
      'Driver Not Loaded',
    ],
    [
      'handle fails',
      {
        devices: [h100Profile()],
        errors: { nvmlDeviceGetHandleByIndex_v2: 'GPU_IS_LOST' as const },
      },
      'GPU is lost',
    ],
    [
      'memory read fails',
      { devices: [h100Profile()], errors: { nvmlDeviceGetMemoryInfo_v2: 'UNKNOWN' as const } },
      'Unknown Error',
    ],
  ])('NVML error (%s): no throw, one debug line, no warning', (_case, scenario, text) => {
    useScenario(scenario);
    const logger = recordingLogger();
    const seen = checkGpuMemoryResidual({ library, logger });
    expect(seen).toMatchObject({ checked: false, usedMb: null, exceeded: false });
    expect(seen.reason).toContain(text);
    expect(logger.records.map((r) => r.level)).toEqual(['debug']);
  });

  it('shutdown always called: after a clean read, a residual warning and an NVML error', () => {
    const scenarios: FakeScenario[] = [
      { devices: [h100Profile({ memoryUsedBytes: 10 * MiB })] },
      { devices: [h100Profile({ memoryUsedBytes: 900 * MiB })] },
      { devices: [h100Profile()], errors: { nvmlDeviceGetMemoryInfo_v2: 'GPU_IS_LOST' as const } },
      {
        devices: [h100Profile()],
        errors: { nvmlDeviceGetHandleByIndex_v2: 'NO_PERMISSION' as const },
      },
    ];
    for (const scenario of scenarios) {
      const { trace } = useScenario(scenario);
      checkGpuMemoryResidual({ library, logger: recordingLogger() });
      const calls = trace();
      expect(calls[0]).toBe('nvmlInit_v2');
      expect(calls.at(-1)).toBe('nvmlShutdown');
      expect(calls.filter((c) => c === 'nvmlShutdown')).toHaveLength(1);
    }
  });

  it('leaves an outer session initialised (it only drops its own reference)', () => {
    const { trace } = useScenario({ devices: [h100Profile()] });
    const outer = Nvml.open({ library });
    checkGpuMemoryResidual({ library });
    expect(outer.referenceCount).toBe(1);
    expect(trace()).not.toContain('nvmlShutdown');
    outer.close();
    expect(trace().at(-1)).toBe('nvmlShutdown');
  });

  it('never throws, even for nonsense options or a throwing logger', () => {
    const throwing = {
      warn: () => {
        throw new Error('logger broke');
      },
      debug: () => {
        throw new Error('logger broke');
      },
      info: () => undefined,
      error: () => undefined,
    };
    useScenario({ devices: [h100Profile({ memoryUsedBytes: 900 * MiB })] });
    expect(checkGpuMemoryResidual({ library, logger: throwing }).exceeded).toBe(true);
    expect(checkGpuMemoryResidual({ library, thresholdMb: -1 })).toMatchObject({
      checked: false,
      reason: 'thresholdMb must be a non-negative number, got -1',
    });
    expect(checkGpuMemoryResidual({ library, deviceIndex: 1.5 }).checked).toBe(false);
  });

  it('reads the v2 "used" figure, which excludes driver-reserved memory', () => {
    // An idle H100 reserves ~544 MiB; counting it would warn on every clean run.
    useScenario({
      devices: [h100Profile({ memoryUsedBytes: 1 * MiB, memoryReservedBytes: 544 * MiB })],
    });
    expect(checkGpuMemoryResidual({ library }).usedMb).toBe(1);
  });
});

describe('checkGpuMemoryResidualAll', () => {
  it('checks several devices with one open/close and warns only for those above', () => {
    const { trace } = useScenario({
      devices: [
        h100Profile({ memoryUsedBytes: 20 * MiB }),
        h100Profile({ memoryUsedBytes: 3000 * MiB }),
        a100Profile({ errors: { nvmlDeviceGetMemoryInfo_v2: 'GPU_IS_LOST' } }),
      ],
    });
    const logger = recordingLogger();
    const seen = checkGpuMemoryResidualAll({ library, logger, deviceIndices: [0, 1, 2, 7] });
    expect(seen.map((s) => [s.deviceIndex, s.checked, s.usedMb, s.exceeded])).toEqual([
      [0, true, 20, false],
      [1, true, 3000, true],
      [2, false, null, false],
      [7, false, null, false],
    ]);
    expect(seen[2]?.reason).toContain('GPU is lost');
    expect(seen[3]?.reason).toContain('INVALID_ARGUMENT');
    expect(logger.records.map((r) => r.level)).toEqual(['warn', 'debug', 'debug']);
    expect(logger.records[0]?.message).toContain('device 1: 3000 MB used');
    expect(trace().filter((c) => c === 'nvmlInit_v2' || c === 'nvmlShutdown')).toEqual([
      'nvmlInit_v2',
      'nvmlShutdown',
    ]);
  });

  it('defaults to device 0', () => {
    useScenario({ devices: [h100Profile()] });
    expect(checkGpuMemoryResidualAll({ library }).map((s) => s.deviceIndex)).toEqual([0]);
  });
});

describe('checkPersistenceMode', () => {
  it('warns when off, says nothing when on', () => {
    const { trace } = useScenario({ devices: [h100Profile(), preVoltaProfile()] });
    const logger = recordingLogger();
    const seen = checkPersistenceMode({ library, logger, deviceIndices: [0, 1] });
    expect(seen).toEqual([
      { checked: true, deviceIndex: 0, enabled: true },
      { checked: true, deviceIndex: 1, enabled: false },
    ]);
    expect(logger.records).toHaveLength(1);
    expect(logger.records[0]).toMatchObject({ level: 'warn' });
    expect(logger.records[0]?.message).toContain('Persistence mode is off on GPU 1');
    expect(trace().at(-1)).toBe('nvmlShutdown');
  });

  it('never throws: no library, or an unreadable mode, is a debug line', () => {
    const logger = recordingLogger();
    expect(checkPersistenceMode({ library: '/nope.so', logger })).toMatchObject([
      { checked: false, enabled: null },
    ]);
    useScenario({
      devices: [h100Profile()],
      errors: { nvmlDeviceGetPersistenceMode: 'NOT_SUPPORTED' },
    });
    const seen = checkPersistenceMode({ library, logger });
    expect(seen[0]).toMatchObject({ checked: false, enabled: null });
    expect(seen[0]?.reason).toContain('Not Supported');
    expect(logger.records.map((r) => r.level)).toEqual(['debug', 'debug']);
  });
});
