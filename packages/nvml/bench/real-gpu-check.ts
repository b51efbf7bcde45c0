// Real-GPU check: run on a machine with an NVIDIA driver (no fake):
//   pnpm --filter @llem/nvml gpu-check
// Prints what @llem/nvml reads (the `llem gpu --json` fields plus a few more), per-call timings
// on the real driver, and, when nvidia-smi is on PATH, nvidia-smi's view of the same fields with
// the differences, so the two can be compared line by line.
import { spawnSync } from 'node:child_process';
import { Nvml, NvmlLibraryError } from '../src/index';

const SMI_FIELDS = [
  'index',
  'name',
  'uuid',
  'memory.total',
  'memory.used',
  'memory.free',
  'power.draw',
  'power.limit',
  'temperature.gpu',
  'utilization.gpu',
  'utilization.memory',
  'persistence_mode',
  'clocks.sm',
  'clocks.mem',
  'driver_version',
];

function nsPerCall(fn: () => unknown, iterations = 20_000): number {
  for (let i = 0; i < 2_000; i++) fn();
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) fn();
  return Number(process.hrtime.bigint() - start) / iterations;
}

function nvidiaSmi(): Array<Record<string, string>> | string {
  const r = spawnSync(
    'nvidia-smi',
    [`--query-gpu=${SMI_FIELDS.join(',')}`, '--format=csv,noheader,nounits'],
    { encoding: 'utf8' },
  );
  if (r.error || r.status !== 0) return `nvidia-smi unavailable: ${r.error?.message ?? r.stderr}`;
  return r.stdout
    .trim()
    .split('\n')
    .map((line) => {
      const cells = line.split(',').map((c) => c.trim());
      return Object.fromEntries(SMI_FIELDS.map((f, i) => [f, cells[i] ?? '']));
    });
}

function main(): number {
  let nvml: Nvml;
  try {
    nvml = Nvml.open();
  } catch (error) {
    if (error instanceof NvmlLibraryError) {
      process.stdout.write(
        `${JSON.stringify({ available: false, reason: error.message }, null, 2)}\n`,
      );
      return 1;
    }
    throw error;
  }
  try {
    const report = {
      available: true,
      library: nvml.libraryPath,
      driverVersion: nvml.driverVersion(),
      nvmlVersion: nvml.nvmlVersion(),
      cudaDriverVersion: nvml.cudaDriverVersion(),
      devices: nvml.devices().map((d) => {
        const memory = d.memoryInfo();
        const util = d.utilization();
        const t0 = d.totalEnergyMj();
        return {
          index: d.index,
          name: d.name(),
          uuid: d.uuid(),
          memory: memory && {
            version: memory.version,
            totalMiB: Math.floor(memory.totalMiB),
            usedMiB: Math.floor(memory.usedMiB),
            freeMiB: Math.floor(memory.freeMiB),
            reservedMiB:
              memory.reservedBytes === null ? null : Math.floor(memory.reservedBytes / 1048576),
          },
          powerW: d.powerUsageW(),
          instantPowerW: d.instantPowerW(),
          powerLimitW: d.enforcedPowerLimitW(),
          temperatureC: d.temperatureC(),
          utilizationGpuPct: util?.gpuPct ?? null,
          utilizationMemoryPct: util?.memoryPct ?? null,
          persistenceMode: d.persistenceMode(),
          energyMj: t0,
          clocks: d.clocks(),
          clockEventReasons: d.clockEventReasons(),
          computeProcesses: d.computeProcesses(),
          nsPerCall: {
            instantPowerW: Math.round(nsPerCall(() => d.instantPowerW())),
            powerUsageW: Math.round(nsPerCall(() => d.powerUsageW())),
            memoryInfo: Math.round(nsPerCall(() => d.memoryInfo())),
            temperatureC: Math.round(nsPerCall(() => d.temperatureC())),
            totalEnergyMj: Math.round(nsPerCall(() => d.totalEnergyMj())),
          },
        };
      }),
    };
    process.stdout.write(`@llem/nvml:\n${JSON.stringify(report, null, 2)}\n`);
    const smi = nvidiaSmi();
    if (typeof smi === 'string') {
      process.stdout.write(`${smi}\n`);
      return 0;
    }
    process.stdout.write(
      '\nnvidia-smi vs @llem/nvml (power and utilisation move between reads):\n',
    );
    for (const row of smi) {
      const d = report.devices.find((x) => String(x.index) === row.index);
      if (!d) continue;
      const pairs: Array<[string, unknown, unknown]> = [
        ['name', row.name, d.name],
        ['uuid', row.uuid, d.uuid],
        ['memory.total MiB', row['memory.total'], d.memory?.totalMiB],
        ['memory.used MiB', row['memory.used'], d.memory?.usedMiB],
        ['memory.free MiB', row['memory.free'], d.memory?.freeMiB],
        ['power.draw W', row['power.draw'], d.powerW],
        ['power.limit W', row['power.limit'], d.powerLimitW],
        ['temperature.gpu C', row['temperature.gpu'], d.temperatureC],
        ['utilization.gpu %', row['utilization.gpu'], d.utilizationGpuPct],
        ['utilization.memory %', row['utilization.memory'], d.utilizationMemoryPct],
        ['persistence_mode', row.persistence_mode, d.persistenceMode],
        ['clocks.sm MHz', row['clocks.sm'], d.clocks.smMHz],
        ['clocks.mem MHz', row['clocks.mem'], d.clocks.memoryMHz],
        ['driver_version', row.driver_version, report.driverVersion],
      ];
      process.stdout.write(`GPU ${row.index}\n`);
      for (const [field, smiValue, ours] of pairs) {
        process.stdout.write(
          `  ${field.padEnd(22)} nvidia-smi ${String(smiValue).padEnd(44)} llem ${String(ours)}\n`,
        );
      }
    }
    return 0;
  } finally {
    nvml.close();
  }
}

process.exitCode = main();
