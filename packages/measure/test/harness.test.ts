import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RunResultSchema } from '@llem/domain';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_COUNTER_INTERVAL_MS,
  type HarnessConfig,
  type MeasureDeps,
  measureRun,
} from '../src/harness';
import { fakeEngine, type ScriptedGpu, scriptedProbe } from './support/fakes';

const emptyPowercap = mkdtempSync(join(tmpdir(), 'llem-no-rapl-'));
const config = (over: Partial<HarnessConfig> = {}): HarnessConfig => ({
  engine: 'llamacpp',
  model: 'builtin:tiny',
  dataset: { synthetic: { n: 4, input_len: 8, output_len: 16, seed: 1 } },
  max_output_tokens: 16,
  warmup: { n: 1 },
  baseline: { enabled: false, duration_s: 1 },
  energy: { backend: 'auto', sample_interval_ms: 20, devices: [0] },
  ...over,
});
const input = (cfg: HarnessConfig) => ({
  runId: 'abcdef0123456789_c1',
  configHash: 'abcdef0123456789',
  cycle: 1,
  config: cfg,
});
function deps(
  gpu: ScriptedGpu | null,
  engine = fakeEngine(),
  extra: Partial<MeasureDeps> = {},
): MeasureDeps {
  return {
    createEngine: async () => engine,
    openGpuProbe: () =>
      gpu ? { probe: scriptedProbe(gpu) } : { probe: null, reason: 'no NVML library (test)' },
    powercapRoot: emptyPowercap,
    warningThresholds: { minDurationS: 0.1, minSamples: 3 },
    ...extra,
  };
}

describe('measureRun', () => {
  it('at constant power P the NVML counter gives totalJ / durationS ≈ P (within 5%)', async () => {
    const { result, timeseriesCsv } = await measureRun(
      input(config()),
      deps({ powerW: 300, counter: 'supported' }),
    );
    expect(RunResultSchema.parse(result)).toBeTruthy();
    expect(result.energy.method).toBe('nvml-counter');
    expect(result.energy.perDevice).toEqual([
      { index: 0, kind: 'gpu', method: 'nvml-counter', totalJ: expect.any(Number) },
    ]);
    const watts = (result.energy.totalJ as number) / result.window.durationS;
    expect(Math.abs(watts - 300) / 300).toBeLessThan(0.05);
    expect(result.energyPerOutputTokenJ).toBeCloseTo((result.energy.totalJ as number) / 64, 9);
    expect(result.tokens).toEqual({ input: 32, output: 64, source: 'engine' });
    expect(result.flops).toEqual({
      estimate: 2 * 1000 * 96,
      method: '2-params-tokens',
      parameterCount: 1000,
    });
    expect(result.latency.ttftMs?.p50).toBeCloseTo(10, 6);
    expect(result.latency.itlMs?.p99).toBeCloseTo(2, 6);
    expect(result.memory.gpuPeakUsedMiB).toBe(1024);
    expect(result.memory.rssPeakMiB).toBeGreaterThan(10);
    expect(result.environment.gpus[0]?.name).toBe('Fake H100');
    expect(result.environment.engineVersion).toBe('fake 1.0');
    expect(result.energy.unavailableReason).toMatch(/RAPL/); // says why the CPU package is missing
    expect(timeseriesCsv.split('\n')[0]).toBe(
      'window,t_ms,device,power_w,memory_used_mib,memory_total_mib,temperature_c,utilization_gpu_pct,sm_clock_mhz,clock_event_reasons,energy_j',
    );
    expect(timeseriesCsv).toMatch(/\nmeasure,[\d.]+,gpu0,300,1024,81920,40,90,1980,0,/);
    // A synthetic dataset and a model the engine loaded from no file: nothing to identify.
    expect(result.inputs).toEqual({ model: null, dataset: null });
  });

  it('records which model and dataset files the run read (path, size, sha256)', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'llem-harness-inputs-'));
    writeFileSync(join(cwd, 'prompts.jsonl'), '{"prompt":"a b c"}\n{"prompt":"d e f"}\n');
    writeFileSync(join(cwd, 'weights.bin'), 'not really weights');
    const { result } = await measureRun(
      input(config({ engine: 'command', model: 'weights.bin', dataset: 'prompts.jsonl' })),
      deps(null, fakeEngine(), { cwd }),
    );
    expect(RunResultSchema.parse(result).inputs).toEqual({
      model: expect.objectContaining({
        path: join(cwd, 'weights.bin'),
        sizeBytes: 18,
        sha256: createHash('sha256').update('not really weights').digest('hex'),
        coverage: 'full',
      }),
      dataset: expect.objectContaining({ path: join(cwd, 'prompts.jsonl'), coverage: 'full' }),
    });
  });

  it('the power integral gives the same when the counter is NOT_SUPPORTED', async () => {
    const { result } = await measureRun(
      input(config()),
      deps({ powerW: 300, counter: 'not-supported' }),
    );
    expect(result.energy.method).toBe('nvml-power-integral');
    const watts = (result.energy.totalJ as number) / result.window.durationS;
    expect(Math.abs(watts - 300) / 300).toBeLessThan(0.05);
    expect(result.energy.unavailableReason).toMatch(
      /not supported or not readable; used the integral/,
    );
  });

  it('a counter reset mid-window falls back to the integral and warns', async () => {
    // The scripted reset steps back less than the window's energy, so only dense counter reads
    // (every tick) see it go backwards; sparse reads are covered by the test further down.
    const { result } = await measureRun(
      input(config()),
      deps({ powerW: 200, counter: 'reset' }, fakeEngine(), { counterIntervalMs: 20 }),
    );
    expect(result.energy.method).toBe('nvml-power-integral');
    const watts = (result.energy.totalJ as number) / result.window.durationS;
    expect(Math.abs(watts - 200) / 200).toBeLessThan(0.05);
    expect(result.warnings.map((w) => w.code)).toContain('energy-counter-reset');
  });

  it('baseline: idle W over the baseline window and adjusted = max(0, raw − W × s)', async () => {
    const { result } = await measureRun(
      input(config({ baseline: { enabled: true, duration_s: 0.2 } })),
      deps({ powerW: 100, counter: 'supported' }),
    );
    expect(result.energy.baselineW).toBeGreaterThan(95);
    expect(result.energy.baselineW).toBeLessThan(105);
    // Constant power: idle equals loaded, so the adjusted energy is ~0 (and never negative).
    expect(result.energy.adjustedJ).toBeGreaterThanOrEqual(0);
    expect(result.energy.adjustedJ as number).toBeLessThan(0.05 * (result.energy.totalJ as number));
  });

  it('without any energy source: null figures, method none, the reason and a warning — never 0', async () => {
    const { result } = await measureRun(input(config()), deps(null));
    expect(result.energy).toMatchObject({
      method: 'none',
      totalJ: null,
      adjustedJ: null,
      perDevice: [],
    });
    expect(result.energy.unavailableReason).toMatch(
      /NVML: no NVML library \(test\); RAPL: .*does not exist|no intel-rapl/,
    );
    expect(result.energyPerOutputTokenJ).toBeNull();
    expect(result.memory.gpuPeakUsedMiB).toBeNull();
    expect(result.warnings.map((w) => w.code)).toContain('energy-unavailable');
    expect(result.throughput.outputTokensPerS).toBeGreaterThan(0);
  });

  it('an explicit backend that is not there is an error, not a silent none', async () => {
    await expect(
      measureRun(
        input(config({ energy: { backend: 'nvml', sample_interval_ms: 20, devices: [0] } })),
        deps(null),
      ),
    ).rejects.toMatchObject({
      name: 'MeasurementError',
      code: 'ENERGY_UNAVAILABLE',
    });
    await expect(
      measureRun(
        input(config({ energy: { backend: 'rapl', sample_interval_ms: 20, devices: [0] } })),
        deps(null),
      ),
    ).rejects.toThrow(/backend is rapl/);
  });

  it('warns about persistence mode, residual memory, throttling, temperature drift, short runs and few samples', async () => {
    const { result } = await measureRun(
      {
        ...input(config({ energy: { backend: 'auto', sample_interval_ms: 100, devices: [0] } })),
        residualCheck: {
          status: 'exceeded',
          thresholdMb: 100,
          devices: [{ index: 0, usedMb: 2048, totalMb: 81920, exceeded: true }],
          reason: null,
          checkedAt: new Date().toISOString(),
        },
      },
      deps(
        {
          powerW: 300,
          counter: 'supported',
          persistenceMode: false,
          clockEventReasons: 0x20,
          temperatureC: (ms) => 40 + ms / 10,
        },
        fakeEngine({ runMs: 300 }),
        { warningThresholds: { minDurationS: 5, minSamples: 10, maxTemperatureDriftC: 10 } },
      ),
    );
    const codes = result.warnings.map((w) => w.code);
    expect(codes).toEqual(
      expect.arrayContaining([
        'run-too-short',
        'persistence-mode-off',
        'residual-memory',
        'too-few-samples',
        'throttling',
        'temperature-drift',
      ]),
    );
    expect(result.warnings.find((w) => w.code === 'residual-memory')?.message).toMatch(
      /GPU 0 had 2048 MB/,
    );
    expect(result.warnings.find((w) => w.code === 'throttling')?.message).toMatch(
      /swThermalSlowdown/,
    );
    expect(result.residualCheck?.status).toBe('exceeded');
  });

  it('requests/s counts completed requests only; failures are warned about', async () => {
    const engine = fakeEngine({ runMs: 400 });
    const run = engine.run.bind(engine);
    engine.run = async (requests) => {
      const outcome = await run(requests);
      const [first, ...rest] = outcome.requests;
      return {
        ...outcome,
        requests: [
          { ...first!, error: { type: 'CONTEXT_OVERFLOW', message: 'too long' } },
          ...rest,
        ],
      };
    };
    const { result } = await measureRun(input(config()), {
      ...deps({ powerW: 300, counter: 'supported' }),
      createEngine: async () => engine,
    });
    const total = 4; // config()'s synthetic n
    expect(result.extra?.requests).toBe(total - 1);
    expect(result.throughput.requestsPerS).toBeCloseTo((total - 1) / result.window.durationS, 6);
    expect(result.warnings.map((w) => w.code)).toContain('request-failures');
  });

  it('a clean run has no quality warnings', async () => {
    const { result } = await measureRun(
      input(config()),
      deps({ powerW: 300, counter: 'supported' }),
    );
    expect(result.warnings).toEqual([]);
  });

  /** The fake engine, plus an openai-style `extra.steadyState` over [t0 + fromMs, t0 + toMs]. */
  function steadyEngine(fromMs: number, toMs: number, outputTokens: number) {
    const engine = fakeEngine({ runMs: 400 });
    const run = engine.run.bind(engine);
    const seen: { startMs: number; endMs: number }[] = [];
    engine.run = async (requests) => {
      const t0 = performance.now();
      const outcome = await run(requests);
      const window = { startMs: t0 + fromMs, endMs: t0 + toMs };
      seen.push(window);
      return {
        ...outcome,
        extra: {
          steadyState: {
            ...window,
            durationS: (toMs - fromMs) / 1000,
            rule: 'target-concurrency',
            targetConcurrency: 4,
            outputTokens,
            requestIds: [1, 2],
            requests: 2,
          },
          goodput: { slo: { ttftMs: 50, itlMs: null, e2eMs: null }, met: 3, total: 4 },
        },
      };
    };
    return { engine, seen };
  }

  for (const counter of ['supported', 'not-supported'] as const)
    it(`steady-state energy ≈ P × steady duration and per token = that / outputTokens (counter ${counter})`, async () => {
      const { engine, seen } = steadyEngine(100, 300, 50);
      const { result } = await measureRun(
        input(config({ baseline: { enabled: true, duration_s: 0.1 } })),
        // Counter read every tick, so the 200 ms steady window holds enough counter spans.
        deps({ powerW: 300, counter }, engine, { counterIntervalMs: 20 }),
      );
      const steady = result.extra.steadyState as Record<string, unknown> & {
        energy: Record<string, unknown> & { totalJ: number; adjustedJ: number };
      };
      const w = seen[0] as { startMs: number; endMs: number };
      // The engine's fields stay as they were; the energy is added beside them.
      expect(steady).toMatchObject({ ...w, rule: 'target-concurrency', outputTokens: 50 });
      const expectedJ = 300 * ((w.endMs - w.startMs) / 1000);
      expect(steady.energy.method).toBe(
        counter === 'supported' ? 'nvml-counter' : 'nvml-power-integral',
      );
      expect(Math.abs(steady.energy.totalJ - expectedJ) / expectedJ).toBeLessThan(0.05);
      expect(steady.energy.energyPerOutputTokenJ).toBeCloseTo(steady.energy.totalJ / 50, 9);
      expect(steady.energy.perDevice).toEqual([
        { index: 0, kind: 'gpu', method: steady.energy.method, totalJ: steady.energy.totalJ },
      ]);
      // Idle equals loaded at constant power, so the adjusted figure is ~0, and never negative.
      expect(steady.energy.adjustedJ).toBeGreaterThanOrEqual(0);
      expect(steady.energy.adjustedJ).toBeLessThan(0.05 * steady.energy.totalJ);
      expect(steady.energy.adjustedEnergyPerOutputTokenJ).toBeCloseTo(
        steady.energy.adjustedJ / 50,
        9,
      );
      expect(steady.energy.samplesInWindow).toBeGreaterThanOrEqual(5); // 200 ms at 20 ms
      // The full window is untouched: it is longer than the steady state.
      expect(result.energy.totalJ as number).toBeGreaterThan(steady.energy.totalJ * 1.5);
      expect(result.energyPerOutputTokenJ).toBeCloseTo((result.energy.totalJ as number) / 64, 9);
      expect(result.extra.goodput).toMatchObject({ met: 3, total: 4 });
      expect(result.warnings).toEqual([]);
    });

  it('a steady window shorter than two counter spans uses the power integral and says so', async () => {
    // Default counterIntervalMs (1 s): the 200 ms steady window holds no counter read.
    const { engine, seen } = steadyEngine(100, 300, 50);
    const { result } = await measureRun(
      input(config()),
      deps({ powerW: 300, counter: 'supported' }, engine),
    );
    const steady = result.extra.steadyState as { energy: Record<string, unknown> };
    const w = seen[0] as { startMs: number; endMs: number };
    const expectedJ = 300 * ((w.endMs - w.startMs) / 1000);
    expect(result.energy.method).toBe('nvml-counter');
    expect(steady.energy).toMatchObject({
      method: 'nvml-power-integral',
      perDevice: [{ index: 0, kind: 'gpu', method: 'nvml-power-integral' }],
      unavailableReason: null,
    });
    const totalJ = steady.energy.totalJ as number;
    expect(Math.abs(totalJ - expectedJ) / expectedJ).toBeLessThan(0.05);
  });

  it('a steady-state window with too few samples: null figures, a reason and a warning', async () => {
    const { engine } = steadyEngine(100, 110, 5); // 10 ms at a 20 ms interval
    const { result } = await measureRun(
      input(config()),
      deps({ powerW: 300, counter: 'supported' }, engine),
    );
    const energy = (result.extra.steadyState as { energy: Record<string, unknown> }).energy;
    expect(energy).toMatchObject({ totalJ: null, energyPerOutputTokenJ: null, method: 'none' });
    expect(energy.unavailableReason).toMatch(/fewer than 3/);
    expect(result.warnings.map((w) => w.code)).toEqual(['steady-state-too-short']);
    expect(result.energy.totalJ).toBeGreaterThan(0); // the full window is still reported
  });

  it('a steady state that is off or unavailable is copied as it is, with no energy', async () => {
    for (const steadyState of [
      null,
      { unavailable: 'the target concurrency 8 was never reached' },
    ]) {
      const engine = fakeEngine();
      const run = engine.run.bind(engine);
      engine.run = async (requests) => ({ ...(await run(requests)), extra: { steadyState } });
      const { result } = await measureRun(
        input(config()),
        deps({ powerW: 300, counter: 'supported' }, engine),
      );
      expect(result.extra.steadyState).toEqual(steadyState);
    }
  });

  it('a load failure fails the run at once (engines retry inside load), engine disposed, NVML closed', async () => {
    const engine = fakeEngine({ failLoads: 1 });
    const probe = scriptedProbe({ powerW: 1, counter: 'supported' });
    await expect(
      measureRun(input(config()), { ...deps(null, engine), openGpuProbe: () => ({ probe }) }),
    ).rejects.toThrow('transient load failure');
    expect(engine.loads).toBe(1);
    expect(engine.disposed).toBe(1);
    expect(probe.closed).toBe(1);

    const broken = fakeEngine();
    broken.run = async () => {
      throw new Error('boom');
    };
    await expect(measureRun(input(config()), deps(null, broken))).rejects.toThrow('boom');
    expect(broken.disposed).toBe(1);
  });
});

describe('measureRun: the NVML energy counter is read sparsely (it costs ~3.86 ms a read)', () => {
  /** A scripted probe that counts its counter reads and power reads. */
  function countingProbe(gpu: ScriptedGpu) {
    const probe = scriptedProbe(gpu);
    const counted = { counterReads: 0, powerReads: 0 };
    const readCounter = probe.energyCounterMj.bind(probe);
    const readPower = probe.powerW.bind(probe);
    probe.energyCounterMj = (i: number) => {
      counted.counterReads++;
      return readCounter(i);
    };
    probe.powerW = (i: number) => {
      counted.powerReads++;
      return readPower(i);
    };
    return { probe, counted };
  }
  const sparseConfig = () =>
    config({ energy: { backend: 'auto', sample_interval_ms: 100, devices: [0] } });

  it('2 s at 100 ms ticks reads the counter ~4 times (edges + once a second), power every tick', async () => {
    expect(DEFAULT_COUNTER_INTERVAL_MS).toBe(1000);
    const { probe, counted } = countingProbe({ powerW: 300, counter: 'supported' });
    const { result, timeseriesCsv } = await measureRun(input(sparseConfig()), {
      ...deps(null, fakeEngine({ runMs: 2000 })),
      openGpuProbe: () => ({ probe }),
    });
    // Window start + stop, plus reads near 1 s and 2 s; never one per tick (~20).
    expect(counted.counterReads).toBeGreaterThanOrEqual(3);
    expect(counted.counterReads).toBeLessThanOrEqual(5);
    expect(counted.powerReads).toBeGreaterThanOrEqual(18);
    // The counter still gives the energy, within 5% of P at constant power.
    expect(result.energy.method).toBe('nvml-counter');
    const watts = (result.energy.totalJ as number) / result.window.durationS;
    expect(Math.abs(watts - 300) / 300).toBeLessThan(0.05);
    // CSV: ticks without a counter read have an empty energy cell, the others a number.
    const gpuRows = timeseriesCsv
      .trim()
      .split('\n')
      .slice(1)
      .filter((l) => l.split(',')[2] === 'gpu0');
    const energyCells = gpuRows.map((l) => l.split(',')[10]);
    expect(energyCells.filter((c) => c === '').length).toBeGreaterThan(10);
    const filled = energyCells.filter((c) => c !== '');
    expect(filled.length).toBeGreaterThanOrEqual(2);
    expect(filled.length).toBeLessThanOrEqual(4);
    // Power stays per tick.
    expect(gpuRows.every((l) => l.split(',')[3] === '300')).toBe(true);
  });

  it('a counterIntervalMs below the sample interval is clamped to it (one read per tick at most)', async () => {
    const { probe, counted } = countingProbe({ powerW: 300, counter: 'supported' });
    const { result } = await measureRun(input(sparseConfig()), {
      ...deps(null, fakeEngine({ runMs: 500 })),
      openGpuProbe: () => ({ probe }),
      counterIntervalMs: 1,
    });
    // ~5 ticks plus the edge reads and the warmup-free start/stop: never more than ticks + 4.
    const ticks = (result.extra.samplesInWindow as number) + 4;
    expect(counted.counterReads).toBeLessThanOrEqual(ticks + 2);
    expect(counted.counterReads).toBeGreaterThanOrEqual(5);
  });

  it('a counter reset between sparse reads is still detected: integral used, warning given', async () => {
    // A driver reload: the counter restarts from 0 at 1.2 s into the probe's life, so the read
    // after it is lower than the one before.
    const probe = scriptedProbe({ powerW: 250, counter: 'supported' });
    const t0 = performance.now();
    probe.energyCounterMj = () => {
      const ms = performance.now() - t0;
      return ms < 1200 ? ms * 250 : (ms - 1200) * 250;
    };
    const { result } = await measureRun(input(sparseConfig()), {
      ...deps(null, fakeEngine({ runMs: 2000 })),
      openGpuProbe: () => ({ probe }),
    });
    expect(result.energy.method).toBe('nvml-power-integral');
    expect(result.energy.unavailableReason).toMatch(/went backwards/);
    const watts = (result.energy.totalJ as number) / result.window.durationS;
    expect(Math.abs(watts - 250) / 250).toBeLessThan(0.05);
    expect(result.warnings.map((w) => w.code)).toContain('energy-counter-reset');
  });
});

describe('measureRun: runs given GPUs (execution.devices)', () => {
  it('measures exactly the GPUs it was given, records them, and keeps the config as written', async () => {
    let opened: readonly number[] = [];
    const { result } = await measureRun(
      { ...input(config()), devices: [{ index: 3, uuid: 'GPU-3333' }] },
      deps(null, fakeEngine(), {
        openGpuProbe: (devices) => {
          opened = devices;
          return { probe: null, reason: 'no NVML library (test)' };
        },
      }),
    );
    expect(opened).toEqual([3]);
    expect(result.devices).toEqual([{ index: 3, uuid: 'GPU-3333' }]);
    expect((result.config.energy as { devices: number[] }).devices).toEqual([0]);
    expect(RunResultSchema.parse(result).devices).toEqual([{ index: 3, uuid: 'GPU-3333' }]);
  });

  it('records the Slurm job it was measured in, and nothing when there is none', async () => {
    const slurm = { jobId: '812', arrayJobId: '800', arrayTaskId: '12', nodeName: 'gpu-7' };
    const { result } = await measureRun({ ...input(config()), slurm }, deps(null, fakeEngine()));
    expect(RunResultSchema.parse(result).slurm).toEqual(slurm);
    const local = await measureRun(input(config()), deps(null, fakeEngine()));
    expect('slurm' in local.result).toBe(false);
  });

  it('with runs in parallel, host-wide RAPL energy is listed as shared and left out of the total', async () => {
    const root = mkdtempSync(join(tmpdir(), 'llem-powercap-'));
    mkdirSync(join(root, 'intel-rapl:0'));
    writeFileSync(join(root, 'intel-rapl:0', 'name'), 'package-0\n');
    writeFileSync(join(root, 'intel-rapl:0', 'energy_uj'), '1000000\n');
    const gpu = { powerW: 200, counter: 'supported' as const };
    const alone = await measureRun(
      input(config()),
      deps(gpu, fakeEngine(), { powercapRoot: root }),
    );
    expect(alone.result.energy.perDevice.map((d) => [d.kind, d.shared])).toEqual([
      ['gpu', undefined],
      ['cpu-package', undefined],
    ]);
    expect(alone.result.warnings.map((w) => w.code)).not.toContain('shared-host-energy');

    const { result } = await measureRun(
      { ...input(config()), sharedHost: true },
      deps(gpu, fakeEngine(), { powercapRoot: root }),
    );
    const [g, cpu] = result.energy.perDevice;
    expect(cpu).toMatchObject({ kind: 'cpu-package', shared: true });
    expect(g?.shared).toBeUndefined();
    // The total is the run's own GPU, not the host's CPU packages.
    expect(result.energy.totalJ).toBe(g?.totalJ);
    expect(result.energy.method).toBe('nvml-counter');
    expect(result.warnings.find((w) => w.code === 'shared-host-energy')?.message).toMatch(
      /host-wide/,
    );
    expect(RunResultSchema.parse(result)).toBeTruthy();
  });
});
