import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EnergyChannel } from './channel';

/** Where Linux exposes RAPL. Tests pass a fake tree with the same layout. */
export const DEFAULT_POWERCAP_ROOT = '/sys/class/powercap';

export type RaplProbe =
  | { available: true; channels: EnergyChannel[] }
  | { available: false; reason: string };

function readNumber(file: string): number | null {
  try {
    const n = Number(readFileSync(file, 'utf8').trim());
    return Number.isFinite(n) ? n : null;
  } catch {
    return null;
  }
}

/**
 * Find the readable RAPL CPU package domains (`intel-rapl:N` whose `name` starts with
 * `package`; AMD exposes the same layout). Subdomains (`intel-rapl:N:M`, core/uncore/dram) are
 * left out, since the package already contains them. Since Linux 5.10 `energy_uj` is root-only
 * (CVE-2020-8694), so an unreadable counter is the common case and is reported, not zero.
 *
 * @example
 * const rapl = probeRapl();
 * if (!rapl.available) console.log(rapl.reason);
 */
export function probeRapl(root: string = DEFAULT_POWERCAP_ROOT): RaplProbe {
  let entries: string[];
  try {
    entries = readdirSync(root);
  } catch {
    return {
      available: false,
      reason: `RAPL: ${root} does not exist (not Linux, or no powercap driver)`,
    };
  }
  const packages = entries.filter((e) => /^intel-rapl:\d+$/.test(e)).sort();
  if (packages.length === 0)
    return { available: false, reason: `RAPL: no intel-rapl package domain under ${root}` };
  const channels: EnergyChannel[] = [];
  const problems: string[] = [];
  for (const dir of packages) {
    const path = join(root, dir);
    let name = '';
    try {
      name = readFileSync(join(path, 'name'), 'utf8').trim();
    } catch {
      // A domain without a name file is still a package domain at this level.
    }
    if (name && !name.startsWith('package')) continue;
    const energyFile = join(path, 'energy_uj');
    if (readNumber(energyFile) === null) {
      problems.push(
        `${energyFile} is not readable (root-only since Linux 5.10; try sudo chmod a+r)`,
      );
      continue;
    }
    const rangeUj = readNumber(join(path, 'max_energy_range_uj'));
    const index = Number(dir.split(':')[1]);
    channels.push({
      kind: 'cpu-package',
      index,
      counterMethod: 'rapl',
      readCounterJ: () => {
        const uj = readNumber(energyFile);
        return uj === null ? null : uj / 1e6;
      },
      counterRangeJ: rangeUj === null ? null : rangeUj / 1e6,
      // Server CPU packages stay well under 1 kW; anything above is a wrap we failed to see.
      maxPlausibleW: 1000,
    });
  }
  if (channels.length === 0) return { available: false, reason: `RAPL: ${problems.join('; ')}` };
  return { available: true, channels };
}
