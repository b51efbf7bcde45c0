import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type FakeDevice,
  fakeNvmlLibraryPath,
  h100Profile,
  preVoltaProfile,
  writeScenario,
} from '@llem/fake-nvml';
import { noopLogger } from '@llem/resilience';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type HarnessConfig, measureRun } from '../src/harness';
import { openNvmlGpuProbe } from '../src/nvml-probe';
import { fakeEngine } from './support/fakes';

// The real koffi path (@llem/nvml) against the fake libnvidia-ml built from C in tooling/fake-nvml.
const saved = { lib: process.env.LLEM_NVML_LIBRARY, scenario: process.env.LLEM_FAKE_NVML_SCENARIO };
function useFake(devices: FakeDevice[], extra: { errors?: Record<string, 'NOT_SUPPORTED'> } = {}) {
  process.env.LLEM_NVML_LIBRARY = fakeNvmlLibraryPath('full');
  process.env.LLEM_FAKE_NVML_SCENARIO = writeScenario({
    driverVersion: '550.54.15',
    cudaDriverVersion: 12040,
    devices,
    ...extra,
  });
}
beforeEach(() => {
  delete process.env.LLEM_FAKE_NVML_SCENARIO;
});
afterEach(() => {
  for (const [k, v] of [
    ['LLEM_NVML_LIBRARY', saved.lib],
    ['LLEM_FAKE_NVML_SCENARIO', saved.scenario],
  ] as const)
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
});

const config: HarnessConfig = {
  engine: 'llamacpp',
  model: 'builtin:tiny',
  dataset: { synthetic: { n: 4, input_len: 8, output_len: 16, seed: 1 } },
  max_output_tokens: 16,
  warmup: { n: 0 },
  baseline: { enabled: false, duration_s: 1 },
  energy: { backend: 'nvml', sample_interval_ms: 20, devices: [0] },
};
const input = { runId: 'r_c1', configHash: '0123456789abcdef', cycle: 1, config };
const powercapRoot = mkdtempSync(join(tmpdir(), 'llem-no-rapl-'));
const run = () =>
  measureRun(input, {
    createEngine: async () => fakeEngine({ runMs: 600 }),
    powercapRoot,
    warningThresholds: { minDurationS: 0.1, minSamples: 3 },
  });

describe('energy against the fake NVML (real koffi path)', () => {
  it('at a constant 300 W the energy counter gives totalJ / durationS ≈ 300 W (within 5%)', async () => {
    useFake([h100Profile({ instantPowerMw: 300_000, powerMw: 300_000 })]);
    const { result } = await run();
    expect(result.energy.method).toBe('nvml-counter');
    const watts = (result.energy.totalJ as number) / result.window.durationS;
    expect(Math.abs(watts - 300) / 300).toBeLessThan(0.05);
    expect(result.environment).toMatchObject({ driverVersion: '550.54.15', cudaVersion: '12.4' });
    expect(result.environment.gpus[0]).toMatchObject({
      index: 0,
      name: 'NVIDIA H100 80GB HBM3',
      persistenceMode: true,
    });
    expect(result.memory.gpuPeakUsedMiB).toBeCloseTo(1, 6);
  });

  it('the power integral gives the same when the counter is NOT_SUPPORTED', async () => {
    useFake([h100Profile({ instantPowerMw: 300_000, powerMw: 300_000 })], {
      errors: { nvmlDeviceGetTotalEnergyConsumption: 'NOT_SUPPORTED' },
    });
    const { result } = await run();
    expect(result.energy.method).toBe('nvml-power-integral');
    const watts = (result.energy.totalJ as number) / result.window.durationS;
    expect(Math.abs(watts - 300) / 300).toBeLessThan(0.05);
    expect(result.energy.unavailableReason).toMatch(/not supported/);
  });

  it('a pre-Volta GPU (no counter, no instant power field) integrates the averaged power', async () => {
    useFake([preVoltaProfile({ powerMw: 150_000 })]);
    const { result } = await run();
    expect(result.energy.method).toBe('nvml-power-integral');
    const watts = (result.energy.totalJ as number) / result.window.durationS;
    expect(Math.abs(watts - 150) / 150).toBeLessThan(0.05);
    expect(result.warnings.map((w) => w.code)).toContain('persistence-mode-off');
  });

  it('reports why when the library or the device is missing', async () => {
    const badPath = join(powercapRoot, 'no-libnvidia-ml.so');
    process.env.LLEM_NVML_LIBRARY = badPath;
    const debug: string[] = [];
    const none = await openNvmlGpuProbe([0], { ...noopLogger, debug: (m) => debug.push(m) });
    expect(none.probe).toBeNull();
    // One short line in the result; the loader's full list goes to the (debug) log.
    if (!none.probe)
      expect(none.reason).toBe(
        `NVML is not available: libnvidia-ml could not be loaded from ${badPath} (cannot open shared object file: No such file or directory)`,
      );
    expect(debug.join('\n')).toContain('Tried:');
    useFake([h100Profile()]);
    const missing = await openNvmlGpuProbe([3], noopLogger);
    expect(missing.probe).toBeNull();
    if (!missing.probe) expect(missing.reason).toMatch(/GPU 3, but NVML sees 1 GPU/);
  });
});
