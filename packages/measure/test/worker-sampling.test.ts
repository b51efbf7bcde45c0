import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Engine } from '@llem/engines';
import { type FakeDevice, fakeNvmlLibraryPath, h100Profile, writeScenario } from '@llem/fake-nvml';
import type { Logger } from '@llem/resilience';
import { afterEach, describe, expect, it } from 'vitest';
import type { GpuProbe } from '../src/gpu';
import { type GpuProbeOutcome, type HarnessConfig, measureRun } from '../src/harness';
import { openNvmlGpuProbe } from '../src/nvml-probe';
import { fakeEngine } from './support/fakes';

// GPU readings through @llem/nvml's worker-thread PowerSampler, against the fake libnvidia-ml
// built from C in tooling/fake-nvml and loaded by the production koffi code (in the worker too).
const saved = { lib: process.env.LLEM_NVML_LIBRARY, scenario: process.env.LLEM_FAKE_NVML_SCENARIO };
function useFake(devices: FakeDevice[], errors: Record<string, 'NOT_SUPPORTED'> = {}) {
  process.env.LLEM_NVML_LIBRARY = fakeNvmlLibraryPath('full');
  process.env.LLEM_FAKE_NVML_SCENARIO = writeScenario({
    driverVersion: '550.54.15',
    cudaDriverVersion: 12040,
    devices,
    errors,
  });
}
afterEach(() => {
  for (const [k, v] of [
    ['LLEM_NVML_LIBRARY', saved.lib],
    ['LLEM_FAKE_NVML_SCENARIO', saved.scenario],
  ] as const)
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
});

const BLOCK_MS = 1500;
const INTERVAL_MS = 50;

/**
 * An engine whose run blocks this thread in a synchronous loop, as a busy engine's JS would;
 * with `steady`, it reports an openai-style steady-state window inside the block.
 */
function blockingEngine(steady?: { fromMs: number; toMs: number }): Engine {
  const engine = fakeEngine();
  return {
    ...engine,
    async run(requests) {
      const t0 = performance.now();
      while (performance.now() - t0 < BLOCK_MS) {
        // Busy: no timer, no message, nothing else runs on this thread.
      }
      const recs = requests.map((r, i) => ({
        id: r.id,
        startedAt: t0 + i,
        firstTokenAt: t0 + i + 10,
        tokenTimes: [],
        endedAt: t0 + BLOCK_MS,
        inputTokens: 8,
        outputTokens: 1,
      }));
      return {
        requests: recs,
        inputTokens: 8 * requests.length,
        outputTokens: requests.length,
        tokenCountSource: 'engine' as const,
        ...(steady
          ? {
              extra: {
                steadyState: {
                  startMs: t0 + steady.fromMs,
                  endMs: t0 + steady.toMs,
                  durationS: (steady.toMs - steady.fromMs) / 1000,
                  rule: 'target-concurrency',
                  targetConcurrency: 2,
                  outputTokens: 2,
                  requestIds: [0, 1],
                  requests: 2,
                },
              },
            }
          : {}),
      };
    },
  };
}

function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const push = (message: string) => {
    lines.push(message);
  };
  return { lines, error: push, warn: push, info: push, debug: push };
}

const config = (devices = [0], baseline = false): HarnessConfig => ({
  engine: 'llamacpp',
  model: 'builtin:tiny',
  dataset: { synthetic: { n: 2, input_len: 8, output_len: 4, seed: 1 } },
  max_output_tokens: 4,
  warmup: { n: 0 },
  baseline: { enabled: baseline, duration_s: 0.5 },
  energy: { backend: 'nvml', sample_interval_ms: INTERVAL_MS, devices },
});
const powercapRoot = mkdtempSync(join(tmpdir(), 'llem-no-rapl-'));

function run(
  options: {
    devices?: number[];
    baseline?: boolean;
    steady?: { fromMs: number; toMs: number };
    logger?: Logger;
    openGpuProbe?: (devices: readonly number[], logger: Logger) => Promise<GpuProbeOutcome>;
  } = {},
) {
  return measureRun(
    {
      runId: 'r_c1',
      configHash: '0123456789abcdef',
      cycle: 1,
      config: config(options.devices, options.baseline),
    },
    {
      createEngine: async () => blockingEngine(options.steady),
      powercapRoot,
      warningThresholds: { minDurationS: 0.1, minSamples: 3 },
      ...(options.logger ? { logger: options.logger } : {}),
      ...(options.openGpuProbe ? { openGpuProbe: options.openGpuProbe } : {}),
    },
  );
}

interface Row {
  window: string;
  t: number;
  device: string;
  powerW: number | null;
  clockEventReasons: number | null;
  energyJ: number | null;
}
function parseCsv(csv: string): Row[] {
  const [header, ...lines] = csv.trim().split('\n');
  const cols = (header ?? '').split(',');
  const at = (cells: string[], name: string) => {
    const v = cells[cols.indexOf(name)] ?? '';
    return v === '' ? null : Number(v);
  };
  return lines.map((line) => {
    const cells = line.split(',');
    return {
      window: cells[0] ?? '',
      t: at(cells, 't_ms') as number,
      device: cells[2] ?? '',
      powerW: at(cells, 'power_w'),
      clockEventReasons: at(cells, 'clock_event_reasons'),
      energyJ: at(cells, 'energy_j'),
    };
  });
}
/** Largest gap (ms) between consecutive power readings of one GPU in the measurement window. */
function maxPowerGap(rows: readonly Row[], device: string): number {
  const ts = rows
    .filter((r) => r.window === 'measure' && r.device === device && r.powerW !== null)
    .map((r) => r.t)
    .sort((a, b) => a - b);
  let gap = 0;
  for (let i = 1; i < ts.length; i++)
    gap = Math.max(gap, (ts[i] as number) - (ts[i - 1] as number));
  return gap;
}

/** The real NVML probe without its background sampler (or with one that cannot start). */
function mainThreadProbe(startFails: boolean) {
  return async (devices: readonly number[], logger: Logger): Promise<GpuProbeOutcome> => {
    const opened = await openNvmlGpuProbe(devices, logger);
    if (!opened.probe) return opened;
    const { startBackgroundSampler: _bg, ...rest } = opened.probe;
    const probe: GpuProbe = startFails
      ? {
          ...rest,
          startBackgroundSampler: () => {
            throw new Error('PowerSampler: the sampler worker is missing (test)');
          },
        }
      : rest;
    return { probe };
  };
}

describe('GPU samples from the worker thread (real koffi path)', () => {
  it('keep arriving while the engine blocks the main thread, and the integral stays within 5%', async () => {
    useFake([h100Profile({ instantPowerMw: 300_000, powerMw: 300_000 })], {
      nvmlDeviceGetTotalEnergyConsumption: 'NOT_SUPPORTED',
    });
    const logger = recordingLogger();
    const { result, timeseriesCsv } = await run({ logger, baseline: true });
    expect(logger.lines).toContain(
      'measure: baseline window: GPU samples taken on a worker thread',
    );
    expect(logger.lines).toContain('measure: measure window: GPU samples taken on a worker thread');
    // The idle baseline integrates the worker's samples too.
    expect(Math.abs((result.energy.baselineW as number) - 300) / 300).toBeLessThan(0.05);
    expect(result.energy.method).toBe('nvml-power-integral');
    const watts = (result.energy.totalJ as number) / result.window.durationS;
    expect(result.window.durationS).toBeGreaterThanOrEqual(BLOCK_MS / 1000);
    expect(Math.abs(watts - 300) / 300).toBeLessThan(0.05);
    const rows = parseCsv(timeseriesCsv);
    expect(
      rows.filter((r) => r.window === 'baseline' && r.device === 'gpu0' && r.powerW !== null)
        .length,
    ).toBeGreaterThanOrEqual(4);
    // A 50 ms worker keeps sampling through the 1.5 s block; a main-thread tick could not.
    expect(maxPowerGap(rows, 'gpu0')).toBeLessThan(BLOCK_MS / 2);
    expect(result.extra.samplesInWindow as number).toBeGreaterThanOrEqual(5);
    expect(result.memory.gpuPeakUsedMiB).toBeCloseTo(1, 6);
    expect(result.warnings.map((w) => w.code)).not.toContain('too-few-samples');
  });

  it('on the main thread (the control) the same block leaves a gap as long as the block', async () => {
    useFake([h100Profile({ instantPowerMw: 300_000, powerMw: 300_000 })], {
      nvmlDeviceGetTotalEnergyConsumption: 'NOT_SUPPORTED',
    });
    const { result, timeseriesCsv } = await run({ openGpuProbe: mainThreadProbe(false) });
    expect(maxPowerGap(parseCsv(timeseriesCsv), 'gpu0')).toBeGreaterThan(BLOCK_MS * 0.9);
    // Only the window edges: the integral still holds at constant power, the count is low.
    expect(result.extra.samplesInWindow as number).toBeLessThanOrEqual(2);
    expect(result.warnings.map((w) => w.code)).toContain('too-few-samples');
  });

  it('a worker that cannot start falls back to main-thread sampling with a debug line, never a failed run', async () => {
    useFake([h100Profile({ instantPowerMw: 300_000, powerMw: 300_000 })]);
    const logger = recordingLogger();
    const { result } = await run({ logger, openGpuProbe: mainThreadProbe(true) });
    expect(
      logger.lines.some((l) =>
        l.startsWith(
          'measure: measure window: the background GPU sampler did not start (PowerSampler: the sampler worker is missing (test)); sampling GPUs on the main thread',
        ),
      ),
    ).toBe(true);
    expect(logger.lines).not.toContain(
      'measure: measure window: GPU samples taken on a worker thread',
    );
    expect(result.energy.method).toBe('nvml-counter');
    const watts = (result.energy.totalJ as number) / result.window.durationS;
    expect(Math.abs(watts - 300) / 300).toBeLessThan(0.05);
  });

  it('two GPUs: each has its own worker samples, readings converted (MiB, clock-event mask), counter rows kept', async () => {
    useFake([
      h100Profile({ instantPowerMw: 300_000, powerMw: 300_000, clockEventReasons: 0x1 | 0x4 }),
      h100Profile({
        uuid: 'GPU-00000000-0000-0000-0000-000000000001',
        instantPowerMw: 100_000,
        powerMw: 100_000,
        // 0x400 has no name in nvml's table: it travels as 'unknown:0x400' and comes back.
        clockEventReasons: 0x1 | 0x400,
      }),
    ]);
    const { result, timeseriesCsv } = await run({ devices: [0, 1] });
    expect(result.energy.method).toBe('nvml-counter');
    const [g0, g1] = result.energy.perDevice;
    const s = result.window.durationS;
    expect(Math.abs((g0?.totalJ as number) / s - 300) / 300).toBeLessThan(0.05);
    expect(Math.abs((g1?.totalJ as number) / s - 100) / 100).toBeLessThan(0.05);
    const rows = parseCsv(timeseriesCsv).filter((r) => r.window === 'measure');
    for (const device of ['gpu0', 'gpu1'])
      expect(maxPowerGap(rows, device)).toBeLessThan(BLOCK_MS / 2);
    const sampled = (device: string) =>
      rows.filter((r) => r.device === device && r.powerW !== null);
    expect(new Set(sampled('gpu0').map((r) => r.clockEventReasons))).toEqual(new Set([0x5]));
    expect(new Set(sampled('gpu1').map((r) => r.clockEventReasons))).toEqual(new Set([0x401]));
    expect(new Set(sampled('gpu1').map((r) => r.powerW))).toEqual(new Set([100]));
    // swPowerCap (0x4) on GPU 0 in every sample is throttling; GPU 1 only idles.
    const throttling = result.warnings.filter((w) => w.code === 'throttling');
    expect(throttling).toHaveLength(1);
    expect(throttling[0]?.message).toMatch(/^GPU 0: .*swPowerCap/);
    // The window's edge rows carry the energy counter.
    expect(
      rows.filter((r) => r.device === 'gpu0' && r.energyJ !== null).length,
    ).toBeGreaterThanOrEqual(2);
    expect(result.memory.gpuPeakUsedMiB).toBeCloseTo(1, 6);
  });

  it("the steady-state window's energy integrates the worker's samples taken while the engine blocked", async () => {
    useFake([h100Profile({ instantPowerMw: 300_000, powerMw: 300_000 })], {
      nvmlDeviceGetTotalEnergyConsumption: 'NOT_SUPPORTED',
    });
    const { result } = await run({ steady: { fromMs: 300, toMs: 1200 } });
    const steady = result.extra.steadyState as {
      energy: { method: string; totalJ: number; samplesInWindow: number };
    };
    expect(steady.energy.method).toBe('nvml-power-integral');
    // A main-thread sampler takes no reading inside the block, so this would be null.
    expect(steady.energy.samplesInWindow).toBeGreaterThanOrEqual(5);
    expect(Math.abs(steady.energy.totalJ - 300 * 0.9) / (300 * 0.9)).toBeLessThan(0.05);
    expect(result.warnings.map((w) => w.code)).not.toContain('steady-state-too-short');
  });
});
