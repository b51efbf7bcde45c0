/**
 * Clock-event (formerly "throttle") reason bits from nvml.h `nvmlClocksEventReason*`, in bit
 * order. A set bit says why the clocks are below their maximum right now.
 */
export const CLOCK_EVENT_REASON_BITS = {
  gpuIdle: 0x1,
  applicationsClocksSetting: 0x2,
  swPowerCap: 0x4,
  hwSlowdown: 0x8,
  syncBoost: 0x10,
  swThermalSlowdown: 0x20,
  hwThermalSlowdown: 0x40,
  hwPowerBrakeSlowdown: 0x80,
  displayClockSetting: 0x100,
} as const;

/** A decoded clock-event reason; `unknown:0x…` for a bit newer than this table. */
export type ClockEventReason = keyof typeof CLOCK_EVENT_REASON_BITS | `unknown:0x${string}`;

/** Reasons that mean the GPU is being held back (power or thermal), as opposed to idling. */
export const THROTTLE_REASONS: ReadonlySet<ClockEventReason> = new Set<ClockEventReason>([
  'swPowerCap',
  'hwSlowdown',
  'swThermalSlowdown',
  'hwThermalSlowdown',
  'hwPowerBrakeSlowdown',
]);

const ENTRIES = Object.entries(CLOCK_EVENT_REASON_BITS) as Array<[ClockEventReason, number]>;
const KNOWN = ENTRIES.reduce((acc, [, bit]) => acc | bit, 0);
// Samplers decode the same few masks thousands of times; reuse the frozen arrays.
const cache = new Map<number, readonly ClockEventReason[]>();

/**
 * Decode an NVML clock-event bitmask into reason names.
 * @example
 * decodeClockEventReasons(0x5); // ['gpuIdle', 'swPowerCap']
 */
export function decodeClockEventReasons(mask: number): readonly ClockEventReason[] {
  const hit = cache.get(mask);
  if (hit) return hit;
  const names: ClockEventReason[] = [];
  for (const [name, bit] of ENTRIES) if (mask & bit) names.push(name);
  // Bits above 2^31 lose precision in `&`; compare through subtraction instead.
  const unknown = mask - (mask & KNOWN);
  if (unknown !== 0) names.push(`unknown:0x${unknown.toString(16)}`);
  const frozen = Object.freeze(names);
  if (cache.size < 256) cache.set(mask, frozen);
  return frozen;
}
