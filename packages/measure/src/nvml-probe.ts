import type { Nvml, NvmlDevice, PowerSample, PowerSampler } from '@llem/nvml';
import { readGpu } from '@llem/nvml/readings';
import type { Logger } from '@llem/resilience';
import type { BackgroundGpuSampler, GpuSample, GpuSampleAt } from './gpu';
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
    // The library error lists every path it tried, one per line: those go to the debug log
    // (the run's log, and the console with -v); the result keeps its one-line summary.
    logger.debug(`measure: NVML unavailable: ${(error as Error).message}`);
    const why =
      error instanceof nvmlModule.NvmlLibraryError
        ? error.summary
        : ((error as Error).message.split('\n')[0] ?? '').replace(/\.$/, '');
    return { probe: null, reason: `NVML is not available: ${why}` };
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
      // readGpu never throws: a reading whose call fails is null.
      sample: (index): GpuSample => ({ index, ...readGpu(dev(index)) }),
      startBackgroundSampler: (intervalMs) =>
        startWorkerSamplers(nvmlModule, nvml, handles, intervalMs, logger),
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

/**
 * One worker-thread `PowerSampler` per measured device, on the library this probe opened. If any
 * device's worker cannot start, the ones already started are stopped and the error is thrown, so
 * the caller falls back to sampling every device itself rather than mixing two sources.
 */
function startWorkerSamplers(
  nvmlModule: typeof import('@llem/nvml'),
  nvml: Nvml,
  handles: ReadonlyMap<number, NvmlDevice>,
  intervalMs: number,
  logger: Logger,
): BackgroundGpuSampler {
  const started: { index: number; sampler: PowerSampler }[] = [];
  const stopAll = (): GpuSampleAt[] => {
    const out: GpuSampleAt[] = [];
    for (const { index, sampler } of started) {
      try {
        for (const s of sampler.stop()) out.push({ t: s.t, sample: toGpuSample(index, s) });
      } catch (error) {
        logger.debug(
          `measure: stopping GPU ${index}'s sampler failed: ${(error as Error).message}`,
        );
      }
    }
    return out.sort((a, b) => a.t - b.t);
  };
  try {
    for (const [index, device] of handles) {
      const sampler = new nvmlModule.PowerSampler({
        source: device,
        intervalMs,
        thread: 'worker',
        library: nvml.libraryPath,
      });
      sampler.start();
      started.push({ index, sampler });
    }
  } catch (error) {
    stopAll();
    throw error;
  }
  let stopped = false;
  return {
    stop: () => {
      if (stopped) return [];
      stopped = true;
      return stopAll();
    },
  };
}

/** A worker `PowerSample` in the harness's shape: the same readings, with the device index. */
function toGpuSample(index: number, { t: _t, ...readings }: PowerSample): GpuSample {
  return { index, ...readings };
}
