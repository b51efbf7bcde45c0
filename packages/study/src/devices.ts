import type { RunDevice } from '@llem/domain';
import type { Logger } from '@llem/resilience';
import { StudyDevicesError } from './errors';

/** A GPU as a study file names it: an NVML index or a UUID (`GPU-…`). */
export type DeviceSpec = number | string;

/**
 * Turn `execution.devices` into NVML indices and UUIDs. The runner gives each run the UUIDs in
 * `CUDA_VISIBLE_DEVICES` (never positions: NVML enumerates every GPU whatever
 * `CUDA_VISIBLE_DEVICES` says) and measures it on the indices.
 */
export type ResolveDevicesFn = (
  specs: readonly DeviceSpec[],
  logger: Logger,
  /** The environment holding `LLEM_NVML_LIBRARY` (the runner's `env`). */
  env?: NodeJS.ProcessEnv,
) => RunDevice[] | Promise<RunDevice[]>;

/**
 * The default `ResolveDevicesFn`: asks `@llem/nvml` (imported lazily) for every GPU's UUID. An
 * index NVML does not have, or a UUID no GPU has, is a `StudyDevicesError`. Without NVML,
 * indices pass with `uuid: null` and a warning (runs then get indices in
 * `CUDA_VISIBLE_DEVICES`); UUIDs cannot be resolved and are an error.
 *
 * @example
 * await nvmlResolveDevices([0, 'GPU-1f2e…'], logger); // [{ index: 0, uuid: 'GPU-8a…' }, { index: 3, uuid: 'GPU-1f2e…' }]
 */
export const nvmlResolveDevices: ResolveDevicesFn = async (specs, logger, env) => {
  let nvml: import('@llem/nvml').Nvml;
  try {
    const { Nvml } = await import('@llem/nvml');
    nvml = Nvml.open({ env });
  } catch (error) {
    // One short line (NvmlLibraryError's summary), not the list of every path tried.
    const why =
      (error as { summary?: unknown }).summary &&
      typeof (error as { summary?: unknown }).summary === 'string'
        ? (error as { summary: string }).summary
        : error instanceof Error
          ? (error.message.split('\n')[0] ?? error.message)
          : String(error);
    const named = specs.filter((s) => typeof s === 'string');
    if (named.length > 0) {
      throw new StudyDevicesError(
        `execution.devices names GPUs by UUID (${named.join(', ')}), but NVML cannot be opened to find them: ${why}`,
      );
    }
    logger.warn(
      `NVML cannot be opened (${why}): each run gets its GPUs' indices in CUDA_VISIBLE_DEVICES, and CUDA may order GPUs differently from NVML`,
    );
    return (specs as number[]).map((index) => ({ index, uuid: null }));
  }
  try {
    const count = nvml.deviceCount();
    const all: RunDevice[] = Array.from({ length: count }, (_, index) => ({
      index,
      uuid: nvml.device(index).uuid(),
    }));
    return specs.map((spec) => {
      if (typeof spec === 'number') {
        const found = all[spec];
        if (!found) {
          throw new StudyDevicesError(
            `execution.devices: GPU ${spec} does not exist (NVML sees ${count} GPU${count === 1 ? '' : 's'}${count > 0 ? `: 0–${count - 1}` : ''})`,
          );
        }
        return found;
      }
      const wanted = spec.toLowerCase();
      const found = all.find((d) => {
        const uuid = d.uuid?.toLowerCase();
        return uuid === wanted || uuid === `gpu-${wanted}`;
      });
      if (!found) {
        throw new StudyDevicesError(
          `execution.devices: no GPU has UUID ${spec} (NVML sees ${all.map((d) => d.uuid ?? `#${d.index} (no UUID)`).join(', ') || 'none'})`,
        );
      }
      return found;
    });
  } finally {
    nvml.close();
  }
};

/** `CUDA_VISIBLE_DEVICES` for a run: its GPUs' UUIDs (indices where a UUID is unknown). */
export function cudaVisibleDevices(devices: readonly RunDevice[]): string {
  return devices.map((d) => d.uuid ?? String(d.index)).join(',');
}
