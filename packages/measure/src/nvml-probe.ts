import type { Logger } from '@llem/resilience';
import type { GpuProbeOutcome } from './harness';

/** Placeholder until `@llem/nvml` lands: NVML is reported as unavailable. */
export async function openNvmlGpuProbe(
  _devices: readonly number[],
  _logger: Logger,
): Promise<GpuProbeOutcome> {
  return { probe: null, reason: 'the NVML binding is not available in this build' };
}
