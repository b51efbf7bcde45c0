import type { Nvml, NvmlDevice } from '@llem/nvml';
import type { Logger } from '@llem/resilience';
import type { GpuSample } from './gpu';
import type { GpuProbeOutcome } from './harness';

/**
 * Open NVML (through `@llem/nvml`, honouring `LLEM_NVML_LIBRARY`) for the configured devices and
 * adapt it to the harness's `GpuProbe`. Never throws: a missing library, a failed init or a
 * missing device index becomes `{ probe: null, reason }` so `auto` can say why.
 *
 * @example
 * const opened = await openNvmlGpuProbe([0], logger);
 * if (opened.probe) console.log(opened.probe.energyCounterMj(0));
 */
export async function openNvmlGpuProbe(
  devices: readonly number[],
  logger: Logger,
): Promise<GpuProbeOutcome> {
  let nvmlModule: typeof import('@llem/nvml');
  try {
    nvmlModule = await import('@llem/nvml');
  } catch (error) {
    return {
      probe: null,
      reason: `the NVML binding could not be loaded (${(error as Error).message})`,
    };
  }
  let nvml: Nvml;
  try {
    nvml = nvmlModule.Nvml.open();
  } catch (error) {
    // The library error lists every path it tried, one per line: those go to the debug log; the
    // result keeps the first line and the count, which is what a reader needs.
    const [first = ''] = (error as Error).message.split('\n');
    const tried = (error as { triedPaths?: readonly string[] }).triedPaths ?? [];
    logger.debug(`measure: NVML unavailable: ${(error as Error).message}`);
    const hint =
      tried.length === 0
        ? ''
        : tried.length <= 2
          ? ` (tried ${tried.join(', ')})`
          : ` (tried ${tried.length} library paths; set LLEM_NVML_LIBRARY to libnvidia-ml.so.1 if the driver is installed elsewhere)`;
    return { probe: null, reason: `NVML is not available: ${first.replace(/\.$/, '')}${hint}` };
  }
  const handles = new Map<number, NvmlDevice>();
  try {
    const count = nvml.deviceCount();
    for (const index of devices) {
      if (index >= count)
        throw new Error(`energy.devices lists GPU ${index}, but NVML sees ${count} GPU(s)`);
      handles.set(index, nvml.device(index));
    }
  } catch (error) {
    nvml.close();
    return { probe: null, reason: (error as Error).message };
  }
  const dev = (index: number): NvmlDevice => {
    const d = handles.get(index);
    if (!d) throw new Error(`GPU ${index} is not measured`);
    return d;
  };
  const quiet = <T>(read: () => T | null): T | null => {
    try {
      return read();
    } catch {
      return null;
    }
  };
  let closed = false;
  return {
    probe: {
      devices: [...handles.keys()],
      driverVersion: quiet(() => nvml.driverVersion()),
      cudaVersion: quiet(() => nvml.cudaDriverVersion()),
      info: (index) => {
        const d = dev(index);
        const memory = quiet(() => d.memoryInfo());
        return {
          index,
          name: quiet(() => d.name()),
          uuid: quiet(() => d.uuid()),
          memoryTotalMiB: memory?.totalMiB ?? null,
          persistenceMode: quiet(() => d.persistenceMode()),
        };
      },
      energyCounterMj: (index) => quiet(() => dev(index).totalEnergyMj()),
      powerW: (index) => quiet(() => dev(index).instantPowerW()),
      sample: (index): GpuSample => {
        const d = dev(index);
        const memory = quiet(() => d.memoryInfo());
        return {
          index,
          powerW: quiet(() => d.instantPowerW()),
          memoryUsedMiB: memory?.usedMiB ?? null,
          memoryTotalMiB: memory?.totalMiB ?? null,
          temperatureC: quiet(() => d.temperatureC()),
          utilizationGpuPct: quiet(() => d.utilization()?.gpuPct ?? null),
          smClockMHz: quiet(() => d.smClockMHz()),
          clockEventReasons: quiet(() => d.clockEventReasonsMask()),
        };
      },
      close: () => {
        if (closed) return;
        closed = true;
        try {
          nvml.close();
        } catch (error) {
          logger.debug(`measure: nvmlShutdown failed: ${(error as Error).message}`);
        }
      },
    },
  };
}
