import type { CleanupRegistry, Logger } from '@llem/resilience';
import type { EnergyChannel } from '../energy/channel';
import { DEFAULT_POWERCAP_ROOT, probeRapl } from '../energy/rapl';
import { MeasurementError } from '../errors';
import type { GpuProbe } from '../gpu';

/** `energy` as the harness uses it: the run's own devices already in place of `energy.devices`. */
export interface EnergySettings {
  backend: 'auto' | 'nvml' | 'rapl' | 'none';
  sample_interval_ms: number;
  devices: number[];
}

/** Result of opening the GPU driver: a probe, or why there is none. */
export type GpuProbeOutcome = { probe: GpuProbe } | { probe: null; reason: string };

export interface EnergySources {
  /** The GPU probe (NVML), when one opened; closed by the cleanup registry. */
  probe: GpuProbe | null;
  /** Every energy channel: one per GPU (NVML), one per CPU package (RAPL). */
  channels: EnergyChannel[];
  /** Why a source is missing, for the result's `unavailableReason`. */
  notes: string[];
}

/**
 * Open what `energy.backend` asks for: NVML for the run's GPUs and/or RAPL for the CPU packages.
 * `auto` takes what is there and notes what is not; an explicit backend that is not there is a
 * `MeasurementError` (`ENERGY_UNAVAILABLE`), never a silent zero.
 */
export async function openEnergySources(
  energy: EnergySettings,
  open: {
    openGpuProbe: (
      devices: readonly number[],
      logger: Logger,
    ) => GpuProbeOutcome | Promise<GpuProbeOutcome>;
    powercapRoot?: string | undefined;
  },
  logger: Logger,
  cleanups: CleanupRegistry,
): Promise<EnergySources> {
  const notes: string[] = [];
  let probe: GpuProbe | null = null;
  if (energy.backend !== 'rapl') {
    const opened = await open.openGpuProbe(energy.devices, logger);
    if (opened.probe) {
      const p = opened.probe;
      probe = p;
      cleanups.register('nvml', () => p.close());
    } else if (energy.backend === 'nvml') {
      throw new MeasurementError(
        `energy.backend is nvml but NVML is not usable: ${opened.reason}. Use backend auto or none to run without GPU energy`,
        'ENERGY_UNAVAILABLE',
      );
    } else if (energy.backend === 'auto')
      notes.push(/^NVML\b/.test(opened.reason) ? opened.reason : `NVML: ${opened.reason}`);
  }
  const channels: EnergyChannel[] = [];
  if (probe && (energy.backend === 'auto' || energy.backend === 'nvml')) {
    for (const index of probe.devices) channels.push(gpuChannel(probe, index));
  }
  if (energy.backend === 'rapl' || energy.backend === 'auto') {
    const rapl = probeRapl(open.powercapRoot ?? DEFAULT_POWERCAP_ROOT);
    if (rapl.available) channels.push(...rapl.channels);
    else if (energy.backend === 'rapl')
      throw new MeasurementError(
        `energy.backend is rapl but ${rapl.reason}. Use backend auto or none`,
        'ENERGY_UNAVAILABLE',
      );
    else notes.push(rapl.reason);
  }
  if (energy.backend === 'none') notes.push('energy.backend is none');
  logger.debug(
    `measure: energy channels ${channels.map((c) => `${c.kind}${c.index}`).join(', ') || 'none'}`,
  );
  return { probe, channels, notes };
}

/** One GPU's energy channel: NVML's total-energy counter (mJ) and its instant power. */
function gpuChannel(probe: GpuProbe, index: number): EnergyChannel {
  return {
    kind: 'gpu',
    index,
    counterMethod: 'nvml-counter',
    readCounterJ: () => {
      const mj = probe.energyCounterMj(index);
      return mj === null ? null : mj / 1000;
    },
    counterRangeJ: null,
    counterReadCostly: true,
    readPowerW: () => probe.powerW(index),
    // Above any single GPU's power limit (B200 ~1.2 kW) with headroom.
    maxPlausibleW: 3000,
  };
}
