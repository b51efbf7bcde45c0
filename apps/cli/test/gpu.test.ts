import { existsSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
// The fake NVML is test tooling, not a CLI dependency; reach it by path.
import {
  a100Profile,
  ensureFakeNvmlBuilt,
  fakeNvmlLibraryPath,
  h100Profile,
  preVoltaProfile,
  writeScenario,
} from '../../../tooling/fake-nvml/src/index';
import { runLlem } from './support/llem';

function run(argv: string[], env: NodeJS.ProcessEnv) {
  return runLlem(argv, { env, cwd: '/' });
}

const MiB = 1024 * 1024;
const library = fakeNvmlLibraryPath();

beforeAll(() => {
  ensureFakeNvmlBuilt();
});

describe('llem gpu --json', () => {
  it("matches the fake's scenario value for value", async () => {
    const h100 = h100Profile({ memoryUsedBytes: 1234 * MiB, utilGpuPct: 97, utilMemoryPct: 55 });
    const old = preVoltaProfile();
    // The fake reads its scenario from the process environment at nvmlInit.
    process.env.LLEM_FAKE_NVML_SCENARIO = writeScenario({
      driverVersion: '550.54.15',
      nvmlVersion: '12.550.54.15',
      cudaDriverVersion: 12040,
      devices: [h100, old],
    });
    const before = Date.now();
    const { code, stdout, stderr } = await run(['gpu', '--json'], { LLEM_NVML_LIBRARY: library });
    const seconds = (Date.now() - before) / 1000 + 1;
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const report = JSON.parse(stdout);
    const energy = report.devices[0].energyMj;
    // The counter advances with time at the instant power: check it is in range, then pin it.
    expect(energy).toBeGreaterThanOrEqual(h100.energyMj!);
    expect(energy).toBeLessThanOrEqual(h100.energyMj! + h100.instantPowerMw! * seconds);
    expect(report).toEqual({
      available: true,
      driverVersion: '550.54.15',
      nvmlVersion: '12.550.54.15',
      cudaDriverVersion: '12.4',
      devices: [
        {
          index: 0,
          name: 'NVIDIA H100 80GB HBM3',
          uuid: h100.uuid,
          memory: { totalMiB: 81559, usedMiB: 1234, freeMiB: 81559 - 1234 - 544 },
          powerW: 71.234,
          powerLimitW: 700,
          temperatureC: 34,
          utilizationGpuPct: 97,
          utilizationMemoryPct: 55,
          persistenceMode: true,
          energyMj: energy,
          smClockMHz: 1980,
        },
        {
          index: 1,
          name: 'Tesla P100-PCIE-16GB',
          uuid: old.uuid,
          memory: { totalMiB: 16280, usedMiB: 0, freeMiB: 16280 },
          powerW: 25,
          powerLimitW: 250,
          temperatureC: 31,
          utilizationGpuPct: 0,
          utilizationMemoryPct: 0,
          persistenceMode: false,
          energyMj: null,
          smClockMHz: 405,
        },
      ],
    });
  });

  it('reports a reading the device refuses as null', async () => {
    process.env.LLEM_FAKE_NVML_SCENARIO = writeScenario({
      devices: [a100Profile({ errors: { nvmlDeviceGetTemperature: 'GPU_IS_LOST' } })],
      errors: { nvmlDeviceGetUUID: 'NOT_SUPPORTED' },
    });
    const { code, stdout } = await run(['gpu', '--json'], { LLEM_NVML_LIBRARY: library });
    expect(code).toBe(0);
    const device = JSON.parse(stdout).devices[0];
    expect(device.temperatureC).toBeNull();
    expect(device.uuid).toBeNull();
    expect(device.name).toBe('NVIDIA A100-SXM4-40GB');
  });

  it('without NVML prints {"available": false, "reason"} and exits 1 without a stack', async () => {
    const { code, stdout, stderr } = await run(['gpu', '--json'], {
      LLEM_NVML_LIBRARY: '/nonexistent/libnvidia-ml.so.1',
    });
    expect(code).toBe(1);
    const report = JSON.parse(stdout);
    expect(report.available).toBe(false);
    expect(report.reason).toContain('/nonexistent/libnvidia-ml.so.1');
    expect(Object.keys(report)).toEqual(['available', 'reason']);
    expect(stderr).not.toMatch(/\n\s+at /);
  });

  it('a driver that fails to initialise is "not available" too', async () => {
    process.env.LLEM_FAKE_NVML_SCENARIO = writeScenario({
      initError: 'DRIVER_NOT_LOADED',
      devices: [h100Profile()],
    });
    const { code, stdout } = await run(['gpu', '--json', '--library', library], {});
    expect(code).toBe(1);
    expect(JSON.parse(stdout)).toEqual({
      available: false,
      reason: expect.stringContaining('Driver Not Loaded'),
    });
  });
});

describe('llem gpu (table)', () => {
  it('prints an nvidia-smi-like table', async () => {
    process.env.LLEM_FAKE_NVML_SCENARIO = writeScenario({
      devices: [h100Profile(), preVoltaProfile()],
    });
    const { code, stdout } = await run(['gpu'], { LLEM_NVML_LIBRARY: library });
    expect(code).toBe(0);
    const lines = stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('Driver 550.54.15   NVML 12.550.54.15   CUDA 12.4');
    expect(lines[1]).toMatch(/^GPU\s+Name\s+Persist\s+Temp\s+Power \/ Cap\s+Memory used \/ total/);
    expect(lines[2]).toMatch(
      /^0\s+NVIDIA H100 80GB HBM3\s+On\s+34C\s+71W \/ 700W\s+1MiB \/ 81559MiB\s+0%\s+1980MHz$/,
    );
    expect(lines[3]).toMatch(
      /^1\s+Tesla P100-PCIE-16GB\s+Off\s+31C\s+25W \/ 250W\s+0MiB \/ 16280MiB/,
    );
  });

  it('without NVML says so on stderr in one line and exits 1', async () => {
    const { code, stdout, stderr } = await run(['gpu'], {
      LLEM_NVML_LIBRARY: '/nope/libnvidia-ml.so',
    });
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toBe(
      'llem: NVML is not available: libnvidia-ml could not be loaded from /nope/libnvidia-ml.so (cannot open shared object file: No such file or directory)\n',
    );
  });

  it.skipIf(
    existsSync('/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1') ||
      existsSync('/usr/lib64/libnvidia-ml.so.1'),
  )('with no driver anywhere: one short line; -v adds the paths tried', async () => {
    const quiet = await run(['gpu'], {});
    expect(quiet.code).toBe(1);
    expect(quiet.stderr).toMatch(
      /^llem: NVML is not available: no NVIDIA driver found \(libnvidia-ml\.so\.1 is in none of the \d+ usual places\) \(-v lists the paths tried\)\n$/,
    );
    const verbose = await run(['gpu', '-v'], {});
    const [first, ...tried] = verbose.stderr.trimEnd().split('\n');
    expect(first).toMatch(/^llem: NVML is not available: no NVIDIA driver found \([^)]*\)$/);
    expect(tried.length).toBeGreaterThan(2);
    expect(tried[0]).toBe(
      'debug: NVML: tried libnvidia-ml.so.1: cannot open shared object file: No such file or directory',
    );
    expect(tried.every((line) => line.startsWith('debug: NVML: tried '))).toBe(true);
  });
});
