import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Engine, EngineRequest, RequestRecord } from '@llem/engines';
import { describe, expect, it } from 'vitest';
import {
  buildRequests,
  buildWarmupRequests,
  buildWorkload,
  type DatasetConfig,
  estimateTokens,
  loadDataset,
  syntheticPrompts,
  warmupSeed,
} from '../src/dataset';
import { peakRssMiB } from '../src/environment';
import { type HarnessConfig, measureRun } from '../src/harness';
import { startSampler, timeseriesCsv } from '../src/sampler';
import { runWarmup } from '../src/warmup';
import { fakeEngine } from './support/fakes';

const dir = mkdtempSync(join(tmpdir(), 'llem-measure-'));
/** `syntheticPrompts({ n: 2, input_len: 5, seed: 42 })` as llem generated it before datasets had formats. */
const GOLDEN_SEED_42 = ['first her back long an', 'two more call most make'];

/** The workload a dataset makes without a tokenizer (approximate lengths). */
const workloadOf = (dataset: DatasetConfig, maxOutputTokens: number, cwd = dir) =>
  buildWorkload(loadDataset(dataset, { cwd }), { maxOutputTokens });

describe('datasets', () => {
  it('synthetic prompts are deterministic per seed, about input_len tokens long', () => {
    const a = syntheticPrompts({ n: 3, input_len: 20, seed: 7 });
    expect(a).toEqual(syntheticPrompts({ n: 3, input_len: 20, seed: 7 }));
    expect(a).not.toEqual(syntheticPrompts({ n: 3, input_len: 20, seed: 8 }));
    expect(a.map((p) => p.split(' ').length)).toEqual([20, 20, 20]);
    expect(new Set(a).size).toBe(3);
  });

  it('keeps the prompts a synthetic seed always gave (consecutive slices of one stream)', () => {
    // The first words of seed 42's stream, as every earlier llem generated them.
    expect(syntheticPrompts({ n: 2, input_len: 5, seed: 42 })).toEqual(GOLDEN_SEED_42);
  });

  it('output_len is capped by max_output_tokens', async () => {
    const reqs = await buildRequests(
      { synthetic: { n: 2, input_len: 4, output_len: 64, seed: 1 } },
      32,
    );
    expect(reqs.map((r) => [r.id, r.maxOutputTokens])).toEqual([
      [0, 32],
      [1, 32],
    ]);
  });

  it('reads a .jsonl file (relative to cwd) by column, naming file and line on errors', async () => {
    writeFileSync(join(dir, 'p.jsonl'), '{"prompt":"a"}\n\n{"prompt":"b","x":1}\n');
    expect(
      (await buildRequests({ path: 'p.jsonl', column: 'prompt' }, 8, dir)).map((r) => r.prompt),
    ).toEqual(['a', 'b']);
    writeFileSync(join(dir, 'q.jsonl'), '{"text":"a"}\n');
    expect(await buildRequests({ path: 'q.jsonl', column: 'text' }, 8, dir)).toHaveLength(1);
    await expect(buildRequests({ path: 'q.jsonl', column: 'prompt' }, 8, dir)).rejects.toThrow(
      /q\.jsonl:1: expected an object with a string "prompt" field/,
    );
    writeFileSync(join(dir, 'bad.jsonl'), '{"prompt":"a"}\n{oops\n');
    await expect(buildRequests('bad.jsonl', 8, dir)).rejects.toThrow(
      /bad\.jsonl:2: not valid JSON/,
    );
    await expect(buildRequests('missing.jsonl', 8, dir)).rejects.toThrow(
      /missing\.jsonl: no such dataset file/,
    );
  });
});

describe('warmup prompts: the same shape, never a measured prompt', () => {
  it('synthetic: a separate seed stream, input_len words, none among the measured', async () => {
    const spec = { n: 64, input_len: 12, output_len: 8, seed: 42 };
    const workload = await workloadOf({ synthetic: spec }, 8);
    const measured = workload.requests.map((r) => r.prompt);
    const warm = buildWarmupRequests(workload, 20).map((r) => r.prompt);
    expect(warm).toHaveLength(20);
    expect(warm.every((p) => p.split(' ').length === 12)).toBe(true);
    expect(warm.filter((p) => measured.includes(p))).toEqual([]);
    // Deterministic, and not the measured stream: the warmup seed's own prompts.
    expect(buildWarmupRequests(workload, 20).map((r) => r.prompt)).toEqual(warm);
    expect(warm).toEqual(syntheticPrompts({ ...spec, n: 20, seed: warmupSeed(42) }));
    expect(warmupSeed(42)).not.toBe(42);
  });

  it('synthetic prompts of one word: a draw that is a measured prompt is drawn again', async () => {
    const workload = await workloadOf({ synthetic: { n: 60, input_len: 1, seed: 3 } }, 8);
    const measured = workload.requests.map((r) => r.prompt);
    const warm = buildWarmupRequests(workload, 30).map((r) => r.prompt);
    expect(warm).toHaveLength(30);
    expect(warm.filter((p) => measured.includes(p))).toEqual([]);
    // With every one-word prompt measured, there is nothing left to warm up with: say so.
    const all = await workloadOf({ synthetic: { n: 5000, input_len: 1, seed: 9 } }, 8);
    expect(() => buildWarmupRequests({ ...all, warmup: workload.warmup }, 2)).toThrow(
      /cannot generate 2 warmup prompts that differ from every measured prompt .*set warmup\.n: 0/,
    );
  });

  it("file datasets: generated prompts with the file's length distribution, no row used", async () => {
    const rows = ['short one', 'x'.repeat(400), 'a medium sized prompt of some words here'];
    writeFileSync(
      join(dir, 'lengths.jsonl'),
      rows.map((p) => JSON.stringify({ prompt: p })).join('\n'),
    );
    const workload = await workloadOf('lengths.jsonl', 16);
    const warm = buildWarmupRequests(workload, 40);
    expect(warm).toHaveLength(40);
    expect(warm.every((r) => r.maxOutputTokens === 16)).toBe(true);
    expect(warm.filter((r) => rows.includes(r.prompt))).toEqual([]);
    // Every warmup length is one of the rows' (estimated) token lengths, and each is used.
    const allowed = new Set(rows.map(estimateTokens));
    const lengths = warm.map((r) => r.prompt.split(' ').length);
    expect(lengths.every((n) => allowed.has(n))).toBe(true);
    expect(new Set(lengths)).toEqual(allowed);
  });

  it('buildWarmupRequests asks for the measured output length; none when warmup is off', async () => {
    const workload = await workloadOf(
      { synthetic: { n: 4, input_len: 6, output_len: 64, seed: 1 } },
      32,
    );
    const warm = buildWarmupRequests(workload, 3);
    expect(warm.map((r) => [r.id, r.maxOutputTokens])).toEqual([
      [0, 32],
      [1, 32],
      [2, 32],
    ]);
    expect(buildWarmupRequests(workload, 0)).toEqual([]);
  });
});

/** An engine whose warmup latencies follow a script (ms), one per request. */
function scriptedWarmup(latencies: number[]): Engine & { calls: number } {
  let i = 0;
  const e = {
    ...fakeEngine(),
    calls: 0,
    async warmup(reqs: EngineRequest[]): Promise<RequestRecord[]> {
      e.calls++;
      return reqs.map((r) => {
        const l = latencies[i++] ?? 10;
        return {
          id: r.id,
          startedAt: 0,
          firstTokenAt: 1,
          tokenTimes: [],
          endedAt: l,
          inputTokens: 1,
          outputTokens: 1,
        };
      });
    },
  };
  return e;
}
const workload: EngineRequest[] = [{ id: 0, prompt: 'p', maxOutputTokens: 4 }];

describe('warmup', () => {
  it('a fixed count runs n requests in one call', async () => {
    const engine = scriptedWarmup([]);
    const out = await runWarmup(engine, workload, { n: 3 });
    expect(out).toMatchObject({ requests: 3, converged: true });
    expect(engine.calls).toBe(1);
  });

  it('stops once the CV of the last window is under the threshold', async () => {
    // CV of [100, 50, 20] and [50, 20, 20] is high; [20, 20, 21] is ~0.028 < 0.05: stops after the 5th.
    const engine = scriptedWarmup([100, 50, 20, 20, 21, 20, 20, 20]);
    const out = await runWarmup(engine, workload, {
      n: 2,
      cv_threshold: 0.05,
      window: 3,
      max_n: 20,
    });
    expect(out.requests).toBe(5);
    expect(out.converged).toBe(true);
    expect(out.finalCv).toBeLessThan(0.05);
  });

  it('gives up at max_n and says it did not converge', async () => {
    const engine = scriptedWarmup([10, 30, 10, 30, 10, 30, 10, 30]);
    const out = await runWarmup(engine, workload, {
      n: 0,
      cv_threshold: 0.05,
      window: 3,
      max_n: 6,
    });
    expect(out).toMatchObject({ requests: 6, converged: false });
    expect(out.finalCv).toBeGreaterThan(0.3);
  });

  it('the harness warns when warmup did not converge', async () => {
    const engine = Object.assign(fakeEngine(), {
      warmup: scriptedWarmup([10, 30, 10, 30, 10, 30]).warmup,
    });
    const { result } = await measureRun(
      {
        runId: 'r',
        configHash: '0123456789abcdef',
        cycle: 0,
        config: {
          engine: 'llamacpp',
          model: 'm',
          dataset: { synthetic: { n: 1, input_len: 2, output_len: 2, seed: 0 } },
          max_output_tokens: 2,
          warmup: { n: 0, cv_threshold: 0.05, window: 3, max_n: 6 },
          energy: { backend: 'none', sample_interval_ms: 100, devices: [0] },
        },
      },
      { createEngine: async () => engine },
    );
    expect(result.warnings.find((w) => w.code === 'warmup-not-converged')?.message).toMatch(
      /after 6 requests/,
    );
    expect(result.energy).toMatchObject({
      method: 'none',
      totalJ: null,
      unavailableReason: 'energy.backend is none',
    });
  });
});

describe('RAPL through the harness (fake sysfs tree)', () => {
  it('a package counter advancing at 10 W (wrapping on the way) gives ≈ 10 W', async () => {
    const root = mkdtempSync(join(tmpdir(), 'llem-powercap-'));
    const pkg = join(root, 'intel-rapl:0');
    mkdirSync(pkg);
    writeFileSync(join(pkg, 'name'), 'package-0\n');
    const rangeUj = 3_000_000; // wraps every 0.3 s at 10 W
    writeFileSync(join(pkg, 'max_energy_range_uj'), `${rangeUj}\n`);
    const t0 = performance.now();
    const write = () =>
      writeFileSync(
        join(pkg, 'energy_uj'),
        `${Math.floor((performance.now() - t0) * 10_000) % rangeUj}\n`,
      );
    write();
    const timer = setInterval(write, 5);
    const config: HarnessConfig = {
      engine: 'llamacpp',
      model: 'm',
      dataset: { synthetic: { n: 2, input_len: 2, output_len: 8, seed: 0 } },
      max_output_tokens: 8,
      energy: { backend: 'rapl', sample_interval_ms: 50, devices: [0] },
    };
    try {
      const { result } = await measureRun(
        { runId: 'r', configHash: '0123456789abcdef', cycle: 0, config },
        { createEngine: async () => fakeEngine({ runMs: 1000 }), powercapRoot: root },
      );
      expect(result.energy.method).toBe('rapl');
      expect(result.energy.perDevice).toEqual([
        { index: 0, kind: 'cpu-package', method: 'rapl', totalJ: expect.any(Number) },
      ]);
      const watts = (result.energy.totalJ as number) / result.window.durationS;
      expect(Math.abs(watts - 10) / 10).toBeLessThan(0.05);
    } finally {
      clearInterval(timer);
    }
  });
});

describe('sampler, timeseries, RSS', () => {
  it('samples at a fixed interval until stopped', async () => {
    const s = startSampler((t) => t, { intervalMs: 20 });
    await new Promise((r) => setTimeout(r, 210));
    const ticks = s.stop();
    expect(ticks.length).toBeGreaterThanOrEqual(8);
    expect(ticks.length).toBeLessThanOrEqual(12);
    await new Promise((r) => setTimeout(r, 60));
    expect(s.ticks()).toHaveLength(ticks.length); // stopped means stopped
  });

  it('writes unknown values as empty cells, never 0', () => {
    const csv = timeseriesCsv([
      {
        window: 'measure',
        tMs: 12.3456,
        device: 'gpu0',
        sample: { powerW: 250.5, temperatureC: null },
        energyJ: null,
      },
    ]);
    expect(csv.split('\n')[1]).toBe('measure,12.346,gpu0,250.500,,,,,,,');
  });

  it('peak RSS from VmHWM, else the sampled figure', () => {
    const status = join(dir, 'status');
    writeFileSync(status, 'Name:\tnode\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n');
    expect(peakRssMiB(100 * 1024 * 1024, status)).toBe(200);
    expect(peakRssMiB(300 * 1024 * 1024, status)).toBe(300);
    expect(peakRssMiB(64 * 1024 * 1024, join(dir, 'nope'))).toBe(64);
    expect(peakRssMiB(null, join(dir, 'nope'))).toBeNull();
  });
});
