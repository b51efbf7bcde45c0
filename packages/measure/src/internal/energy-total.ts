import type { EnergyMethod } from '@llem/domain';
import type { ChannelEnergy } from '../energy/channel';

/** A window's energy over all channels: the total, its method, and why anything is missing. */
export interface EnergyTotal {
  method: EnergyMethod;
  totalJ: number | null;
  reason: string | null;
}

/**
 * Sum the channels' energies. With `sharedHost` (runs in parallel on this host), host-wide
 * energy (RAPL CPU packages) is theirs too: it is left out of the total (the caller lists it as
 * shared). One unknown channel makes the total unknown, never a partial sum.
 */
export function combineEnergy(
  all: readonly ChannelEnergy[],
  notes: readonly string[],
  sharedHost = false,
): EnergyTotal {
  const perDevice = sharedHost ? all.filter((d) => d.kind !== 'cpu-package') : all;
  const shared =
    perDevice.length < all.length
      ? ['CPU package energy is host-wide and shared with runs going in parallel: not counted']
      : [];
  if (perDevice.length === 0)
    return {
      method: 'none' as const,
      totalJ: null,
      reason: [...notes, ...shared].join('; ') || null,
    };
  const methods = new Set(perDevice.map((d) => d.method));
  const method: EnergyMethod = methods.size === 1 ? ([...methods][0] ?? 'none') : 'mixed';
  const unknown = perDevice.filter((d) => d.totalJ === null);
  const totalJ = unknown.length > 0 ? null : perDevice.reduce((a, d) => a + (d.totalJ ?? 0), 0);
  const reasons = [
    ...notes,
    ...perDevice.filter((d) => d.note !== null).map((d) => `${d.kind} ${d.index}: ${d.note}`),
  ];
  return { method, totalJ, reason: reasons.length > 0 ? reasons.join('; ') : null };
}
