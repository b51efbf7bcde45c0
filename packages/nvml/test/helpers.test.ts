import { describe, expect, it } from 'vitest';
import {
  bytesToMiB,
  decodeClockEventReasons,
  formatCudaVersion,
  nvmlErrorCode,
  THROTTLE_REASONS,
} from '../src/index';

describe('helpers', () => {
  it('formats NVML CUDA versions like nvidia-smi', () => {
    expect(formatCudaVersion(12040)).toBe('12.4');
    expect(formatCudaVersion(11080)).toBe('11.8');
    expect(formatCudaVersion(12090)).toBe('12.9');
    expect(formatCudaVersion(13000)).toBe('13.0');
  });

  it('decodes clock-event masks, including bits newer than the table', () => {
    expect(decodeClockEventReasons(0)).toEqual([]);
    expect(decodeClockEventReasons(0x1ff)).toEqual([
      'gpuIdle',
      'applicationsClocksSetting',
      'swPowerCap',
      'hwSlowdown',
      'syncBoost',
      'swThermalSlowdown',
      'hwThermalSlowdown',
      'hwPowerBrakeSlowdown',
      'displayClockSetting',
    ]);
    expect(decodeClockEventReasons(0x1 + 2 ** 33)).toEqual(['gpuIdle', 'unknown:0x200000000']);
    expect(decodeClockEventReasons(0x4)).toBe(decodeClockEventReasons(0x4));
    expect(THROTTLE_REASONS.has('swPowerCap')).toBe(true);
    expect(THROTTLE_REASONS.has('gpuIdle')).toBe(false);
  });

  it('names return codes', () => {
    expect(nvmlErrorCode(15)).toBe('GPU_IS_LOST');
    expect(nvmlErrorCode(999)).toBe('UNKNOWN');
    expect(nvmlErrorCode(12345)).toBe('UNKNOWN');
    expect(bytesToMiB(3 * 1024 * 1024)).toBe(3);
  });
});
