import { Nvml, type NvmlDevice, NvmlError, NvmlLibraryError } from '@llem/nvml';
import { type CliContext, defineCommand } from '../context';
import { ExitCode } from '../errors';

/** One device in `llem gpu --json`. A value the device cannot report is null. */
export interface GpuDeviceReport {
  index: number;
  name: string | null;
  uuid: string | null;
  memory: { totalMiB: number | null; usedMiB: number | null; freeMiB: number | null };
  powerW: number | null;
  powerLimitW: number | null;
  temperatureC: number | null;
  utilizationGpuPct: number | null;
  utilizationMemoryPct: number | null;
  persistenceMode: boolean | null;
  energyMj: number | null;
  smClockMHz: number | null;
}

export type GpuReport =
  | {
      available: true;
      driverVersion: string | null;
      nvmlVersion: string | null;
      cudaDriverVersion: string | null;
      devices: GpuDeviceReport[];
    }
  | { available: false; reason: string };

// nvidia-smi prints whole MiB, truncated; do the same so the two can be compared directly.
const wholeMiB = (mib: number | undefined): number | null =>
  mib === undefined ? null : Math.floor(mib);

function deviceReport(device: NvmlDevice): GpuDeviceReport {
  const memory = device.memoryInfo();
  const util = device.utilization();
  return {
    index: device.index,
    name: device.name(),
    uuid: device.uuid(),
    memory: {
      totalMiB: wholeMiB(memory?.totalMiB),
      usedMiB: wholeMiB(memory?.usedMiB),
      freeMiB: wholeMiB(memory?.freeMiB),
    },
    // nvmlDeviceGetPowerUsage: the same figure as nvidia-smi's power.draw.
    powerW: device.powerUsageW(),
    powerLimitW: device.enforcedPowerLimitW(),
    temperatureC: device.temperatureC(),
    utilizationGpuPct: util?.gpuPct ?? null,
    utilizationMemoryPct: util?.memoryPct ?? null,
    persistenceMode: device.persistenceMode(),
    energyMj: device.totalEnergyMj(),
    smClockMHz: device.smClockMHz(),
  };
}

/**
 * Read every GPU once. NVML missing or failing becomes `{ available: false, reason }`, the reason
 * one short line; the paths the loader tried go to `logger.debug` (shown with `-v`).
 */
export function readGpuReport(options: {
  library?: string;
  env: NodeJS.ProcessEnv;
  logger?: { debug(message: string): unknown };
}): GpuReport {
  let nvml: Nvml | undefined;
  try {
    nvml = Nvml.open({ library: options.library, env: options.env });
    return {
      available: true,
      driverVersion: nvml.driverVersion(),
      nvmlVersion: nvml.nvmlVersion(),
      cudaDriverVersion: nvml.cudaDriverVersion(),
      devices: nvml.devices().map(deviceReport),
    };
  } catch (error) {
    if (error instanceof NvmlLibraryError) {
      for (const a of error.attempts) options.logger?.debug(`NVML: tried ${a.path}: ${a.reason}`);
      return { available: false, reason: error.summary };
    }
    if (error instanceof NvmlError) return { available: false, reason: error.message };
    throw error;
  } finally {
    try {
      nvml?.close();
    } catch {
      // The readings are already taken; a failing shutdown changes nothing the user sees.
    }
  }
}

const na = (value: unknown, unit = ''): string =>
  value === null || value === undefined ? 'N/A' : `${value}${unit}`;

/** The nvidia-smi-like table. */
export function formatGpuTable(report: Extract<GpuReport, { available: true }>): string {
  const header = `Driver ${na(report.driverVersion)}   NVML ${na(report.nvmlVersion)}   CUDA ${na(report.cudaDriverVersion)}`;
  const rows = [
    [
      'GPU',
      'Name',
      'Persist',
      'Temp',
      'Power / Cap',
      'Memory used / total',
      'GPU util',
      'SM clock',
    ],
    ...report.devices.map((d) => [
      String(d.index),
      na(d.name),
      d.persistenceMode === null ? 'N/A' : d.persistenceMode ? 'On' : 'Off',
      na(d.temperatureC, 'C'),
      `${na(d.powerW === null ? null : Math.round(d.powerW), 'W')} / ${na(d.powerLimitW === null ? null : Math.round(d.powerLimitW), 'W')}`,
      `${na(d.memory.usedMiB, 'MiB')} / ${na(d.memory.totalMiB, 'MiB')}`,
      na(d.utilizationGpuPct, '%'),
      na(d.smClockMHz, 'MHz'),
    ]),
  ];
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((r) => r[col]!.length)));
  const lines = rows.map((r) =>
    r
      .map((cell, col) => cell.padEnd(widths[col]!))
      .join('  ')
      .trimEnd(),
  );
  if (report.devices.length === 0) lines.push('(no GPUs found)');
  return `${header}\n${lines.join('\n')}\n`;
}

/** `llem gpu`: what NVML sees, as a table or as JSON. */
export function gpuCommand(ctx: CliContext) {
  return defineCommand({
    command: 'gpu',
    describe: 'Show the GPUs NVML sees (like nvidia-smi); --json for machine-readable output',
    builder: (yargs) =>
      yargs
        .option('json', { type: 'boolean', default: false, description: 'Print JSON' })
        .option('library', {
          type: 'string',
          description:
            'Path of libnvidia-ml to load (default: LLEM_NVML_LIBRARY, then the usual places)',
        }),
    handler: (args) => {
      const tried: string[] = [];
      const report = readGpuReport({
        library: args.library,
        env: ctx.env,
        logger: { debug: (line: string) => tried.push(line) },
      });
      if (args.json) {
        ctx.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      } else if (report.available) {
        ctx.stdout.write(formatGpuTable(report));
      } else {
        // One line; the paths tried only on request (-v), after it.
        const more = tried.length > 1 && args.verbose === 0 ? ' (-v lists the paths tried)' : '';
        ctx.stderr.write(`llem: NVML is not available: ${report.reason}${more}\n`);
      }
      for (const line of tried) ctx.logger.debug(line);
      if (!report.available) ctx.exitCode = ExitCode.failure;
    },
  });
}
