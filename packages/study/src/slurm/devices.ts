import type { RunDevice } from '@llem/domain';
import type { Logger } from '@llem/resilience';
import { StudyDevicesError } from '../errors';

/** A GPU named by UUID in `CUDA_VISIBLE_DEVICES` (`GPU-…`, or a MIG instance `MIG-…`). */
const UUID_ENTRY = /^(GPU|MIG)-/i;

/**
 * The GPUs Slurm allocated this task, from the `CUDA_VISIBLE_DEVICES` it set (read, never
 * rewritten) and the GPUs NVML sees (`visible`, in NVML order; `null` without NVML):
 *
 * - a UUID (`GPU-…`) is the GPU with that UUID;
 * - integers are NVML indices when NVML sees more GPUs than were allocated (no cgroup device
 *   constraint: the node's every GPU is visible);
 * - when NVML sees exactly as many GPUs as were allocated (a cgroup hides the others, and
 *   renumbers what is left from 0), all visible GPUs are the task's.
 *
 * Returns `null` when Slurm allocated no GPU (the variable is unset or empty). Throws
 * `StudyDevicesError` when the allocation cannot be matched to what NVML sees.
 *
 * @example
 * slurmAllocatedDevices('2', [{ index: 0, uuid: 'GPU-a' }, …4 GPUs]); // [{ index: 2, uuid: 'GPU-c' }]
 * slurmAllocatedDevices('0,1', [{ index: 0, uuid: 'GPU-c' }, { index: 1, uuid: 'GPU-d' }]); // both
 */
export function slurmAllocatedDevices(
  cudaVisibleDevices: string | undefined,
  visible: readonly RunDevice[] | null,
): RunDevice[] | null {
  const entries = (cudaVisibleDevices ?? '')
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '');
  if (entries.length === 0) return null;
  const said = `CUDA_VISIBLE_DEVICES=${cudaVisibleDevices}`;
  const bad = entries.find((e) => !UUID_ENTRY.test(e) && !/^[0-9]+$/.test(e));
  if (bad !== undefined) {
    throw new StudyDevicesError(
      `${said}: "${bad}" is neither a GPU index nor a UUID (GPU-…), so the task's GPUs are unknown`,
    );
  }
  if (visible === null) {
    const uuids = entries.filter((e) => UUID_ENTRY.test(e));
    if (uuids.length > 0) {
      throw new StudyDevicesError(
        `${said} names GPUs by UUID, but NVML cannot be opened here to find them`,
      );
    }
    return entries.map((e) => ({ index: Number(e), uuid: null }));
  }
  const constrained = visible.length === entries.length;
  return entries.map((entry, position) => {
    if (UUID_ENTRY.test(entry)) {
      const wanted = entry.toLowerCase();
      const found = visible.find((d) => d.uuid?.toLowerCase() === wanted);
      if (!found) {
        throw new StudyDevicesError(
          `${said}: no GPU NVML sees has UUID ${entry} (it sees ${describeVisible(visible)})`,
        );
      }
      return found;
    }
    if (visible.length < entries.length) {
      throw new StudyDevicesError(
        `${said}: Slurm allocated ${entries.length} GPUs, but NVML sees only ${visible.length} (${describeVisible(visible)})`,
      );
    }
    // cgroup-constrained: what NVML sees is exactly the allocation, whatever the numbers say.
    const found = constrained ? visible[position] : visible.find((d) => d.index === Number(entry));
    if (!found) {
      throw new StudyDevicesError(
        `${said}: NVML has no GPU ${entry} (it sees ${describeVisible(visible)})`,
      );
    }
    return found;
  });
}

function describeVisible(visible: readonly RunDevice[]): string {
  if (visible.length === 0) return 'none';
  return visible.map((d) => `${d.index}${d.uuid ? ` (${d.uuid})` : ''}`).join(', ');
}

/**
 * The GPUs of this Slurm task: `slurmAllocatedDevices` on the environment's
 * `CUDA_VISIBLE_DEVICES` and every GPU `@llem/nvml` sees (imported lazily). Without NVML,
 * indices are taken as they are, with a warning.
 */
export async function resolveSlurmDevices(
  env: NodeJS.ProcessEnv,
  logger: Logger,
): Promise<RunDevice[] | null> {
  const value = env.CUDA_VISIBLE_DEVICES;
  if (!value || value.trim() === '') return null;
  let visible: RunDevice[] | null = null;
  try {
    const { Nvml } = await import('@llem/nvml');
    const nvml = Nvml.open({ env });
    try {
      visible = Array.from({ length: nvml.deviceCount() }, (_, index) => ({
        index,
        uuid: nvml.device(index).uuid(),
      }));
    } finally {
      nvml.close();
    }
  } catch (error) {
    const why = error instanceof Error ? error.message.split('\n')[0] : String(error);
    logger.warn(
      `NVML cannot be opened (${why}): the task's GPUs are taken as CUDA_VISIBLE_DEVICES=${value} says, unchecked`,
    );
  }
  const devices = slurmAllocatedDevices(value, visible);
  logger.info(
    `Slurm allocated ${devices?.length ?? 0} GPU(s) (CUDA_VISIBLE_DEVICES=${value}): ${
      devices?.map((d) => `${d.index}${d.uuid ? ` ${d.uuid}` : ''}`).join(', ') ?? 'none'
    }`,
  );
  return devices;
}
