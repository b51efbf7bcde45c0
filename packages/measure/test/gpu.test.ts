import {
  CLOCK_EVENT_REASON_BITS,
  type ClockEventReason,
  decodeClockEventReasons,
  THROTTLE_REASONS,
} from '@llem/nvml';
import { describe, expect, it } from 'vitest';
import { THROTTLE_MASK, THROTTLE_REASON_BITS, throttleReasonNames } from '../src/gpu';

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
