import {
  CLOCK_EVENT_REASON_BITS,
  type ClockEventReason,
  decodeClockEventReasons,
  type GpuReadings,
  THROTTLE_REASONS,
} from '@llem/nvml/readings';

/**
 * One device's readings at one tick: every row of `@llem/nvml`'s `GPU_READINGS` (power, memory
 * in MiB, temperature, utilisation, SM clock, the clock-event reasons bitmask), and the device.
 * The table is the one definition: a new reading there arrives here, in the worker's record and
 * in the timeseries CSV without a change in this package.
 */
export interface GpuSample extends GpuReadings {
  index: number;
}

/** A GPU reading taken off the main thread, with its time. */
export interface GpuSampleAt {
  /** Monotonic ms on this thread's `performance.now()` base. */
  t: number;
  sample: GpuSample;
}

/** A running background sampler (see {@link GpuProbe.startBackgroundSampler}). */
export interface BackgroundGpuSampler {
  /** Stop every device's sampler and return all readings, in time order. Never throws. */
  stop(): GpuSampleAt[];
}

export interface GpuStaticInfo {
  index: number;
  name: string | null;
  uuid: string | null;
  memoryTotalMiB: number | null;
  persistenceMode: boolean | null;
}

/**
 * What the harness needs from the GPU driver. `@llem/nvml` provides the production
 * implementation (`openNvmlGpuProbe`); tests can pass a scripted one. Every read returns `null`
 * for a value the device cannot report, and never throws.
 */
export interface GpuProbe {
  /** The device indices measured. */
  readonly devices: readonly number[];
  driverVersion: string | null;
  cudaVersion: string | null;
  info(index: number): GpuStaticInfo;
  /** NVML total-energy counter in mJ; `null` when not supported (pre-Volta) or unreadable. */
  energyCounterMj(index: number): number | null;
  /** Instant power in W (field values where available, else the averaged reading). */
  powerW(index: number): number | null;
  sample(index: number): GpuSample;
  /**
   * Optional: start sampling every measured device every `intervalMs` off the caller's thread
   * (the NVML probe uses `@llem/nvml`'s worker-thread `PowerSampler`), so a busy engine on the
   * main thread cannot delay or thin out the GPU readings. Throws when the background sampler
   * cannot start; the harness then samples on its own thread. Scripted probes leave it out.
   */
  startBackgroundSampler?(intervalMs: number): BackgroundGpuSampler;
  /** Releases the driver (NVML shutdown). Safe to call twice. */
  close(): void;
}

/** A reason name `@llem/nvml` decodes (its `CLOCK_EVENT_REASON_BITS` keys). */
type NvmlReasonName = Exclude<ClockEventReason, `unknown:${string}`>;

/**
 * Clock-event (throttle) reason bits that mean the GPU was slowed by power or heat, as opposed
 * to idling or an application clock setting: `@llem/nvml`'s `CLOCK_EVENT_REASON_BITS` restricted
 * to its `THROTTLE_REASONS` (read from the koffi-free `@llem/nvml/readings`, so a machine where
 * the binding cannot load still measures).
 */
export const THROTTLE_REASON_BITS: Readonly<Partial<Record<NvmlReasonName, number>>> =
  Object.fromEntries(
    Object.entries(CLOCK_EVENT_REASON_BITS).filter(([name]) =>
      THROTTLE_REASONS.has(name as NvmlReasonName),
    ),
  );

export const THROTTLE_MASK = Object.values(THROTTLE_REASON_BITS).reduce((a, b) => a | b, 0);

/**
 * Names of the throttle reasons set in a mask, in bit order (nvml's names).
 *
 * @example
 * throttleReasonNames(0x25); // ['swPowerCap', 'swThermalSlowdown'] (0x1 gpuIdle is not one)
 */
export function throttleReasonNames(mask: number): NvmlReasonName[] {
  return decodeClockEventReasons(mask).filter((name): name is NvmlReasonName =>
    THROTTLE_REASONS.has(name),
  );
}
